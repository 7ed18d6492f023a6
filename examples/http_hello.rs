//! A keep-alive HTTP/1.1 "hello world" server, written twice: with streams
//! (`start_server`, one task per connection reading lines from a
//! [`StreamReader`](tulip::StreamReader)) and with a
//! [`Protocol`](tulip::Protocol) that parses requests incrementally in
//! `data_received`. Both speak enough HTTP/1.1 for `curl` and `wrk`:
//! keep-alive by default, pipelining (responses in request order),
//! `Connection: close`, HTTP/1.0 (closes unless `Connection: keep-alive`),
//! request bodies with `Content-Length` read and dropped (after a
//! `100 Continue` when the client sent `Expect: 100-continue`), and
//! `400 Bad Request` (then close) for a malformed request or an HTTP/1.1
//! one without `Host`. Every final response carries a `Date` header. A
//! client that sends without reading its responses
//! makes the server stop reading (flow control), not buffer without bound.
//!
//! By default it serves on an ephemeral port, checks itself with raw
//! requests (pipelining, a body, `Connection: close`, a missing `Host`, a
//! malformed request line, `Expect: 100-continue`, HTTP/1.0), prints what
//! it saw and exits; without `--mode` it checks both modes. With `--forever` it serves until killed (printing
//! `listening on http://ADDR/` first), e.g. for `wrk -t1 -c10 -d2s`.
//!
//! ```text
//! cargo run --release --example http_hello -- [--mode streams|protocol]
//!     [--forever] [--host 127.0.0.1] [--port 0]
//! ```

#![allow(clippy::print_stdout)]

use examples::{DateCache, arg, flag};
use std::io::Write;
use std::time::Duration;

use tulip::prelude::*;
use tulip::{
    IncompleteReadError, LimitOverrunError, ServerOptions, StreamOptions, StreamReader,
    StreamWriter, create_server, open_connection, start_server,
};

/// The longest request line or header line accepted.
const MAX_LINE: usize = 16 * 1024;
/// The most header lines accepted in one request.
const MAX_HEADERS: usize = 100;
const BODY: &[u8] = b"Hello, World!";

// ---------------------------------------------------------------------------
// Request parsing, shared by both servers: one line at a time.
// ---------------------------------------------------------------------------

/// What the request line and headers say about one request.
#[derive(Debug)]
struct Head {
    http11: bool,
    /// `HEAD`: the response has no body.
    head_only: bool,
    /// `Connection: close` was sent.
    close: bool,
    /// `Connection: keep-alive` was sent (matters for HTTP/1.0).
    keep_alive: bool,
    content_length: Option<u64>,
    /// A `Transfer-Encoding` was sent: this server does not decode one.
    transfer_encoding: bool,
    /// `Expect: 100-continue`: the client waits for `100 Continue` before
    /// it sends the body (curl does for bodies over 1 MiB).
    expect_continue: bool,
    /// A `Host` header was sent (HTTP/1.1 requires one: RFC 9112 3.2).
    host: bool,
    headers: usize,
}

impl Head {
    /// What the complete head cannot be served for: a missing `Host` in
    /// HTTP/1.1 (400), a `Transfer-Encoding` this server does not decode
    /// (501).
    fn refusal(&self) -> Option<Reject> {
        if self.http11 && !self.host {
            Some(Reject::BadRequest)
        } else if self.transfer_encoding {
            Some(Reject::NotImplemented)
        } else {
            None
        }
    }

    /// The interim response owed before reading a body, if any.
    fn continue_line(&self) -> Option<&'static [u8]> {
        let has_body = self.content_length.is_some_and(|n| n > 0);
        (self.http11 && self.expect_continue && has_body)
            .then_some(b"HTTP/1.1 100 Continue\r\n\r\n")
    }
}

impl Head {
    /// HTTP/1.1 keeps the connection unless told to close; HTTP/1.0 closes
    /// unless told to keep it.
    fn keeps_alive(&self) -> bool {
        !self.close && (self.http11 || self.keep_alive)
    }
}

/// A malformed request: the status line of the answer.
#[derive(Debug, Clone, Copy)]
enum Reject {
    BadRequest,
    NotImplemented,
}

fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// RFC 9110 `tchar`: what a method or a header name is made of.
fn is_token(bytes: &[u8]) -> bool {
    !bytes.is_empty()
        && bytes
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// `METHOD SP TARGET SP HTTP/1.x`, or `None` if malformed.
fn parse_request_line(line: &[u8]) -> Option<Head> {
    let mut parts = line.split(|&b| b == b' ');
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || !is_token(method) {
        return None;
    }
    if target.is_empty() || target.iter().any(|b| b.is_ascii_control()) {
        return None;
    }
    let http11 = match version {
        b"HTTP/1.1" => true,
        b"HTTP/1.0" => false,
        _ => return None,
    };
    Some(Head {
        http11,
        head_only: method == b"HEAD",
        close: false,
        keep_alive: false,
        content_length: None,
        transfer_encoding: false,
        expect_continue: false,
        host: false,
        headers: 0,
    })
}

/// One `Name: value` line into `head`.
fn parse_header(head: &mut Head, line: &[u8]) -> Result<(), Reject> {
    head.headers += 1;
    if head.headers > MAX_HEADERS {
        return Err(Reject::BadRequest);
    }
    let colon = line
        .iter()
        .position(|&b| b == b':')
        .ok_or(Reject::BadRequest)?;
    let name = &line[..colon];
    if !is_token(name) {
        return Err(Reject::BadRequest);
    }
    let value = line[colon + 1..].trim_ascii();
    if name.eq_ignore_ascii_case(b"connection") {
        for option in value.split(|&b| b == b',') {
            let option = option.trim_ascii();
            if option.eq_ignore_ascii_case(b"close") {
                head.close = true;
            } else if option.eq_ignore_ascii_case(b"keep-alive") {
                head.keep_alive = true;
            }
        }
    } else if name.eq_ignore_ascii_case(b"content-length") {
        if value.is_empty() || value.len() > 18 || !value.iter().all(u8::is_ascii_digit) {
            return Err(Reject::BadRequest);
        }
        let n: u64 = std::str::from_utf8(value)
            .ok()
            .and_then(|v| v.parse().ok())
            .ok_or(Reject::BadRequest)?;
        // Two different lengths: a request smuggling attempt.
        if head.content_length.is_some_and(|old| old != n) {
            return Err(Reject::BadRequest);
        }
        head.content_length = Some(n);
    } else if name.eq_ignore_ascii_case(b"host") {
        head.host = true;
    } else if name.eq_ignore_ascii_case(b"expect") {
        head.expect_continue = value.eq_ignore_ascii_case(b"100-continue");
    } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
        head.transfer_encoding = true;
    }
    Ok(())
}

thread_local! {
    /// The `Date` header's value, formatted once a second.
    static DATE: DateCache = DateCache::default();
}

/// The `Date` header every final response carries (RFC 9110 §6.6.1).
fn date_header(out: &mut Vec<u8>) {
    out.extend_from_slice(b"Date: ");
    DATE.with(|date| date.write_now(out));
    out.extend_from_slice(b"\r\n");
}

/// The answer to a well-formed request.
fn respond(out: &mut Vec<u8>, head: &Head) {
    out.extend_from_slice(b"HTTP/1.1 200 OK\r\nServer: tulip\r\nContent-Type: text/plain\r\n");
    date_header(out);
    out.extend_from_slice(format!("Content-Length: {}\r\n", BODY.len()).as_bytes());
    if !head.keeps_alive() {
        out.extend_from_slice(b"Connection: close\r\n");
    } else if !head.http11 {
        out.extend_from_slice(b"Connection: keep-alive\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if !head.head_only {
        out.extend_from_slice(BODY);
    }
}

/// The answer to a malformed request; the connection closes after it.
fn reject(out: &mut Vec<u8>, why: Reject) {
    let (status, body): (&[u8], &[u8]) = match why {
        Reject::BadRequest => (b"400 Bad Request", b"bad request\n"),
        Reject::NotImplemented => (
            b"501 Not Implemented",
            b"transfer codings are not supported\n",
        ),
    };
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status);
    out.extend_from_slice(b"\r\nServer: tulip\r\nContent-Type: text/plain\r\n");
    date_header(out);
    out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
    out.extend_from_slice(b"Connection: close\r\n\r\n");
    out.extend_from_slice(body);
}

// ---------------------------------------------------------------------------
// The streams server: one task per connection.
// ---------------------------------------------------------------------------

enum Input {
    Line(Vec<u8>),
    /// The peer closed (possibly in the middle of a line).
    Eof,
    TooLong,
}

async fn read_line(reader: &StreamReader) -> Result<Input, Error> {
    match reader.readuntil(b"\n").await {
        Ok(line) => Ok(Input::Line(line)),
        Err(err) if err.downcast_ref::<IncompleteReadError>().is_some() => Ok(Input::Eof),
        Err(err) if err.downcast_ref::<LimitOverrunError>().is_some() => Ok(Input::TooLong),
        Err(err) => Err(err),
    }
}

/// Reads and drops `n` body bytes; false if the peer closed first.
async fn discard(reader: &StreamReader, mut n: u64) -> Result<bool, Error> {
    while n > 0 {
        let chunk = reader.read(n.min(64 * 1024) as isize).await?;
        if chunk.is_empty() {
            return Ok(false);
        }
        n -= chunk.len() as u64;
    }
    Ok(true)
}

async fn serve_streams(reader: StreamReader, writer: StreamWriter) -> Result<(), Error> {
    let result = serve_connection(&reader, &writer).await;
    writer.close();
    result
}

async fn serve_connection(reader: &StreamReader, writer: &StreamWriter) -> Result<(), Error> {
    let mut out = Vec::with_capacity(256);
    loop {
        out.clear();
        // The request line; empty lines before it are skipped (RFC 9112 2.2).
        let mut head = loop {
            match read_line(reader).await? {
                Input::Eof => return Ok(()),
                Input::TooLong => return send_reject(writer, Reject::BadRequest),
                Input::Line(line) if trim_eol(&line).is_empty() => continue,
                Input::Line(line) => match parse_request_line(trim_eol(&line)) {
                    Some(head) => break head,
                    None => return send_reject(writer, Reject::BadRequest),
                },
            }
        };
        // The headers, up to the blank line.
        loop {
            match read_line(reader).await? {
                Input::Eof => return Ok(()),
                Input::TooLong => return send_reject(writer, Reject::BadRequest),
                Input::Line(line) if trim_eol(&line).is_empty() => break,
                Input::Line(line) => {
                    if let Err(why) = parse_header(&mut head, trim_eol(&line)) {
                        return send_reject(writer, why);
                    }
                }
            }
        }
        if let Some(why) = head.refusal() {
            return send_reject(writer, why);
        }
        if let Some(line) = head.continue_line() {
            writer.write(line)?;
        }
        if !discard(reader, head.content_length.unwrap_or(0)).await? {
            return Ok(());
        }
        respond(&mut out, &head);
        writer.write(&out)?;
        if !head.keeps_alive() {
            return Ok(());
        }
        writer.drain().await?;
    }
}

fn send_reject(writer: &StreamWriter, why: Reject) -> Result<(), Error> {
    let mut out = Vec::new();
    reject(&mut out, why);
    writer.write(&out)
}

// ---------------------------------------------------------------------------
// The protocol server: a state machine fed by data_received.
// ---------------------------------------------------------------------------

#[derive(Default)]
enum Parse {
    #[default]
    RequestLine,
    Headers(Head),
    /// Dropping the body: bytes still to come.
    Body(Head, u64),
}

/// Parses whatever arrived, answers every complete request in one write
/// (so pipelined requests get their responses in order), and closes after
/// a response that ends the connection.
#[derive(Default)]
struct HttpProtocol {
    transport: Option<Transport>,
    buf: Vec<u8>,
    state: Parse,
    out: Vec<u8>,
    closing: bool,
}

impl BaseProtocol for HttpProtocol {
    fn connection_made(&mut self, transport: Transport) {
        self.transport = Some(transport);
    }

    examples::pause_reading_while_writing_is_paused!();
}

impl Protocol for HttpProtocol {
    fn data_received(&mut self, data: &[u8]) {
        if self.closing {
            return;
        }
        self.buf.extend_from_slice(data);
        let close = self.parse();
        let Some(transport) = &self.transport else {
            return;
        };
        if !self.out.is_empty() {
            transport.write(&self.out);
            self.out.clear();
        }
        if close {
            self.closing = true;
            self.buf = Vec::new();
            transport.close();
        }
    }
}

impl HttpProtocol {
    /// Consumes complete lines (and bodies) from `buf`, appending responses
    /// to `out`; true if the connection must close after them.
    fn parse(&mut self) -> bool {
        let mut pos = 0;
        let close = loop {
            match std::mem::take(&mut self.state) {
                Parse::Body(head, remaining) => {
                    let take = remaining.min((self.buf.len() - pos) as u64);
                    pos += take as usize;
                    if take < remaining {
                        self.state = Parse::Body(head, remaining - take);
                        break false;
                    }
                    respond(&mut self.out, &head);
                    if !head.keeps_alive() {
                        break true;
                    }
                }
                state => {
                    let rest = &self.buf[pos..];
                    let nl = rest.iter().position(|&b| b == b'\n');
                    if nl.unwrap_or(rest.len()) > MAX_LINE {
                        reject(&mut self.out, Reject::BadRequest);
                        break true;
                    }
                    let Some(nl) = nl else {
                        self.state = state;
                        break false;
                    };
                    let line = trim_eol(&rest[..nl]);
                    pos += nl + 1;
                    match state {
                        Parse::RequestLine if line.is_empty() => {}
                        Parse::RequestLine => match parse_request_line(line) {
                            Some(head) => self.state = Parse::Headers(head),
                            None => {
                                reject(&mut self.out, Reject::BadRequest);
                                break true;
                            }
                        },
                        Parse::Headers(head) if line.is_empty() => {
                            if let Some(why) = head.refusal() {
                                reject(&mut self.out, why);
                                break true;
                            }
                            if let Some(line) = head.continue_line() {
                                self.out.extend_from_slice(line);
                            }
                            match head.content_length {
                                Some(n) if n > 0 => self.state = Parse::Body(head, n),
                                _ => {
                                    respond(&mut self.out, &head);
                                    if !head.keeps_alive() {
                                        break true;
                                    }
                                }
                            }
                        }
                        Parse::Headers(mut head) => match parse_header(&mut head, line) {
                            Ok(()) => self.state = Parse::Headers(head),
                            Err(why) => {
                                reject(&mut self.out, why);
                                break true;
                            }
                        },
                        Parse::Body(..) => unreachable!("handled above"),
                    }
                }
            }
        };
        self.buf.drain(..pos);
        close
    }
}

// ---------------------------------------------------------------------------
// The self-test: raw requests over open_connection.
// ---------------------------------------------------------------------------

#[derive(Debug)]
struct Response {
    status: String,
    connection: Option<String>,
    date: Option<String>,
    body: Vec<u8>,
}

async fn read_response(reader: &StreamReader) -> Result<Response, Error> {
    let status_line = reader.readuntil(b"\r\n").await?;
    let status = String::from_utf8_lossy(trim_eol(&status_line)).into_owned();
    let mut connection = None;
    let mut date = None;
    let mut length = 0;
    loop {
        let line = reader.readuntil(b"\r\n").await?;
        let line = String::from_utf8_lossy(trim_eol(&line)).into_owned();
        if line.is_empty() {
            break;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| Error::msg(format!("bad response header {line:?}")))?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = value
                .parse()
                .map_err(|_| Error::msg(format!("bad Content-Length {value:?}")))?;
        } else if name.eq_ignore_ascii_case("connection") {
            connection = Some(value.to_ascii_lowercase());
        } else if name.eq_ignore_ascii_case("date") {
            date = Some(value.to_string());
        }
    }
    let body = reader.readexactly(length).await?;
    Ok(Response {
        status,
        connection,
        date,
        body,
    })
}

/// Reads one response and checks its status line and `Connection` header
/// (and the body of a 200).
async fn expect(
    reader: &StreamReader,
    what: &str,
    status: &str,
    connection: Option<&str>,
) -> Result<(), Error> {
    let got = read_response(reader).await?;
    let body_ok = !status.starts_with("HTTP/1.1 200") || got.body == BODY;
    // Every final (non-1xx) response is dated: `Sun, 06 Nov 1994 08:49:37 GMT`.
    let date_ok = status.starts_with("HTTP/1.1 1")
        || got
            .date
            .as_deref()
            .is_some_and(|d| d.len() == 29 && d.ends_with(" GMT"));
    if got.status != status || got.connection.as_deref() != connection || !body_ok || !date_ok {
        return Err(Error::msg(format!(
            "{what}: expected {status:?} (Connection: {connection:?}), got {got:?}"
        )));
    }
    println!(
        "  ok  {what:<36} -> {} {:?}",
        got.status,
        String::from_utf8_lossy(&got.body).trim_end()
    );
    Ok(())
}

async fn expect_eof(what: &str, reader: &StreamReader) -> Result<(), Error> {
    let rest = reader.read(1024).await?;
    if !rest.is_empty() {
        return Err(Error::msg(format!(
            "{what}: expected the server to close, got {:?}",
            String::from_utf8_lossy(&rest)
        )));
    }
    println!("  ok  {what:<36} -> connection closed by the server");
    Ok(())
}

async fn self_test(ev: &EventLoop, host: &str, port: u16) -> Result<(), Error> {
    let connect = || open_connection(ev, host, port, StreamOptions::default());
    const OK: &str = "HTTP/1.1 200 OK";
    const BAD: &str = "HTTP/1.1 400 Bad Request";
    const CLOSE: Option<&str> = Some("close");

    // Two requests in one write (the second with a body to skip), then one
    // asking to close.
    let (reader, writer) = connect().await?;
    writer.write(
        b"GET / HTTP/1.1\r\nHost: test\r\n\r\n\
          POST /form HTTP/1.1\r\nHost: test\r\nContent-Length: 11\r\n\r\nhello=world",
    )?;
    expect(&reader, "pipelined GET (1 of 2)", OK, None).await?;
    expect(&reader, "pipelined POST with a body (2 of 2)", OK, None).await?;
    writer.write(b"GET /bye HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")?;
    expect(&reader, "GET with Connection: close", OK, CLOSE).await?;
    expect_eof("  then", &reader).await?;
    writer.close();

    // HTTP/1.1 without Host (RFC 9112 3.2: 400), on its own connection.
    let (reader, writer) = connect().await?;
    writer.write(b"GET / HTTP/1.1\r\n\r\n")?;
    expect(&reader, "HTTP/1.1 without Host", BAD, CLOSE).await?;
    expect_eof("  then", &reader).await?;
    writer.close();

    // A malformed request line, on its own connection.
    let (reader, writer) = connect().await?;
    writer.write(b"THIS IS NOT HTTP\r\n")?;
    expect(&reader, "malformed request line", BAD, CLOSE).await?;
    expect_eof("  then", &reader).await?;
    writer.close();

    // Expect: 100-continue: the interim response comes before the body is
    // sent (curl waits a second for it otherwise).
    let (reader, writer) = connect().await?;
    writer.write(
        b"POST /up HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",
    )?;
    const CONTINUE: &str = "HTTP/1.1 100 Continue";
    expect(&reader, "Expect: 100-continue, no body yet", CONTINUE, None).await?;
    writer.write(b"hello")?;
    expect(&reader, "  then the body", OK, None).await?;
    writer.close();

    // HTTP/1.0: closes by default, keeps the connection when asked.
    let (reader, writer) = connect().await?;
    writer.write(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")?;
    expect(&reader, "HTTP/1.0 with keep-alive", OK, Some("keep-alive")).await?;
    writer.write(b"GET / HTTP/1.0\r\n\r\n")?;
    expect(&reader, "HTTP/1.0 without", OK, CLOSE).await?;
    expect_eof("  then", &reader).await?;
    writer.close();
    Ok(())
}

// ---------------------------------------------------------------------------

async fn serve(ev: &EventLoop, mode: &str, host: &str, port: u16) -> Result<tulip::Server, Error> {
    let hosts = [host];
    match mode {
        "protocol" => {
            create_server(
                ev,
                HttpProtocol::default,
                &hosts,
                port,
                ServerOptions::default(),
            )
            .await
        }
        "streams" => {
            let options = StreamOptions {
                limit: Some(MAX_LINE),
                ..StreamOptions::default()
            };
            start_server(ev, serve_streams, &hosts, port, options).await
        }
        other => Err(Error::msg(format!(
            "unknown --mode {other}: streams|protocol"
        ))),
    }
}

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    let host = arg(&args, "--host").unwrap_or_else(|| "127.0.0.1".into());
    let port: u16 = flag(&args, "--port", 0).map_err(Error::msg)?;
    let mode = arg(&args, "--mode");
    let forever = args.iter().any(|a| a == "--forever");

    tulip::run(async move {
        let ev = tulip::get_running_loop()?;
        if forever {
            let mode = mode.as_deref().unwrap_or("protocol");
            let server = serve(&ev, mode, &host, port).await?;
            println!("listening on http://{}/ (mode {mode})", server.sockets()[0]);
            std::io::stdout().flush().ok();
            return server.serve_forever().await;
        }
        let modes = match &mode {
            Some(mode) => vec![mode.as_str()],
            None => vec!["streams", "protocol"],
        };
        for mode in modes {
            let server = serve(&ev, mode, &host, port).await?;
            let addr = server.sockets()[0];
            println!("mode {mode}: serving on http://{addr}/");
            timeout(Some(Duration::from_secs(5)))
                .run(self_test(&ev, &addr.ip().to_string(), addr.port()))
                .await?;
            server.close();
            server.close_clients();
            server.wait_closed().await?;
        }
        println!("all checks passed");
        Ok::<_, Error>(())
    })
}

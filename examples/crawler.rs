//! A web crawler in the asyncio style: a [`TaskGroup`] owns one task per
//! page, a [`Semaphore`](tulip::Semaphore) lets at most `--concurrency`
//! fetches run at once, and each fetch runs under [`timeout`], so a page
//! that takes too long is given up without stopping the crawl.
//!
//! The site it crawls is served in-process (streams, `start_server`): a
//! dozen pages that link to each other, a few of them slow, one very slow
//! (the timeout hits it) and one broken link (404). The crawl starts at `/`
//! and follows every link once; it prints each page, the timeouts, the
//! highest number of fetches seen in flight and the elapsed time, checks
//! them, and exits.
//!
//! ```text
//! cargo run --release --example crawler -- [--concurrency 4] [--timeout-ms 300]
//! ```

#![allow(clippy::print_stdout)]

use examples::flag;
use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::rc::Rc;
use std::time::{Duration, Instant};

use tulip::prelude::*;
use tulip::{
    Semaphore, StreamOptions, StreamReader, StreamWriter, get_running_loop, open_connection,
    start_server,
};

/// The site: path, how long the server takes to answer (ms), links.
const SITE: &[(&str, u64, &[&str])] = &[
    (
        "/",
        10,
        &["/about", "/blog", "/products", "/reports/yearly"],
    ),
    ("/about", 80, &["/", "/about/team", "/about/contact"]),
    ("/about/team", 40, &["/about", "/about/contact"]),
    ("/about/contact", 120, &["/", "/about"]),
    ("/blog", 30, &["/blog/1", "/blog/2", "/blog/3", "/"]),
    ("/blog/1", 150, &["/blog", "/blog/2"]),
    ("/blog/2", 60, &["/blog", "/blog/3", "/products/b"]),
    ("/blog/3", 100, &["/blog", "/blog/1", "/blog/4"]),
    ("/products", 20, &["/products/a", "/products/b", "/"]),
    ("/products/a", 90, &["/products", "/products/b"]),
    ("/products/b", 50, &["/products", "/products/a", "/about"]),
    // The very slow one: the crawler's timeout gives up on it.
    ("/reports/yearly", 5_000, &["/"]),
];
// "/blog/4" is linked but missing: a 404.

// ---------------------------------------------------------------------------
// The site's server: read the request head, wait the page's delay, answer,
// close.
// ---------------------------------------------------------------------------

fn page_html(path: &str, links: &[&str]) -> String {
    let mut html = format!("<html><head><title>{path}</title></head><body><h1>{path}</h1>\n");
    for link in links {
        html.push_str(&format!("<p><a href=\"{link}\">{link}</a></p>\n"));
    }
    html.push_str("</body></html>\n");
    html
}

async fn serve_page(reader: StreamReader, writer: StreamWriter) -> Result<(), Error> {
    let request_line = reader.readline().await?;
    // The headers, up to the blank line (their content does not matter here).
    loop {
        let line = reader.readline().await?;
        if line.is_empty() || line == b"\r\n" || line == b"\n" {
            break;
        }
    }
    let request_line = String::from_utf8_lossy(&request_line);
    let path = request_line.split(' ').nth(1).unwrap_or("");
    let (status, body) = match SITE.iter().find(|(p, ..)| *p == path) {
        Some((_, delay_ms, links)) => {
            sleep(Duration::from_millis(*delay_ms)).await?;
            ("200 OK", page_html(path, links))
        }
        None => ("404 Not Found", format!("no page at {path}\n")),
    };
    writer.write(
        format!(
            "HTTP/1.1 {status}\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )?;
    writer.close();
    Ok(())
}

// ---------------------------------------------------------------------------
// The crawler.
// ---------------------------------------------------------------------------

/// What the crawl shares between its tasks.
struct Crawl {
    host: String,
    port: u16,
    limit: Semaphore,
    fetch_timeout: Duration,
    seen: RefCell<HashSet<String>>,
    in_flight: Cell<usize>,
    max_in_flight: Cell<usize>,
    fetched: RefCell<Vec<(String, usize, Duration)>>,
    not_found: RefCell<Vec<String>>,
    timed_out: RefCell<Vec<String>>,
    failed: RefCell<Vec<(String, Error)>>,
}

/// Closes the connection however the fetch ends, also when a timeout
/// cancels it mid-read.
struct CloseOnDrop(StreamWriter);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// One GET: returns the status code and the body.
async fn fetch(host: &str, port: u16, path: &str) -> Result<(u16, String), Error> {
    let (reader, writer) =
        open_connection(&get_running_loop()?, host, port, StreamOptions::default()).await?;
    let writer = CloseOnDrop(writer);
    writer.0.write(
        format!("GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    )?;
    let response = reader.read(-1).await?;
    let response = String::from_utf8_lossy(&response);
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| Error::msg(format!("{path}: truncated response")))?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Error::msg(format!("{path}: bad status line")))?;
    Ok((status, body.to_owned()))
}

/// The `href="..."` targets in `html`.
fn links(html: &str) -> Vec<String> {
    html.split("href=\"")
        .skip(1)
        .filter_map(|rest| rest.split_once('"').map(|(link, _)| link.to_owned()))
        .collect()
}

/// Fetches `path` (waiting for a permit, then under the timeout) and starts
/// a task in the group for every link not seen yet. Never fails: a timeout
/// or an error is recorded, so one bad page does not cancel the crawl.
async fn crawl(ctx: Rc<Crawl>, group: TaskGroup, path: String) -> Result<(), Error> {
    let permit = ctx.limit.guard().await?;
    ctx.in_flight.set(ctx.in_flight.get() + 1);
    ctx.max_in_flight
        .set(ctx.max_in_flight.get().max(ctx.in_flight.get()));
    let started = Instant::now();
    let result = timeout(Some(ctx.fetch_timeout))
        .run(fetch(&ctx.host, ctx.port, &path))
        .await;
    ctx.in_flight.set(ctx.in_flight.get() - 1);
    drop(permit);
    match result {
        Ok((200, body)) => {
            ctx.fetched
                .borrow_mut()
                .push((path, body.len(), started.elapsed()));
            for link in links(&body) {
                if ctx.seen.borrow_mut().insert(link.clone()) {
                    group.create_task(Box::pin(crawl(ctx.clone(), group.clone(), link)))?;
                }
            }
        }
        Ok((404, _)) => ctx.not_found.borrow_mut().push(path),
        Ok((status, _)) => ctx
            .failed
            .borrow_mut()
            .push((path, Error::msg(format!("HTTP {status}")))),
        Err(err) if err.is_timeout() => ctx.timed_out.borrow_mut().push(path),
        Err(err) => ctx.failed.borrow_mut().push((path, err)),
    }
    Ok(())
}

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    let concurrency: usize = flag(&args, "--concurrency", 4).map_err(Error::msg)?.max(1);
    let timeout_ms: u64 = flag(&args, "--timeout-ms", 300).map_err(Error::msg)?;

    tulip::run(async move {
        let ev = get_running_loop()?;
        let server =
            start_server(&ev, serve_page, &["127.0.0.1"], 0, StreamOptions::default()).await?;
        let addr = server.sockets()[0];
        println!(
            "crawling http://{addr}/ ({} pages; at most {concurrency} fetches at once, \
             {timeout_ms} ms timeout each)",
            SITE.len()
        );

        let ctx = Rc::new(Crawl {
            host: addr.ip().to_string(),
            port: addr.port(),
            limit: Semaphore::new(concurrency),
            fetch_timeout: Duration::from_millis(timeout_ms),
            seen: RefCell::new(HashSet::from(["/".to_owned()])),
            in_flight: Cell::new(0),
            max_in_flight: Cell::new(0),
            fetched: RefCell::new(Vec::new()),
            not_found: RefCell::new(Vec::new()),
            timed_out: RefCell::new(Vec::new()),
            failed: RefCell::new(Vec::new()),
        });
        let started = Instant::now();
        let root = ctx.clone();
        TaskGroup::scope(|group| async move {
            group.create_task(crawl(root, group.clone(), "/".to_owned()))?;
            Ok::<_, Error>(())
        })
        .await?;
        let elapsed = started.elapsed();

        // The very slow page's handler is still sleeping: drop its connection.
        server.close();
        server.abort_clients();
        server.wait_closed().await?;

        let fetched = ctx.fetched.borrow();
        for (path, size, took) in fetched.iter() {
            println!(
                "  200 {path:<18} {size:>4} bytes in {:>5.1} ms",
                took.as_secs_f64() * 1e3
            );
        }
        for path in ctx.not_found.borrow().iter() {
            println!("  404 {path}");
        }
        for path in ctx.timed_out.borrow().iter() {
            println!("  timed out: {path}");
        }
        for (path, err) in ctx.failed.borrow().iter() {
            println!("  failed: {path}: {err}");
        }
        let serial: Duration = fetched.iter().map(|(_, _, took)| *took).sum();
        println!(
            "{} pages fetched, {} not found, {} timed out, {} failed; \
             at most {} fetches in flight; {:.0} ms elapsed ({:.0} ms if fetched one by one)",
            fetched.len(),
            ctx.not_found.borrow().len(),
            ctx.timed_out.borrow().len(),
            ctx.failed.borrow().len(),
            ctx.max_in_flight.get(),
            elapsed.as_secs_f64() * 1e3,
            (serial + ctx.fetch_timeout * ctx.timed_out.borrow().len() as u32).as_secs_f64() * 1e3,
        );

        // What this site must give: every page but the slow one, the broken
        // link, the slow page's timeout, never more fetches than permits.
        let slow: Vec<&str> = SITE
            .iter()
            .filter(|(_, delay, _)| Duration::from_millis(*delay) > ctx.fetch_timeout)
            .map(|(path, ..)| *path)
            .collect();
        let ok = fetched.len() == SITE.len() - slow.len()
            && *ctx.timed_out.borrow() == slow
            && *ctx.not_found.borrow() == ["/blog/4"]
            && ctx.failed.borrow().is_empty()
            && ctx.max_in_flight.get() <= concurrency;
        if !ok {
            return Err(Error::msg("the crawl did not find what the site holds"));
        }
        Ok::<_, Error>(())
    })
}

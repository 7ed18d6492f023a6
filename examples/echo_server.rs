//! A TCP echo server: a [`Protocol`](tulip::Protocol) (or a
//! [`BufferedProtocol`](tulip::BufferedProtocol), or streams) served by
//! `create_server` on one loop. It is the server the echo benchmark runs.
//!
//! By default it starts on an ephemeral port, checks itself with one client
//! round trip, and exits; with `--forever` it serves until killed (printing
//! `listening on ADDR` first).
//!
//! ```text
//! cargo run --release --example echo_server -- [--host 127.0.0.1] [--port 0]
//!     [--mode protocol|buffered|streams] [--read-size BYTES] [--forever]
//! ```
//!
//! In streams mode each connection's task echoes `reader.read(BYTES)`
//! (default 256 KiB: what one receive can bring, as protocol mode's
//! `data_received` gets at most asyncio's `max_size` of 256 KiB, and the
//! size of the tokio and mio peers' read buffers, so all of them read up
//! to 256 KiB per call).

#![allow(clippy::print_stdout)]

use examples::{arg, flag};
use std::io::Write;

use tulip::prelude::*;
use tulip::{
    BaseProtocol, BufferedProtocol, Protocol, ServerOptions, StreamOptions, Transport,
    create_server, create_server_buffered, open_connection, start_server,
};

/// Echoes every byte back as it arrives.
#[derive(Default)]
struct Echo {
    transport: Option<Transport>,
}

impl BaseProtocol for Echo {
    fn connection_made(&mut self, transport: Transport) {
        self.transport = Some(transport);
    }

    examples::pause_reading_while_writing_is_paused!();
}

impl Protocol for Echo {
    fn data_received(&mut self, data: &[u8]) {
        if let Some(t) = &self.transport {
            t.write(data);
        }
    }
}

/// The same, reading straight into its own buffer.
struct BufferedEcho {
    transport: Option<Transport>,
    buf: Vec<u8>,
}

impl BaseProtocol for BufferedEcho {
    fn connection_made(&mut self, transport: Transport) {
        self.transport = Some(transport);
    }

    examples::pause_reading_while_writing_is_paused!();
}

impl BufferedProtocol for BufferedEcho {
    fn get_buffer(&mut self, _size_hint: usize) -> &mut [u8] {
        &mut self.buf
    }

    fn buffer_updated(&mut self, nbytes: usize) {
        if let Some(t) = &self.transport {
            t.write(&self.buf[..nbytes]);
        }
    }
}

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    let host = arg(&args, "--host").unwrap_or_else(|| "127.0.0.1".into());
    let port: u16 = flag(&args, "--port", 0).map_err(Error::msg)?;
    let mode = arg(&args, "--mode").unwrap_or_else(|| "protocol".into());
    let forever = args.iter().any(|a| a == "--forever");
    // Streams mode: the most one `read` returns. 256 KiB, as one receive
    // of the transport (protocol mode) and the tokio/mio peers' buffers:
    // a smaller read would split a large message into several sends.
    let read_size: isize = match arg(&args, "--read-size") {
        None => tulip::MAX_READ_SIZE as isize,
        Some(n) => match n.parse() {
            Ok(n) if n > 0 => n,
            _ => {
                return Err(Error::msg(format!(
                    "--read-size {n}: a positive number of bytes"
                )));
            }
        },
    };

    tulip::run(async move {
        let ev = tulip::get_running_loop()?;
        let hosts = [host.as_str()];
        let server = match mode.as_str() {
            "protocol" => {
                create_server(&ev, Echo::default, &hosts, port, ServerOptions::default()).await?
            }
            "buffered" => {
                create_server_buffered(
                    &ev,
                    || BufferedEcho {
                        transport: None,
                        buf: vec![0; 64 * 1024],
                    },
                    &hosts,
                    port,
                    ServerOptions::default(),
                )
                .await?
            }
            "streams" => {
                start_server(
                    &ev,
                    move |reader, writer| async move {
                        loop {
                            let chunk = reader.read(read_size).await?;
                            if chunk.is_empty() {
                                break;
                            }
                            writer.write(chunk)?;
                            writer.drain().await?;
                        }
                        writer.close();
                        Ok::<_, Error>(())
                    },
                    &hosts,
                    port,
                    StreamOptions::default(),
                )
                .await?
            }
            other => {
                return Err(Error::msg(format!(
                    "unknown --mode {other}: protocol|buffered|streams"
                )));
            }
        };
        let addr = server.sockets()[0];
        println!("listening on {addr} (mode {mode})");
        std::io::stdout().flush().ok();
        if forever {
            return server.serve_forever().await;
        }
        // Self-check: one round trip through the server, then exit.
        let (reader, writer) = open_connection(
            &ev,
            &addr.ip().to_string(),
            addr.port(),
            StreamOptions::default(),
        )
        .await?;
        writer.write(b"hello, tulip\n")?;
        let reply = reader.readline().await?;
        println!("echoed: {}", String::from_utf8_lossy(&reply).trim_end());
        writer.close();
        server.close();
        server.wait_closed().await?;
        Ok::<_, Error>(())
    })
}

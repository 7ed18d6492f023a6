//! A TCP echo client: `create_connection` with a protocol that completes a
//! [`Future`](tulip::Future) from `connection_lost`.
//!
//! It sends `--count` messages to `--host:--port`, waits for each echo, then
//! closes and awaits the future its protocol completes when the connection
//! is lost. Without `--port` it starts its own echo server in-process first,
//! so it runs anywhere. A server that stops answering ends it with an
//! error after `--timeout` seconds (default 30), the connection aborted.
//!
//! ```text
//! cargo run --release --example echo_client -- [--host 127.0.0.1] [--port N] [--count 1000]
//!     [--timeout 30]
//! ```

#![allow(clippy::print_stdout)]

use examples::{arg, flag, optional_flag};
use std::time::{Duration, Instant};

use tulip::prelude::*;
use tulip::{
    BaseProtocol, ConnectOptions, Protocol, ServerOptions, Transport, create_connection,
    create_server,
};

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

/// Sends a message, waits for its echo, sends the next; `lost` completes
/// when the connection closes.
struct Client {
    transport: Option<Transport>,
    message: Vec<u8>,
    remaining: usize,
    received: usize,
    lost: Future<usize>,
    echoed: usize,
}

impl BaseProtocol for Client {
    fn connection_made(&mut self, transport: Transport) {
        transport.write(&self.message);
        self.transport = Some(transport);
    }

    fn connection_lost(&mut self, exc: Option<std::io::Error>) {
        let _ = match exc {
            None => self.lost.set_result(self.echoed),
            Some(err) => self.lost.set_exception(err),
        };
    }
}

impl Protocol for Client {
    fn data_received(&mut self, data: &[u8]) {
        self.received += data.len();
        while self.received >= self.message.len() {
            self.received -= self.message.len();
            self.echoed += 1;
            self.remaining -= 1;
            let Some(t) = &self.transport else { return };
            if self.remaining == 0 {
                t.close();
                return;
            }
            t.write(&self.message);
        }
    }
}

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    let host = arg(&args, "--host").unwrap_or_else(|| "127.0.0.1".into());
    let port: Option<u16> = optional_flag(&args, "--port").map_err(Error::msg)?;
    let count: usize = flag(&args, "--count", 1000).map_err(Error::msg)?.max(1);
    let timeout: f64 = flag(&args, "--timeout", 30.0).map_err(Error::msg)?;
    let timeout = Duration::try_from_secs_f64(timeout)
        .map_err(|err| Error::msg(format!("--timeout {timeout}: {err}")))?;

    tulip::run(async move {
        let ev = tulip::get_running_loop()?;
        let (port, server) = match port {
            Some(port) => (port, None),
            None => {
                let server = create_server(
                    &ev,
                    Echo::default,
                    &[host.as_str()],
                    0,
                    ServerOptions::default(),
                )
                .await?;
                (server.sockets()[0].port(), Some(server))
            }
        };
        let lost: Future<usize> = ev.create_future();
        let done = lost.clone();
        let started = Instant::now();
        let (transport, _protocol) = create_connection(
            &ev,
            move || Client {
                transport: None,
                message: b"ping from tulip".to_vec(),
                remaining: count,
                received: 0,
                lost: done,
                echoed: 0,
            },
            Some(&host),
            Some(port),
            ConnectOptions::default(),
        )
        .await?;
        // The round trips and the close, bounded: a server that stops
        // answering is an error, not a hang.
        let echoed = match tulip::wait_for(lost, Some(timeout)).await {
            Ok(echoed) => echoed,
            Err(err) => {
                transport.abort();
                return Err(err);
            }
        };
        let took = started.elapsed();
        println!(
            "{echoed} round trips to {host}:{port} in {:.1} ms ({:.1} µs each)",
            took.as_secs_f64() * 1e3,
            took.as_secs_f64() * 1e6 / echoed as f64
        );
        if let Some(server) = server {
            server.close();
            server.wait_closed().await?;
        }
        Ok::<_, Error>(())
    })
}

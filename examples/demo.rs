//! The demo: one loop, on one thread, runs a TCP echo server *and* 64
//! client connections hammering it for three seconds, then prints
//! throughput and round-trip latency and exits.
//!
//! Everything asyncio users know is in play: `create_server` with a
//! [`Protocol`](tulip::Protocol), `create_connection` resolving once
//! `connection_made` ran, a progress timer (`call_later`), a future
//! completed from `connection_lost`, `gather` over the clients, and
//! `run` tearing the loop down at the end. All traffic is on 127.0.0.1.

// cargo run --release --example demo

#![allow(clippy::print_stdout)]

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use tulip::prelude::*;
use tulip::{
    BaseProtocol, ConnectOptions, Protocol, ServerOptions, create_connection, create_server,
};

const CLIENTS: usize = 64;
const MESSAGE: usize = 128;
const RUN_FOR: Duration = Duration::from_secs(3);

/// The server side: echo what arrives.
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

/// Shared counters of all clients.
#[derive(Default)]
struct Stats {
    latencies_us: RefCell<Vec<u32>>,
    stop: Cell<bool>,
}

/// A client: send a message, wait for the whole echo, record the round
/// trip, send the next, until told to stop; `lost` completes on close.
struct Client {
    transport: Option<Transport>,
    stats: Rc<Stats>,
    sent_at: Instant,
    received: usize,
    lost: Future<()>,
}

impl BaseProtocol for Client {
    fn connection_made(&mut self, transport: Transport) {
        self.sent_at = Instant::now();
        transport.write(&[0x5a; MESSAGE]);
        self.transport = Some(transport);
    }

    fn connection_lost(&mut self, exc: Option<std::io::Error>) {
        let _ = match exc {
            None => self.lost.set_result(()),
            Some(err) => self.lost.set_exception(err),
        };
    }
}

impl Protocol for Client {
    fn data_received(&mut self, data: &[u8]) {
        self.received += data.len();
        while self.received >= MESSAGE {
            self.received -= MESSAGE;
            let now = Instant::now();
            let us = (now - self.sent_at).as_micros().min(u32::MAX as u128) as u32;
            self.stats.latencies_us.borrow_mut().push(us);
            let Some(t) = &self.transport else { return };
            if self.stats.stop.get() {
                t.close();
                return;
            }
            self.sent_at = now;
            t.write(&[0x5a; MESSAGE]);
        }
    }
}

fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p) as usize]
}

fn main() -> Result<(), Error> {
    let started = Instant::now();
    tulip::run(async move {
        let ev = tulip::get_running_loop()?;
        let server = create_server(
            &ev,
            Echo::default,
            &["127.0.0.1"],
            0,
            ServerOptions::default(),
        )
        .await?;
        let port = server.sockets()[0].port();
        println!(
            "tulip demo: echo server on 127.0.0.1:{port}, {CLIENTS} clients, {MESSAGE}-byte messages, {}s",
            RUN_FOR.as_secs()
        );

        let stats = Rc::new(Stats::default());
        // Connect every client; each resolves after its connection_made.
        let mut lost = Vec::new();
        for _ in 0..CLIENTS {
            let done: Future<()> = ev.create_future();
            let (stats, d) = (stats.clone(), done.clone());
            create_connection(
                &ev,
                move || Client {
                    transport: None,
                    stats,
                    sent_at: Instant::now(),
                    received: 0,
                    lost: d,
                },
                Some("127.0.0.1"),
                Some(port),
                ConnectOptions::default(),
            )
            .await?;
            lost.push(done);
        }

        // Progress every 500 ms, then the stop signal.
        let begin = Instant::now();
        fn progress(ev: &EventLoop, stats: Rc<Stats>, begin: Instant) {
            if stats.stop.get() {
                return;
            }
            let n = stats.latencies_us.borrow().len();
            let secs = begin.elapsed().as_secs_f64();
            println!(
                "  {secs:4.1}s  {n:>9} round trips  ({:>8.0}/s)",
                n as f64 / secs.max(1e-9)
            );
            let _ = ev.call_later(Duration::from_millis(500), move |ev| {
                progress(ev, stats, begin)
            });
        }
        let s = stats.clone();
        ev.call_later(Duration::from_millis(500), move |ev| progress(ev, s, begin))?;
        sleep(RUN_FOR).await?;
        stats.stop.set(true);

        // Every client closes after its next echo; wait for all of them.
        gather(lost).await?;
        let elapsed = begin.elapsed();
        server.close();
        server.wait_closed().await?;

        let mut lat = stats.latencies_us.take();
        lat.sort_unstable();
        println!();
        println!("round trips : {}", lat.len());
        println!(
            "throughput  : {:.0} msgs/s on one thread (server and clients share it)",
            lat.len() as f64 / elapsed.as_secs_f64()
        );
        println!(
            "latency     : p50 {} µs, p99 {} µs, max {} µs",
            percentile(&lat, 0.50),
            percentile(&lat, 0.99),
            lat.last().copied().unwrap_or(0)
        );
        if lat.is_empty() {
            return Err(Error::msg("no round trip completed"));
        }
        Ok::<_, Error>(())
    })?;
    println!(
        "done in {:.1}s; the loop is closed",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

//! Closed-loop TCP echo load client for the echo benchmark.
//!
//! `N` connections on one mio loop (one thread); each sends a message of
//! `S` bytes, waits for all `S` bytes back, records the round trip, and
//! sends the next. Warm-up, then a fixed measured duration; prints one JSON
//! line: messages/s, p50 and p99 latency in µs.
//!
//! Usage: `echo_load --addr 127.0.0.1:PORT --conns 10 --size 1024
//! --warmup 1 --duration 5`

#![allow(clippy::print_stdout)]

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

struct Conn {
    stream: TcpStream,
    sent: usize,
    received: usize,
    started: Instant,
}

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    args.windows(2)
        .find(|w| w[0] == name)
        .and_then(|w| w[1].parse().ok())
        .unwrap_or(default)
}

fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let addr: SocketAddr = arg(&args, "--addr", "127.0.0.1:7000".parse().expect("addr"));
    let conns: usize = arg(&args, "--conns", 10);
    let size: usize = arg(&args, "--size", 1024);
    let warmup = Duration::from_secs_f64(arg(&args, "--warmup", 1.0));
    let duration = Duration::from_secs_f64(arg(&args, "--duration", 5.0));

    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(1024);
    let message = vec![0xA5u8; size];
    let mut scratch = vec![0u8; 256 * 1024];
    let mut connections = Vec::with_capacity(conns);
    for i in 0..conns {
        let std_stream = std::net::TcpStream::connect(addr)?;
        std_stream.set_nodelay(true)?;
        std_stream.set_nonblocking(true)?;
        let mut stream = TcpStream::from_std(std_stream);
        poll.registry().register(
            &mut stream,
            Token(i),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        connections.push(Conn {
            stream,
            sent: 0,
            received: 0,
            started: Instant::now(),
        });
    }

    let start = Instant::now();
    let measure_from = start + warmup;
    let end = measure_from + duration;
    let mut latencies: Vec<u32> = Vec::with_capacity(1 << 20);
    let mut messages: u64 = 0;

    // Kick off every connection.
    for conn in &mut connections {
        conn.started = Instant::now();
        pump_write(conn, &message)?;
    }
    while Instant::now() < end {
        poll.poll(&mut events, Some(Duration::from_millis(100)))?;
        for event in events.iter() {
            let conn = &mut connections[event.token().0];
            if event.is_writable() && conn.sent < size {
                pump_write(conn, &message)?;
            }
            if event.is_readable() {
                loop {
                    match conn.stream.read(&mut scratch) {
                        Ok(0) => {
                            return Err(io::Error::new(
                                io::ErrorKind::UnexpectedEof,
                                "server closed",
                            ));
                        }
                        Ok(n) => {
                            conn.received += n;
                            while conn.received >= size {
                                conn.received -= size;
                                let now = Instant::now();
                                if now >= measure_from && now < end {
                                    messages += 1;
                                    let us = (now - conn.started).as_micros().min(u32::MAX as u128)
                                        as u32;
                                    latencies.push(us);
                                }
                                conn.started = now;
                                conn.sent = 0;
                                pump_write(conn, &message)?;
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(e),
                    }
                }
            }
        }
    }
    latencies.sort_unstable();
    let pct = |p: f64| -> u32 {
        if latencies.is_empty() {
            return 0;
        }
        latencies[((latencies.len() as f64 - 1.0) * p) as usize]
    };
    println!(
        "{{\"conns\":{conns},\"size\":{size},\"msgs_per_sec\":{:.0},\"p50_us\":{},\"p99_us\":{}}}",
        messages as f64 / duration.as_secs_f64(),
        pct(0.50),
        pct(0.99)
    );
    Ok(())
}

fn pump_write(conn: &mut Conn, message: &[u8]) -> io::Result<()> {
    while conn.sent < message.len() {
        match conn.stream.write(&message[conn.sent..]) {
            Ok(n) => conn.sent += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

//! Closed-loop TCP echo load client for the echo benchmark.
//!
//! `N` connections on one mio loop (one thread); each sends a message of
//! `S` bytes, waits for all `S` bytes back, records the round trip, and
//! sends the next. Warm-up, then a fixed measured duration; prints one JSON
//! line per server: messages/s, p50 and p99 latency in µs.
//!
//! Usage: `echo_load --addr 127.0.0.1:PORT --conns 10 --size 1024
//! --warmup 1 --duration 5`
//!
//! ## Several servers in alternating windows
//!
//! `--target NAME=ADDR[,PID]` (repeated) loads several servers in turn
//! instead: `N` connections to each, and the measured time is cut into
//! windows (`--window-ms`, default 250) that go round the servers, one
//! server loaded at a time. At a window's end no new message is sent and
//! the window's in-flight echoes are drained before the next server's
//! window starts. Each server's rate is measured in every cycle, so a
//! slowdown of the machine that lasts longer than a cycle hits every server
//! alike; the `pairs` line gives, for each pair of servers, the median over
//! the cycles of the ratio of their rates (and of their CPU per message).
//! With a `PID`, the server's CPU time is read from
//! `/proc/PID/schedstat` (ns on the CPU) at the start of each of its
//! windows and after the window's drain, when the server is idle at both
//! edges: the CPU between is the work of exactly the echoes completed in
//! between, which is what it is divided by. Every other cycle goes round
//! the servers in reverse order.
//!
//! Invariant kept by the loop: a connection has at most one message in
//! flight, and only the connections of the current window's server are
//! sent to; the others are idle (nothing sent, nothing owed).

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
    /// A message is out and its echo is not complete.
    in_flight: bool,
    started: Instant,
}

/// One server under load and what was measured for it.
struct Target {
    name: String,
    pid: Option<u32>,
    /// Its connections: `conns[first..first + count]`.
    first: usize,
    /// One entry per measured window.
    windows: Vec<Measured>,
    latencies: Vec<u32>,
    /// Every echo it completed, warm-up and drains included (to divide a
    /// whole-process count, such as instructions under cachegrind, by).
    echoes: u64,
}

/// The client's loop and every connection, of every server.
struct Load {
    poll: Poll,
    events: Events,
    connections: Vec<Conn>,
    /// Connections per server.
    conns: usize,
    message: Vec<u8>,
    scratch: Vec<u8>,
}

/// What one measured window of a server came to.
struct Measured {
    /// Messages completed within the window.
    messages: u64,
    /// The window's length.
    secs: f64,
    /// Server CPU ns from the window's start to the end of its drain.
    cpu_ns: u64,
    /// Echoes completed in that same span.
    echoes: u64,
}

impl Measured {
    /// Messages per second, if the window had a length.
    fn rate(&self) -> Option<f64> {
        (self.secs > 0.0).then(|| self.messages as f64 / self.secs)
    }

    /// Server CPU ns per echo, if there were echoes.
    fn cpu_per_echo(&self) -> Option<f64> {
        (self.echoes > 0).then(|| self.cpu_ns as f64 / self.echoes as f64)
    }
}

/// Where in the current window the loop is.
struct Window {
    target: usize,
    end: Instant,
    record: bool,
    messages: u64,
    /// Every echo completed in the window (and its drain).
    echoes: u64,
}

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    args.windows(2)
        .find(|w| w[0] == name)
        .and_then(|w| w[1].parse().ok())
        .unwrap_or(default)
}

fn bad(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// `NAME=ADDR[,PID]`.
fn parse_target(spec: &str) -> io::Result<(String, SocketAddr, Option<u32>)> {
    let (name, rest) = spec
        .split_once('=')
        .ok_or_else(|| bad(format!("--target {spec}: expected NAME=ADDR[,PID]")))?;
    let (addr, pid) = match rest.split_once(',') {
        Some((a, p)) => (
            a,
            Some(p.parse().map_err(|_| bad(format!("bad pid in {spec}")))?),
        ),
        None => (rest, None),
    };
    let addr = addr
        .parse()
        .map_err(|_| bad(format!("bad address in {spec}")))?;
    Ok((name.to_string(), addr, pid))
}

/// Nanoseconds the process's main thread has run on a CPU.
fn cpu_ns(pid: Option<u32>) -> u64 {
    pid.and_then(|p| std::fs::read_to_string(format!("/proc/{p}/schedstat")).ok())
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let conns: usize = arg(&args, "--conns", 10);
    let size: usize = arg(&args, "--size", 1024);
    let warmup = Duration::from_secs_f64(arg(&args, "--warmup", 1.0));
    let duration = Duration::from_secs_f64(arg(&args, "--duration", 5.0));
    let mut specs = Vec::new();
    for w in args.windows(2).filter(|w| w[0] == "--target") {
        specs.push(parse_target(&w[1])?);
    }
    let alternating = !specs.is_empty();
    if !alternating {
        let addr = arg(&args, "--addr", "127.0.0.1:7000".parse().expect("addr"));
        specs.push(("server".to_string(), addr, None));
    }
    // One server: a single window as long as the whole run.
    let window = if alternating {
        Duration::from_millis(arg(&args, "--window-ms", 250))
    } else {
        duration
    };

    let poll = Poll::new()?;
    let events = Events::with_capacity(1024);
    let message = vec![0xA5u8; size];
    let scratch = vec![0u8; 256 * 1024];
    let mut connections = Vec::with_capacity(conns * specs.len());
    let mut targets = Vec::new();
    for (name, addr, pid) in specs {
        targets.push(Target {
            name,
            pid,
            first: connections.len(),
            windows: Vec::new(),
            latencies: Vec::with_capacity(1 << 20),
            echoes: 0,
        });
        for _ in 0..conns {
            let std_stream = std::net::TcpStream::connect(addr)?;
            std_stream.set_nodelay(true)?;
            std_stream.set_nonblocking(true)?;
            let mut stream = TcpStream::from_std(std_stream);
            poll.registry().register(
                &mut stream,
                Token(connections.len()),
                Interest::READABLE | Interest::WRITABLE,
            )?;
            connections.push(Conn {
                stream,
                sent: 0,
                received: 0,
                in_flight: false,
                started: Instant::now(),
            });
        }
    }

    let mut load = Load {
        poll,
        events,
        connections,
        conns,
        message,
        scratch,
    };
    // Warm-up: every server gets `warmup`, in one window each.
    for (t, target) in targets.iter_mut().enumerate() {
        load.run_window(target, t, warmup, false)?;
    }
    // Measured: whole cycles over the servers until every server has had
    // `duration` of windows.
    let cycles = (duration.as_secs_f64() / window.as_secs_f64())
        .ceil()
        .max(1.0) as usize;
    let mut order: Vec<usize> = (0..targets.len()).rev().collect();
    for _ in 0..cycles {
        // Every other cycle in reverse order, so that no server always
        // follows the same one or sits at the same place in the cycle.
        order.reverse();
        for &t in &order {
            load.run_window(&mut targets[t], t, window, true)?;
        }
    }

    for target in &mut targets {
        report(target, conns, size, alternating);
    }
    if targets.len() > 1 {
        print_pairs(&targets);
    }
    Ok(())
}

impl Load {
    /// Loads `target` for `length`, then drains its in-flight messages.
    fn run_window(
        &mut self,
        target: &mut Target,
        index: usize,
        length: Duration,
        record: bool,
    ) -> io::Result<()> {
        let cpu_before = cpu_ns(target.pid);
        let start = Instant::now();
        let mut state = Window {
            target: index,
            end: start + length,
            record,
            messages: 0,
            echoes: 0,
        };
        for conn in &mut self.connections[target.first..target.first + self.conns] {
            conn.started = start;
            conn.sent = 0;
            conn.in_flight = true;
            pump_write(conn, &self.message)?;
        }
        let mut in_flight = self.conns;
        let drain_limit = state.end + Duration::from_secs(10);
        while in_flight > 0 {
            let now = Instant::now();
            if now >= drain_limit {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "{}: echoes still missing 10 s after the window",
                        target.name
                    ),
                ));
            }
            self.poll
                .poll(&mut self.events, Some(Duration::from_millis(10)))?;
            for event in self.events.iter() {
                let i = event.token().0;
                let conn = &mut self.connections[i];
                let ours = (target.first..target.first + self.conns).contains(&i);
                if event.is_writable() && conn.in_flight && conn.sent < self.message.len() {
                    pump_write(conn, &self.message)?;
                }
                if event.is_readable() {
                    in_flight -= read_echoes(
                        conn,
                        ours,
                        &mut state,
                        target,
                        &self.message,
                        &mut self.scratch,
                    )?;
                }
            }
        }
        // The server is idle at both edges (nothing in flight), so the CPU
        // between them is the work of exactly `state.echoes` echoes.
        let cpu_after = cpu_ns(target.pid);
        target.echoes += state.echoes;
        if record {
            target.windows.push(Measured {
                messages: state.messages,
                secs: length.as_secs_f64(),
                cpu_ns: cpu_after.saturating_sub(cpu_before),
                echoes: state.echoes,
            });
        }
        Ok(())
    }
}

/// Reads what arrived on `conn`; returns how many connections went idle
/// (0 or 1): their message's echo completed after the window's end.
fn read_echoes(
    conn: &mut Conn,
    ours: bool,
    state: &mut Window,
    target: &mut Target,
    message: &[u8],
    scratch: &mut [u8],
) -> io::Result<usize> {
    let size = message.len();
    loop {
        match conn.stream.read(scratch) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("{} closed a connection", target.name),
                ));
            }
            Ok(n) => {
                if !ours || !conn.in_flight {
                    return Err(io::Error::other(format!(
                        "{n} bytes arrived on an idle connection (window of {})",
                        state.target
                    )));
                }
                conn.received += n;
                if conn.received > size {
                    return Err(io::Error::other("more bytes echoed than sent"));
                }
                if conn.received == size {
                    conn.received = 0;
                    state.echoes += 1;
                    let now = Instant::now();
                    if now < state.end {
                        if state.record {
                            state.messages += 1;
                            let us = (now - conn.started).as_micros().min(u32::MAX as u128) as u32;
                            target.latencies.push(us);
                        }
                        conn.started = now;
                        conn.sent = 0;
                        pump_write(conn, message)?;
                    } else {
                        conn.in_flight = false;
                        return Ok(1);
                    }
                    // Every byte sent so far has come back, so the socket's
                    // receive queue is empty: a read now could only say
                    // EAGAIN. Skip it; the next arrival is a new edge (Linux
                    // epoll reports each arrival on an edge-triggered
                    // socket, drained or not).
                    return Ok(0);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(0),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

fn report(target: &mut Target, conns: usize, size: usize, alternating: bool) {
    let lat = &mut target.latencies;
    lat.sort_unstable();
    let pct = |p: f64| -> u32 {
        if lat.is_empty() {
            return 0;
        }
        lat[((lat.len() as f64 - 1.0) * p) as usize]
    };
    let messages: u64 = target.windows.iter().map(|w| w.messages).sum();
    let secs: f64 = target.windows.iter().map(|w| w.secs).sum();
    let cpu: u64 = target.windows.iter().map(|w| w.cpu_ns).sum();
    let cpu_echoes: u64 = target.windows.iter().map(|w| w.echoes).sum();
    let cpu_field = if target.pid.is_some() && cpu_echoes > 0 {
        format!(
            ",\"cpu_us_per_msg\":{:.3}",
            cpu as f64 / 1e3 / cpu_echoes as f64
        )
    } else {
        String::new()
    };
    let name_field = if alternating {
        format!("\"server\":\"{}\",", target.name)
    } else {
        String::new()
    };
    println!(
        "{{{name_field}\"conns\":{conns},\"size\":{size},\"msgs_per_sec\":{:.0},\"p50_us\":{},\"p99_us\":{},\"echoes\":{}{cpu_field}}}",
        messages as f64 / secs.max(f64::MIN_POSITIVE),
        pct(0.50),
        pct(0.99),
        target.echoes
    );
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// For every ordered pair (a, b): the median over the cycles of a's rate
/// over b's, and of a's CPU per message over b's.
fn print_pairs(targets: &[Target]) {
    let mut fields = Vec::new();
    for a in targets {
        for b in targets {
            if std::ptr::eq(a, b) {
                continue;
            }
            let pairs = a.windows.iter().zip(&b.windows);
            let ratio = |x: Option<f64>, y: Option<f64>| match (x, y) {
                (Some(x), Some(y)) if y > 0.0 => Some(x / y),
                _ => None,
            };
            let rate = median(
                pairs
                    .clone()
                    .filter_map(|(x, y)| ratio(x.rate(), y.rate()))
                    .collect(),
            );
            let cpu = median(
                pairs
                    .filter_map(|(x, y)| ratio(x.cpu_per_echo(), y.cpu_per_echo()))
                    .collect(),
            );
            let cpu = if cpu.is_nan() {
                "null".to_string()
            } else {
                format!("{cpu:.3}")
            };
            fields.push(format!(
                "\"{}/{}\":{{\"rate\":{rate:.3},\"cpu\":{cpu}}}",
                a.name, b.name
            ));
        }
    }
    println!("{{\"pairs\":{{{}}}}}", fields.join(","));
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

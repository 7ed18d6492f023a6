//! The tour: one `EventLoop`, on one thread, doing real work for two
//! seconds and then exiting on its own.
//!
//! * **Ping-pong** over four TCP connections on 127.0.0.1, sixteen messages
//!   in flight on each, with `add_reader` (and `add_writer` whenever a write
//!   has to wait for room in the socket).
//! * **Bulk transfer** through a Unix socket pair: a level-triggered writer
//!   that writes whenever the socket is writable, a reader that checks every
//!   byte.
//! * **Worker threads** counting primes block by block (with a short sleep
//!   after each block, as if waiting on a blocking call) and handing each
//!   result to the loop with `call_soon_threadsafe`.
//! * **Timers**: a progress line every 250 ms (`call_at`, drift-free), 500
//!   one-shot probe timers of which 300 are cancelled, and the deadline that
//!   ends the run. Every timer that fires records `fired_at - when`: the
//!   summary shows it is never negative (timers never fire early).
//!
//! A panicking callback would go to the loop's exception handler, which here
//! counts it and makes the demo exit with an error.

// cargo run --release --example loop_tour

#![allow(clippy::print_stdout)]

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use loop_core::{EventLoop, ExceptionContext, Remote};

const RUN_FOR: Duration = Duration::from_secs(2);
const PROGRESS_EVERY: Duration = Duration::from_millis(250);
const PAIRS: usize = 4;
const WINDOW: u64 = 16;
/// A ping is 16 bytes: a sequence number and a tag derived from it.
const FRAME: usize = 16;
const BULK_CHUNK: usize = 64 << 10;
const PROBES: usize = 500;
const WORKERS: usize = 2;
/// Numbers per worker job.
const BLOCK: u64 = 5_000;
/// Each worker sleeps this long after a job, standing in for the blocking
/// calls such threads usually make, and leaving CPU time to the loop.
const WORKER_PAUSE: Duration = Duration::from_millis(3);

// ===== shared state (loop thread only) =====

#[derive(Default)]
struct Lateness {
    fired: u64,
    early: u64,
    total: Duration,
    min: Option<Duration>,
    max: Duration,
}

impl Lateness {
    fn record(&mut self, when: Instant, fired_at: Instant) {
        self.fired += 1;
        match fired_at.checked_duration_since(when) {
            None => self.early += 1,
            Some(late) => {
                self.total += late;
                self.max = self.max.max(late);
                self.min = Some(self.min.map_or(late, |m| m.min(late)));
            }
        }
    }
}

#[derive(Default)]
struct Stats {
    round_trips: u64,
    bad_echoes: u64,
    /// Times a ping-pong write had to wait for `add_writer`.
    writes_deferred: u64,
    bulk_bytes: u64,
    bulk_writer_calls: u64,
    bulk_reader_calls: u64,
    bulk_corrupt: bool,
    lateness: Lateness,
    probes_fired: u64,
    cancelled_probes_fired: u64,
    panics: u64,
}

type Shared = Rc<RefCell<Stats>>;

/// Results from the worker threads. Their callbacks must be `Send`, so they
/// cannot capture the `Rc`s above; they update this thread-local of the
/// thread that runs them: the loop thread.
#[derive(Default)]
struct WorkResults {
    /// Primes found per block number.
    blocks: BTreeMap<u64, u64>,
}

thread_local! {
    static WORK: RefCell<WorkResults> = RefCell::default();
}

// ===== ping-pong connections =====

struct Conn {
    sock: TcpStream,
    inbuf: Vec<u8>,
    outbuf: Vec<u8>,
    writer_registered: bool,
    /// Client side: next sequence number to send, and to expect back.
    next_send: u64,
    next_echo: u64,
}

type ConnRef = Rc<RefCell<Conn>>;

fn tag(pair: usize, seq: u64) -> u64 {
    seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ pair as u64
}

/// Writes `data` now if the socket takes it; buffers the rest and lets a
/// writer callback flush it when the socket becomes writable.
fn send(ev: &EventLoop, conn: &ConnRef, data: &[u8], stats: &Shared) {
    let mut c = conn.borrow_mut();
    let mut rest = data;
    if c.outbuf.is_empty() {
        match (&c.sock).write(data) {
            Ok(n) => rest = &data[n..],
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
            Err(err) => panic!("write failed: {err}"),
        }
    }
    if rest.is_empty() {
        return;
    }
    c.outbuf.extend_from_slice(rest);
    if !c.writer_registered {
        c.writer_registered = true;
        stats.borrow_mut().writes_deferred += 1;
        let flusher = conn.clone();
        ev.add_writer(&c.sock, move |ev| flush(ev, &flusher))
            .expect("add_writer on an open socket");
    }
}

/// The writer callback: called while the socket is writable.
fn flush(ev: &EventLoop, conn: &ConnRef) {
    let mut c = conn.borrow_mut();
    let c = &mut *c;
    match (&c.sock).write(&c.outbuf) {
        Ok(n) => {
            c.outbuf.drain(..n);
        }
        Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
        Err(err) => panic!("write failed: {err}"),
    }
    if c.outbuf.is_empty() {
        ev.remove_writer(&c.sock);
        c.writer_registered = false;
    }
}

/// Reads once and moves the complete frames that arrived into `frames`.
fn read_frames(conn: &ConnRef, buf: &mut [u8], frames: &mut Vec<u8>) {
    let mut c = conn.borrow_mut();
    match (&c.sock).read(buf) {
        Ok(0) => panic!("peer closed the connection"),
        Ok(n) => c.inbuf.extend_from_slice(&buf[..n]),
        Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
        Err(err) => panic!("read failed: {err}"),
    }
    let complete = c.inbuf.len() / FRAME * FRAME;
    frames.extend(c.inbuf.drain(..complete));
}

fn new_conn(sock: TcpStream) -> io::Result<ConnRef> {
    sock.set_nodelay(true)?;
    sock.set_nonblocking(true)?;
    Ok(Rc::new(RefCell::new(Conn {
        sock,
        inbuf: Vec::new(),
        outbuf: Vec::new(),
        writer_registered: false,
        next_send: 0,
        next_echo: 0,
    })))
}

/// Connects a client and a server socket on 127.0.0.1 and starts the game.
fn start_ping_pong(
    ev: &EventLoop,
    listener: &TcpListener,
    pair: usize,
    stats: &Shared,
) -> Result<[ConnRef; 2], Box<dyn std::error::Error>> {
    let client = new_conn(TcpStream::connect(listener.local_addr()?)?)?;
    let server = new_conn(listener.accept()?.0)?;

    // Server: echo every complete frame back.
    let (conn, st) = (server.clone(), stats.clone());
    let (mut buf, mut frames) = (vec![0u8; 64 << 10], Vec::new());
    ev.add_reader(&server.borrow().sock, move |ev| {
        read_frames(&conn, &mut buf, &mut frames);
        if !frames.is_empty() {
            send(ev, &conn, &frames, &st);
            frames.clear();
        }
    })?;

    // Client: check each echo, count a round trip, send the next ping.
    let (conn, st) = (client.clone(), stats.clone());
    let (mut buf, mut frames, mut pings) = (vec![0u8; 64 << 10], Vec::new(), Vec::new());
    ev.add_reader(&client.borrow().sock, move |ev| {
        read_frames(&conn, &mut buf, &mut frames);
        {
            let mut c = conn.borrow_mut();
            let mut s = st.borrow_mut();
            for frame in frames.chunks_exact(FRAME) {
                let seq = u64::from_le_bytes(frame[..8].try_into().expect("8 bytes"));
                let got = u64::from_le_bytes(frame[8..].try_into().expect("8 bytes"));
                if seq != c.next_echo || got != tag(pair, seq) {
                    s.bad_echoes += 1;
                }
                c.next_echo = seq + 1;
                s.round_trips += 1;
                let next = c.next_send;
                c.next_send += 1;
                pings.extend_from_slice(&next.to_le_bytes());
                pings.extend_from_slice(&tag(pair, next).to_le_bytes());
            }
        }
        frames.clear();
        if !pings.is_empty() {
            send(ev, &conn, &pings, &st);
            pings.clear();
        }
    })?;

    // The first window of pings.
    let mut first = Vec::new();
    for seq in 0..WINDOW {
        first.extend_from_slice(&seq.to_le_bytes());
        first.extend_from_slice(&tag(pair, seq).to_le_bytes());
    }
    client.borrow_mut().next_send = WINDOW;
    send(ev, &client, &first, stats);
    Ok([client, server])
}

// ===== bulk transfer =====

fn pattern(offset: u64) -> u8 {
    (offset % 251) as u8
}

fn start_bulk(
    ev: &EventLoop,
    stats: &Shared,
) -> Result<[Rc<UnixStream>; 2], Box<dyn std::error::Error>> {
    let (tx, rx) = UnixStream::pair()?;
    tx.set_nonblocking(true)?;
    rx.set_nonblocking(true)?;
    let (tx, rx) = (Rc::new(tx), Rc::new(rx));

    let source: Vec<u8> = (0..(BULK_CHUNK + 251) as u64).map(pattern).collect();
    let (sock, st, mut sent) = (tx.clone(), stats.clone(), 0u64);
    ev.add_writer(&*tx, move |_| {
        st.borrow_mut().bulk_writer_calls += 1;
        let start = (sent % 251) as usize;
        match (&*sock).write(&source[start..start + BULK_CHUNK]) {
            Ok(n) => sent += n as u64,
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
            Err(err) => panic!("bulk write failed: {err}"),
        }
    })?;

    let (sock, st, mut buf) = (rx.clone(), stats.clone(), vec![0u8; BULK_CHUNK]);
    ev.add_reader(&*rx, move |_| {
        let mut s = st.borrow_mut();
        s.bulk_reader_calls += 1;
        match (&*sock).read(&mut buf) {
            Ok(n) => {
                let offset = s.bulk_bytes;
                s.bulk_corrupt |= buf[..n].iter().zip(offset..).any(|(b, i)| *b != pattern(i));
                s.bulk_bytes += n as u64;
            }
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
            Err(err) => panic!("bulk read failed: {err}"),
        }
    })?;
    Ok([tx, rx])
}

// ===== worker threads =====

fn count_primes(from: u64, to: u64) -> u64 {
    (from..to).filter(|&n| is_prime(n)).count() as u64
}

fn is_prime(n: u64) -> bool {
    if n < 2 {
        return false;
    }
    if n % 2 == 0 {
        return n == 2;
    }
    let mut d = 3;
    while d * d <= n {
        if n % d == 0 {
            return false;
        }
        d += 2;
    }
    true
}

fn spawn_worker(
    remote: Remote,
    next_block: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
) -> thread::JoinHandle<u64> {
    thread::spawn(move || {
        let mut sent = 0;
        while !stop.load(Ordering::Relaxed) {
            let block = next_block.fetch_add(1, Ordering::Relaxed);
            let primes = count_primes(block * BLOCK, (block + 1) * BLOCK);
            let delivered = remote.call_soon_threadsafe(move |_| {
                WORK.with_borrow_mut(|w| w.blocks.insert(block, primes));
            });
            if delivered.is_err() {
                break; // the loop is closed
            }
            sent += 1;
            thread::sleep(WORKER_PAUSE);
        }
        sent
    })
}

// ===== timers =====

/// A progress line every `PROGRESS_EVERY`, scheduled with `call_at` on a
/// fixed grid so lateness does not accumulate.
fn progress(ev: &EventLoop, when: Instant, start: Instant, stats: Shared, last: (Instant, u64)) {
    let now = ev.time();
    let (round_trips, bulk) = {
        let mut s = stats.borrow_mut();
        s.lateness.record(when, now);
        (s.round_trips, s.bulk_bytes)
    };
    let results = WORK.with_borrow(|w| w.blocks.len());
    let rate = (round_trips - last.1) as f64 / (now - last.0).as_secs_f64();
    println!(
        "  {:>5.2} s  round trips {:>9} ({:>7}/s)  bulk {:>5} MiB  worker results {:>4}",
        (now - start).as_secs_f64(),
        group(round_trips),
        group(rate as u64),
        bulk >> 20,
        results
    );
    let next = when + PROGRESS_EVERY;
    if next < start + RUN_FOR {
        ev.call_at(next, move |ev| {
            progress(ev, next, start, stats, (now, round_trips))
        })
        .expect("the loop is open while it runs");
    }
}

/// A tiny deterministic generator for the probe timers' deadlines.
fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

fn micros(d: Duration) -> String {
    if d >= Duration::from_millis(1) {
        format!("{:.2} ms", d.as_secs_f64() * 1e3)
    } else {
        format!("{:.1} µs", d.as_secs_f64() * 1e6)
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let ev = EventLoop::new()?;
    let stats: Shared = Rc::default();

    // Panics in callbacks are caught by the loop and reported here.
    let st = stats.clone();
    ev.set_exception_handler(Some(move |_: &EventLoop, ctx: ExceptionContext| {
        println!("exception handler: {ctx}");
        st.borrow_mut().panics += 1;
    }));

    println!(
        "tulip demo: one event loop on one thread for {:.1} s",
        RUN_FOR.as_secs_f64()
    );
    let start = ev.time();
    let deadline = start + RUN_FOR;

    // I/O.
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let mut conns = Vec::new();
    for pair in 0..PAIRS {
        conns.extend(start_ping_pong(&ev, &listener, pair, &stats)?);
    }
    let bulk = start_bulk(&ev, &stats)?;

    // Worker threads.
    let stop_workers = Arc::new(AtomicBool::new(false));
    let next_block = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| spawn_worker(ev.remote(), next_block.clone(), stop_workers.clone()))
        .collect();

    // Timers: progress, probes, the deadline.
    let st = stats.clone();
    let first = start + PROGRESS_EVERY;
    ev.call_at(first, move |ev| progress(ev, first, start, st, (start, 0)))?;

    let mut rng = 0x2545_F491_4F6C_DD1D_u64;
    let mut probes = Vec::with_capacity(PROBES);
    for i in 0..PROBES {
        let offset =
            Duration::from_micros(xorshift(&mut rng) % (RUN_FOR.as_micros() as u64 - 50_000));
        let when = start + offset;
        let doomed = i % 5 < 3; // cancelled below: must never run
        let st = stats.clone();
        let handle = ev.call_at(when, move |ev| {
            let mut s = st.borrow_mut();
            s.lateness.record(when, ev.time());
            s.probes_fired += 1;
            if doomed {
                s.cancelled_probes_fired += 1;
            }
        })?;
        probes.push((doomed, handle));
    }
    let before = ev.stats();
    for (_, handle) in probes.iter().filter(|(doomed, _)| *doomed) {
        handle.cancel();
    }
    let after = ev.stats();
    println!(
        "  {PROBES} probe timers scheduled and {} of them cancelled: the timer heap went from \
         {} to {} entries\n  (it compacts when more than half are cancelled; {} still are)",
        probes.iter().filter(|(doomed, _)| *doomed).count(),
        before.timers,
        after.timers,
        after.cancelled_timers
    );

    let ended_at = Rc::new(Cell::new(None));
    let (st, ended, stop) = (stats.clone(), ended_at.clone(), stop_workers.clone());
    let (conns_at_end, bulk_at_end) = (conns.clone(), bulk.clone());
    ev.call_at(deadline, move |ev| {
        st.borrow_mut().lateness.record(deadline, ev.time());
        ended.set(Some(ev.time()));
        stop.store(true, Ordering::Relaxed);
        for conn in &conns_at_end {
            let c = conn.borrow();
            ev.remove_reader(&c.sock);
            ev.remove_writer(&c.sock);
        }
        ev.remove_writer(&*bulk_at_end[0]);
        ev.remove_reader(&*bulk_at_end[1]);
        ev.stop();
    })?;

    ev.run_forever()?;
    let elapsed = ended_at.get().unwrap_or_else(|| ev.time()) - start;

    // Collect the workers' last results: one more iteration drains them.
    let mut sent = 0;
    for worker in workers {
        sent += worker.join().expect("worker thread panicked");
    }
    ev.call_soon(|ev| ev.stop())?;
    ev.run_forever()?;
    let leftover = ev.stats();
    ev.close()?;

    // ===== summary =====
    let s = stats.borrow();
    let secs = elapsed.as_secs_f64();
    let (results, contiguous, primes_below) = WORK.with_borrow(|w| {
        let contiguous = w
            .blocks
            .keys()
            .zip(0..)
            .take_while(|(k, i)| **k == *i)
            .count() as u64;
        let primes: u64 = w.blocks.range(..contiguous).map(|(_, p)| p).sum();
        (w.blocks.len(), contiguous, primes)
    });
    let million_check = WORK.with_borrow(|w| {
        (contiguous * BLOCK >= 1_000_000).then(|| {
            w.blocks
                .range(..1_000_000 / BLOCK)
                .map(|(_, p)| p)
                .sum::<u64>()
        })
    });
    let late = &s.lateness;
    let mean = late.total / late.fired.max(1) as u32;
    let cancelled = probes.iter().filter(|(doomed, _)| *doomed).count();

    println!("summary after {secs:.2} s");
    println!(
        "  ping-pong  {} round trips over {PAIRS} TCP pairs ({WINDOW} in flight each) = {} messages/s",
        group(s.round_trips),
        group((2.0 * s.round_trips as f64 / secs) as u64),
    );
    println!(
        "             bad echoes: {}; writes that had to wait for add_writer: {}",
        s.bad_echoes, s.writes_deferred
    );
    println!(
        "  bulk       {} MiB through a Unix socket pair = {:.0} MiB/s; every byte checked: {}",
        s.bulk_bytes >> 20,
        s.bulk_bytes as f64 / (1 << 20) as f64 / secs,
        if s.bulk_corrupt { "CORRUPT" } else { "intact" },
    );
    println!(
        "             writer called {} times, reader {} times",
        group(s.bulk_writer_calls),
        group(s.bulk_reader_calls)
    );
    println!(
        "  workers    {sent} results sent by {WORKERS} threads with call_soon_threadsafe; \
         {results} ran on the loop"
    );
    println!(
        "             {} primes below {}{}",
        group(primes_below),
        group(contiguous * BLOCK),
        match million_check {
            Some(p) => format!(" (below 1,000,000: {}, expected 78,498)", group(p)),
            None => String::new(),
        }
    );
    println!(
        "  timers     {} fired: {} probes, {} progress lines, the deadline; \
         of the {cancelled} cancelled probes, {} ran",
        late.fired,
        s.probes_fired,
        late.fired.saturating_sub(s.probes_fired + 1),
        s.cancelled_probes_fired
    );
    println!(
        "             lateness (fired_at - when): min {}, mean {}, max {}; fired early: {}",
        micros(late.min.unwrap_or_default()),
        micros(mean),
        micros(late.max),
        late.early
    );
    println!(
        "  loop       still registered: {} fds, {} timers; callbacks that panicked: {}",
        leftover.io_registrations, leftover.timers, s.panics
    );

    // The demo doubles as a smoke test: fail loudly if anything was off.
    let expected_probes = probes.iter().filter(|(doomed, _)| !doomed).count() as u64;
    let mut problems = Vec::new();
    if s.round_trips == 0 || s.bad_echoes != 0 {
        problems.push("ping-pong");
    }
    if s.bulk_bytes == 0 || s.bulk_corrupt {
        problems.push("bulk transfer");
    }
    if results == 0 || results as u64 != sent || million_check.is_some_and(|p| p != 78_498) {
        problems.push("worker results");
    }
    if late.early != 0 || s.probes_fired != expected_probes || s.cancelled_probes_fired != 0 {
        problems.push("timers");
    }
    if leftover.io_registrations != 0 || s.panics != 0 {
        problems.push("loop state");
    }
    if problems.is_empty() {
        println!("all checks passed");
        Ok(())
    } else {
        Err(format!("checks failed: {}", problems.join(", ")).into())
    }
}

//! `add_reader` / `add_writer` are level-triggered, as in asyncio: a reader
//! is called on every iteration while its fd is readable, a writer on every
//! iteration while its fd is writable. Part 1 reads one byte per call from a
//! `UnixStream` pair and shows one call per iteration until the data is
//! gone, then none. Part 2 streams 4 MiB through a second pair: the writer
//! fills the kernel buffer, is not called while the socket is not writable,
//! and resumes when a reader starts draining the other end.

// cargo run --example readers

#![allow(clippy::print_stdout)]

use std::cell::{Cell, RefCell};
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::time::{Duration, Instant};

use loop_core::EventLoop;

/// Counts loop iterations: a callback that re-schedules itself with
/// `call_soon` runs exactly once per iteration.
fn tick(ev: &EventLoop, iteration: Rc<Cell<u32>>, until: u32) {
    iteration.set(iteration.get() + 1);
    if iteration.get() < until {
        ev.call_soon(move |ev| tick(ev, iteration, until))
            .expect("the loop is open while it runs");
    } else {
        ev.stop();
    }
}

fn one_byte_per_call(ev: &EventLoop) -> Result<(), Box<dyn std::error::Error>> {
    println!("part 1: a reader that takes one byte per call");
    let (mut tx, rx) = UnixStream::pair()?;
    rx.set_nonblocking(true)?;
    tx.write_all(b"tulip")?;

    let iteration = Rc::new(Cell::new(0));
    let calls = Rc::new(RefCell::new(Vec::new()));
    let (it, log) = (iteration.clone(), calls.clone());
    let reader = rx.try_clone()?;
    ev.add_reader(&rx, move |_| {
        let mut byte = [0u8; 1];
        match (&reader).read(&mut byte) {
            Ok(1) => {
                println!("  iteration {}: read {:?}", it.get(), byte[0] as char);
                log.borrow_mut().push(it.get());
            }
            other => println!("  iteration {}: read returned {other:?}", it.get()),
        }
    })?;
    let it = iteration.clone();
    ev.call_soon(move |ev| tick(ev, it, 8))?;
    ev.run_forever()?;
    println!(
        "  {} iterations, reader called on {:?}: once per iteration while readable, \
         then not at all",
        iteration.get(),
        calls.borrow()
    );
    assert_eq!(*calls.borrow(), [1, 2, 3, 4, 5]);
    assert!(ev.remove_reader(&rx));
    Ok(())
}

const TOTAL: usize = 4 << 20;
/// The writer writes at most this much per call...
const WRITE_CHUNK: usize = 16 << 10;
/// ... and the reader reads at most this much.
const READ_CHUNK: usize = 64 << 10;

/// The byte at stream offset `i` (so the reader can check what arrives).
fn pattern(i: usize) -> u8 {
    (i % 251) as u8
}

#[derive(Default)]
struct Flow {
    written: usize,
    writer_calls: u32,
    /// Writer calls that could not write anything.
    wasted_calls: u32,
    /// Writer calls and bytes written before the reader was added.
    before_reader: Option<(u32, usize)>,
    last_writer_call: Option<Instant>,
    read: usize,
    reader_calls: u32,
    corrupt: bool,
}

fn flow_control(ev: &EventLoop) -> Result<(), Box<dyn std::error::Error>> {
    println!("part 2: a writer that outruns its reader");
    let (tx, rx) = UnixStream::pair()?;
    tx.set_nonblocking(true)?;
    rx.set_nonblocking(true)?;
    let (tx, rx) = (Rc::new(tx), Rc::new(rx));
    let flow = Rc::new(RefCell::new(Flow::default()));
    let source: Vec<u8> = (0..WRITE_CHUNK + 251).map(pattern).collect();

    let (f, sock) = (flow.clone(), tx.clone());
    ev.add_writer(&*tx, move |ev| {
        let mut f = f.borrow_mut();
        f.writer_calls += 1;
        f.last_writer_call = Some(ev.time());
        let start = f.written % 251;
        let len = WRITE_CHUNK.min(TOTAL - f.written);
        match (&*sock).write(&source[start..start + len]) {
            Ok(0) => f.wasted_calls += 1,
            Ok(n) => f.written += n,
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => f.wasted_calls += 1,
            Err(err) => panic!("write failed: {err}"),
        }
        if f.written == TOTAL {
            println!("  writer done after {} calls", f.writer_calls);
            ev.remove_writer(&*sock);
        }
    })?;

    // 50 ms later, start draining the other end.
    let (f, sock) = (flow.clone(), rx.clone());
    let started = ev.time();
    ev.call_later(Duration::from_millis(50), move |ev| {
        {
            let mut f = f.borrow_mut();
            let last = f.last_writer_call.map(|t| t - started).unwrap_or_default();
            println!(
                "  +50 ms: the writer ran {} times ({} KiB), the last time at +{last:.1?}; \
                 since then the socket has not been writable, so it was not called",
                f.writer_calls,
                f.written >> 10,
            );
            f.before_reader = Some((f.writer_calls, f.written));
        }
        println!("  adding a reader on the other end");
        let reader_sock = sock.clone();
        let mut buf = vec![0u8; READ_CHUNK];
        let added = ev.add_reader(&*sock, move |ev| {
            let mut f = f.borrow_mut();
            f.reader_calls += 1;
            match (&*reader_sock).read(&mut buf) {
                Ok(n) => {
                    let offset = f.read;
                    f.corrupt |= buf[..n]
                        .iter()
                        .enumerate()
                        .any(|(i, b)| *b != pattern(offset + i));
                    f.read += n;
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                Err(err) => panic!("read failed: {err}"),
            }
            if f.read == TOTAL {
                ev.remove_reader(&*reader_sock);
                ev.stop();
            }
        });
        added.expect("add_reader on an open socket");
    })?;

    let watchdog = ev.call_later(Duration::from_secs(4), |ev| ev.stop())?;
    ev.run_forever()?;
    watchdog.cancel();

    let f = flow.borrow();
    println!(
        "  {} KiB arrived intact: {}; writer: {} calls, {} of them with nothing to do; \
         reader: {} calls",
        f.read >> 10,
        !f.corrupt,
        f.writer_calls,
        f.wasted_calls,
        f.reader_calls
    );
    assert_eq!(f.read, TOTAL);
    assert!(!f.corrupt);
    let (_, written_before_reader) = f.before_reader.expect("the reader was added");
    assert!(
        written_before_reader < TOTAL,
        "4 MiB should not fit in a socket buffer"
    );
    // Level-triggered: the writer is called only while the fd is writable.
    assert_eq!(f.wasted_calls, 0);
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let ev = EventLoop::new()?;
    one_byte_per_call(&ev)?;
    flow_control(&ev)?;
    assert_eq!(ev.stats().io_registrations, 0);
    ev.close()?;
    Ok(())
}

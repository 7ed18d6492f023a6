//! `call_soon_threadsafe`: plain std threads hand callbacks to a loop through
//! its `Remote`, the only `Send + Sync` door into an `EventLoop` (the loop
//! handle itself is `!Send`, so using it from another thread does not
//! compile). Callbacks from one thread run in that thread's order; a loop
//! blocked in its poller is woken up; once the loop is closed the `Remote`
//! returns `LoopError::Closed` instead of losing the callback silently.

// cargo run --example threadsafe

#![allow(clippy::print_stdout)]

use std::cell::RefCell;
use std::thread;
use std::time::{Duration, Instant};

use loop_core::{EventLoop, LoopError};

const THREADS: u32 = 4;
const PER_THREAD: u32 = 10_000;

/// State owned by the loop thread. Callbacks sent from other threads must be
/// `Send`, so they cannot capture the loop's `Rc`s; they reach loop-side
/// state through this thread-local of the thread that runs them (the loop
/// thread), the way asyncio code reaches objects that live on the loop.
#[derive(Default)]
struct Received {
    /// Next sequence number expected from each sender.
    next: Vec<u32>,
    total: u32,
    out_of_order: u32,
    late_message_at: Option<Instant>,
}

thread_local! {
    static RECEIVED: RefCell<Received> = RefCell::default();
}

/// Runs on the loop thread for every message.
fn receive(ev: &EventLoop, sender: u32, seq: u32) {
    let done = RECEIVED.with_borrow_mut(|r| {
        let next = &mut r.next[sender as usize];
        if seq != *next {
            r.out_of_order += 1;
        }
        *next = seq + 1;
        r.total += 1;
        r.total == THREADS * PER_THREAD + 1
    });
    if done {
        ev.stop();
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let ev = EventLoop::new()?;
    RECEIVED.with_borrow_mut(|r| r.next = vec![0; THREADS as usize + 1]);
    let start = Instant::now();

    let mut workers = Vec::new();
    for sender in 0..THREADS {
        let remote = ev.remote();
        workers.push(thread::spawn(move || -> Result<(), LoopError> {
            for seq in 0..PER_THREAD {
                remote.call_soon_threadsafe(move |ev| receive(ev, sender, seq))?;
            }
            Ok(())
        }));
    }
    // One more sender that waits until the loop has nothing left to do: the
    // loop is then blocked in its poller (no timers, nothing ready), and the
    // remote call wakes it up.
    let remote = ev.remote();
    workers.push(thread::spawn(move || -> Result<(), LoopError> {
        thread::sleep(Duration::from_millis(200));
        let sent_at = Instant::now();
        remote.call_soon_threadsafe(move |ev| {
            RECEIVED.with_borrow_mut(|r| r.late_message_at = Some(sent_at));
            println!(
                "late message: ran on the loop {:.1?} after it was sent",
                sent_at.elapsed()
            );
            receive(ev, THREADS, 0);
        })
    }));

    // A watchdog so that the example always ends on its own.
    let watchdog = ev.call_later(Duration::from_secs(4), |ev| {
        println!("watchdog: not everything arrived within 4 s");
        ev.stop();
    })?;
    ev.run_forever()?;
    watchdog.cancel();
    for worker in workers {
        worker.join().expect("sender thread panicked")?;
    }

    let (total, out_of_order, late) =
        RECEIVED.with_borrow(|r| (r.total, r.out_of_order, r.late_message_at.is_some()));
    println!(
        "{total} callbacks from {} threads ran on the loop thread in {:.1?}; \
         out of per-thread order: {out_of_order}",
        THREADS + 1,
        start.elapsed()
    );
    assert_eq!(total, THREADS * PER_THREAD + 1);
    assert_eq!(out_of_order, 0);
    assert!(late);

    // After close, remotes refuse work instead of dropping it on the floor.
    let remote = ev.remote();
    ev.close()?;
    let refused = thread::spawn(move || remote.call_soon_threadsafe(|_| {}))
        .join()
        .expect("thread panicked");
    match refused {
        Err(err @ LoopError::Closed) => println!("call_soon_threadsafe after close: {err}"),
        other => panic!("expected LoopError::Closed, got {other:?}"),
    }
    Ok(())
}

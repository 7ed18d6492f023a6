//! Cross-thread scheduling: `Remote::call_soon_threadsafe` (asyncio's
//! `loop.call_soon_threadsafe`).
//!
//! Every loop here is bounded: a watchdog thread stops it through a
//! `Remote` after a generous deadline, and each test asserts the watchdog
//! was not needed.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use loop_core::{EventLoop, LoopError, Remote};

/// Upper bound on any wait in this file; only reached when something is broken.
const WATCHDOG: Duration = Duration::from_secs(10);

/// A thread that stops the loop through `remote` if the test has not
/// finished within [`WATCHDOG`]. Dropping the returned guard ends it and
/// reports whether it had to fire.
struct Watchdog {
    done: Option<mpsc::Sender<()>>,
    fired: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Watchdog {
    fn start(remote: Remote) -> Self {
        Self::start_with_poke(remote, None)
    }

    /// As [`start`](Watchdog::start); on timeout it also writes a byte to
    /// `poke`, so a loop whose remote wake-up is broken still wakes (its
    /// reader on the other end stops it) instead of hanging the test.
    fn start_with_poke(remote: Remote, poke: Option<UnixStream>) -> Self {
        let (done, rx) = mpsc::channel::<()>();
        let fired = Arc::new(AtomicBool::new(false));
        let flag = fired.clone();
        let thread = thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(WATCHDOG) {
                flag.store(true, Ordering::SeqCst);
                if let Some(mut poke) = poke {
                    let _ = poke.write_all(b"!");
                }
                let _ = remote.call_soon_threadsafe(|ev| ev.stop());
            }
        });
        Watchdog {
            done: Some(done),
            fired,
            thread: Some(thread),
        }
    }

    /// Ends the watchdog; true if it had to stop the loop.
    fn finish(mut self) -> bool {
        drop(self.done.take());
        if let Some(thread) = self.thread.take() {
            thread.join().expect("watchdog thread panicked");
        }
        self.fired.load(Ordering::SeqCst)
    }
}

#[test]
fn many_threads_lose_nothing_and_keep_per_thread_order() {
    const THREADS: usize = 4;
    const PER_THREAD: usize = 10_000;
    const TOTAL: usize = THREADS * PER_THREAD;

    let ev = EventLoop::new().unwrap();
    let record = Arc::new(Mutex::new(Vec::<(usize, usize)>::with_capacity(TOTAL)));
    let start = Arc::new(Barrier::new(THREADS));
    let watchdog = Watchdog::start(ev.remote());

    let producers: Vec<_> = (0..THREADS)
        .map(|t| {
            let remote = ev.remote();
            let record = record.clone();
            let start = start.clone();
            thread::spawn(move || {
                start.wait();
                for i in 0..PER_THREAD {
                    let record = record.clone();
                    remote
                        .call_soon_threadsafe(move |ev| {
                            let mut record = record.lock().unwrap();
                            record.push((t, i));
                            if record.len() == TOTAL {
                                ev.stop();
                            }
                        })
                        .expect("loop is open");
                }
            })
        })
        .collect();

    ev.run_forever().unwrap();
    for producer in producers {
        producer.join().unwrap();
    }
    assert!(!watchdog.finish(), "the watchdog had to stop the loop");

    let record = record.lock().unwrap();
    assert_eq!(record.len(), TOTAL, "callbacks were lost or duplicated");
    let mut next = [0usize; THREADS];
    for &(t, i) in record.iter() {
        assert_eq!(i, next[t], "thread {t}'s callbacks ran out of order");
        next[t] += 1;
    }
    assert_eq!(next, [PER_THREAD; THREADS]);
    assert_eq!(ev.stats().callbacks, 0);
    ev.close().unwrap();
}

#[test]
fn call_after_close_is_closed_from_any_thread() {
    let ev = EventLoop::new().unwrap();
    let remote = ev.remote();
    assert!(!remote.is_closed());
    ev.close().unwrap();
    assert!(remote.is_closed());
    assert!(matches!(
        remote.call_soon_threadsafe(|_| {}),
        Err(LoopError::Closed)
    ));
    assert!(matches!(
        ev.call_soon_threadsafe(|_| {}),
        Err(LoopError::Closed)
    ));
    let result = thread::spawn(move || remote.call_soon_threadsafe(|_| {}))
        .join()
        .unwrap();
    assert!(matches!(result, Err(LoopError::Closed)));
}

/// Counts drops of the closures sent to the loop.
struct DropCount(Arc<AtomicUsize>);

impl Drop for DropCount {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn dropping_the_loop_while_threads_hold_remotes_is_safe() {
    const THREADS: usize = 4;
    // Bounds each thread in count; it normally gets `Closed` long before.
    const MAX_CALLS: usize = 5_000_000;

    let ev = EventLoop::new().unwrap();
    let ran = Arc::new(AtomicUsize::new(0));
    let dropped = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(Barrier::new(THREADS + 1));
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let remote = ev.remote();
            let ran = ran.clone();
            let dropped = dropped.clone();
            let barrier = barrier.clone();
            thread::spawn(move || {
                let mut attempts = 0usize;
                let mut closed = false;
                let mut waited = false;
                while attempts < MAX_CALLS {
                    let guard = DropCount(dropped.clone());
                    let ran = ran.clone();
                    attempts += 1;
                    let result = remote.call_soon_threadsafe(move |_| {
                        let _guard = guard;
                        ran.fetch_add(1, Ordering::SeqCst);
                    });
                    if !waited {
                        // One successful call, then let the main thread drop the loop
                        // while this thread keeps calling.
                        result.as_ref().expect("loop is alive before the barrier");
                        barrier.wait();
                        waited = true;
                    }
                    if let Err(err) = result {
                        assert!(matches!(err, LoopError::Closed), "{err}");
                        closed = true;
                        break;
                    }
                }
                assert!(closed, "no Closed after {attempts} calls");
                assert!(remote.is_closed());
                assert!(matches!(
                    remote.call_soon_threadsafe(|_| {}),
                    Err(LoopError::Closed)
                ));
                attempts
            })
        })
        .collect();

    barrier.wait();
    drop(ev);
    let attempts: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(
        ran.load(Ordering::SeqCst),
        0,
        "the dropped loop ran nothing"
    );
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        attempts,
        "every closure, queued or refused, is dropped"
    );
}

/// The state letter of thread `tid` of this process (`R`, `S`, …).
#[cfg(target_os = "linux")]
fn thread_state(task_dir: &std::path::Path) -> Option<char> {
    let stat = std::fs::read_to_string(task_dir.join("stat")).ok()?;
    // "tid (comm) S ..." — comm may contain spaces, so split after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.trim_start().chars().next()
}

#[test]
fn call_soon_threadsafe_wakes_a_loop_blocked_in_poll() {
    let ev = EventLoop::new().unwrap();
    // Only the watchdog ever writes to `poke`: the reader is idle unless the
    // test has failed.
    let (mut wake_end, poke) = UnixStream::pair().unwrap();
    wake_end.set_nonblocking(true).unwrap();
    let watched = wake_end.try_clone().unwrap();
    ev.add_reader(&watched, move |ev| {
        let _ = wake_end.read(&mut [0u8; 8]);
        ev.stop();
    })
    .unwrap();
    let watchdog = Watchdog::start_with_poke(ev.remote(), Some(poke));
    let (running_tx, running_rx) = mpsc::channel::<Option<std::path::PathBuf>>();
    let woke = Arc::new(AtomicBool::new(false));
    let saw_blocked = Arc::new(AtomicBool::new(false));

    // First callback: tell the helper thread which kernel task the loop runs
    // on. After it, the loop has no work and no timer, so it blocks in poll.
    ev.call_soon(move |_| {
        // The link is relative to /proc: "<pid>/task/<tid>".
        let task_dir = std::fs::read_link("/proc/thread-self")
            .ok()
            .map(|rel| std::path::Path::new("/proc").join(rel));
        running_tx.send(task_dir).unwrap();
    })
    .unwrap();

    let remote = ev.remote();
    let woke_flag = woke.clone();
    let blocked_flag = saw_blocked.clone();
    let helper = thread::spawn(move || {
        let task_dir = running_rx.recv().unwrap();
        // Wait (bounded) until the loop thread sleeps in the kernel, i.e. is
        // blocked in epoll_wait, so the wake really has to interrupt a poll.
        #[cfg(target_os = "linux")]
        if let Some(task_dir) = task_dir {
            let give_up = Instant::now() + WATCHDOG / 2;
            while Instant::now() < give_up {
                if thread_state(&task_dir) == Some('S') {
                    blocked_flag.store(true, Ordering::SeqCst);
                    break;
                }
                thread::yield_now();
            }
        }
        #[cfg(not(target_os = "linux"))]
        let _ = (task_dir, &blocked_flag);
        remote
            .call_soon_threadsafe(move |ev| {
                woke_flag.store(true, Ordering::SeqCst);
                ev.stop();
            })
            .unwrap();
    });

    ev.run_forever().unwrap();
    helper.join().unwrap();
    assert!(!watchdog.finish(), "the wake did not interrupt the poll");
    assert!(woke.load(Ordering::SeqCst));
    #[cfg(target_os = "linux")]
    assert!(
        saw_blocked.load(Ordering::SeqCst),
        "the loop thread was never seen blocked"
    );
    let _ = saw_blocked;
    assert_eq!(ev.stats().timers, 0);
    assert!(ev.remove_reader(&watched));
    ev.close().unwrap();
}

#[test]
fn call_soon_threadsafe_from_the_loop_thread_runs() {
    let ev = EventLoop::new().unwrap();
    let watchdog = Watchdog::start(ev.remote());
    let ran = Arc::new(AtomicUsize::new(0));
    for _ in 0..2 {
        let ran = ran.clone();
        ev.call_soon_threadsafe(move |ev| {
            if ran.fetch_add(1, Ordering::SeqCst) + 1 == 2 {
                ev.stop();
            }
        })
        .unwrap();
    }
    ev.run_forever().unwrap();
    assert!(!watchdog.finish(), "the watchdog had to stop the loop");
    assert_eq!(ran.load(Ordering::SeqCst), 2);
    ev.close().unwrap();
}

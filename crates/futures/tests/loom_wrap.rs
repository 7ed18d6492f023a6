//! loom models of `wrap_future`'s thread races (asyncio's `_chain_future`):
//! an executor worker completing the concurrent future while the loop
//! cancels it, and a completion arriving while the loop closes.
//!
//! The loop itself (mio) cannot run under loom, so the loop thread is the
//! model's main thread and does what `wrap_future` makes the loop do: its
//! loop future's cancellation calls `source.cancel()`; completions arrive
//! as items in loop-core's real [`RemoteQueue`] (what
//! `call_soon_threadsafe` pushes to), and the loop drains them or, closing,
//! drops them. The worker runs the real executor job protocol
//! ([`run_job`]) on the real [`ConcurrentFuture`], whose lock and condition
//! variable are loom's under `--cfg loom`.
//!
//! Run with
//! `RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test -p loop-futures --release --test loom_wrap`.

#![cfg(loom)]

use std::sync::atomic::AtomicUsize as StdAtomicUsize;
use std::time::Duration;

use loom::sync::Arc;
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use loom::thread;
use loop_core::__loom::{Notify, RemoteQueue};
use loop_futures::__loom::run_job;
use loop_futures::ConcurrentFuture;

/// The poller's wake-up fd: `notify` adds to a counter.
#[derive(Debug, Clone)]
struct EventFd(Arc<AtomicUsize>);

impl EventFd {
    fn new() -> Self {
        EventFd(Arc::new(AtomicUsize::new(0)))
    }
}

impl Notify for EventFd {
    fn notify(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// What the source's done callback sends to the loop: in tulip, a closure
/// that runs the bridge entry (copying the source's state into the loop
/// future). Counts how often it runs and how often it is dropped.
struct Completion {
    runs: Arc<AtomicUsize>,
    drops: Arc<AtomicUsize>,
}

impl Completion {
    fn run(&self, loop_closed: &AtomicBool) {
        assert!(
            !loop_closed.load(Ordering::SeqCst),
            "a completion ran after the loop closed"
        );
        self.runs.fetch_add(1, Ordering::SeqCst);
    }
}

impl Drop for Completion {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
    }
}

type Queue = RemoteQueue<Completion, EventFd>;

/// Counts, across all of a model's executions, how often each outcome was
/// seen (plain std atomics: outside loom's view). Each model asserts that
/// loom explored every outcome, so a model that stopped racing would fail.
#[derive(Default)]
struct Outcomes([StdAtomicUsize; 3]);

impl Outcomes {
    fn saw(&self, which: usize) {
        self.0[which].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    fn assert_all_seen(&self, names: [&str; 3], used: usize) {
        for (count, name) in self.0.iter().zip(names).take(used) {
            let n = count.load(std::sync::atomic::Ordering::Relaxed);
            assert!(n > 0, "no execution where {name}");
        }
    }
}

/// `wrap_future`'s side on the source: a done callback that hands a
/// completion to the loop's remote queue, or drops it if the loop closed.
/// Returns the (runs, drops, refused) counters.
fn chain(
    source: &ConcurrentFuture<u32>,
    queue: &Arc<Queue>,
) -> (Arc<AtomicUsize>, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let runs = Arc::new(AtomicUsize::new(0));
    let drops = Arc::new(AtomicUsize::new(0));
    let refused = Arc::new(AtomicUsize::new(0));
    let completion = Completion {
        runs: runs.clone(),
        drops: drops.clone(),
    };
    let queue = queue.clone();
    let refused_count = refused.clone();
    source.add_done_callback(move |_| {
        if let Err(completion) = queue.push(completion) {
            // `call_soon_threadsafe` failed: the loop is closed.
            refused_count.fetch_add(1, Ordering::SeqCst);
            drop(completion);
        }
    });
    (runs, drops, refused)
}

/// An executor worker running the job for `source` (the job records that
/// it ran and returns 42).
fn spawn_worker(source: &ConcurrentFuture<u32>) -> (thread::JoinHandle<()>, Arc<AtomicBool>) {
    let ran = Arc::new(AtomicBool::new(false));
    let worker = {
        let source = source.clone();
        let ran = ran.clone();
        thread::spawn(move || {
            run_job(&source, move || {
                ran.store(true, Ordering::SeqCst);
                42
            });
        })
    };
    (worker, ran)
}

/// Model 1: the loop future is cancelled (its done callback calls
/// `source.cancel()`) while a worker picks the job up. Exactly one side
/// wins: either the job was skipped and the source reads cancelled, or the
/// job ran, the cancel failed and the source holds its result. Either way
/// the source completes once, and exactly one completion reaches the loop.
#[test]
fn worker_completion_races_loop_side_cancel() {
    let outcomes = std::sync::Arc::new(Outcomes::default());
    let seen = outcomes.clone();
    loom::model(move || {
        let queue = Arc::new(Queue::new(EventFd::new()));
        let source = ConcurrentFuture::<u32>::new();
        let (runs, drops, refused) = chain(&source, &queue);
        let (worker, ran) = spawn_worker(&source);

        // Loop thread: the loop future was cancelled; its callback cancels
        // the source.
        let cancelled = source.cancel();

        worker.join().expect("worker panicked");
        let ran = ran.load(Ordering::SeqCst);
        assert_ne!(cancelled, ran, "cancel won: {cancelled}, job ran: {ran}");
        seen.saw(usize::from(ran));
        assert!(source.done());
        assert_eq!(source.cancelled(), cancelled);
        if ran {
            assert_eq!(source.result(Some(Duration::ZERO)).expect("result"), 42);
        } else {
            let err = source.result(Some(Duration::ZERO)).expect_err("cancelled");
            assert!(err.is_cancelled(), "{err:?}");
        }
        // A second cancel changes nothing (the loop future's callback runs once,
        // but the state machine must hold even if it did not).
        assert_eq!(source.cancel(), cancelled);

        // The loop drains its remote queue: exactly one completion, run once.
        let loop_closed = AtomicBool::new(false);
        let mut drained = Vec::new();
        queue.drain_into(&mut drained);
        assert_eq!(drained.len(), 1, "the source completed exactly once");
        for completion in &drained {
            completion.run(&loop_closed);
        }
        drop(drained);
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(drops.load(Ordering::SeqCst), 1);
        assert_eq!(refused.load(Ordering::SeqCst), 0);
    });
    outcomes.assert_all_seen(["the cancel won", "the job won", ""], 2);
}

/// Model 2: as model 1, with a third thread blocked in `result()` (no
/// timeout): whichever side wins, the reader is woken (loom reports a
/// deadlock otherwise) and sees that outcome.
#[test]
fn blocked_reader_is_woken_by_either_outcome() {
    let outcomes = std::sync::Arc::new(Outcomes::default());
    let seen_by = outcomes.clone();
    loom::model(move || {
        let source = ConcurrentFuture::<u32>::new();
        let (worker, ran) = spawn_worker(&source);
        let reader = {
            let source = source.clone();
            thread::spawn(move || source.result(None))
        };

        let cancelled = source.cancel();

        worker.join().expect("worker panicked");
        let seen = reader.join().expect("reader panicked");
        let ran = ran.load(Ordering::SeqCst);
        assert_ne!(cancelled, ran);
        seen_by.saw(usize::from(seen.is_ok()));
        match seen {
            Ok(value) => {
                assert!(ran, "the reader saw a result the job never produced");
                assert_eq!(value, 42);
            }
            Err(err) => {
                assert!(err.is_cancelled(), "{err:?}");
                assert!(cancelled, "the reader saw a cancel that failed");
            }
        }
    });
    outcomes.assert_all_seen(
        ["the reader saw the cancel", "the reader saw the result", ""],
        2,
    );
}

/// Model 3: the worker completes the source while the loop closes (it may
/// drain once before). The completion runs on the loop only if it was
/// drained before the close; otherwise it is handed back by `close` or
/// refused to the worker, and dropped without running. Never both, never
/// lost (dropped exactly once), and the source itself always completes.
#[test]
fn completion_racing_loop_close_is_dropped_unrun() {
    let outcomes = std::sync::Arc::new(Outcomes::default());
    let seen = outcomes.clone();
    loom::model(move || {
        let queue = Arc::new(Queue::new(EventFd::new()));
        let source = ConcurrentFuture::<u32>::new();
        let (runs, drops, refused) = chain(&source, &queue);
        let (worker, ran) = spawn_worker(&source);

        // Loop thread: one last iteration, then `close`.
        let loop_closed = AtomicBool::new(false);
        let mut drained = Vec::new();
        queue.drain_into(&mut drained);
        for completion in &drained {
            completion.run(&loop_closed);
        }
        let ran_by_loop = drained.len();
        drop(drained);
        let (left, notifier) = queue.close();
        loop_closed.store(true, Ordering::SeqCst);
        let handed_back = left.len();
        // `close` drops the bridge entries and the queued completions unrun.
        drop(left);
        drop(notifier);

        worker.join().expect("worker panicked");
        assert!(ran.load(Ordering::SeqCst), "nobody cancelled: the job ran");
        assert_eq!(source.result(Some(Duration::ZERO)).expect("result"), 42);
        let refused = refused.load(Ordering::SeqCst);
        assert_eq!(
            ran_by_loop + handed_back + refused,
            1,
            "ran {ran_by_loop}, handed back {handed_back}, refused {refused}"
        );
        seen.saw(if ran_by_loop == 1 {
            0
        } else if handed_back == 1 {
            1
        } else {
            2
        });
        assert_eq!(runs.load(Ordering::SeqCst), ran_by_loop);
        assert_eq!(drops.load(Ordering::SeqCst), 1, "dropped exactly once");
        // Closed for good: nothing else can get in.
        assert!(queue.is_closed());
    });
    outcomes.assert_all_seen(
        [
            "the loop ran the completion",
            "close handed it back",
            "the closed queue refused it",
        ],
        3,
    );
}

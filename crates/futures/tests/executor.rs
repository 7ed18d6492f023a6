//! Executors: `run_in_executor`, the loop's default executor
//! (`set_default_executor`, `shutdown_default_executor`) and
//! [`ThreadPoolExecutor`] (asyncio's `loop.run_in_executor` and
//! `concurrent.futures.ThreadPoolExecutor`).
//!
//! Every wait is bounded: jobs block on a [`Gate`] with a timeout, loops
//! run under a [`Watchdog`] that stops them after [`WATCHDOG`], and
//! blocking reads of concurrent futures have a timeout.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Barrier, Condvar, Mutex};
use std::thread;
use std::time::Duration;

use loop_core::{EventLoop, Remote};
use loop_futures::{Error, EventLoopExt, Executor, Job, ThreadPoolExecutor, wrap_future};

/// Upper bound on any wait in this file; only reached when something is broken.
const WATCHDOG: Duration = Duration::from_secs(10);

/// A thread that stops the loop through a [`Remote`] if the test has not
/// finished within [`WATCHDOG`]: a `run_until_complete` whose completion
/// got lost then fails ("Event loop stopped before Future completed.")
/// instead of hanging. Dropping it ends the thread.
struct Watchdog {
    done: Option<mpsc::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Watchdog {
    fn start(ev: &EventLoop) -> Self {
        let remote: Remote = ev.remote();
        let (done, rx) = mpsc::channel::<()>();
        let thread = thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(WATCHDOG) {
                let _ = remote.call_soon_threadsafe(|ev| ev.stop());
            }
        });
        Watchdog {
            done: Some(done),
            thread: Some(thread),
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        drop(self.done.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A gate jobs wait at until the test opens it (bounded by [`WATCHDOG`]).
#[derive(Clone, Default)]
struct Gate(Arc<(Mutex<bool>, Condvar)>);

impl Gate {
    fn open(&self) {
        *self.0.0.lock().unwrap() = true;
        self.0.1.notify_all();
    }

    /// Waits for `open`; false if the watchdog deadline passed first.
    fn wait(&self) -> bool {
        let guard = self.0.0.lock().unwrap();
        let (guard, _) = self
            .0
            .1
            .wait_timeout_while(guard, WATCHDOG, |open| !*open)
            .unwrap();
        *guard
    }
}

/// An executor that counts the jobs it gets and the shutdowns it sees, and
/// runs the jobs on a one-thread pool.
struct Counting {
    jobs: AtomicUsize,
    shutdowns: Mutex<Vec<bool>>,
    /// Opened when `shutdown` is called (before it waits).
    on_shutdown: Gate,
    pool: ThreadPoolExecutor,
}

impl Counting {
    fn new() -> Arc<Self> {
        Arc::new(Counting {
            jobs: AtomicUsize::new(0),
            shutdowns: Mutex::new(Vec::new()),
            on_shutdown: Gate::default(),
            pool: ThreadPoolExecutor::new(1),
        })
    }

    fn jobs(&self) -> usize {
        self.jobs.load(Ordering::SeqCst)
    }

    fn shutdowns(&self) -> Vec<bool> {
        self.shutdowns.lock().unwrap().clone()
    }
}

impl Executor for Counting {
    fn execute(&self, job: Job) -> Result<(), Error> {
        self.jobs.fetch_add(1, Ordering::SeqCst);
        self.pool.execute(job)
    }

    fn shutdown(&self, wait: bool) {
        self.shutdowns.lock().unwrap().push(wait);
        self.on_shutdown.open();
        self.pool.shutdown(wait);
    }
}

/// An executor that refuses every job.
struct Refusing;

impl Executor for Refusing {
    fn execute(&self, _job: Job) -> Result<(), Error> {
        Err(Error::msg("no capacity"))
    }

    fn shutdown(&self, _wait: bool) {}
}

fn runtime_message(err: &Error) -> &str {
    match err {
        Error::Runtime(e) => e.message(),
        other => panic!("expected a RuntimeError, got {other:?}"),
    }
}

/// Runs one loop iteration after everything already scheduled: callbacks
/// that were ready run, the loop does not block.
fn spin(ev: &EventLoop) {
    ev.call_soon(|ev| ev.stop()).unwrap();
    ev.run_forever().unwrap();
}

/// The loop still works: a coroutine runs to completion.
fn assert_usable(ev: &EventLoop) {
    let task = ev
        .create_task(async { Ok::<_, Error>("still usable") })
        .unwrap();
    assert_eq!(ev.run_until_complete(task).unwrap(), "still usable");
}

// ===== run_in_executor =====

#[test]
fn run_in_executor_default_delivers_the_value_on_the_loop() {
    let ev = EventLoop::new().unwrap();
    let _watchdog = Watchdog::start(&ev);
    let loop_thread = thread::current().id();
    let fut = ev
        .run_in_executor(None, move || (thread::current().id() != loop_thread, 6 * 7))
        .unwrap();
    assert!(!fut.done(), "completed through the loop, not inline");
    assert_eq!(ev.run_until_complete(fut).unwrap(), (true, 42));

    // Awaited from a coroutine as well, several at once.
    let task = ev
        .create_task(async {
            let ev = loop_core::get_running_loop()?;
            let a = ev.run_in_executor(None, || 1)?;
            let b = ev.run_in_executor(None, || 2)?;
            Ok::<_, Error>(a.await? + b.await?)
        })
        .unwrap();
    assert_eq!(ev.run_until_complete(task).unwrap(), 3);
    ev.close().unwrap();
}

#[test]
fn panicking_job_fails_its_future_and_the_worker_survives() {
    let ev = EventLoop::new().unwrap();
    let _watchdog = Watchdog::start(&ev);
    let pool = ThreadPoolExecutor::new(1);
    ev.set_default_executor(Arc::new(pool.clone()));

    let boom = ev
        .run_in_executor(None, || -> thread::ThreadId { panic!("job exploded") })
        .unwrap();
    let err = ev.run_until_complete(boom).unwrap_err();
    let Error::Panic(panic) = err else {
        panic!("expected Error::Panic, got {err:?}");
    };
    assert_eq!(panic.message(), "job exploded");
    let payload = panic.take_payload().expect("the panic payload is kept");
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"job exploded"));

    // The only worker is still there and runs the next jobs.
    let a = ev.run_in_executor(None, || thread::current().id()).unwrap();
    let a = ev.run_until_complete(a).unwrap();
    let b = ev.run_in_executor(None, || thread::current().id()).unwrap();
    let b = ev.run_until_complete(b).unwrap();
    assert_eq!(a, b, "one worker ran both jobs");
    assert_ne!(a, thread::current().id());
    assert_eq!(
        pool.worker_count(),
        1,
        "the pool did not replace its worker"
    );
    ev.close().unwrap();
}

#[test]
fn explicit_executor_is_used_instead_of_the_default() {
    let ev = EventLoop::new().unwrap();
    let _watchdog = Watchdog::start(&ev);
    let counting = Counting::new();
    let explicit: Arc<dyn Executor> = counting.clone();
    let fut = ev.run_in_executor(Some(&explicit), || "explicit").unwrap();
    assert_eq!(ev.run_until_complete(fut).unwrap(), "explicit");
    assert_eq!(counting.jobs(), 1);
    // The default executor is a separate one: the explicit one sees nothing.
    let fut = ev.run_in_executor(None, || "default").unwrap();
    assert_eq!(ev.run_until_complete(fut).unwrap(), "default");
    assert_eq!(counting.jobs(), 1);
    ev.close().unwrap();
}

#[test]
fn executor_refusing_a_job_is_an_error_and_the_loop_stays_usable() {
    let ev = EventLoop::new().unwrap();
    let refusing: Arc<dyn Executor> = Arc::new(Refusing);
    let err = ev.run_in_executor(Some(&refusing), || 1).unwrap_err();
    assert_eq!(err.to_string(), "no capacity");
    ev.set_default_executor(refusing);
    let err = ev.run_in_executor(None, || 1).unwrap_err();
    assert_eq!(err.to_string(), "no capacity");
    assert_usable(&ev);
    ev.close().unwrap();
}

#[test]
fn run_in_executor_on_a_closed_loop_is_an_error() {
    let ev = EventLoop::new().unwrap();
    ev.close().unwrap();
    let ran = Arc::new(AtomicBool::new(false));
    let flag = ran.clone();
    let err = ev
        .run_in_executor(None, move || flag.store(true, Ordering::SeqCst))
        .unwrap_err();
    assert_eq!(runtime_message(&err), "Event loop is closed");
    let counting = Counting::new();
    let explicit: Arc<dyn Executor> = counting.clone();
    assert!(ev.run_in_executor(Some(&explicit), || 1).is_err());
    assert_eq!(counting.jobs(), 0, "nothing was submitted");
    assert!(!ran.load(Ordering::SeqCst));
}

#[test]
fn cancelling_the_loop_future_before_the_job_starts_skips_the_job() {
    let ev = EventLoop::new().unwrap();
    let _watchdog = Watchdog::start(&ev);
    // One worker, kept busy, so the second job waits in the queue.
    ev.set_default_executor(Arc::new(ThreadPoolExecutor::new(1)));
    let gate = Gate::default();
    let blocker = {
        let gate = gate.clone();
        ev.run_in_executor(None, move || gate.wait()).unwrap()
    };
    let ran = Arc::new(AtomicBool::new(false));
    let queued = {
        let ran = ran.clone();
        ev.run_in_executor(None, move || ran.store(true, Ordering::SeqCst))
            .unwrap()
    };
    assert!(queued.cancel(None));
    // The cancellation reaches the concurrent future through the loop.
    spin(&ev);
    gate.open();
    assert!(ev.run_until_complete(blocker).unwrap(), "the gate opened");
    // A job queued after the cancelled one runs after it was skipped.
    let after = ev.run_in_executor(None, || "after").unwrap();
    assert_eq!(ev.run_until_complete(after).unwrap(), "after");
    assert!(!ran.load(Ordering::SeqCst), "the cancelled job never ran");
    assert!(queued.cancelled());
    ev.close().unwrap();
}

// ===== the default executor =====

#[test]
fn custom_default_executor_gets_every_job_and_the_shutdown() {
    let ev = EventLoop::new().unwrap();
    let _watchdog = Watchdog::start(&ev);
    let counting = Counting::new();
    ev.set_default_executor(counting.clone());
    let futs: Vec<_> = (0..3u32)
        .map(|i| ev.run_in_executor(None, move || i * 10).unwrap())
        .collect();
    let sum = ev
        .run_until_complete(async move {
            let mut sum = 0;
            for fut in futs {
                sum += fut.await?;
            }
            Ok::<_, Error>(sum)
        })
        .unwrap();
    assert_eq!(sum, 30);
    assert_eq!(counting.jobs(), 3);
    assert!(counting.shutdowns().is_empty());

    ev.run_until_complete(ev.shutdown_default_executor())
        .unwrap();
    assert_eq!(counting.shutdowns(), [true], "shut down once, waiting");

    let err = ev.run_in_executor(None, || 0).unwrap_err();
    assert_eq!(runtime_message(&err), "Executor shutdown has been called");
    assert_eq!(
        counting.jobs(),
        3,
        "the refused job never reached the executor"
    );
    // Setting a new default does not undo the shutdown (asyncio's flag).
    ev.set_default_executor(Counting::new());
    let err = ev.run_in_executor(None, || 0).unwrap_err();
    assert_eq!(runtime_message(&err), "Executor shutdown has been called");
    // An explicit executor still works, and so does the loop.
    let explicit: Arc<dyn Executor> = Arc::new(ThreadPoolExecutor::new(1));
    let fut = ev.run_in_executor(Some(&explicit), || "explicit").unwrap();
    assert_eq!(ev.run_until_complete(fut).unwrap(), "explicit");
    assert_usable(&ev);
    ev.close().unwrap();
}

#[test]
fn shutdown_default_executor_waits_for_running_jobs() {
    let ev = EventLoop::new().unwrap();
    let _watchdog = Watchdog::start(&ev);
    ev.set_default_executor(Arc::new(ThreadPoolExecutor::new(1)));
    let gate = Gate::default();
    let job = {
        let gate = gate.clone();
        ev.run_in_executor(None, move || gate.wait()).unwrap()
    };
    let shutdown = ev.shutdown_default_executor();
    // The job is blocked at the gate, so the shutdown cannot finish; the
    // loop keeps running meanwhile.
    for _ in 0..3 {
        spin(&ev);
        assert!(!shutdown.done(), "finished while a job was still running");
    }
    gate.open();
    ev.run_until_complete(shutdown.clone()).unwrap();
    assert!(shutdown.done());
    assert!(
        ev.run_until_complete(job).unwrap(),
        "the job got through the gate"
    );
    ev.close().unwrap();
}

#[test]
fn shutdown_default_executor_without_an_executor_completes_and_refuses_later_jobs() {
    let ev = EventLoop::new().unwrap();
    let _watchdog = Watchdog::start(&ev);
    let shutdown = ev.shutdown_default_executor();
    ev.run_until_complete(shutdown).unwrap();
    // A second call is harmless.
    ev.run_until_complete(ev.shutdown_default_executor())
        .unwrap();
    let err = ev.run_in_executor(None, || ()).unwrap_err();
    assert_eq!(runtime_message(&err), "Executor shutdown has been called");
    assert_usable(&ev);
    ev.close().unwrap();
}

#[test]
fn closing_the_loop_shuts_the_default_executor_down_without_waiting() {
    let ev = EventLoop::new().unwrap();
    let counting = Counting::new();
    ev.set_default_executor(counting.clone());
    assert!(counting.shutdowns().is_empty());
    ev.close().unwrap();
    assert_eq!(counting.shutdowns(), [false]);
}

// ===== ThreadPoolExecutor =====

#[test]
fn submit_runs_the_job_and_completes_the_concurrent_future() {
    let pool = ThreadPoolExecutor::new(2);
    let fut = pool.submit(|| "done".len()).unwrap();
    assert_eq!(fut.result(Some(WATCHDOG)).unwrap(), 4);
    let failing = pool
        .submit(|| -> u32 { panic!("submitted job panicked") })
        .unwrap();
    let err = failing.result(Some(WATCHDOG)).unwrap_err();
    assert!(err.is_panic(), "{err:?}");
    assert_eq!(err.to_string(), "panicked: submitted job panicked");
}

#[test]
fn submit_after_shutdown_is_refused() {
    let pool = ThreadPoolExecutor::new(2);
    let before = pool.submit(|| 1).unwrap();
    assert_eq!(before.result(Some(WATCHDOG)).unwrap(), 1);
    pool.shutdown(true);
    let err = pool.submit(|| 2).unwrap_err();
    assert_eq!(
        runtime_message(&err),
        "cannot schedule new futures after shutdown"
    );
    let err = Executor::execute(&pool, Box::new(|| {})).unwrap_err();
    assert!(matches!(err, Error::Runtime(_)), "{err:?}");
    assert!(format!("{pool:?}").contains("shutdown: true"), "{pool:?}");
    // Through a loop, the refusal is an error and the loop stays usable.
    let ev = EventLoop::new().unwrap();
    let explicit: Arc<dyn Executor> = Arc::new(pool);
    let err = ev.run_in_executor(Some(&explicit), || 3).unwrap_err();
    assert_eq!(
        runtime_message(&err),
        "cannot schedule new futures after shutdown"
    );
    assert_usable(&ev);
    ev.close().unwrap();
}

#[test]
fn jobs_queued_before_shutdown_still_run() {
    let pool = ThreadPoolExecutor::new(1);
    let gate = Gate::default();
    let first = {
        let gate = gate.clone();
        pool.submit(move || gate.wait()).unwrap()
    };
    let second = pool.submit(|| "queued").unwrap();
    let closer = {
        let pool = pool.clone();
        thread::spawn(move || pool.shutdown(true))
    };
    gate.open();
    closer.join().unwrap();
    assert!(first.result(Some(WATCHDOG)).unwrap());
    assert_eq!(second.result(Some(WATCHDOG)).unwrap(), "queued");
}

#[test]
fn workers_start_lazily_up_to_max_workers() {
    let pool = ThreadPoolExecutor::new(2);
    assert_eq!(pool.worker_count(), 0, "no thread before the first job");
    let gate = Gate::default();
    let (entered_tx, entered) = mpsc::channel();
    let blocked: Vec<_> = (0..3)
        .map(|i| {
            let gate = gate.clone();
            let entered_tx = entered_tx.clone();
            let fut = pool
                .submit(move || {
                    let _ = entered_tx.send(thread::current().id());
                    (gate.wait(), thread::current().id())
                })
                .unwrap();
            // No worker is idle (each started one has a job it cannot finish
            // before the gate opens), so each job starts another worker
            // until the maximum.
            assert_eq!(pool.worker_count(), (i + 1).min(2), "after job {i}");
            fut
        })
        .collect();
    assert!(format!("{pool:?}").contains("max_workers: 2"), "{pool:?}");
    // Two jobs are running at once, on two different workers; the third
    // waits in the queue.
    let first = entered.recv_timeout(WATCHDOG).expect("a job started");
    let second = entered
        .recv_timeout(WATCHDOG)
        .expect("a second job started");
    assert_ne!(first, second, "two workers run jobs at once");
    assert!(format!("{pool:?}").contains("queued: 1"), "{pool:?}");
    gate.open();
    for fut in blocked {
        let (opened, id) = fut.result(Some(WATCHDOG)).unwrap();
        assert!(opened);
        assert!(id == first || id == second, "a third worker ran a job");
    }
    assert_eq!(pool.worker_count(), 2);

    // At least one worker always exists.
    let single = ThreadPoolExecutor::new(0);
    assert!(
        format!("{single:?}").contains("max_workers: 1"),
        "{single:?}"
    );
    assert_eq!(
        single.submit(|| 5).unwrap().result(Some(WATCHDOG)).unwrap(),
        5
    );
    assert_eq!(single.worker_count(), 1);
}

#[test]
fn cancelled_submission_is_skipped_by_the_worker() {
    let pool = ThreadPoolExecutor::new(1);
    let gate = Gate::default();
    let busy = {
        let gate = gate.clone();
        pool.submit(move || gate.wait()).unwrap()
    };
    let ran = Arc::new(AtomicBool::new(false));
    let skipped = {
        let ran = ran.clone();
        pool.submit(move || ran.store(true, Ordering::SeqCst))
            .unwrap()
    };
    assert!(skipped.cancel(), "still queued: cancellable");
    gate.open();
    assert!(busy.result(Some(WATCHDOG)).unwrap());
    // FIFO: once a later job ran, the cancelled one was dequeued.
    assert_eq!(
        pool.submit(|| 1).unwrap().result(Some(WATCHDOG)).unwrap(),
        1
    );
    assert!(!ran.load(Ordering::SeqCst));
    assert!(
        skipped
            .result(Some(Duration::ZERO))
            .unwrap_err()
            .is_cancelled()
    );
}

#[test]
fn wrap_future_of_a_submission_completes_on_the_loop() {
    let ev = EventLoop::new().unwrap();
    let _watchdog = Watchdog::start(&ev);
    let pool = ThreadPoolExecutor::default();
    let fut = wrap_future(&ev, pool.submit(|| vec![1, 2, 3]).unwrap());
    assert_eq!(ev.run_until_complete(fut).unwrap(), vec![1, 2, 3]);
    let failing = wrap_future(
        &ev,
        pool.submit(|| -> u8 { panic!("wrapped job panicked") })
            .unwrap(),
    );
    let err = ev.run_until_complete(failing).unwrap_err();
    assert!(err.is_panic(), "{err:?}");
    ev.close().unwrap();
}

/// Sends on its channel when dropped: put in a worker's thread-local
/// storage, it reports that the worker thread exited.
struct ExitSignal(mpsc::Sender<()>);

impl Drop for ExitSignal {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

thread_local! {
    static ON_EXIT: std::cell::RefCell<Option<ExitSignal>> = const { std::cell::RefCell::new(None) };
}

#[test]
fn dropping_the_last_pool_handle_shuts_it_down_after_queued_jobs() {
    let (exited, worker_exit) = mpsc::channel();
    let gate = Gate::default();
    let fut = {
        let pool = ThreadPoolExecutor::new(1);
        let gate = gate.clone();
        pool.submit(move || {
            ON_EXIT.with(|slot| *slot.borrow_mut() = Some(ExitSignal(exited)));
            gate.wait()
        })
        .unwrap()
        // The last handle drops here, while the job is blocked.
    };
    gate.open();
    assert!(
        fut.result(Some(WATCHDOG)).unwrap(),
        "the queued job still ran"
    );
    // Shut down: the idle worker exits instead of waiting for more jobs.
    worker_exit
        .recv_timeout(WATCHDOG)
        .expect("the worker thread exited after the pool was dropped");
}

/// Two threads calling `shutdown(true)` at once both wait for the running
/// job (CPython's `shutdown(wait=True)` joins every worker in each
/// caller); the second used to return at once, the first having taken the
/// workers to join.
#[test]
fn two_concurrent_shutdowns_with_wait_both_wait_for_running_jobs() {
    let pool = ThreadPoolExecutor::new(2);
    let gate = Gate::default();
    let (started_tx, started_rx) = mpsc::channel();
    let job_gate = gate.clone();
    let job = pool
        .submit(move || {
            started_tx.send(()).unwrap();
            job_gate.wait()
        })
        .unwrap();
    started_rx.recv_timeout(WATCHDOG).expect("the job started");
    let returned = Arc::new(AtomicUsize::new(0));
    let shutdowns: Vec<_> = (0..2)
        .map(|_| {
            let (pool, returned) = (pool.clone(), returned.clone());
            thread::spawn(move || {
                pool.shutdown(true);
                returned.fetch_add(1, Ordering::SeqCst);
            })
        })
        .collect();
    // Neither returns while the job runs (a missed early return would only
    // make this pass wrongly, never fail wrongly).
    thread::sleep(Duration::from_millis(100));
    assert_eq!(
        returned.load(Ordering::SeqCst),
        0,
        "a shutdown returned early"
    );
    gate.open();
    for shutdown in shutdowns {
        shutdown.join().unwrap();
    }
    assert_eq!(returned.load(Ordering::SeqCst), 2);
    assert!(
        job.result(Some(WATCHDOG)).unwrap(),
        "the job ran to its end"
    );
}

/// Two jobs of one pool each call `shutdown(true)` on it: neither waits
/// for the other's worker (each exits only after its job's shutdown
/// returned), so both return.
#[test]
fn two_jobs_shutting_their_own_pool_down_both_return() {
    let pool = ThreadPoolExecutor::new(2);
    let barrier = Arc::new(Barrier::new(2));
    let (tx, rx) = mpsc::channel();
    for _ in 0..2 {
        let (p, b, tx) = (pool.clone(), barrier.clone(), tx.clone());
        pool.submit(move || {
            b.wait();
            p.shutdown(true);
            tx.send(()).unwrap();
        })
        .unwrap();
    }
    for i in 0..2 {
        rx.recv_timeout(WATCHDOG).unwrap_or_else(|_| {
            panic!("shutdown #{i} called from a job never returned (deadlock)")
        });
    }
}

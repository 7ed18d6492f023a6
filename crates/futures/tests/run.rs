//! Running code across threads and programs: `wrap_future`,
//! `run_coroutine_threadsafe` and `run` (asyncio's `wrap_future`,
//! `run_coroutine_threadsafe` and `asyncio.run`).
//!
//! Every wait is bounded: loops run under a [`Watchdog`] that stops them
//! after [`WATCHDOG`], channels are read with `recv_timeout`, and blocking
//! reads of concurrent futures have a timeout.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use loop_core::{EventLoop, Remote, get_running_loop};
use loop_futures::{
    AnyTask, ConcurrentFuture, Error, EventLoopExt, Executor, Job, ThreadPoolExecutor, all_tasks,
    create_task, run, run_coroutine_threadsafe, wrap_future, yield_now,
};

/// Upper bound on any wait in this file; only reached when something is broken.
const WATCHDOG: Duration = Duration::from_secs(10);

/// A thread that stops the loop through a [`Remote`] if the test has not
/// finished within [`WATCHDOG`], so a lost completion fails the test
/// instead of hanging it. Dropping it ends the thread.
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

/// For `run`, whose loop is internal: if the test has not finished within
/// [`WATCHDOG`], the process aborts with a message (a failure, not a hang).
struct AbortWatchdog {
    done: Option<mpsc::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl AbortWatchdog {
    // Tests may print: the message says why the process aborted.
    #[allow(clippy::print_stderr)]
    fn start(test: &'static str) -> Self {
        let (done, rx) = mpsc::channel::<()>();
        let thread = thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(WATCHDOG) {
                eprintln!("{test}: still running after {WATCHDOG:?}; aborting");
                std::process::abort();
            }
        });
        AbortWatchdog {
            done: Some(done),
            thread: Some(thread),
        }
    }
}

impl Drop for AbortWatchdog {
    fn drop(&mut self) {
        drop(self.done.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Records what reaches the loop's exception handler.
fn record_exceptions(ev: &EventLoop) -> Rc<RefCell<Vec<String>>> {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let sink = seen.clone();
    ev.set_exception_handler(Some(
        move |_: &EventLoop, ctx: loop_core::ExceptionContext| {
            sink.borrow_mut().push(ctx.message().to_string());
        },
    ));
    seen
}

/// Runs the callbacks already scheduled (one iteration), without blocking.
fn spin(ev: &EventLoop) {
    ev.call_soon(|ev| ev.stop()).unwrap();
    ev.run_forever().unwrap();
}

fn runtime_message(err: &Error) -> &str {
    match err {
        Error::Runtime(e) => e.message(),
        other => panic!("expected a RuntimeError, got {other:?}"),
    }
}

// ===== wrap_future =====

#[test]
fn wrap_future_of_a_done_source_mirrors_it() {
    let ev = EventLoop::new().unwrap();
    let _watchdog = Watchdog::start(&ev);

    let ok = ConcurrentFuture::new();
    ok.set_result(5u32).unwrap();
    let dest = wrap_future(&ev, ok);
    assert!(!dest.done(), "copied on the loop thread, not inline");
    assert_eq!(ev.run_until_complete(dest).unwrap(), 5);

    let failed = ConcurrentFuture::<u32>::new();
    failed.set_exception(Error::msg("source failed")).unwrap();
    let dest = wrap_future(&ev, failed);
    let err = ev.run_until_complete(dest.clone()).unwrap_err();
    assert_eq!(err.to_string(), "source failed");
    assert_eq!(
        dest.exception().unwrap().unwrap().to_string(),
        "source failed"
    );

    let cancelled = ConcurrentFuture::<u32>::new();
    assert!(cancelled.cancel());
    let dest = wrap_future(&ev, cancelled);
    assert!(
        ev.run_until_complete(dest.clone())
            .unwrap_err()
            .is_cancelled()
    );
    assert!(dest.cancelled());
    ev.close().unwrap();
}

#[test]
fn wrap_future_completed_by_another_thread_wakes_the_loop() {
    let ev = EventLoop::new().unwrap();
    let _watchdog = Watchdog::start(&ev);
    let source = ConcurrentFuture::<String>::new();
    let dest = wrap_future(&ev, source.clone());
    let (go, wait) = mpsc::channel::<()>();
    let worker = thread::spawn(move || {
        wait.recv_timeout(WATCHDOG).expect("started");
        assert_eq!(source.set_running_or_notify_cancel(), Ok(true));
        source.set_result("from a thread".to_string()).unwrap();
    });
    // The loop blocks in its poller until the completion arrives.
    ev.call_soon(move |_| go.send(()).unwrap()).unwrap();
    assert_eq!(ev.run_until_complete(dest).unwrap(), "from a thread");
    worker.join().unwrap();
    ev.close().unwrap();
}

#[test]
fn cancelling_the_loop_future_cancels_a_pending_source() {
    let ev = EventLoop::new().unwrap();
    let source = ConcurrentFuture::<u32>::new();
    let source_callback = Arc::new(AtomicBool::new(false));
    {
        let flag = source_callback.clone();
        source.add_done_callback(move |f| flag.store(f.cancelled(), Ordering::SeqCst));
    }
    let dest = wrap_future(&ev, source.clone());
    assert!(dest.cancel(Some("stop it")));
    assert!(!source.cancelled(), "propagated through the loop");
    spin(&ev);
    assert!(source.cancelled());
    assert!(source_callback.load(Ordering::SeqCst));
    // The worker protocol now skips the job.
    assert_eq!(source.set_running_or_notify_cancel(), Ok(false));
    spin(&ev);
    let err = dest.result().unwrap_err();
    assert_eq!(err.as_cancelled().unwrap().message(), Some("stop it"));
    ev.close().unwrap();
}

#[test]
fn cancelling_the_loop_future_while_the_source_runs_keeps_both_consistent() {
    let ev = EventLoop::new().unwrap();
    let _watchdog = Watchdog::start(&ev);
    let errors = record_exceptions(&ev);
    let source = ConcurrentFuture::<u32>::new();
    assert_eq!(source.set_running_or_notify_cancel(), Ok(true));
    let dest = wrap_future(&ev, source.clone());
    assert!(dest.cancel(None));
    spin(&ev);
    assert!(!source.cancelled(), "a running source cannot be cancelled");
    // The job finishes anyway; its result is not copied into the cancelled
    // loop future, and nothing complains.
    let finisher = {
        let source = source.clone();
        thread::spawn(move || source.set_result(3))
    };
    finisher.join().unwrap().unwrap();
    assert_eq!(source.result(Some(WATCHDOG)).unwrap(), 3);
    for _ in 0..3 {
        spin(&ev);
    }
    assert!(dest.cancelled());
    assert!(errors.borrow().is_empty(), "{:?}", errors.borrow());
    ev.close().unwrap();
}

/// `wrap_future` on a loop already closed keeps nothing in the loop: an
/// entry stored after `close` (its extensions already dropped) held the
/// loop future, and the future the loop, for ever.
#[test]
fn wrap_future_on_a_closed_loop_keeps_nothing() {
    let ev = EventLoop::new().unwrap();
    ev.close().unwrap();
    let probe = Arc::new(());
    let source = ConcurrentFuture::<u32>::new();
    {
        let dest = wrap_future(&ev, source.clone());
        let p = probe.clone();
        dest.add_done_callback(move |_| drop(p));
    }
    source.set_result(1).unwrap();
    drop(source);
    drop(ev);
    assert_eq!(
        Arc::strong_count(&probe),
        1,
        "the closed loop kept a bridge entry (the loop and the future leaked)"
    );
}

#[test]
fn completion_after_the_loop_closed_is_dropped() {
    let ev = EventLoop::new().unwrap();
    let source = ConcurrentFuture::<u32>::new();
    let dest = wrap_future(&ev, source.clone());
    let other_callback = Arc::new(AtomicBool::new(false));
    {
        let flag = other_callback.clone();
        source.add_done_callback(move |_| flag.store(true, Ordering::SeqCst));
    }
    ev.close().unwrap();
    // From another thread, as an executor would: no panic, nothing runs on
    // the (closed) loop, the source's other callbacks still run.
    let finisher = {
        let source = source.clone();
        thread::spawn(move || source.set_result(9))
    };
    finisher.join().unwrap().unwrap();
    assert_eq!(source.result(Some(Duration::ZERO)).unwrap(), 9);
    assert!(other_callback.load(Ordering::SeqCst));
    assert!(!dest.done(), "the closed loop's future is left alone");
    assert!(ev.run_until_complete(dest).is_err(), "the loop is closed");
}

// ===== run_coroutine_threadsafe =====

#[test]
fn run_coroutine_threadsafe_from_a_std_thread() {
    let ev = EventLoop::new().unwrap();
    let _watchdog = Watchdog::start(&ev);
    let remote = ev.remote();
    let loop_thread = thread::current().id();
    let worker = thread::spawn(move || {
        let cf = run_coroutine_threadsafe(&remote, move || async move {
            // Built on the loop thread: `!Send` state is fine here.
            let shared = Rc::new(Cell::new(20));
            let child = {
                let shared = shared.clone();
                create_task(async move {
                    yield_now().await?;
                    shared.set(shared.get() + 1);
                    Ok::<_, Error>(())
                })?
            };
            child.await?;
            Ok::<_, Error>((thread::current().id() == loop_thread, shared.get() * 2))
        })
        .unwrap();
        let result = cf.result(Some(WATCHDOG));
        remote.call_soon_threadsafe(|ev| ev.stop()).unwrap();
        (result, cf.done(), cf.cancelled())
    });
    ev.run_forever().unwrap();
    let (result, done, cancelled) = worker.join().unwrap();
    assert_eq!(result.unwrap(), (true, 42), "ran on the loop thread");
    assert!(done && !cancelled);
    assert!(all_tasks(&ev).is_empty());
    ev.close().unwrap();
}

#[test]
fn run_coroutine_threadsafe_passes_errors_and_panics_back() {
    let ev = EventLoop::new().unwrap();
    let _watchdog = Watchdog::start(&ev);
    let remote = ev.remote();
    let failing = run_coroutine_threadsafe(&remote, || async {
        Err::<u32, _>(Error::msg("coroutine failed"))
    })
    .unwrap();
    let panicking = run_coroutine_threadsafe(&remote, || async {
        if get_running_loop().is_ok() {
            panic!("coroutine panicked");
        }
        Ok::<u32, Error>(0)
    })
    .unwrap();
    let failing_dest = wrap_future(&ev, failing.clone());
    let panicking_dest = wrap_future(&ev, panicking.clone());
    let err = ev.run_until_complete(failing_dest).unwrap_err();
    assert_eq!(
        err.to_string(),
        "coroutine failed",
        "copied back to a loop future"
    );
    let err = ev.run_until_complete(panicking_dest).unwrap_err();
    assert!(err.is_panic(), "{err:?}");

    let exc = failing.exception(Some(WATCHDOG)).unwrap().unwrap();
    assert_eq!(exc.to_string(), "coroutine failed");
    assert_eq!(
        failing.result(Some(WATCHDOG)).unwrap_err().to_string(),
        "coroutine failed"
    );
    let err = panicking.result(Some(WATCHDOG)).unwrap_err();
    assert!(err.is_panic(), "{err:?}");
    assert_eq!(err.to_string(), "panicked: coroutine panicked");
    ev.close().unwrap();
}

#[test]
fn cancelling_the_concurrent_future_from_another_thread_cancels_the_task() {
    let ev = EventLoop::new().unwrap();
    let _watchdog = Watchdog::start(&ev);
    let remote = ev.remote();
    let (started_tx, started_rx) = mpsc::channel::<()>();
    let (outcome_tx, outcome_rx) = mpsc::channel::<String>();
    let worker = thread::spawn(move || {
        let cf = run_coroutine_threadsafe(&remote, move || async move {
            let never = get_running_loop()?.create_future::<u32>();
            started_tx.send(()).unwrap();
            let outcome = never.await;
            let seen = match &outcome {
                Err(e) if e.is_cancelled() => "cancelled".to_string(),
                other => format!("unexpected {other:?}"),
            };
            outcome_tx.send(seen).unwrap();
            outcome
        })
        .unwrap();
        started_rx.recv_timeout(WATCHDOG).expect("the task started");
        let cancel_returned = cf.cancel();
        let seen = outcome_rx.recv_timeout(WATCHDOG);
        let result = cf.result(Some(Duration::ZERO));
        remote.call_soon_threadsafe(|ev| ev.stop()).unwrap();
        (cancel_returned, cf.cancelled(), result, seen)
    });
    ev.run_forever().unwrap();
    let (cancel_returned, cancelled, result, seen) = worker.join().unwrap();
    assert!(cancel_returned, "the concurrent future was pending");
    assert!(cancelled);
    assert!(result.unwrap_err().is_cancelled());
    assert_eq!(seen.unwrap(), "cancelled", "the task saw the cancellation");
    // Let the task's last callbacks run: it ended cancelled.
    spin(&ev);
    assert!(all_tasks(&ev).is_empty(), "{:?}", all_tasks(&ev));
    ev.close().unwrap();
}

#[test]
fn task_cancelled_on_the_loop_cancels_the_concurrent_future() {
    // asyncio: the task's cancellation is copied as a cancellation
    // (`concurrent.cancel()`), so `cancelled()` reads true on both sides.
    let ev = EventLoop::new().unwrap();
    let _watchdog = Watchdog::start(&ev);
    let cf = run_coroutine_threadsafe(&ev.remote(), || async {
        let never = get_running_loop()?.create_future::<u32>();
        never.await
    })
    .unwrap();
    let tasks: Rc<RefCell<Vec<AnyTask>>> = Rc::default();
    // Run until the task exists, then cancel it from the loop side.
    spin(&ev);
    tasks.borrow_mut().extend(all_tasks(&ev));
    assert_eq!(tasks.borrow().len(), 1);
    assert!(tasks.borrow()[0].cancel(Some("loop side")));
    let dest = wrap_future(&ev, cf.clone());
    assert!(ev.run_until_complete(dest).unwrap_err().is_cancelled());
    assert!(tasks.borrow()[0].cancelled());
    assert!(cf.done());
    assert!(cf.cancelled(), "the concurrent future reads cancelled");
    assert!(cf.result(Some(Duration::ZERO)).unwrap_err().is_cancelled());
    assert!(
        cf.exception(Some(Duration::ZERO))
            .unwrap_err()
            .is_cancelled()
    );
    ev.close().unwrap();
}

#[test]
fn cancel_before_the_loop_sees_the_request_still_cancels_the_task() {
    // As in asyncio, the cancellation travels through the loop after the
    // task's first step was scheduled: the body runs up to its first await,
    // and that await is cancelled.
    let ev = EventLoop::new().unwrap();
    let _watchdog = Watchdog::start(&ev);
    let log = Arc::new(Mutex::new(Vec::new()));
    let cf = {
        let log = log.clone();
        run_coroutine_threadsafe(&ev.remote(), move || async move {
            log.lock().unwrap().push("started".to_string());
            let outcome = get_running_loop()?.create_future::<u32>().await;
            let seen = match &outcome {
                Err(e) if e.is_cancelled() => "await cancelled".to_string(),
                other => format!("unexpected {other:?}"),
            };
            log.lock().unwrap().push(seen);
            outcome
        })
        .unwrap()
    };
    assert!(cf.cancel(), "cancelled before the loop even saw it");
    let mut spins = 0;
    while log.lock().unwrap().len() < 2 && spins < 10 {
        spin(&ev);
        spins += 1;
    }
    spin(&ev);
    assert_eq!(*log.lock().unwrap(), ["started", "await cancelled"]);
    assert!(all_tasks(&ev).is_empty(), "the task finished");
    assert!(cf.cancelled());
    ev.close().unwrap();
}

#[test]
fn run_coroutine_threadsafe_after_close_is_an_error() {
    let ev = EventLoop::new().unwrap();
    let remote = ev.remote();
    ev.close().unwrap();
    let built = Arc::new(AtomicBool::new(false));
    let flag = built.clone();
    let worker = thread::spawn(move || {
        run_coroutine_threadsafe(&remote, move || {
            flag.store(true, Ordering::SeqCst);
            async {}
        })
        .map(|_| ())
    });
    let err = worker.join().unwrap().unwrap_err();
    assert_eq!(runtime_message(&err), "Event loop is closed");
    assert!(
        !built.load(Ordering::SeqCst),
        "the coroutine was never built"
    );

    // Same once the loop is dropped.
    let remote = {
        let ev = EventLoop::new().unwrap();
        ev.remote()
    };
    let err = run_coroutine_threadsafe(&remote, || async {}).unwrap_err();
    assert_eq!(runtime_message(&err), "Event loop is closed");
}

/// The loop closes before it ran a request from another thread, or while
/// the coroutine's task is still pending: the concurrent future fails with
/// "Event loop is closed …" instead of leaving a waiting thread waiting
/// for ever (CPython leaves it pending).
#[test]
fn run_coroutine_threadsafe_result_fails_when_the_loop_closes_first() {
    const MESSAGE: &str = "Event loop is closed before the coroutine finished";
    // The request never ran.
    let ev = EventLoop::new().unwrap();
    let remote = ev.remote();
    let cf = run_coroutine_threadsafe(&remote, || async { Ok::<_, Error>(1) }).unwrap();
    ev.close().unwrap();
    let err = cf.result(Some(WATCHDOG)).unwrap_err();
    assert_eq!(runtime_message(&err), MESSAGE);

    // The task started and was pending at the close.
    let ev = EventLoop::builder()
        .manual_clock(loop_core::ManualClock::new())
        .build()
        .unwrap();
    let reports = record_exceptions(&ev);
    let remote = ev.remote();
    let cf = run_coroutine_threadsafe(&remote, || async {
        loop_futures::sleep(std::time::Duration::from_secs(3600)).await?;
        Ok::<_, Error>(1)
    })
    .unwrap();
    spin(&ev);
    spin(&ev);
    assert_eq!(all_tasks(&ev).len(), 1, "the task started");
    ev.close().unwrap();
    let err = cf.result(Some(WATCHDOG)).unwrap_err();
    assert_eq!(runtime_message(&err), MESSAGE);
    assert_eq!(
        reports.borrow().as_slice(),
        ["Task was destroyed but it is pending!"]
    );
}

// ===== run =====

/// Logs when dropped (a coroutine's cleanup).
struct DropGuard(Rc<RefCell<Vec<&'static str>>>);

impl Drop for DropGuard {
    fn drop(&mut self) {
        self.0.borrow_mut().push("guard dropped");
    }
}

/// Remembers the loop `run` created, to inspect it afterwards.
fn stash_loop(slot: &Rc<RefCell<Option<EventLoop>>>) -> Result<(), Error> {
    *slot.borrow_mut() = Some(get_running_loop()?);
    Ok(())
}

#[test]
fn run_returns_mains_result() {
    let _watchdog = AbortWatchdog::start("run_returns_mains_result");
    let answer = run(async {
        let child = create_task(async {
            yield_now().await?;
            Ok::<_, Error>(20)
        })?;
        Ok::<_, Error>(child.await? + 1)
    })
    .unwrap();
    assert_eq!(answer, 21);
    // A coroutine returning `()` works too, and run can be called again.
    let ran = Rc::new(Cell::new(false));
    let flag = ran.clone();
    run(async move { flag.set(true) }).unwrap();
    assert!(ran.get());
}

#[test]
fn run_returns_mains_error_and_panic_and_still_closes_the_loop() {
    let _watchdog =
        AbortWatchdog::start("run_returns_mains_error_and_panic_and_still_closes_the_loop");
    let slot = Rc::new(RefCell::new(None));
    let stash = slot.clone();
    let err = run(async move {
        stash_loop(&stash)?;
        Err::<u32, _>(Error::msg("main failed"))
    })
    .unwrap_err();
    assert_eq!(err.to_string(), "main failed");
    assert!(slot.borrow().as_ref().unwrap().is_closed());

    let stash = slot.clone();
    let err = run(async move {
        stash_loop(&stash)?;
        if get_running_loop().is_ok() {
            panic!("main panicked");
        }
        Ok::<u32, Error>(0)
    })
    .unwrap_err();
    assert!(err.is_panic(), "{err:?}");
    assert!(slot.borrow().as_ref().unwrap().is_closed());
}

#[test]
fn run_cancels_leftover_tasks_and_waits_for_their_cleanup() {
    let _watchdog = AbortWatchdog::start("run_cancels_leftover_tasks_and_waits_for_their_cleanup");
    let log = Rc::new(RefCell::new(Vec::new()));
    let leftover: Rc<RefCell<Option<AnyTask>>> = Rc::default();
    let unstarted: Rc<RefCell<Option<AnyTask>>> = Rc::default();
    let unstarted_ran = Rc::new(Cell::new(false));
    let value = {
        let log = log.clone();
        let leftover = leftover.clone();
        let unstarted = unstarted.clone();
        let unstarted_ran = unstarted_ran.clone();
        run(async move {
            let task = create_task(async move {
                let _guard = DropGuard(log.clone());
                let never = get_running_loop()?.create_future::<()>();
                match never.await {
                    Err(e) if e.is_cancelled() => {
                        log.borrow_mut().push("cancelled");
                        // Cleanup that needs more loop iterations.
                        yield_now().await?;
                        yield_now().await?;
                        log.borrow_mut().push("cleanup after awaits");
                        Err(e)
                    }
                    other => other,
                }
            })?;
            *leftover.borrow_mut() = Some(task.as_any());
            // Let it start and suspend on `never`.
            yield_now().await?;
            // One more, created by a callback that runs just before the
            // loop stops: cancelled before its first step.
            get_running_loop()?.call_soon(move |ev| {
                let late = ev
                    .create_task(async move { unstarted_ran.set(true) })
                    .unwrap();
                *unstarted.borrow_mut() = Some(late.as_any());
            })?;
            Ok::<_, Error>("main done")
        })
        .unwrap()
    };
    assert_eq!(value, "main done");
    assert_eq!(
        *log.borrow(),
        ["cancelled", "cleanup after awaits", "guard dropped"]
    );
    let leftover = leftover.borrow_mut().take().unwrap();
    assert!(leftover.done() && leftover.cancelled());
    let unstarted = unstarted.borrow_mut().take().unwrap();
    assert!(unstarted.done() && unstarted.cancelled());
    assert!(!unstarted_ran.get(), "cancelled before its first step");
}

#[test]
fn run_closes_its_loop() {
    let _watchdog = AbortWatchdog::start("run_closes_its_loop");
    let slot = Rc::new(RefCell::new(None));
    let stash = slot.clone();
    run(async move { stash_loop(&stash) }).unwrap();
    let ev = slot.borrow_mut().take().unwrap();
    assert!(ev.is_closed());
    assert!(!ev.is_running());
    assert!(ev.create_task(async {}).is_err());
}

#[test]
fn run_inside_a_running_loop_is_an_error() {
    let _watchdog = AbortWatchdog::start("run_inside_a_running_loop_is_an_error");
    let ev = EventLoop::new().unwrap();
    let inner_ran = Rc::new(Cell::new(false));
    let flag = inner_ran.clone();
    let err = ev
        .run_until_complete(async move {
            let result = run(async move { flag.set(true) });
            Ok::<_, Error>(result)
        })
        .unwrap()
        .unwrap_err();
    assert_eq!(
        runtime_message(&err),
        "run() cannot be called from a running event loop"
    );
    assert!(!inner_ran.get(), "the coroutine never ran");
    // The outer loop is untouched and usable.
    assert!(!ev.is_closed());
    let task = ev.create_task(async { Ok::<_, Error>(1) }).unwrap();
    assert_eq!(ev.run_until_complete(task).unwrap(), 1);
    ev.close().unwrap();
}

/// An executor that records its shutdowns and runs jobs on a one-thread pool.
struct RecordingExecutor {
    shutdowns: Mutex<Vec<bool>>,
    pool: ThreadPoolExecutor,
}

impl Executor for RecordingExecutor {
    fn execute(&self, job: Job) -> Result<(), Error> {
        self.pool.execute(job)
    }

    fn shutdown(&self, wait: bool) {
        self.shutdowns.lock().unwrap().push(wait);
        self.pool.shutdown(wait);
    }
}

#[test]
fn run_shuts_the_default_executor_down() {
    let _watchdog = AbortWatchdog::start("run_shuts_the_default_executor_down");
    let executor = Arc::new(RecordingExecutor {
        shutdowns: Mutex::new(Vec::new()),
        pool: ThreadPoolExecutor::new(1),
    });
    let finished = Arc::new(AtomicBool::new(false));
    let value = {
        let executor = executor.clone();
        let finished = finished.clone();
        run(async move {
            let ev = get_running_loop()?;
            ev.set_default_executor(executor);
            let doubled = ev.run_in_executor(None, || 21 * 2)?.await?;
            // A job main does not await: run waits for it at shutdown.
            drop(ev.run_in_executor(None, move || finished.store(true, Ordering::SeqCst))?);
            Ok::<_, Error>(doubled)
        })
        .unwrap()
    };
    assert_eq!(value, 42);
    assert_eq!(
        *executor.shutdowns.lock().unwrap(),
        [true],
        "shut down once, waiting"
    );
    assert!(
        finished.load(Ordering::SeqCst),
        "the last job ran before run returned"
    );

    // With the built-in default executor as well.
    let value = run(async { get_running_loop()?.run_in_executor(None, || "pool")?.await }).unwrap();
    assert_eq!(value, "pool");
}

//! [`ConcurrentFuture`]: the thread-safe future (Python's
//! `concurrent.futures.Future`), after the Future tests of CPython's
//! `Lib/test/test_concurrent_futures`: the state machine, blocking reads
//! with timeouts, done callbacks and waiters on several threads.
//!
//! Every blocking call is bounded: `result`/`exception` get a timeout, and
//! code that could deadlock runs under [`within`], which fails the test
//! instead of hanging it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::Duration;

use loop_futures::{ConcurrentFuture, Error};

/// Upper bound on any wait in this file; only reached when something is broken.
const WATCHDOG: Duration = Duration::from_secs(10);

/// A timeout for reads that must time out (nobody completes the future).
const SHORT: Duration = Duration::from_millis(20);

/// Runs `f` on a helper thread and returns its value; fails the test if it
/// panics or does not finish within [`WATCHDOG`] (a deadlock).
fn within<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(WATCHDOG) {
        Ok(value) => value,
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("{what}: still blocked after {WATCHDOG:?}"),
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("{what}: panicked"),
    }
}

/// A callback log shared with the threads that run the callbacks.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    fn push(&self, entry: impl Into<String>) {
        self.0.lock().unwrap().push(entry.into());
    }

    fn entries(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

fn invalid_state_message(err: Error) -> String {
    match err {
        Error::InvalidState(e) => e.message().to_string(),
        other => panic!("expected InvalidStateError, got {other:?}"),
    }
}

// ===== state machine =====

#[test]
fn new_future_is_pending() {
    let fut = ConcurrentFuture::<u32>::new();
    assert!(!fut.done());
    assert!(!fut.running());
    assert!(!fut.cancelled());
    assert!(format!("{fut:?}").contains("Pending"), "{fut:?}");
    let fut = ConcurrentFuture::<u32>::default();
    assert!(!fut.done() && !fut.running() && !fut.cancelled());
}

#[test]
fn cancel_pending_returns_true_and_is_idempotent() {
    let fut = ConcurrentFuture::<u32>::new();
    assert!(fut.cancel(), "a pending future can be cancelled");
    assert!(fut.cancelled());
    assert!(fut.done());
    assert!(!fut.running());
    assert!(fut.cancel(), "cancelling a cancelled future returns true");
    assert!(fut.cancelled());
    assert!(format!("{fut:?}").contains("Cancelled"), "{fut:?}");

    assert!(fut.result(Some(SHORT)).unwrap_err().is_cancelled());
    assert!(fut.exception(Some(SHORT)).unwrap_err().is_cancelled());
    // A cancelled future cannot be set, and the work must not start.
    assert!(fut.set_result(1).is_err());
    assert!(fut.set_exception(Error::msg("late")).is_err());
    assert_eq!(fut.set_running_or_notify_cancel(), Ok(false));
    assert!(fut.cancelled(), "still cancelled after the refused sets");
}

#[test]
fn cancel_running_returns_false() {
    let fut = ConcurrentFuture::<u32>::new();
    assert_eq!(fut.set_running_or_notify_cancel(), Ok(true));
    assert!(fut.running());
    assert!(!fut.done());
    assert!(!fut.cancel(), "a running future cannot be cancelled");
    assert!(fut.running());
    assert!(!fut.cancelled());
    assert!(format!("{fut:?}").contains("Running"), "{fut:?}");

    // The work finishes normally afterwards.
    fut.set_result(7).unwrap();
    assert!(fut.done());
    assert!(!fut.running());
    assert_eq!(fut.result(Some(SHORT)).unwrap(), 7);
}

#[test]
fn cancel_finished_returns_false_and_keeps_the_result() {
    let fut = ConcurrentFuture::new();
    fut.set_result("value").unwrap();
    assert!(!fut.cancel());
    assert!(!fut.cancelled());
    assert_eq!(fut.result(Some(SHORT)).unwrap(), "value");

    let failed = ConcurrentFuture::<u32>::new();
    failed.set_exception(Error::msg("broken")).unwrap();
    assert!(!failed.cancel());
    assert!(!failed.cancelled());
    assert_eq!(
        failed.exception(Some(SHORT)).unwrap().unwrap().to_string(),
        "broken"
    );
}

#[test]
fn set_running_or_notify_cancel_refuses_running_and_finished() {
    let fut = ConcurrentFuture::<u32>::new();
    assert_eq!(fut.set_running_or_notify_cancel(), Ok(true));
    let err = fut.set_running_or_notify_cancel().unwrap_err();
    assert!(err.message().contains("Running"), "{err}");

    let done = ConcurrentFuture::<u32>::new();
    done.set_result(1).unwrap();
    let err = done.set_running_or_notify_cancel().unwrap_err();
    assert!(err.message().contains("Finished"), "{err}");
    assert_eq!(
        done.result(Some(SHORT)).unwrap(),
        1,
        "the refusal changes nothing"
    );
}

#[test]
fn pending_future_can_be_set_without_running() {
    // As in Python: set_result does not require set_running_or_notify_cancel.
    let fut = ConcurrentFuture::new();
    fut.set_result(3u8).unwrap();
    assert!(fut.done());
    assert_eq!(fut.result(None).unwrap(), 3);
    assert_eq!(fut.exception(None).unwrap().map(|e| e.to_string()), None);
}

#[test]
fn setting_twice_is_an_invalid_state() {
    let fut = ConcurrentFuture::new();
    fut.set_result(1u32).unwrap();
    let err = fut.set_result(2).unwrap_err();
    assert_eq!(err.message(), "FINISHED");
    let err = fut.set_exception(Error::msg("late")).unwrap_err();
    assert_eq!(err.message(), "FINISHED");
    assert_eq!(
        fut.result(Some(SHORT)).unwrap(),
        1,
        "the first result stays"
    );

    let failed = ConcurrentFuture::<u32>::new();
    failed.set_exception(Error::msg("first")).unwrap();
    assert!(failed.set_exception(Error::msg("second")).is_err());
    assert!(failed.set_result(5).is_err());
    assert_eq!(failed.result(Some(SHORT)).unwrap_err().to_string(), "first");

    let cancelled = ConcurrentFuture::<u32>::new();
    cancelled.cancel();
    assert_eq!(cancelled.set_result(1).unwrap_err().message(), "CANCELLED");
    // The error converts into the crate's error type.
    assert_eq!(
        invalid_state_message(cancelled.set_result(1).unwrap_err().into()),
        "CANCELLED"
    );
}

// ===== result / exception with timeouts =====

#[test]
fn result_with_timeout_times_out_and_the_future_stays_usable() {
    let fut = ConcurrentFuture::<u32>::new();
    let err = fut.result(Some(SHORT)).unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    let err = fut.result(Some(Duration::ZERO)).unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert!(!fut.done(), "a timed-out read changes nothing");
    fut.set_result(11).unwrap();
    assert_eq!(fut.result(Some(Duration::ZERO)).unwrap(), 11);
}

#[test]
fn exception_with_timeout_times_out() {
    let fut = ConcurrentFuture::<u32>::new();
    assert!(fut.exception(Some(SHORT)).unwrap_err().is_timeout());
    assert!(
        fut.exception(Some(Duration::ZERO))
            .unwrap_err()
            .is_timeout()
    );
    fut.set_exception(Error::msg("late failure")).unwrap();
    let err = fut.exception(Some(Duration::ZERO)).unwrap().unwrap();
    assert_eq!(err.to_string(), "late failure");
}

#[test]
fn result_and_exception_of_success_failure_and_cancel() {
    let ok = ConcurrentFuture::new();
    ok.set_result(vec![1, 2]).unwrap();
    assert_eq!(ok.result(Some(SHORT)).unwrap(), vec![1, 2]);
    assert!(ok.exception(Some(SHORT)).unwrap().is_none());
    // Reading twice gives the value twice.
    assert_eq!(ok.result(None).unwrap(), vec![1, 2]);

    let failed = ConcurrentFuture::<u32>::new();
    let io = std::io::Error::new(std::io::ErrorKind::AddrInUse, "port taken");
    failed.set_exception(io).unwrap();
    let err = failed.result(Some(SHORT)).unwrap_err();
    assert_eq!(
        err.downcast_ref::<std::io::Error>()
            .map(std::io::Error::kind),
        Some(std::io::ErrorKind::AddrInUse)
    );
    let exc = failed.exception(Some(SHORT)).unwrap().unwrap();
    assert_eq!(exc.to_string(), "port taken");

    let cancelled = ConcurrentFuture::<u32>::new();
    cancelled.cancel();
    assert!(cancelled.result(None).unwrap_err().is_cancelled());
    assert!(cancelled.exception(None).unwrap_err().is_cancelled());
}

#[test]
fn result_blocks_until_another_thread_sets_it() {
    let fut = ConcurrentFuture::<String>::new();
    let setter = fut.clone();
    let started = Arc::new(Barrier::new(2));
    let go = started.clone();
    let worker = thread::spawn(move || {
        go.wait();
        assert_eq!(setter.set_running_or_notify_cancel(), Ok(true));
        setter.set_result("from the worker".to_string()).unwrap();
    });
    started.wait();
    assert_eq!(fut.result(Some(WATCHDOG)).unwrap(), "from the worker");
    worker.join().unwrap();
}

#[test]
fn exception_blocks_until_another_thread_fails_it() {
    let fut = ConcurrentFuture::<u32>::new();
    let setter = fut.clone();
    let worker = thread::spawn(move || setter.set_exception(Error::msg("worker failed")));
    let exc = fut.exception(Some(WATCHDOG)).unwrap().unwrap();
    assert_eq!(exc.to_string(), "worker failed");
    worker.join().unwrap().unwrap();
}

// ===== done callbacks =====

#[test]
fn done_callback_runs_in_the_completing_thread() {
    let fut = ConcurrentFuture::<u32>::new();
    let seen = Arc::new(Mutex::new(None));
    {
        let seen = seen.clone();
        fut.add_done_callback(move |f| {
            let value = f.result(Some(Duration::ZERO)).unwrap();
            *seen.lock().unwrap() = Some((thread::current().id(), value));
        });
    }
    assert!(seen.lock().unwrap().is_none(), "not run while pending");
    let setter = fut.clone();
    let worker = thread::spawn(move || {
        setter.set_result(5).unwrap();
        thread::current().id()
    });
    let worker_id = worker.join().unwrap();
    assert_ne!(worker_id, thread::current().id());
    assert_eq!(*seen.lock().unwrap(), Some((worker_id, 5)));
}

#[test]
fn done_callback_on_a_done_future_runs_at_once_in_the_caller() {
    for how in ["result", "exception", "cancel"] {
        let fut = ConcurrentFuture::<u32>::new();
        match how {
            "result" => fut.set_result(1).unwrap(),
            "exception" => fut.set_exception(Error::msg("x")).unwrap(),
            _ => assert!(fut.cancel()),
        }
        let seen = Arc::new(Mutex::new(None));
        let slot = seen.clone();
        fut.add_done_callback(move |f| {
            *slot.lock().unwrap() = Some((thread::current().id(), f.done(), f.cancelled()));
        });
        // Already run when add_done_callback returns.
        let seen = seen.lock().unwrap().take();
        assert_eq!(
            seen,
            Some((thread::current().id(), true, how == "cancel")),
            "{how}"
        );
    }
}

#[test]
fn done_callbacks_run_once_in_order_for_result_exception_and_cancel() {
    for how in ["result", "exception", "cancel"] {
        let fut = ConcurrentFuture::<u32>::new();
        let log = Log::default();
        for name in ["first", "second", "third"] {
            let log = log.clone();
            fut.add_done_callback(move |f| {
                let state = match f.exception(Some(Duration::ZERO)) {
                    Ok(None) => "ok".to_string(),
                    Ok(Some(e)) => format!("err {e}"),
                    Err(e) if e.is_cancelled() => "cancelled".to_string(),
                    Err(e) => format!("unexpected {e}"),
                };
                log.push(format!("{name}: {state}"));
            });
        }
        match how {
            "result" => fut.set_result(1).unwrap(),
            "exception" => fut.set_exception(Error::msg("bad")).unwrap(),
            _ => {
                assert!(fut.cancel());
                assert!(fut.cancel(), "a second cancel runs nothing again");
            }
        }
        let state = match how {
            "result" => "ok",
            "exception" => "err bad",
            _ => "cancelled",
        };
        assert_eq!(
            log.entries(),
            ["first", "second", "third"].map(|n| format!("{n}: {state}")),
            "{how}"
        );
        // Later sets fail and run nothing again.
        let _ = fut.set_result(2);
        assert_eq!(log.entries().len(), 3, "{how}");
    }
}

#[test]
fn panicking_callback_does_not_stop_the_others() {
    let fut = ConcurrentFuture::<u32>::new();
    let ran = Arc::new(AtomicUsize::new(0));
    {
        let ran = ran.clone();
        fut.add_done_callback(move |_| {
            ran.fetch_add(1, Ordering::SeqCst);
        });
    }
    fut.add_done_callback(|_| panic!("callback exploded"));
    {
        let ran = ran.clone();
        fut.add_done_callback(move |_| {
            ran.fetch_add(10, Ordering::SeqCst);
        });
    }
    // The panic is caught (and logged); the setter does not see it.
    fut.set_result(4).unwrap();
    assert_eq!(ran.load(Ordering::SeqCst), 11);
    assert_eq!(fut.result(Some(Duration::ZERO)).unwrap(), 4);
    // The lock was not poisoned: the future still works from other threads.
    let reader = fut.clone();
    assert_eq!(
        within("read after panic", move || reader.result(None)).unwrap(),
        4
    );
}

#[test]
fn callbacks_may_use_the_future_without_deadlocking() {
    // Callbacks run outside the lock: reading, adding a callback and
    // cancelling from inside one must not deadlock.
    let log = within("re-entrant callbacks", || {
        let fut = ConcurrentFuture::<u32>::new();
        let log = Log::default();
        let inner_log = log.clone();
        fut.add_done_callback(move |f| {
            inner_log.push(format!("result {}", f.result(None).unwrap()));
            inner_log.push(format!("cancel {}", f.cancel()));
            let nested = inner_log.clone();
            f.add_done_callback(move |f| {
                nested.push(format!("nested done {}", f.done()));
            });
            inner_log.push(format!("{f:?}"));
        });
        fut.set_result(8).unwrap();
        log.entries()
    });
    assert_eq!(
        log,
        [
            "result 8",
            "cancel false",
            "nested done true",
            "ConcurrentFuture { status: Finished }"
        ]
    );
}

// ===== waiters on several threads =====

#[test]
fn waiters_on_several_threads_are_all_woken_by_a_result() {
    const WAITERS: usize = 4;
    let fut = ConcurrentFuture::<u64>::new();
    let ready = Arc::new(Barrier::new(WAITERS + 1));
    let waiters: Vec<_> = (0..WAITERS)
        .map(|i| {
            let fut = fut.clone();
            let ready = ready.clone();
            thread::spawn(move || {
                ready.wait();
                if i % 2 == 0 {
                    fut.result(Some(WATCHDOG)).map(Some)
                } else {
                    fut.exception(Some(WATCHDOG)).map(|e| e.map(|_| 0))
                }
            })
        })
        .collect();
    ready.wait();
    fut.set_result(99).unwrap();
    let results: Vec<_> = waiters.into_iter().map(|w| w.join().unwrap()).collect();
    for (i, result) in results.into_iter().enumerate() {
        let expected = if i % 2 == 0 { Some(99) } else { None };
        assert_eq!(result.unwrap(), expected, "waiter {i}");
    }
}

#[test]
fn waiters_on_several_threads_are_all_woken_by_cancel_and_by_exception() {
    const WAITERS: usize = 3;
    for cancel in [true, false] {
        let fut = ConcurrentFuture::<u64>::new();
        let ready = Arc::new(Barrier::new(WAITERS + 1));
        let waiters: Vec<_> = (0..WAITERS)
            .map(|_| {
                let fut = fut.clone();
                let ready = ready.clone();
                thread::spawn(move || {
                    ready.wait();
                    fut.result(Some(WATCHDOG))
                })
            })
            .collect();
        ready.wait();
        if cancel {
            assert!(fut.cancel());
        } else {
            fut.set_exception(Error::msg("failed for all")).unwrap();
        }
        for waiter in waiters {
            let err = waiter.join().unwrap().unwrap_err();
            if cancel {
                assert!(err.is_cancelled(), "{err:?}");
            } else {
                assert_eq!(err.to_string(), "failed for all");
            }
        }
    }
}

#[test]
fn a_waiter_that_times_out_does_not_disturb_the_others() {
    let fut = ConcurrentFuture::<u32>::new();
    let patient = {
        let fut = fut.clone();
        thread::spawn(move || fut.result(Some(WATCHDOG)))
    };
    let impatient = {
        let fut = fut.clone();
        thread::spawn(move || fut.result(Some(SHORT)))
    };
    assert!(impatient.join().unwrap().unwrap_err().is_timeout());
    fut.set_result(21).unwrap();
    assert_eq!(patient.join().unwrap().unwrap(), 21);
}

#[test]
fn racing_cancel_and_completion_decide_exactly_once() {
    // The worker protocol (set_running_or_notify_cancel, then set_result)
    // against a cancel from another thread, many times: either the cancel
    // wins and the work never starts, or the work runs and the cancel fails.
    for _ in 0..200 {
        let fut = ConcurrentFuture::<u32>::new();
        let callbacks = Arc::new(AtomicUsize::new(0));
        {
            let callbacks = callbacks.clone();
            fut.add_done_callback(move |_| {
                callbacks.fetch_add(1, Ordering::SeqCst);
            });
        }
        let start = Arc::new(Barrier::new(2));
        let worker = {
            let fut = fut.clone();
            let start = start.clone();
            thread::spawn(move || {
                start.wait();
                match fut.set_running_or_notify_cancel() {
                    Ok(true) => {
                        fut.set_result(1).unwrap();
                        true
                    }
                    Ok(false) => false,
                    Err(err) => panic!("unexpected state: {err}"),
                }
            })
        };
        start.wait();
        let cancelled = fut.cancel();
        let ran = worker.join().unwrap();
        assert_ne!(cancelled, ran, "exactly one of cancel and run wins");
        assert_eq!(fut.cancelled(), cancelled);
        assert!(fut.done());
        assert_eq!(callbacks.load(Ordering::SeqCst), 1, "callbacks ran once");
        if ran {
            assert_eq!(fut.result(Some(Duration::ZERO)).unwrap(), 1);
        }
    }
}

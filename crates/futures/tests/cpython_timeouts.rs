//! CPython's `Lib/test/test_asyncio/test_timeouts.py`, ported to
//! loop-futures' [`timeout`] / [`timeout_at`] scopes.
//!
//! Each CPython test class is a `mod`; each case keeps its CPython name
//! (`/// CPython: Class.test_x`). Cases that cannot apply stay as
//! `#[ignore = "n/a: …"]` stubs so that coverage can be counted.
//!
//! How the asyncio idioms translate:
//! * `async with asyncio.timeout(d) as cm: body` is
//!   `let cm = timeout(Some(d)); cm.run(body).await` (keep a clone of `cm`
//!   to look at it afterwards).
//! * `IsolatedAsyncioTestCase` is a task on a loop with a manual clock:
//!   sleeps take no real time and `ev.time()` differences are exact.
//! * `time.sleep(x)` inside a coroutine (a busy loop) is
//!   `clock.advance(x)`: time passes without the loop running.
//! * `raise` / `except CancelledError` is returning / matching
//!   `Err(Error::Cancelled)`.

#[path = "support/mod.rs"]
mod support;

use std::cell::{Cell, RefCell};
use std::future::Future as StdFuture;
use std::rc::Rc;
use std::task::Poll;
use std::time::{Duration, Instant};

use loop_core::{EventLoop, ManualClock, get_running_loop};
use loop_futures::{
    Error, EventLoopExt, IntoTaskResult, TaskGroup, Timeout, create_task, current_task, sleep,
    timeout, timeout_at, yield_now,
};

use support::{Boom, poll_once, run_briefly};

/// A loop on a fresh manual clock (debug off) and the clock.
fn test_loop() -> (EventLoop, ManualClock) {
    let clock = ManualClock::new();
    let ev = EventLoop::builder()
        .manual_clock(clock.clone())
        .debug(false)
        .build()
        .expect("create loop");
    (ev, clock)
}

/// `run_until_complete` with a far watchdog timer, so that a broken test
/// fails ("Event loop stopped before Future completed.") instead of hanging:
/// on the manual clock an idle loop jumps straight to it.
#[track_caller]
fn run<F, R>(ev: &EventLoop, aw: F) -> Result<R::Ok, Error>
where
    F: StdFuture<Output = R> + 'static,
    R: IntoTaskResult,
{
    let watchdog = ev
        .call_later(Duration::from_secs(1_000_000), |ev| ev.stop())
        .expect("loop open");
    let result = ev.run_until_complete(aw);
    watchdog.cancel();
    result
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn now() -> Result<Instant, Error> {
    Ok(get_running_loop()?.time())
}

/// The message of an `Error::Runtime`, or a description of the other error.
fn runtime_message(err: &Error) -> String {
    match err {
        Error::Runtime(e) => e.message().to_owned(),
        other => format!("not a RuntimeError: {other:?}"),
    }
}

fn is_boom(err: &Error, what: &str) -> bool {
    err.downcast_ref::<Boom>().is_some_and(|b| b.0 == what)
}

mod timeout_tests {
    use super::*;

    /// CPython: TimeoutTests.test_timeout_basic
    #[test]
    fn test_timeout_basic() {
        let (ev, _clock) = test_loop();
        let (result, cm, elapsed) = run(&ev, async {
            let t0 = now()?;
            let cm = timeout(Some(ms(10)));
            let result = cm.run(sleep(secs(10))).await;
            Ok::<_, Error>((result, cm, now()? - t0))
        })
        .unwrap();
        assert!(result.unwrap_err().is_timeout());
        assert!(cm.expired());
        assert_eq!(elapsed, ms(10), "the scope fired at its deadline");
    }

    /// CPython: TimeoutTests.test_timeout_at_basic
    #[test]
    fn test_timeout_at_basic() {
        let (ev, _clock) = test_loop();
        let (result, cm, deadline) = run(&ev, async {
            let deadline = now()? + ms(10);
            let cm = timeout_at(Some(deadline));
            let result = cm.run(sleep(secs(10))).await;
            Ok::<_, Error>((result, cm, deadline))
        })
        .unwrap();
        assert!(result.unwrap_err().is_timeout());
        assert!(cm.expired());
        assert_eq!(cm.when(), Some(deadline));
    }

    /// Two scopes with the same deadline: only the outermost one turns the
    /// cancellation into a timeout; the inner one lets it through.
    ///
    /// CPython: TimeoutTests.test_nested_timeouts
    #[test]
    fn test_nested_timeouts() {
        let (ev, _clock) = test_loop();
        let cancelled = Rc::new(Cell::new(false));
        let flag = cancelled.clone();
        let (result, cm1, cm2, cancelling_after) = run(&ev, async move {
            let deadline = now()? + ms(10);
            let cm1 = timeout_at(Some(deadline));
            let cm2 = timeout_at(Some(deadline));
            let inner_cm = cm2.clone();
            let result = cm1
                .run(async move {
                    let inner = inner_cm.run(sleep(secs(10))).await;
                    if matches!(inner, Err(Error::Cancelled(_))) {
                        flag.set(true);
                    }
                    inner
                })
                .await;
            let cancelling_after = current_task().unwrap().cancelling();
            // No cancellation is left pending once both scopes are done.
            sleep(ms(1)).await?;
            Ok::<_, Error>((result, cm1, cm2, cancelling_after))
        })
        .unwrap();
        assert!(result.unwrap_err().is_timeout());
        assert!(
            cancelled.get(),
            "the inner scope passed the cancellation on"
        );
        assert!(cm1.expired());
        assert!(cm2.expired());
        assert_eq!(cancelling_after, 0);
    }

    /// CPython: TimeoutTests.test_waiter_cancelled
    #[test]
    fn test_waiter_cancelled() {
        let (ev, _clock) = test_loop();
        let cancelled = Rc::new(Cell::new(false));
        let flag = cancelled.clone();
        let result = run(&ev, async move {
            Ok::<_, Error>(
                timeout(Some(ms(10)))
                    .run(async move {
                        let r = sleep(secs(10)).await;
                        if matches!(r, Err(Error::Cancelled(_))) {
                            flag.set(true);
                        }
                        r
                    })
                    .await,
            )
        })
        .unwrap();
        assert!(result.unwrap_err().is_timeout());
        assert!(cancelled.get(), "the body saw the cancellation");
    }

    /// CPython: TimeoutTests.test_timeout_not_called
    #[test]
    fn test_timeout_not_called() {
        let (ev, _clock) = test_loop();
        let (cm, t0, t1) = run(&ev, async {
            let t0 = now()?;
            let cm = timeout(Some(secs(10)));
            cm.run(sleep(ms(10))).await?;
            Ok::<_, Error>((cm, t0, now()?))
        })
        .unwrap();
        assert!(!cm.expired());
        assert_eq!(t1 - t0, ms(10));
        assert!(cm.when().unwrap() > t1);
        assert_eq!(cm.when(), Some(t0 + secs(10)));
    }

    /// CPython: TimeoutTests.test_timeout_disabled
    #[test]
    fn test_timeout_disabled() {
        let (ev, _clock) = test_loop();
        let (cm, elapsed) = run(&ev, async {
            let t0 = now()?;
            let cm = timeout(None);
            cm.run(sleep(ms(10))).await?;
            Ok::<_, Error>((cm, now()? - t0))
        })
        .unwrap();
        assert!(!cm.expired());
        assert_eq!(cm.when(), None);
        assert_eq!(elapsed, ms(10));
    }

    /// CPython: TimeoutTests.test_timeout_at_disabled
    #[test]
    fn test_timeout_at_disabled() {
        let (ev, _clock) = test_loop();
        let cm = run(&ev, async {
            let cm = timeout_at(None);
            cm.run(sleep(ms(10))).await?;
            Ok::<_, Error>(cm)
        })
        .unwrap();
        assert!(!cm.expired());
        assert_eq!(cm.when(), None);
    }

    /// CPython: TimeoutTests.test_timeout_zero
    #[test]
    fn test_timeout_zero() {
        let (ev, _clock) = test_loop();
        let (result, cm, t0, t1) = run(&ev, async {
            let t0 = now()?;
            let cm = timeout(Some(Duration::ZERO));
            let result = cm.run(sleep(secs(10))).await;
            Ok::<_, Error>((result, cm, t0, now()?))
        })
        .unwrap();
        assert!(result.unwrap_err().is_timeout());
        assert!(cm.expired());
        let when = cm.when().unwrap();
        assert!(t0 <= when && when <= t1);
        assert_eq!(t1, t0, "a zero timeout fires without waiting");
    }

    /// A zero timeout is due at once: it cancels the task before the body's
    /// `sleep(0)` resumes (asyncio schedules it with `call_soon`, ahead of
    /// the task's next step).
    ///
    /// CPython: TimeoutTests.test_timeout_zero_sleep_zero
    #[test]
    fn test_timeout_zero_sleep_zero() {
        let (ev, _clock) = test_loop();
        let (result, cm, t0, t1) = run(&ev, async {
            let t0 = now()?;
            let cm = timeout(Some(Duration::ZERO));
            let result = cm.run(sleep(Duration::ZERO)).await;
            Ok::<_, Error>((result, cm, t0, now()?))
        })
        .unwrap();
        assert!(result.unwrap_err().is_timeout());
        assert!(cm.expired());
        let when = cm.when().unwrap();
        assert!(t0 <= when && when <= t1);
    }

    /// `asyncio.timeout(-11)`: a deadline in the past (here `timeout_at`,
    /// as a `Duration` cannot be negative).
    ///
    /// CPython: TimeoutTests.test_timeout_in_the_past_sleep_zero
    #[test]
    fn test_timeout_in_the_past_sleep_zero() {
        let (ev, clock) = test_loop();
        // Make sure "11 s ago" exists on the clock.
        clock.advance(secs(60));
        let (result, cm, t0, t1) = run(&ev, async {
            let t0 = now()?;
            let cm = timeout_at(Some(t0 - secs(11)));
            let result = cm.run(yield_now()).await;
            Ok::<_, Error>((result, cm, t0, now()?))
        })
        .unwrap();
        assert!(result.unwrap_err().is_timeout());
        assert!(cm.expired());
        let when = cm.when().unwrap();
        assert!(when <= t0 && when <= t1);
    }

    /// CPython: TimeoutTests.test_foreign_exception_passed
    #[test]
    fn test_foreign_exception_passed() {
        let (ev, _clock) = test_loop();
        let (result, cm) = run(&ev, async {
            let cm = timeout(Some(ms(10)));
            let result = cm
                .run(async { Err::<(), _>(Error::new(Boom("KeyError"))) })
                .await;
            Ok::<_, Error>((result, cm))
        })
        .unwrap();
        assert!(is_boom(&result.unwrap_err(), "KeyError"));
        assert!(!cm.expired());
    }

    /// A body that fails while handling the timeout's cancellation: its own
    /// error wins over the timeout.
    ///
    /// CPython: TimeoutTests.test_foreign_exception_on_timeout
    #[test]
    fn test_foreign_exception_on_timeout() {
        let (ev, _clock) = test_loop();
        async fn crash() -> Result<(), Error> {
            // try: sleep(1) finally: 1/0
            let _ = sleep(secs(1)).await;
            Err(Error::new(Boom("ZeroDivisionError")))
        }
        let (result, cm) = run(&ev, async {
            let cm = timeout(Some(ms(10)));
            let result = cm.run(crash()).await;
            Ok::<_, Error>((result, cm))
        })
        .unwrap();
        assert!(is_boom(&result.unwrap_err(), "ZeroDivisionError"));
        assert!(cm.expired());
    }

    /// CPython: TimeoutTests.test_foreign_cancel_doesnt_timeout_if_not_expired
    #[test]
    fn test_foreign_cancel_doesnt_timeout_if_not_expired() {
        let (ev, _clock) = test_loop();
        let slot: Rc<RefCell<Option<Timeout>>> = Rc::default();
        let keep = slot.clone();
        let err = run(&ev, async move {
            let cm = timeout(Some(secs(10)));
            *keep.borrow_mut() = Some(cm.clone());
            cm.run(async {
                current_task().unwrap().cancel(None);
                sleep(secs(10)).await
            })
            .await
        })
        .unwrap_err();
        assert!(err.is_cancelled(), "{err:?}");
        assert!(!slot.borrow().as_ref().unwrap().expired());
    }

    /// CPython: TimeoutTests.test_outer_task_is_not_cancelled
    #[test]
    fn test_outer_task_is_not_cancelled() {
        let (ev, _clock) = test_loop();
        let task = ev
            .create_task(async {
                let r = timeout(Some(ms(1))).run(sleep(secs(10))).await;
                assert!(r.unwrap_err().is_timeout());
                Ok::<_, Error>(())
            })
            .unwrap();
        run(&ev, task.clone()).unwrap();
        assert!(!task.cancelled());
        assert!(task.done());
    }

    /// The outer scope expires while the inner one is still active: the
    /// inner scope lets the cancellation through, the outer one raises the
    /// timeout.
    ///
    /// CPython: TimeoutTests.test_nested_timeouts_concurrent
    #[test]
    fn test_nested_timeouts_concurrent() {
        let (ev, clock) = test_loop();
        let inner_result: Rc<RefCell<Option<Result<(), Error>>>> = Rc::default();
        let slot = inner_result.clone();
        let err = run(&ev, async move {
            timeout(Some(ms(2)))
                .run(async move {
                    let r = timeout(Some(ms(100)))
                        .run(async {
                            // Pretend we crunch some numbers.
                            clock.advance(ms(10));
                            sleep(secs(1)).await
                        })
                        .await;
                    *slot.borrow_mut() = Some(r.clone());
                    r
                })
                .await
        })
        .unwrap_err();
        assert!(err.is_timeout(), "{err:?}");
        let inner = inner_result.borrow_mut().take().unwrap();
        assert!(inner.unwrap_err().is_cancelled());
    }

    /// Both deadlines pass while the loop is busy; the outer scope still
    /// stops the body well before its long sleep ends.
    ///
    /// CPython: TimeoutTests.test_nested_timeouts_loop_busy
    #[test]
    fn test_nested_timeouts_loop_busy() {
        let (ev, clock) = test_loop();
        let reached_long_sleep = Rc::new(Cell::new(false));
        let reached = reached_long_sleep.clone();
        let (result, elapsed) = run(&ev, async move {
            let t0 = now()?;
            let result = timeout(Some(ms(100)))
                .run(async move {
                    // (2) sees the cancellation of both deadlines.
                    let inner = timeout(Some(ms(10)))
                        .run(async {
                            // Pretend the loop is busy for a while.
                            clock.advance(ms(100));
                            sleep(secs(1)).await
                        })
                        .await;
                    if !inner.as_ref().is_err_and(Error::is_timeout) {
                        return inner;
                    }
                    reached.set(true);
                    sleep(secs(10)).await // interrupted by (1)
                })
                .await;
            Ok::<_, Error>((result, now()? - t0))
        })
        .unwrap();
        assert!(result.unwrap_err().is_timeout());
        assert!(elapsed <= secs(1), "{elapsed:?}");
        // Both timers were due in the same iteration: the inner scope got two
        // cancellations, kept one for the outer scope, which reported it.
        assert!(!reached_long_sleep.get());
    }

    /// CPython: TimeoutTests.test_reschedule
    #[test]
    fn test_reschedule() {
        let (ev, _clock) = test_loop();
        let result = run(&ev, async {
            let fut = get_running_loop()?.create_future::<Timeout>();
            let deadline1 = now()? + secs(10);
            let deadline2 = deadline1 + secs(20);
            let setter = fut.clone();
            let task = create_task(async move {
                let cm = timeout_at(Some(deadline1));
                let inner = cm.clone();
                cm.run(async move {
                    setter.set_result(inner).unwrap();
                    sleep(secs(50)).await
                })
                .await
            })?;
            let cm = fut.await?;
            assert_eq!(cm.when(), Some(deadline1));
            cm.reschedule(Some(deadline2))?;
            assert_eq!(cm.when(), Some(deadline2));
            cm.reschedule(None)?;
            assert_eq!(cm.when(), None);
            task.cancel(None);
            let err = task.await.unwrap_err();
            assert!(err.is_cancelled(), "{err:?}");
            Ok::<_, Error>(cm.expired())
        })
        .unwrap();
        assert!(!result, "the scope did not expire");
    }

    /// `repr(cm)` is Python's; tulip's `Debug` shows the same state.
    ///
    /// CPython: TimeoutTests.test_repr_active
    #[test]
    fn test_repr_active() {
        let (ev, _clock) = test_loop();
        let repr = run(&ev, async {
            let cm = timeout(Some(secs(10)));
            let inner = cm.clone();
            cm.run(async move { Ok::<_, Error>(format!("{inner:?}")) })
                .await
        })
        .unwrap();
        assert!(repr.contains("Entered"), "{repr}");
        assert!(repr.contains("when: Some("), "{repr}");
    }

    /// CPython: TimeoutTests.test_repr_expired
    #[test]
    fn test_repr_expired() {
        let (ev, _clock) = test_loop();
        let cm = run(&ev, async {
            let cm = timeout(Some(ms(10)));
            assert!(cm.run(sleep(secs(10))).await.unwrap_err().is_timeout());
            Ok::<_, Error>(cm)
        })
        .unwrap();
        let repr = format!("{cm:?}");
        assert!(repr.contains("Expired"), "{repr}");
    }

    /// CPython: TimeoutTests.test_repr_finished
    #[test]
    fn test_repr_finished() {
        let (ev, _clock) = test_loop();
        let cm = run(&ev, async {
            let cm = timeout(Some(secs(10)));
            cm.run(yield_now()).await?;
            Ok::<_, Error>(cm)
        })
        .unwrap();
        let repr = format!("{cm:?}");
        assert!(repr.contains("Exited"), "{repr}");
    }

    /// CPython: TimeoutTests.test_repr_disabled
    #[test]
    fn test_repr_disabled() {
        let (ev, _clock) = test_loop();
        let repr = run(&ev, async {
            let cm = timeout(None);
            let inner = cm.clone();
            cm.run(async move { Ok::<_, Error>(format!("{inner:?}")) })
                .await
        })
        .unwrap();
        assert!(repr.contains("Entered"), "{repr}");
        assert!(repr.contains("when: None"), "{repr}");
    }

    /// A scope opened while the task handles an outer timeout's
    /// cancellation (`finally:`) times out on its own.
    ///
    /// CPython: TimeoutTests.test_nested_timeout_in_finally
    #[test]
    fn test_nested_timeout_in_finally() {
        let (ev, _clock) = test_loop();
        let err = run(&ev, async {
            timeout(Some(ms(10)))
                .run(async {
                    let first = sleep(secs(1)).await;
                    // finally:
                    let cleanup = timeout(Some(ms(10))).run(sleep(secs(10))).await;
                    assert!(cleanup.unwrap_err().is_timeout());
                    first
                })
                .await
        })
        .unwrap_err();
        assert!(err.is_timeout(), "{err:?}");
    }

    /// A cancellation that was swallowed (the count stays at 1) does not
    /// stop a later scope from timing out.
    ///
    /// CPython: TimeoutTests.test_timeout_after_cancellation
    #[test]
    fn test_timeout_after_cancellation() {
        let (ev, _clock) = test_loop();
        let cleanup = run(&ev, async {
            current_task().unwrap().cancel(None);
            let work = sleep(secs(1)).await; // work which will be cancelled
            assert!(work.unwrap_err().is_cancelled());
            // finally:
            Ok::<_, Error>(timeout(Some(Duration::ZERO)).run(sleep(secs(1))).await)
        })
        .unwrap();
        assert!(cleanup.unwrap_err().is_timeout());
    }

    /// CPython: TimeoutTests.test_cancel_in_timeout_after_cancellation
    #[test]
    fn test_cancel_in_timeout_after_cancellation() {
        let (ev, _clock) = test_loop();
        let (cleanup, cm) = run(&ev, async {
            current_task().unwrap().cancel(None);
            let work = sleep(secs(1)).await;
            assert!(work.unwrap_err().is_cancelled());
            // finally:
            let cm = timeout(Some(secs(1)));
            let cleanup = cm
                .run(async {
                    current_task().unwrap().cancel(None);
                    sleep(secs(2)).await // some cleanup
                })
                .await;
            Ok::<_, Error>((cleanup, cm))
        })
        .unwrap();
        assert!(cleanup.unwrap_err().is_cancelled());
        assert!(!cm.expired());
    }

    #[test]
    #[ignore = "n/a: Error::Timeout carries no `__cause__` chain"]
    fn test_timeout_exception_cause() {}

    /// A timeout around a task group whose children fail in their cleanup:
    /// the group's errors pass through the expired scope unchanged.
    ///
    /// CPython: TimeoutTests.test_timeout_taskgroup
    #[test]
    fn test_timeout_taskgroup() {
        let (ev, _clock) = test_loop();
        let (result, cm) = run(&ev, async {
            let cm = timeout(Some(ms(10)));
            let result = cm
                .run(TaskGroup::scope(|tg| async move {
                    tg.create_task(async {
                        // Interrupted after 10 ms, crashes in its cleanup.
                        let _ = sleep(secs(2)).await;
                        Err::<(), _>(Error::new(Boom("ZeroDivisionError")))
                    })?;
                    // raise ValueError, finally: sleep(1)
                    let _ = sleep(secs(1)).await;
                    Err::<(), _>(Error::new(Boom("ValueError")))
                }))
                .await;
            Ok::<_, Error>((result, cm))
        })
        .unwrap();
        let err = result.unwrap_err();
        let group = err.as_group().unwrap_or_else(|| panic!("{err:?}"));
        let errors = group.exceptions();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(is_boom(&errors[0], "ZeroDivisionError"));
        assert!(is_boom(&errors[1], "ValueError"));
        assert!(cm.expired());
    }

    /// CPython: TimeoutTests.test_timeout_already_entered
    #[test]
    fn test_timeout_already_entered() {
        let (ev, _clock) = test_loop();
        let err = run(&ev, async {
            let cm = timeout(Some(ms(10)));
            let again = cm.clone();
            cm.run(async move { again.run(async { Ok::<_, Error>(()) }).await })
                .await
        })
        .unwrap_err();
        assert!(
            runtime_message(&err).contains("has already been entered"),
            "{err:?}"
        );
    }

    /// CPython: TimeoutTests.test_timeout_double_enter
    #[test]
    fn test_timeout_double_enter() {
        let (ev, _clock) = test_loop();
        let err = run(&ev, async {
            let cm = timeout(Some(ms(10)));
            cm.run(async { Ok::<_, Error>(()) }).await?;
            cm.run(async { Ok::<_, Error>(()) }).await
        })
        .unwrap_err();
        assert!(
            runtime_message(&err).contains("has already been entered"),
            "{err:?}"
        );
    }

    /// CPython: TimeoutTests.test_timeout_finished
    #[test]
    fn test_timeout_finished() {
        let (ev, _clock) = test_loop();
        let err = run(&ev, async {
            let cm = timeout(Some(ms(10)));
            cm.run(async { Ok::<_, Error>(()) }).await?;
            cm.reschedule(Some(now()? + ms(20)))
        })
        .unwrap_err();
        assert!(runtime_message(&err).contains("finished"), "{err:?}");
    }

    /// CPython: TimeoutTests.test_timeout_not_entered
    #[test]
    fn test_timeout_not_entered() {
        let (ev, _clock) = test_loop();
        let cm = timeout(Some(ms(10)));
        let err = cm.reschedule(Some(ev.time() + ms(20))).unwrap_err();
        assert!(
            runtime_message(&err).contains("has not been entered"),
            "{err:?}"
        );
    }

    /// Entering a scope from a loop callback, outside any task
    /// (`await_without_task`), fails and leaves the scope unentered.
    ///
    /// CPython: TimeoutTests.test_timeout_without_task
    #[test]
    fn test_timeout_without_task() {
        let (ev, _clock) = test_loop();
        let cm = timeout(Some(ms(10)));
        type Polled = Poll<Result<(), Error>>;
        let outcome: Rc<RefCell<Option<Polled>>> = Rc::default();
        let (slot, scope) = (outcome.clone(), cm.clone());
        ev.call_soon(move |_| {
            let mut entering = Box::pin(scope.run(async { Ok::<_, Error>(()) }));
            *slot.borrow_mut() = Some(poll_once(&mut entering));
        })
        .unwrap();
        run_briefly(&ev);
        let polled = outcome.borrow_mut().take().expect("the callback ran");
        let Poll::Ready(Err(err)) = polled else {
            panic!("entering outside a task must fail: {polled:?}")
        };
        assert!(runtime_message(&err).contains("task"), "{err:?}");
        let err = cm.reschedule(Some(ev.time() + ms(20))).unwrap_err();
        assert!(
            runtime_message(&err).contains("has not been entered"),
            "{err:?}"
        );
    }
}

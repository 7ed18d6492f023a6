//! CPython's `Lib/test/test_asyncio/test_waitfor.py`, ported to
//! loop-futures' [`wait_for`] (asyncio 3.12 semantics: built on a timeout
//! scope, so an explicit cancellation is never swallowed and a result that
//! arrives while the timeout cancels is never lost).
//!
//! Each CPython test class is a `mod`; each case keeps its CPython name
//! (`/// CPython: Class.test_x`). `IsolatedAsyncioTestCase` is a task on a
//! loop with a manual clock, so every delay is exact virtual time.
//!
//! Divergence: `wait_for` takes any `std::future::Future` and cannot tell
//! a coroutine from a done future without polling it. With a zero delay
//! asyncio never starts a coroutine; tulip polls the body once, so a
//! coroutine runs up to its first suspension (where the timeout cancels it).
//! A negative delay does not exist (`Duration`).

#[path = "support/mod.rs"]
mod support;

use std::cell::Cell;
use std::future::Future as StdFuture;
use std::rc::Rc;
use std::time::Duration;

use loop_core::{EventLoop, ManualClock, get_running_loop};
use loop_futures::{
    Error, EventLoopExt, IntoTaskResult, ReturnWhen, create_task, shield, sleep, wait, wait_for,
    yield_now,
};

use support::Boom;

/// A loop on a fresh manual clock (debug off).
fn test_loop() -> EventLoop {
    EventLoop::builder()
        .manual_clock(ManualClock::new())
        .debug(false)
        .build()
        .expect("create loop")
}

/// `run_until_complete` with a far watchdog timer, so that a broken test
/// fails instead of hanging (an idle manual-clock loop jumps to it).
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

/// A very small timeout: more than zero, almost no effect.
const EPSILON: Duration = Duration::from_micros(100);

fn elapsed_since(t0: std::time::Instant) -> Result<Duration, Error> {
    Ok(get_running_loop()?.time() - t0)
}

/// CPython's `SlowTask`: runs for `TASK_TIMEOUT`, ignoring cancel requests.
struct SlowTask {
    exited: Rc<Cell<bool>>,
}

impl SlowTask {
    const TASK_TIMEOUT: Duration = Duration::from_millis(200);

    fn new() -> SlowTask {
        SlowTask {
            exited: Rc::new(Cell::new(false)),
        }
    }

    fn run(&self) -> impl StdFuture<Output = Result<(), Error>> + 'static {
        let exited = self.exited.clone();
        async move {
            let ev = get_running_loop()?;
            let exit_at = ev.time() + Self::TASK_TIMEOUT;
            // Bounded: each round either sleeps until `exit_at` or eats one
            // cancellation.
            for _ in 0..100 {
                let now = ev.time();
                if now >= exit_at {
                    break;
                }
                match sleep(exit_at - now).await {
                    Ok(()) | Err(Error::Cancelled(_)) => {}
                    Err(err) => return Err(err),
                }
            }
            exited.set(true);
            Ok(())
        }
    }
}

mod asyncio_wait_for_test {
    use super::*;

    /// CPython: AsyncioWaitForTest.test_asyncio_wait_for_cancelled
    #[test]
    fn test_asyncio_wait_for_cancelled() {
        let ev = test_loop();
        let t = SlowTask::new();
        let body = t.run();
        let waitfortask = run(&ev, async move {
            let waitfortask = create_task(wait_for(body, Some(SlowTask::TASK_TIMEOUT * 2)))?;
            yield_now().await?;
            waitfortask.cancel(None);
            wait(vec![waitfortask.clone()], None, ReturnWhen::AllCompleted).await?;
            Ok::<_, Error>(waitfortask)
        })
        .unwrap();
        assert!(t.exited.get());
        // The body swallowed the cancellation and finished: its result stands.
        assert!(!waitfortask.cancelled());
        assert!(waitfortask.result().is_ok());
    }

    /// The timeout's cancellation is ignored by the body, which returns
    /// normally: 3.12's `wait_for` returns that result instead of raising.
    ///
    /// CPython: AsyncioWaitForTest.test_asyncio_wait_for_timeout
    #[test]
    fn test_asyncio_wait_for_timeout() {
        let ev = test_loop();
        let t = SlowTask::new();
        let body = t.run();
        let result = run(&ev, async move {
            Ok::<_, Error>(wait_for(body, Some(SlowTask::TASK_TIMEOUT / 2)).await)
        })
        .unwrap();
        assert!(t.exited.get());
        assert!(result.is_ok(), "{result:?}");
    }

    /// CPython: AsyncioWaitForTest.test_wait_for_timeout_less_then_0_or_0_future_done
    #[test]
    fn test_wait_for_timeout_less_then_0_or_0_future_done() {
        let ev = test_loop();
        let fut = ev.create_future::<&str>();
        fut.set_result("done").unwrap();
        let (ret, elapsed) = {
            let fut = fut.clone();
            run(&ev, async move {
                let t0 = get_running_loop()?.time();
                let ret = wait_for(fut, Some(Duration::ZERO)).await?;
                Ok::<_, Error>((ret, elapsed_since(t0)?))
            })
            .unwrap()
        };
        assert_eq!(ret, "done");
        assert!(fut.done());
        assert_eq!(elapsed, Duration::ZERO);
    }

    /// asyncio never starts a coroutine given a zero timeout. Here the body
    /// is polled once (see the module docs): it must not get past its first
    /// suspension, and the result is the timeout.
    ///
    /// CPython: AsyncioWaitForTest.test_wait_for_timeout_less_then_0_or_0_coroutine_do_not_started
    #[test]
    fn test_wait_for_timeout_less_then_0_or_0_coroutine_do_not_started() {
        let ev = test_loop();
        let resumed = Rc::new(Cell::new(false));
        let flag = resumed.clone();
        let result = run(&ev, async move {
            let foo = async move {
                sleep(secs(10)).await?;
                flag.set(true);
                Ok::<_, Error>(())
            };
            Ok::<_, Error>(wait_for(foo, Some(Duration::ZERO)).await)
        })
        .unwrap();
        assert!(result.unwrap_err().is_timeout());
        assert!(!resumed.get());
    }

    /// CPython: AsyncioWaitForTest.test_wait_for_timeout_less_then_0_or_0
    #[test]
    fn test_wait_for_timeout_less_then_0_or_0() {
        let ev = test_loop();
        let foo_running = Rc::new(Cell::new(None::<bool>));
        let running = foo_running.clone();
        let (result, fut, elapsed) = run(&ev, async move {
            let ev = get_running_loop()?;
            let started = ev.create_future::<()>();
            let starter = started.clone();
            let fut = create_task(async move {
                running.set(Some(true));
                starter.set_result(()).unwrap();
                let slept = sleep(secs(10)).await;
                running.set(Some(false)); // finally
                slept?;
                Ok::<_, Error>("done")
            })?;
            started.await?;
            let t0 = ev.time();
            let result = wait_for(fut.clone(), Some(Duration::ZERO)).await;
            Ok::<_, Error>((result, fut, elapsed_since(t0)?))
        })
        .unwrap();
        assert!(result.unwrap_err().is_timeout());
        assert!(fut.done());
        // it should have been cancelled due to the timeout
        assert!(fut.cancelled());
        assert_eq!(foo_running.get(), Some(false));
        assert_eq!(elapsed, Duration::ZERO);
    }

    /// CPython: AsyncioWaitForTest.test_wait_for
    #[test]
    fn test_wait_for() {
        let ev = test_loop();
        let foo_running = Rc::new(Cell::new(None::<bool>));
        let running = foo_running.clone();
        let (result, fut, elapsed) = run(&ev, async move {
            let fut = create_task(async move {
                running.set(Some(true));
                let slept = sleep(secs(300)).await;
                running.set(Some(false));
                slept?;
                Ok::<_, Error>("done")
            })?;
            let t0 = get_running_loop()?.time();
            let result = wait_for(fut.clone(), Some(ms(100))).await;
            Ok::<_, Error>((result, fut, elapsed_since(t0)?))
        })
        .unwrap();
        assert!(result.unwrap_err().is_timeout());
        assert!(fut.done());
        assert!(fut.cancelled());
        assert_eq!(elapsed, ms(100));
        assert_eq!(foo_running.get(), Some(false));
    }

    /// CPython: AsyncioWaitForTest.test_wait_for_blocking
    #[test]
    fn test_wait_for_blocking() {
        let ev = test_loop();
        let res = run(&ev, async {
            wait_for(async { Ok::<_, Error>("done") }, None).await
        })
        .unwrap();
        assert_eq!(res, "done");
    }

    /// CPython: AsyncioWaitForTest.test_wait_for_race_condition
    #[test]
    fn test_wait_for_race_condition() {
        let ev = test_loop();
        let res = run(&ev, async {
            let ev = get_running_loop()?;
            let fut = ev.create_future::<&str>();
            let task = wait_for(fut.clone(), Some(ms(200)));
            ev.call_soon(move |_| fut.set_result("ok").unwrap())?;
            task.await
        })
        .unwrap();
        assert_eq!(res, "ok");
    }

    /// A body that catches the timeout's cancellation and returns a value:
    /// the value is the result.
    ///
    /// CPython: AsyncioWaitForTest.test_wait_for_cancellation_race_condition
    #[test]
    fn test_wait_for_cancellation_race_condition() {
        let ev = test_loop();
        let result = run(&ev, async {
            let inner = async {
                let slept = sleep(secs(1)).await;
                assert!(slept.unwrap_err().is_cancelled());
                Ok::<_, Error>(1)
            };
            wait_for(inner, Some(ms(10))).await
        })
        .unwrap();
        assert_eq!(result, 1);
    }

    /// `wait_for` returns only once the awaited task finished cancelling.
    ///
    /// CPython: AsyncioWaitForTest.test_wait_for_waits_for_task_cancellation
    #[test]
    fn test_wait_for_waits_for_task_cancellation() {
        let ev = test_loop();
        let task_done = Rc::new(Cell::new(false));
        let done = task_done.clone();
        let (err, done_when_returned) = run(&ev, async move {
            let inner_task = create_task(async move {
                let slept = sleep(secs(10)).await;
                if let Err(Error::Cancelled(_)) = slept {
                    let _ = sleep(EPSILON).await;
                }
                done.set(true); // finally
                slept
            })?;
            let err = wait_for(inner_task, Some(EPSILON)).await.unwrap_err();
            Ok::<_, Error>((err, task_done.get()))
        })
        .unwrap();
        assert!(err.is_timeout(), "{err:?}");
        assert!(
            done_when_returned,
            "wait_for returned before the task ended"
        );
    }

    /// CPython: AsyncioWaitForTest.test_wait_for_waits_for_task_cancellation_w_timeout_0
    #[test]
    fn test_wait_for_waits_for_task_cancellation_w_timeout_0() {
        let ev = test_loop();
        let task_done = Rc::new(Cell::new(false));
        let done = task_done.clone();
        let foo = async move {
            let inner_task = create_task(async move {
                let slept = sleep(secs(10)).await;
                if let Err(Error::Cancelled(_)) = slept {
                    let _ = sleep(EPSILON).await;
                }
                done.set(true);
                slept
            })?;
            sleep(EPSILON).await?;
            wait_for(inner_task, Some(Duration::ZERO)).await
        };
        let err = run(&ev, foo).unwrap_err();
        assert!(err.is_timeout(), "{err:?}");
        assert!(task_done.get());
    }

    /// CPython: AsyncioWaitForTest.test_wait_for_reraises_exception_during_cancellation
    #[test]
    fn test_wait_for_reraises_exception_during_cancellation() {
        let ev = test_loop();
        let err = run(&ev, async {
            let inner_task = create_task(async {
                let _ = sleep(ms(200)).await;
                Err::<(), _>(Error::new(Boom("FooException"))) // finally: raise
            })?;
            wait_for(inner_task, Some(EPSILON)).await
        })
        .unwrap_err();
        assert_eq!(err.downcast_ref::<Boom>(), Some(&Boom("FooException")));
    }

    /// `wait_for` itself stays cancellable while the awaited task holds up
    /// its own cancellation (from CPython 3.11's version of this file).
    ///
    /// CPython: AsyncioWaitForTest.test_wait_for_self_cancellation
    #[test]
    fn test_wait_for_self_cancellation() {
        let ev = test_loop();
        let result = run(&ev, async {
            let inner_task = create_task(async {
                if sleep(ms(300)).await.is_err() && sleep(ms(300)).await.is_err() {
                    let _ = sleep(ms(300)).await;
                }
                Ok::<_, Error>(42)
            })?;
            let task = create_task(wait_for(inner_task.clone(), Some(ms(100))))?;
            task.cancel(None);
            let err = task.await.unwrap_err();
            assert!(err.is_cancelled(), "{err:?}");
            inner_task.await
        })
        .unwrap();
        assert_eq!(result, 42);
    }

    /// Cancelling the task that waits also cancels the awaited task
    /// (Python issue #23219).
    fn cancel_wait_for(timeout: Option<Duration>) {
        let ev = test_loop();
        let task = run(&ev, async move {
            let ev = get_running_loop()?;
            let task = create_task(async {
                // Block: fut result is never set
                get_running_loop()?.create_future::<()>().await
            })?;
            let wait = create_task(wait_for(task.clone(), timeout))?;
            let canceller = wait.clone();
            ev.call_soon(move |_| {
                canceller.cancel(None);
            })?;
            let err = wait.await.unwrap_err();
            assert!(err.is_cancelled(), "{err:?}");
            Ok::<_, Error>(task)
        })
        .unwrap();
        assert!(task.cancelled());
    }

    /// CPython: AsyncioWaitForTest.test_cancel_blocking_wait_for
    #[test]
    fn test_cancel_blocking_wait_for() {
        cancel_wait_for(None);
    }

    /// CPython: AsyncioWaitForTest.test_cancel_wait_for
    #[test]
    fn test_cancel_wait_for() {
        cancel_wait_for(Some(secs(60)));
    }

    /// A body that suppresses the timeout's cancellation and returns a value
    /// yields that value, not `TimeoutError` (cpython#84849, fixed in 3.12).
    ///
    /// CPython: AsyncioWaitForTest.test_wait_for_cancel_suppressed
    #[test]
    fn test_wait_for_cancel_suppressed() {
        let ev = test_loop();
        let res = run(&ev, async {
            let return_42 = async {
                match sleep(secs(10)).await {
                    Err(Error::Cancelled(_)) => Ok(42),
                    other => other.map(|()| 0),
                }
            };
            wait_for(return_42, Some(ms(100))).await
        })
        .unwrap();
        assert_eq!(res, 42);
    }

    /// An explicit cancellation of the waiting task is not swallowed
    /// (cpython#86296, fixed in 3.12): the task ends cancelled instead of
    /// going on after `wait_for`.
    ///
    /// CPython: AsyncioWaitForTest.test_wait_for_issue86296
    #[test]
    fn test_wait_for_issue86296() {
        let ev = test_loop();
        let reached_end = Rc::new(Cell::new(false));
        let reached = reached_end.clone();
        run(&ev, async move {
            let inner_task = create_task(async { Ok::<_, Error>("done") })?;
            let awaited = inner_task.clone();
            let task = create_task(async move {
                wait_for(awaited, Some(secs(100))).await?;
                sleep(secs(1)).await?;
                reached.set(true);
                Ok::<_, Error>(())
            })?;
            assert!(!task.done());
            // Run the task
            yield_now().await?;
            task.cancel(None);
            let err = task.clone().await.unwrap_err();
            assert!(err.is_cancelled(), "{err:?}");
            assert!(task.cancelled());
            assert!(inner_task.done());
            assert_eq!(inner_task.await?, "done");
            Ok::<_, Error>(())
        })
        .unwrap();
        assert!(!reached_end.get());
    }
}

mod wait_for_shield_tests {
    use super::*;

    /// With a zero timeout the shield's outer future is cancelled at once;
    /// the shielded task keeps running.
    ///
    /// CPython: WaitForShieldTests.test_zero_timeout
    #[test]
    fn test_zero_timeout() {
        let ev = test_loop();
        run(&ev, async {
            let task = create_task(async {
                sleep(ms(10)).await?;
                Ok::<_, Error>("done")
            })?;
            let shielded_task = shield(&task);
            let err = wait_for(shielded_task.clone(), Some(Duration::ZERO))
                .await
                .unwrap_err();
            assert!(err.is_timeout(), "{err:?}");
            // Task is running in background
            assert!(!task.done());
            assert!(!task.cancelled());
            assert!(shielded_task.cancelled());
            // Wait for the task to complete
            sleep(ms(100)).await?;
            assert!(task.done());
            assert_eq!(task.result()?, "done");
            Ok::<_, Error>(())
        })
        .unwrap();
    }

    /// CPython: WaitForShieldTests.test_none_timeout
    #[test]
    fn test_none_timeout() {
        let ev = test_loop();
        run(&ev, async {
            let task = create_task(async {
                sleep(ms(100)).await?;
                Ok::<_, Error>("done")
            })?;
            wait_for(shield(&task), None).await?;
            assert!(task.done());
            assert_eq!(task.await?, "done");
            Ok::<_, Error>(())
        })
        .unwrap();
    }

    /// CPython: WaitForShieldTests.test_shielded_timeout
    #[test]
    fn test_shielded_timeout() {
        let ev = test_loop();
        run(&ev, async {
            let task = create_task(async {
                sleep(ms(100)).await?;
                Ok::<_, Error>("done")
            })?;
            let err = wait_for(shield(&task), Some(ms(10))).await.unwrap_err();
            assert!(err.is_timeout(), "{err:?}");
            assert!(!task.done());
            assert!(!task.cancelled());
            assert_eq!(task.await?, "done");
            Ok::<_, Error>(())
        })
        .unwrap();
    }
}

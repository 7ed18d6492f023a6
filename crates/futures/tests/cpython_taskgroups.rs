//! CPython's `Lib/test/test_asyncio/test_taskgroups.py`, ported to
//! loop-futures' [`TaskGroup`].
//!
//! Each CPython test class is a `mod`; each case keeps its CPython name
//! (`/// CPython: Class.test_x`). Cases that cannot apply stay as
//! `#[ignore = "n/a: …"]` stubs so that coverage can be counted.
//!
//! How the asyncio idioms translate:
//! * `async with TaskGroup() as g: body` is
//!   `TaskGroup::scope(|g| async move { body }).await`; the group handle
//!   can be cloned into children (`test_taskgroup_24`).
//! * `1 / 0`, `raise MyExc`, … are `Err(Error::new(Boom("ZeroDivisionError")))`
//!   etc.; `get_error_types(eg)` is [`error_types`].
//! * `try: await x finally: raise E` is `let _ = x.await; Err(E)`.
//! * The tests run on a manual clock: sleeps are exact virtual time.
//! * CPython's cases use the newest semantics (3.13+): errors of children
//!   take priority over the parent's cancellation.

#[path = "support/mod.rs"]
mod support;

use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use std::future::Future as StdFuture;
use std::pin::Pin;
use std::rc::Rc;
use std::task::Poll;
use std::time::Duration;

use loop_core::{EventLoop, ManualClock};
use loop_futures::{
    Error, Event, EventLoopExt, IntoTaskResult, Task, TaskGroup, create_task, current_task, sleep,
    yield_now,
};

use support::{Boom, poll_once, run_briefly};

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

fn boom<T>(what: &'static str) -> Result<T, Error> {
    Err(Error::new(Boom(what)))
}

/// CPython's `get_error_types`: the kinds of the errors in a group
/// (`"ExceptionGroup"` for a nested group).
fn error_types(err: &Error) -> BTreeSet<&'static str> {
    let group = err
        .as_group()
        .unwrap_or_else(|| panic!("not an ExceptionGroup: {err:?}"));
    group
        .exceptions()
        .iter()
        .map(|e| match e {
            Error::Group(_) => "ExceptionGroup",
            other => other
                .downcast_ref::<Boom>()
                .map_or("<other error>", |b| b.0),
        })
        .collect()
}

fn set(items: &[&'static str]) -> BTreeSet<&'static str> {
    items.iter().copied().collect()
}

/// The first error of a group, which must itself be a group.
fn first_nested(err: &Error) -> Error {
    err.as_group().expect("a group").exceptions()[0].clone()
}

fn runtime_message(err: &Error) -> String {
    match err {
        Error::Runtime(e) => e.message().to_owned(),
        other => format!("not a RuntimeError: {other:?}"),
    }
}

/// `async def f(): await asyncio.sleep(d); return v`
async fn sleep_then<T: 'static>(d: Duration, v: T) -> Result<T, Error> {
    sleep(d).await?;
    Ok(v)
}

/// `async def f(): await asyncio.sleep(d); raise E`
async fn crash_after(d: Duration, what: &'static str) -> Result<(), Error> {
    sleep(d).await?;
    boom(what)
}

/// `try: await asyncio.sleep(d) finally: raise E`
async fn crash_in_finally(d: Duration, what: &'static str) -> Result<(), Error> {
    let _ = sleep(d).await;
    boom(what)
}

/// What polling a scope once gave.
type Polled = Poll<Result<(), Error>>;

/// Sets its flag when dropped.
struct DropFlag(Rc<Cell<bool>>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

mod test_task_group {
    use super::*;

    /// CPython: BaseTestTaskGroup.test_taskgroup_01
    #[test]
    fn test_taskgroup_01() {
        let ev = test_loop();
        let t0 = ev.time();
        let (t1, t2) = run(
            &ev,
            TaskGroup::scope(|g| async move {
                let t1 = g.create_task(sleep_then(ms(100), 42))?;
                let t2 = g.create_task(sleep_then(ms(200), 11))?;
                Ok::<_, Error>((t1, t2))
            }),
        )
        .unwrap();
        assert_eq!(t1.result().unwrap(), 42);
        assert_eq!(t2.result().unwrap(), 11);
        assert_eq!(ev.time() - t0, ms(200), "the scope waited for both");
    }

    /// CPython: BaseTestTaskGroup.test_taskgroup_02
    #[test]
    fn test_taskgroup_02() {
        let ev = test_loop();
        let (t1, t2) = run(
            &ev,
            TaskGroup::scope(|g| async move {
                let t1 = g.create_task(sleep_then(ms(100), 42))?;
                sleep(ms(150)).await?;
                let t2 = g.create_task(sleep_then(ms(200), 11))?;
                Ok::<_, Error>((t1, t2))
            }),
        )
        .unwrap();
        assert_eq!(t1.result().unwrap(), 42);
        assert_eq!(t2.result().unwrap(), 11);
    }

    /// Cancelling one child explicitly is not a failure of the group.
    ///
    /// CPython: BaseTestTaskGroup.test_taskgroup_03
    #[test]
    fn test_taskgroup_03() {
        let ev = test_loop();
        let (t1, t2) = run(
            &ev,
            TaskGroup::scope(|g| async move {
                let t1 = g.create_task(sleep_then(secs(1), 42))?;
                sleep(ms(150)).await?;
                // cancel t1 explicitly, i.e. everything should continue
                // working as expected.
                t1.cancel(None);
                let t2 = g.create_task(sleep_then(ms(200), 11))?;
                Ok::<_, Error>((t1, t2))
            }),
        )
        .unwrap();
        assert!(t1.cancelled());
        assert_eq!(t2.result().unwrap(), 11);
    }

    /// CPython: BaseTestTaskGroup.test_taskgroup_04
    #[test]
    fn test_taskgroup_04() {
        let ev = test_loop();
        let num = Rc::new(Cell::new(0));
        let t2_cancel = Rc::new(Cell::new(false));
        let t2_slot: Rc<RefCell<Option<Task<()>>>> = Rc::default();
        let runner = {
            let (num, t2_cancel, t2_slot) = (num.clone(), t2_cancel.clone(), t2_slot.clone());
            async move {
                let num2 = num.clone();
                TaskGroup::scope(|g| async move {
                    g.create_task(crash_after(ms(100), "ZeroDivisionError"))?;
                    let t2 = g.create_task(async move {
                        if let Err(err) = sleep(secs(1)).await {
                            t2_cancel.set(err.is_cancelled());
                            return Err(err);
                        }
                        num2.set(num2.get() + 1);
                        Ok(())
                    })?;
                    *t2_slot.borrow_mut() = Some(t2);
                    Ok::<_, Error>(())
                })
                .await?;
                num.set(num.get() + 10);
                Ok::<_, Error>(())
            }
        };
        let err = run(&ev, async move { create_task(runner)?.await }).unwrap_err();
        assert_eq!(error_types(&err), set(&["ZeroDivisionError"]));
        assert_eq!(num.get(), 0);
        assert!(t2_cancel.get());
        assert!(t2_slot.borrow().as_ref().unwrap().cancelled());
    }

    /// When a child fails, the other children and the body are cancelled
    /// and the errors are gathered into a group.
    ///
    /// CPython: BaseTestTaskGroup.test_cancel_children_on_child_error
    #[test]
    fn test_cancel_children_on_child_error() {
        let ev = test_loop();
        let num = Rc::new(Cell::new(0));
        let t2_cancel = Rc::new(Cell::new(false));
        let runner_cancel = Rc::new(Cell::new(false));
        let runner = {
            let (num, t2_cancel, runner_cancel) =
                (num.clone(), t2_cancel.clone(), runner_cancel.clone());
            async move {
                let num2 = num.clone();
                TaskGroup::scope(|g| async move {
                    for _ in 0..3 {
                        g.create_task(crash_after(ms(100), "ZeroDivisionError"))?;
                    }
                    g.create_task(async move {
                        if let Err(err) = sleep(secs(5)).await {
                            t2_cancel.set(err.is_cancelled());
                            return Err(err);
                        }
                        num2.set(num2.get() + 1);
                        Ok(())
                    })?;
                    if let Err(err) = sleep(secs(10)).await {
                        runner_cancel.set(err.is_cancelled());
                        return Err(err);
                    }
                    Ok::<_, Error>(())
                })
                .await?;
                num.set(num.get() + 10);
                Ok::<_, Error>(())
            }
        };
        let err = run(&ev, async move { create_task(runner)?.await }).unwrap_err();
        assert_eq!(error_types(&err), set(&["ZeroDivisionError"]));
        assert_eq!(err.as_group().unwrap().exceptions().len(), 3);
        assert_eq!(num.get(), 0);
        assert!(t2_cancel.get());
        assert!(runner_cancel.get());
    }

    /// Cancelling the parent while it waits for the children cancels them;
    /// the parent ends cancelled, with its message.
    ///
    /// CPython: BaseTestTaskGroup.test_cancellation
    #[test]
    fn test_cancellation() {
        let ev = test_loop();
        let num = Rc::new(Cell::new(0));
        let counter = num.clone();
        let err = run(&ev, async move {
            let r = create_task(TaskGroup::scope(|g| async move {
                for _ in 0..5 {
                    let num = counter.clone();
                    g.create_task(async move {
                        let slept = sleep(secs(5)).await;
                        if slept.is_err() {
                            num.set(num.get() + 1);
                        }
                        slept
                    })?;
                }
                Ok::<_, Error>(())
            }))?;
            sleep(ms(100)).await?;
            assert!(!r.done());
            r.cancel(Some("test"));
            Ok::<_, Error>(r.await.unwrap_err())
        })
        .unwrap();
        assert_eq!(err.as_cancelled().unwrap().message(), Some("test"));
        assert_eq!(num.get(), 5);
    }

    /// CPython: BaseTestTaskGroup.test_taskgroup_07
    #[test]
    fn test_taskgroup_07() {
        let ev = test_loop();
        let num = Rc::new(Cell::new(0));
        let counter = num.clone();
        let err = run(&ev, async move {
            let r = create_task(TaskGroup::scope(|g| async move {
                for _ in 0..5 {
                    let num = counter.clone();
                    g.create_task(async move {
                        let slept = sleep(secs(5)).await;
                        if slept.is_err() {
                            num.set(num.get() + 1);
                        }
                        slept
                    })?;
                }
                let slept = sleep(secs(10)).await;
                if slept.is_err() {
                    counter.set(counter.get() + 10);
                }
                slept
            }))?;
            sleep(ms(100)).await?;
            assert!(!r.done());
            r.cancel(None);
            Ok::<_, Error>(r.await.unwrap_err())
        })
        .unwrap();
        assert!(err.is_cancelled(), "{err:?}");
        assert_eq!(num.get(), 15);
    }

    /// Children that fail while being cancelled: their errors win over the
    /// parent's cancellation.
    ///
    /// CPython: BaseTestTaskGroup.test_taskgroup_08
    #[test]
    fn test_taskgroup_08() {
        let ev = test_loop();
        let err = run(&ev, async {
            let r = create_task(TaskGroup::scope(|g| async move {
                for _ in 0..5 {
                    g.create_task(crash_in_finally(secs(10), "ZeroDivisionError"))?;
                }
                sleep(secs(10)).await
            }))?;
            sleep(ms(100)).await?;
            assert!(!r.done());
            r.cancel(None);
            Ok::<_, Error>(r.await.unwrap_err())
        })
        .unwrap();
        assert_eq!(error_types(&err), set(&["ZeroDivisionError"]));
    }

    /// The body fails after a while: the children are cancelled.
    ///
    /// CPython: BaseTestTaskGroup.test_taskgroup_09
    #[test]
    fn test_taskgroup_09() {
        let ev = test_loop();
        let tasks: Rc<RefCell<Vec<Task<i32>>>> = Rc::default();
        let slot = tasks.clone();
        let err = run(
            &ev,
            TaskGroup::scope(|g| async move {
                slot.borrow_mut()
                    .push(g.create_task(sleep_then(secs(1), 42))?);
                slot.borrow_mut()
                    .push(g.create_task(sleep_then(secs(2), 11))?);
                sleep(ms(100)).await?;
                boom::<()>("ZeroDivisionError")
            }),
        )
        .unwrap_err();
        assert_eq!(error_types(&err), set(&["ZeroDivisionError"]));
        assert!(tasks.borrow().iter().all(Task::cancelled));
    }

    /// The body fails at once: the children are cancelled.
    ///
    /// CPython: BaseTestTaskGroup.test_taskgroup_10
    #[test]
    fn test_taskgroup_10() {
        let ev = test_loop();
        let tasks: Rc<RefCell<Vec<Task<i32>>>> = Rc::default();
        let slot = tasks.clone();
        let err = run(
            &ev,
            TaskGroup::scope(|g| async move {
                slot.borrow_mut()
                    .push(g.create_task(sleep_then(secs(1), 42))?);
                slot.borrow_mut()
                    .push(g.create_task(sleep_then(secs(2), 11))?);
                boom::<()>("ZeroDivisionError")
            }),
        )
        .unwrap_err();
        assert_eq!(error_types(&err), set(&["ZeroDivisionError"]));
        assert_eq!(tasks.borrow().len(), 2);
        assert!(tasks.borrow().iter().all(Task::cancelled));
    }

    /// CPython: BaseTestTaskGroup.test_taskgroup_11
    #[test]
    fn test_taskgroup_11() {
        let ev = test_loop();
        let err = run(&ev, async {
            let r = create_task(TaskGroup::scope(|_outer| async move {
                TaskGroup::scope(|g2| async move {
                    for _ in 0..5 {
                        g2.create_task(crash_in_finally(secs(10), "ZeroDivisionError"))?;
                    }
                    sleep(secs(10)).await
                })
                .await
            }))?;
            sleep(ms(100)).await?;
            assert!(!r.done());
            r.cancel(None);
            Ok::<_, Error>(r.await.unwrap_err())
        })
        .unwrap();
        assert_eq!(error_types(&err), set(&["ExceptionGroup"]));
        assert_eq!(
            error_types(&first_nested(&err)),
            set(&["ZeroDivisionError"])
        );
    }

    /// CPython: BaseTestTaskGroup.test_taskgroup_12
    #[test]
    fn test_taskgroup_12() {
        let ev = test_loop();
        let err = run(&ev, async {
            let r = create_task(TaskGroup::scope(|g1| async move {
                g1.create_task(sleep(secs(10)))?;
                TaskGroup::scope(|g2| async move {
                    for _ in 0..5 {
                        g2.create_task(crash_in_finally(secs(10), "ZeroDivisionError"))?;
                    }
                    sleep(secs(10)).await
                })
                .await
            }))?;
            sleep(ms(100)).await?;
            assert!(!r.done());
            r.cancel(None);
            Ok::<_, Error>(r.await.unwrap_err())
        })
        .unwrap();
        assert_eq!(error_types(&err), set(&["ExceptionGroup"]));
        assert_eq!(
            error_types(&first_nested(&err)),
            set(&["ZeroDivisionError"])
        );
    }

    /// The outer group's child fails while the body waits in an inner
    /// group: the inner group is cancelled, only the outer error is raised.
    ///
    /// CPython: BaseTestTaskGroup.test_taskgroup_13
    #[test]
    fn test_taskgroup_13() {
        let ev = test_loop();
        let err = run(&ev, async {
            create_task(TaskGroup::scope(|g1| async move {
                g1.create_task(crash_after(ms(100), "ValueError"))?;
                TaskGroup::scope(|g2| async move {
                    g2.create_task(crash_after(secs(10), "ValueError"))?;
                    Ok::<_, Error>(())
                })
                .await
            }))?
            .await
        })
        .unwrap_err();
        assert_eq!(error_types(&err), set(&["ValueError"]));
    }

    /// The inner group's child fails: the inner group raises a group, which
    /// the outer group collects.
    ///
    /// CPython: BaseTestTaskGroup.test_taskgroup_14
    #[test]
    fn test_taskgroup_14() {
        let ev = test_loop();
        let err = run(&ev, async {
            create_task(TaskGroup::scope(|g1| async move {
                g1.create_task(crash_after(secs(10), "ValueError"))?;
                TaskGroup::scope(|g2| async move {
                    g2.create_task(crash_after(ms(100), "ValueError"))?;
                    Ok::<_, Error>(())
                })
                .await
            }))?
            .await
        })
        .unwrap_err();
        assert_eq!(error_types(&err), set(&["ExceptionGroup"]));
        assert_eq!(error_types(&first_nested(&err)), set(&["ValueError"]));
    }

    /// `try: sleep(10) except CancelledError: sleep(0.5); raise`
    async fn slow_cleanup_body() -> Result<(), Error> {
        match sleep(secs(10)).await {
            Err(err @ Error::Cancelled(_)) => {
                sleep(ms(500)).await?;
                Err(err)
            }
            other => other,
        }
    }

    /// A child fails while the cancelled body cleans up: the group error
    /// wins over the outer cancellation.
    ///
    /// CPython: BaseTestTaskGroup.test_taskgroup_15
    #[test]
    fn test_taskgroup_15() {
        let ev = test_loop();
        let err = run(&ev, async {
            let r = create_task(TaskGroup::scope(|g1| async move {
                g1.create_task(crash_after(ms(300), "ZeroDivisionError"))?;
                slow_cleanup_body().await
            }))?;
            sleep(ms(100)).await?;
            assert!(!r.done());
            r.cancel(None);
            Ok::<_, Error>(r.await.unwrap_err())
        })
        .unwrap();
        assert_eq!(error_types(&err), set(&["ZeroDivisionError"]));
    }

    /// As `test_taskgroup_15`, one task further down.
    ///
    /// CPython: BaseTestTaskGroup.test_taskgroup_16
    #[test]
    fn test_taskgroup_16() {
        let ev = test_loop();
        let err = run(&ev, async {
            let r = create_task(async {
                let t = create_task(TaskGroup::scope(|g1| async move {
                    g1.create_task(crash_after(ms(300), "ZeroDivisionError"))?;
                    slow_cleanup_body().await
                }))?;
                t.await
            })?;
            sleep(ms(100)).await?;
            assert!(!r.done());
            r.cancel(None);
            Ok::<_, Error>(r.await.unwrap_err())
        })
        .unwrap();
        assert_eq!(error_types(&err), set(&["ZeroDivisionError"]));
    }

    /// CPython: BaseTestTaskGroup.test_taskgroup_17
    #[test]
    fn test_taskgroup_17() {
        let ev = test_loop();
        let num = Rc::new(Cell::new(0));
        let counter = num.clone();
        let err = run(&ev, async move {
            let r = create_task(TaskGroup::scope(|_g| async move {
                let slept = sleep(secs(10)).await;
                if slept.is_err() {
                    counter.set(counter.get() + 10);
                }
                slept
            }))?;
            sleep(ms(100)).await?;
            assert!(!r.done());
            r.cancel(None);
            Ok::<_, Error>(r.await.unwrap_err())
        })
        .unwrap();
        assert!(err.is_cancelled(), "{err:?}");
        assert_eq!(num.get(), 10);
    }

    /// The body turns its cancellation into an error: a group with it.
    ///
    /// CPython: BaseTestTaskGroup.test_taskgroup_18
    #[test]
    fn test_taskgroup_18() {
        let ev = test_loop();
        let num = Rc::new(Cell::new(0));
        let counter = num.clone();
        let err = run(&ev, async move {
            let r = create_task(TaskGroup::scope(|_g| async move {
                if sleep(secs(10)).await.is_err() {
                    counter.set(counter.get() + 10);
                    // This isn't a good idea, but we have to support
                    // this weird case.
                    return boom("MyExc");
                }
                Ok::<_, Error>(())
            }))?;
            sleep(ms(100)).await?;
            assert!(!r.done());
            r.cancel(None);
            Ok::<_, Error>(r.await.unwrap_err())
        })
        .unwrap();
        assert_eq!(error_types(&err), set(&["MyExc"]));
        assert_eq!(num.get(), 10);
    }

    /// CPython: BaseTestTaskGroup.test_taskgroup_19
    #[test]
    fn test_taskgroup_19() {
        let ev = test_loop();
        let err = run(&ev, async {
            create_task(TaskGroup::scope(|g| async move {
                g.create_task(crash_after(ms(100), "ZeroDivisionError"))?;
                crash_in_finally(secs(10), "MyExc").await
            }))?
            .await
        })
        .unwrap_err();
        assert_eq!(error_types(&err), set(&["MyExc", "ZeroDivisionError"]));
    }

    #[test]
    #[ignore = "n/a: KeyboardInterrupt (a BaseException) has no Rust counterpart; a panic is an ordinary error (Error::Panic)"]
    fn test_taskgroup_20() {}

    #[test]
    #[ignore = "n/a: BaseException subclasses and BaseExceptionGroup have no Rust counterpart"]
    fn test_taskgroup_20a() {}

    #[test]
    #[ignore = "n/a: BaseException subclasses and BaseExceptionGroup have no Rust counterpart"]
    fn test_taskgroup_21a() {}

    /// CPython: BaseTestTaskGroup.test_taskgroup_22
    #[test]
    fn test_taskgroup_22() {
        let ev = test_loop();
        let err = run(&ev, async {
            let r = create_task(TaskGroup::scope(|g| async move {
                g.create_task(sleep_then(secs(1), 42))?;
                g.create_task(sleep_then(secs(2), 11))?;
                Ok::<_, Error>(())
            }))?;
            sleep(ms(50)).await?;
            r.cancel(None);
            Ok::<_, Error>(r.await.unwrap_err())
        })
        .unwrap();
        assert!(err.is_cancelled(), "{err:?}");
    }

    /// Finished children leave the group (`len(g._tasks)`, counted here by
    /// the jobs themselves).
    ///
    /// CPython: BaseTestTaskGroup.test_taskgroup_23
    #[test]
    fn test_taskgroup_23() {
        let ev = test_loop();
        let running = Rc::new(Cell::new(0usize));
        let counter = running.clone();
        run(
            &ev,
            TaskGroup::scope(|g| async move {
                for count in 0..10 {
                    sleep(ms(100)).await?;
                    counter.set(counter.get() + 1);
                    let job_counter = counter.clone();
                    g.create_task(async move {
                        let slept = sleep(ms(300)).await;
                        job_counter.set(job_counter.get() - 1);
                        slept
                    })?;
                    if count == 5 {
                        assert!(counter.get() < 5, "{}", counter.get());
                    }
                }
                sleep(ms(1350)).await?;
                assert_eq!(counter.get(), 0);
                Ok::<_, Error>(())
            }),
        )
        .unwrap();
        assert_eq!(running.get(), 0);
    }

    /// A child adds children to its own group.
    ///
    /// CPython: BaseTestTaskGroup.test_taskgroup_24
    #[test]
    fn test_taskgroup_24() {
        let ev = test_loop();
        let finished = Rc::new(Cell::new(0));
        let counter = finished.clone();
        let t0 = ev.time();
        run(
            &ev,
            TaskGroup::scope(|g| async move {
                let root_group = g.clone();
                g.create_task(async move {
                    sleep(ms(100)).await?;
                    for d in [ms(100), ms(200)] {
                        let counter = counter.clone();
                        root_group.create_task(async move {
                            sleep(d).await?;
                            counter.set(counter.get() + 1);
                            Ok::<_, Error>(())
                        })?;
                    }
                    Ok::<_, Error>(())
                })?;
                Ok::<_, Error>(())
            }),
        )
        .unwrap();
        assert_eq!(finished.get(), 2, "the scope waited for the grandchildren");
        assert_eq!(ev.time() - t0, ms(300));
    }

    /// `hydra`: each head sleeps, then adds two heads to the group.
    fn hydra(
        g: TaskGroup,
        heads: Rc<Cell<u32>>,
    ) -> Pin<Box<dyn StdFuture<Output = Result<(), Error>>>> {
        Box::pin(async move {
            heads.set(heads.get() + 1);
            sleep(ms(10)).await?;
            g.create_task(hydra(g.clone(), heads.clone()))?;
            g.create_task(hydra(g.clone(), heads.clone()))?;
            Ok(())
        })
    }

    /// CPython: BaseTestTaskGroup.test_taskgroup_25
    #[test]
    fn test_taskgroup_25() {
        let ev = test_loop();
        let nhydras = Rc::new(Cell::new(0));
        let heads = nhydras.clone();
        let err = run(
            &ev,
            TaskGroup::scope(|g| async move {
                g.create_task(hydra(g.clone(), heads.clone()))?;
                g.create_task(async move {
                    for _ in 0..1000 {
                        if heads.get() >= 10 {
                            break;
                        }
                        sleep(ms(15)).await?;
                    }
                    boom::<()>("ZeroDivisionError")
                })?;
                Ok::<_, Error>(())
            }),
        )
        .unwrap_err();
        assert_eq!(error_types(&err), set(&["ZeroDivisionError"]));
        assert!(nhydras.get() >= 10);
    }

    /// `create_task(coro, name=…)` is `create_task` then `set_name`.
    ///
    /// CPython: BaseTestTaskGroup.test_taskgroup_task_name
    #[test]
    fn test_taskgroup_task_name() {
        let ev = test_loop();
        let name = run(
            &ev,
            TaskGroup::scope(|g| async move {
                let t = g.create_task(yield_now())?;
                t.set_name("yolo");
                Ok::<_, Error>(t.get_name())
            }),
        )
        .unwrap();
        assert_eq!(name, "yolo");
    }

    #[test]
    #[ignore = "n/a: create_task takes no context argument (tulip has ContextVar, but no copy_context)"]
    fn test_taskgroup_task_context() {}

    /// CPython: BaseTestTaskGroup.test_taskgroup_no_create_task_after_failure
    #[test]
    fn test_taskgroup_no_create_task_after_failure() {
        let ev = test_loop();
        let refused = Rc::new(RefCell::new(None::<Error>));
        let slot = refused.clone();
        let err = run(
            &ev,
            TaskGroup::scope(|g| async move {
                g.create_task(crash_after(ms(1), "ZeroDivisionError"))?;
                let group = g.clone();
                g.create_task(async move {
                    if sleep(secs(1)).await.is_err() {
                        let again = group.create_task(crash_after(ms(1), "ZeroDivisionError"));
                        *slot.borrow_mut() = again.err();
                    }
                    Ok::<_, Error>(())
                })?;
                Ok::<_, Error>(())
            }),
        )
        .unwrap_err();
        assert_eq!(error_types(&err), set(&["ZeroDivisionError"]));
        let refused = refused
            .borrow_mut()
            .take()
            .expect("create_task was refused");
        assert!(
            runtime_message(&refused).contains("shutting down"),
            "{refused:?}"
        );
    }

    /// The body fails in its own cleanup (a context manager's `finally`)
    /// after the group cancelled it: both errors are collected and the
    /// parent's cancellation count is back to zero (cpython#95289).
    ///
    /// CPython: BaseTestTaskGroup.test_taskgroup_context_manager_exit_raises
    #[test]
    fn test_taskgroup_context_manager_exit_raises() {
        let ev = test_loop();
        let (err, cancelling) = run(&ev, async {
            create_task(async {
                let result = TaskGroup::scope(|tg| async move {
                    // async with database():
                    tg.create_task(async { boom::<()>("CustomException") })?;
                    let _ = sleep(secs(1)).await;
                    boom::<()>("CustomException") // database's finally
                })
                .await;
                Ok::<_, Error>((result.unwrap_err(), current_task().unwrap().cancelling()))
            })?
            .await
        })
        .unwrap();
        assert_eq!(cancelling, 0);
        assert_eq!(err.as_group().unwrap().exceptions().len(), 2, "{err:?}");
        assert_eq!(error_types(&err), set(&["CustomException"]));
    }

    #[test]
    #[ignore = "n/a: TaskGroup::scope enters a group exactly once; a second entry cannot be written"]
    fn test_taskgroup_already_entered() {}

    #[test]
    #[ignore = "n/a: TaskGroup::scope enters a group exactly once; a second entry cannot be written"]
    fn test_taskgroup_double_enter() {}

    /// `create_task` on a finished group fails, and the coroutine is
    /// dropped without running (Python closes it).
    ///
    /// CPython: BaseTestTaskGroup.test_taskgroup_finished
    #[test]
    fn test_taskgroup_finished() {
        let ev = test_loop();
        let dropped = Rc::new(Cell::new(false));
        let ran = Rc::new(Cell::new(false));
        let (flag, ran2) = (dropped.clone(), ran.clone());
        let err = run(&ev, async move {
            let tg = TaskGroup::scope(|tg| async move { Ok::<_, Error>(tg) }).await?;
            let guard = DropFlag(flag);
            let coro = async move {
                let _guard = guard;
                ran2.set(true);
                yield_now().await
            };
            Ok::<_, Error>(tg.create_task(coro).unwrap_err())
        })
        .unwrap();
        assert!(runtime_message(&err).contains("is finished"), "{err:?}");
        assert!(dropped.get(), "the refused coroutine was dropped");
        assert!(!ran.get());
    }

    #[test]
    #[ignore = "n/a: a TaskGroup handle exists only inside TaskGroup::scope, which enters it"]
    fn test_taskgroup_not_entered() {}

    /// Entering a group from a loop callback, outside any task, fails.
    ///
    /// CPython: BaseTestTaskGroup.test_taskgroup_without_parent_task
    #[test]
    fn test_taskgroup_without_parent_task() {
        let ev = test_loop();
        let body_ran = Rc::new(Cell::new(false));
        let outcome: Rc<RefCell<Option<Polled>>> = Rc::default();
        let (slot, ran) = (outcome.clone(), body_ran.clone());
        ev.call_soon(move |_| {
            let mut entering = Box::pin(TaskGroup::scope(|_tg| async move {
                ran.set(true);
                Ok::<_, Error>(())
            }));
            *slot.borrow_mut() = Some(poll_once(&mut entering));
        })
        .unwrap();
        run_briefly(&ev);
        let polled = outcome.borrow_mut().take().expect("the callback ran");
        let Poll::Ready(Err(err)) = polled else {
            panic!("entering outside a task must fail: {polled:?}")
        };
        assert!(runtime_message(&err).contains("task"), "{err:?}");
        assert!(!body_ran.get());
    }

    /// CPython: BaseTestTaskGroup.test_coro_closed_when_tg_closed
    #[test]
    fn test_coro_closed_when_tg_closed() {
        let ev = test_loop();
        let dropped = Rc::new(Cell::new(false));
        let flag = dropped.clone();
        let err = run(&ev, async move {
            let tg = TaskGroup::scope(|tg| async move { Ok::<_, Error>(tg) }).await?;
            let guard = DropFlag(flag);
            let coro = async move {
                let _guard = guard;
                yield_now().await
            };
            Ok::<_, Error>(tg.create_task(coro).unwrap_err())
        })
        .unwrap();
        assert!(runtime_message(&err).contains("is finished"), "{err:?}");
        assert!(dropped.get());
    }

    /// CPython: BaseTestTaskGroup.test_cancelling_level_preserved
    #[test]
    fn test_cancelling_level_preserved() {
        let ev = test_loop();
        let cancelling = run(&ev, async {
            let err = TaskGroup::scope(|tg| async move {
                tg.create_task(crash_after(Duration::ZERO, "RuntimeError"))?;
                Ok::<_, Error>(())
            })
            .await
            .unwrap_err();
            assert_eq!(error_types(&err), set(&["RuntimeError"]));
            Ok::<_, Error>(current_task().unwrap().cancelling())
        })
        .unwrap();
        assert_eq!(cancelling, 0);
    }

    /// Two nested groups whose children fail in the same iteration: each
    /// group takes back exactly its own cancellation of the parent.
    ///
    /// CPython: BaseTestTaskGroup.test_nested_groups_both_cancelled
    #[test]
    fn test_nested_groups_both_cancelled() {
        let ev = test_loop();
        let (outer_err, level_inside, level_after) = run(&ev, async {
            let level_inside = Rc::new(Cell::new(None));
            let seen = level_inside.clone();
            let outer = TaskGroup::scope(|outer_tg| async move {
                let inner = TaskGroup::scope(|inner_tg| async move {
                    inner_tg.create_task(crash_after(Duration::ZERO, "RuntimeError"))?;
                    outer_tg.create_task(crash_after(Duration::ZERO, "ValueError"))?;
                    Ok::<_, Error>(())
                })
                .await;
                let err = inner.expect_err("RuntimeError not raised");
                assert_eq!(error_types(&err), set(&["RuntimeError"]));
                seen.set(Some(current_task().unwrap().cancelling()));
                Ok::<_, Error>(())
            })
            .await;
            let level_after = current_task().unwrap().cancelling();
            Ok::<_, Error>((outer.unwrap_err(), level_inside.get(), level_after))
        })
        .unwrap();
        assert_eq!(error_types(&outer_err), set(&["ValueError"]));
        assert_eq!(level_inside, Some(1));
        assert_eq!(level_after, 0);
    }

    /// A child error and an outer cancellation at once: the group raises
    /// the error, and the outer cancellation is not lost: the parent is
    /// cancelled again at its next await.
    ///
    /// CPython: BaseTestTaskGroup.test_error_and_cancel
    #[test]
    fn test_error_and_cancel() {
        let ev = test_loop();
        run(&ev, async {
            let event = Event::new();
            let child_event = event.clone();
            let levels = Rc::new(RefCell::new(Vec::new()));
            let seen = levels.clone();
            let inner = async move {
                let group = TaskGroup::scope(|tg| async move {
                    tg.create_task(async move {
                        child_event.set();
                        yield_now().await?;
                        boom::<()>("RuntimeError")
                    })?;
                    sleep(secs(1)).await?;
                    panic!("Sleep in group should have been cancelled");
                    #[allow(unreachable_code)]
                    Ok::<_, Error>(())
                })
                .await;
                // except* RuntimeError:
                let err = group.unwrap_err();
                assert_eq!(error_types(&err), set(&["RuntimeError"]));
                seen.borrow_mut().push(current_task().unwrap().cancelling());
                sleep(secs(1)).await?;
                panic!("Sleep after group should have been cancelled");
                #[allow(unreachable_code)]
                Ok::<_, Error>(())
            };
            let t = create_task(inner)?;
            event.wait().await?;
            assert_eq!(t.cancelling(), 0);
            t.cancel(None);
            assert_eq!(t.cancelling(), 1);
            let err = t.clone().await.unwrap_err();
            assert!(err.is_cancelled(), "{err:?}");
            assert!(t.cancelled());
            assert_eq!(*levels.borrow(), [1]);
            Ok::<_, Error>(())
        })
        .unwrap();
    }

    #[test]
    #[ignore = "n/a: Python GC reference cycles of exception objects"]
    fn test_exception_refcycles_direct() {}

    #[test]
    #[ignore = "n/a: Python GC reference cycles of exception objects"]
    fn test_exception_refcycles_errors() {}

    #[test]
    #[ignore = "n/a: Python GC reference cycles of exception objects"]
    fn test_exception_refcycles_parent_task() {}

    #[test]
    #[ignore = "n/a: Python GC reference cycles of exception objects"]
    fn test_exception_refcycles_parent_task_wr() {}

    #[test]
    #[ignore = "n/a: Python GC reference cycles of exception objects"]
    fn test_exception_refcycles_propagate_cancellation_error() {}

    #[test]
    #[ignore = "n/a: Python GC reference cycles of exception objects"]
    fn test_exception_refcycles_base_error() {}

    /// The name given to a child is what the child sees as its own.
    ///
    /// CPython: BaseTestTaskGroup.test_name
    #[test]
    fn test_name() {
        let ev = test_loop();
        let name = Rc::new(RefCell::new(None::<String>));
        let slot = name.clone();
        run(
            &ev,
            TaskGroup::scope(|tg| async move {
                let t = tg.create_task(async move {
                    *slot.borrow_mut() = Some(current_task().unwrap().get_name());
                })?;
                t.set_name("example name");
                Ok::<_, Error>(())
            }),
        )
        .unwrap();
        assert_eq!(name.borrow().as_deref(), Some("example name"));
    }

    /// A child created by a sibling fails at once: the sibling is cancelled
    /// at its next suspension (gh-128550).
    ///
    /// CPython: BaseTestTaskGroup.test_cancels_task_if_created_during_creation
    #[test]
    fn test_cancels_task_if_created_during_creation() {
        let ev = test_loop();
        let ran = Rc::new(Cell::new(false));
        let flag = ran.clone();
        let err = run(
            &ev,
            TaskGroup::scope(|tg| async move {
                let group = tg.clone();
                tg.create_task(async move {
                    group.create_task(async { boom::<()>("third task failed") })?;
                    let waited = async {
                        yield_now().await?; // eager tasks cancel here
                        yield_now().await // lazy tasks cancel here
                    }
                    .await;
                    assert!(waited.unwrap_err().is_cancelled());
                    flag.set(true);
                    Ok::<_, Error>(())
                })?;
                Ok::<_, Error>(())
            }),
        )
        .unwrap_err();
        assert!(ran.get());
        assert_eq!(error_types(&err), set(&["third task failed"]));
    }

    /// CPython: BaseTestTaskGroup.test_cancellation_does_not_leak_out_of_tg
    #[test]
    fn test_cancellation_does_not_leak_out_of_tg() {
        let ev = test_loop();
        run(&ev, async {
            let err = TaskGroup::scope(|tg| async move {
                tg.create_task(async { boom::<()>("MyError") })?;
                Ok::<_, Error>(())
            })
            .await
            .expect_err("should have raised one MyError in group");
            assert_eq!(error_types(&err), set(&["MyError"]));
            // If the group leaked its cancellation, this would fail.
            yield_now().await?;
            Ok::<_, Error>(())
        })
        .unwrap();
    }
}

/// CPython runs every case again with `asyncio.eager_task_factory`.
mod test_eager_task_task_group {
    #[test]
    #[ignore = "n/a: tulip has no task factories and no eager tasks; every case runs once, lazily, in test_task_group"]
    fn test_every_case_with_eager_task_factory() {}
}

//! CPython's `Lib/test/test_asyncio/test_runners.py`, ported to
//! loop-futures' [`run`] and [`Runner`].
//!
//! Each CPython test class is a `mod`; each case keeps its CPython name
//! (`/// CPython: Class.test_x`). Cases that cannot apply stay as
//! `#[ignore = "n/a: …"]` stubs so that coverage can be counted: tulip has
//! no loop factories, task factories or event loop policies, and `run`
//! takes a `std::future::Future`, so a non-awaitable argument is a compile
//! error.
//!
//! `run` and `Runner` build their own loop on the real clock, so these tests
//! never sleep: they yield (`yield_now`) or wait on futures, and every test
//! that could wait has a watchdog timer.
//!
//! Ctrl-C: asyncio turns the first SIGINT into a cancellation of the main
//! task and raises `KeyboardInterrupt`; tulip's `Runner` returns the main
//! task's cancellation (message "interrupted by SIGINT"). The tests raise
//! SIGINT on their own thread with `handle_sigint(true)`, one at a time, and
//! only ever raise it once. While they do, a guard loop also handles SIGINT,
//! so that the signal's default action (ending the test process) cannot
//! apply even if the runner failed to install its handler.

#[path = "support/mod.rs"]
mod support;

use std::cell::{Cell, RefCell};
use std::future::Future as StdFuture;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use loop_core::{EventLoop, ExceptionContext, get_running_loop, signal};
use loop_futures::{
    ContextVar, Error, EventLoopExt, Executor, Job, Runner, Task, ThreadPoolExecutor, create_task,
    current_task, run, yield_now,
};

use support::Boom;

fn runtime_message(err: &Error) -> String {
    match err {
        Error::Runtime(e) => e.message().to_owned(),
        other => format!("not a RuntimeError: {other:?}"),
    }
}

fn cancel_message(err: &Error) -> Option<Option<String>> {
    err.as_cancelled().map(|c| c.message().map(str::to_owned))
}

/// Sets its flag when dropped.
struct DropFlag(Rc<Cell<bool>>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

/// Stops `ev` after a long while, so that a broken test fails instead of
/// hanging ("Event loop stopped before Future completed.").
fn watchdog(ev: &EventLoop) {
    ev.call_later(Duration::from_secs(30), |ev| ev.stop())
        .expect("loop open");
}

mod run_tests {
    use super::*;

    /// CPython: RunTests.test_asyncio_run_return
    #[test]
    fn test_asyncio_run_return() {
        let value = run(async {
            yield_now().await?;
            Ok::<_, Error>(42)
        })
        .unwrap();
        assert_eq!(value, 42);
    }

    /// CPython: RunTests.test_asyncio_run_raises
    #[test]
    fn test_asyncio_run_raises() {
        let err = run(async {
            yield_now().await?;
            Err::<(), _>(Error::new(Boom("spam")))
        })
        .unwrap_err();
        assert_eq!(err.downcast_ref::<Boom>(), Some(&Boom("spam")));
    }

    #[test]
    #[ignore = "n/a: run takes a std::future::Future; anything else is a compile error"]
    fn test_asyncio_run_only_coro() {}

    /// `asyncio.run(debug=…)` is `Runner::new().debug(…)` (`run` itself
    /// follows `TULIP_DEBUG`, as asyncio follows `PYTHONASYNCIODEBUG`).
    ///
    /// CPython: RunTests.test_asyncio_run_debug
    #[test]
    fn test_asyncio_run_debug() {
        for expected in [false, true] {
            let mut runner = Runner::new().debug(expected);
            let seen = runner
                .run(async { Ok::<_, Error>(get_running_loop()?.get_debug()) })
                .unwrap();
            assert_eq!(seen, expected);
            runner.close().unwrap();
        }
    }

    /// CPython: RunTests.test_asyncio_run_from_running_loop
    #[test]
    fn test_asyncio_run_from_running_loop() {
        let inner_ran = Rc::new(Cell::new(false));
        let flag = inner_ran.clone();
        let err = run(async move {
            let inner = run(async move {
                flag.set(true);
                Ok::<_, Error>(())
            });
            Ok::<_, Error>(inner.unwrap_err())
        })
        .unwrap();
        assert!(
            runtime_message(&err).contains("cannot be called from a running"),
            "{err:?}"
        );
        assert!(!inner_ran.get());
    }

    /// CPython: RunTests.test_asyncio_run_cancels_hanging_tasks
    #[test]
    fn test_asyncio_run_cancels_hanging_tasks() {
        let lo_task: Rc<RefCell<Option<Task<()>>>> = Rc::default();
        let slot = lo_task.clone();
        let value = run(async move {
            let leftover = create_task(async {
                // Never completes on its own.
                get_running_loop()?.create_future::<()>().await
            })?;
            *slot.borrow_mut() = Some(leftover);
            Ok::<_, Error>(123)
        })
        .unwrap();
        assert_eq!(value, 123);
        let lo_task = lo_task.borrow_mut().take().unwrap();
        assert!(lo_task.done());
        assert!(lo_task.cancelled());
    }

    /// A leftover task that fails while being cancelled at shutdown is
    /// reported to the loop's exception handler.
    ///
    /// CPython: RunTests.test_asyncio_run_reports_hanging_tasks_errors
    #[test]
    fn test_asyncio_run_reports_hanging_tasks_errors() {
        let reports: Rc<RefCell<Vec<ExceptionContext>>> = Rc::default();
        let lo_task: Rc<RefCell<Option<Task<()>>>> = Rc::default();
        let (sink, slot) = (reports.clone(), lo_task.clone());
        let value = run(async move {
            get_running_loop()?.set_exception_handler(Some(
                move |_: &EventLoop, ctx: ExceptionContext| sink.borrow_mut().push(ctx),
            ));
            let leftover = create_task(async {
                match get_running_loop()?.create_future::<()>().await {
                    Err(Error::Cancelled(_)) => Err(Error::new(Boom("ZeroDivisionError"))),
                    other => other,
                }
            })?;
            *slot.borrow_mut() = Some(leftover);
            Ok::<_, Error>(123)
        })
        .unwrap();
        assert_eq!(value, 123);
        let lo_task = lo_task.borrow_mut().take().unwrap();
        assert!(lo_task.done());
        let reports = reports.borrow();
        assert_eq!(reports.len(), 1, "{reports:?}");
        let ctx = &reports[0];
        assert!(ctx.message().contains("run() shutdown"), "{ctx:?}");
        let error = ctx.error().expect("the error is attached");
        assert_eq!(
            error.downcast_ref::<Boom>(),
            Some(&Boom("ZeroDivisionError"))
        );
        assert_eq!(ctx.extra("task"), Some(lo_task.get_name().as_str()));
    }

    /// Python also checks that async generators are closed; the Rust
    /// counterpart is that the leftover task's coroutine (with whatever it
    /// owns) is dropped. `main`'s own error is what `run` returns.
    ///
    /// CPython: RunTests.test_asyncio_run_closes_gens_after_hanging_tasks_errors
    #[test]
    fn test_asyncio_run_closes_gens_after_hanging_tasks_errors() {
        let spinner_closed = Rc::new(Cell::new(false));
        let lazyboy: Rc<RefCell<Option<Task<()>>>> = Rc::default();
        let (flag, slot) = (spinner_closed.clone(), lazyboy.clone());
        let err = run(async move {
            get_running_loop()?
                .set_exception_handler(Some(|_: &EventLoop, _: ExceptionContext| {}));
            let spinner = DropFlag(flag);
            let task = create_task(async move {
                let _spinner = spinner;
                for _ in 0..1_000_000 {
                    if let Err(Error::Cancelled(_)) = yield_now().await {
                        return Err(Error::new(Boom("ZeroDivisionError")));
                    }
                }
                Ok(())
            })?;
            *slot.borrow_mut() = Some(task);
            Err::<(), _>(Error::new(Boom("FancyExit")))
        })
        .unwrap_err();
        assert_eq!(err.downcast_ref::<Boom>(), Some(&Boom("FancyExit")));
        assert!(lazyboy.borrow().as_ref().unwrap().done());
        assert!(spinner_closed.get());
    }

    #[test]
    #[ignore = "n/a: tulip has no global event loop (set_event_loop)"]
    fn test_asyncio_run_set_event_loop() {}

    #[test]
    #[ignore = "n/a: tulip has no task factories"]
    fn test_asyncio_run_without_uncancel() {}

    #[test]
    #[ignore = "n/a: run takes no loop_factory"]
    fn test_asyncio_run_loop_factory() {}

    #[test]
    #[ignore = "n/a: run takes no loop_factory; there is one loop type"]
    fn test_loop_factory_default_event_loop() {}
}

/// The SIGINT tests run one at a time.
static SIGINT_LOCK: Mutex<()> = Mutex::new(());

/// While alive: the SIGINT tests are serialised, and a second loop handles
/// SIGINT, so the signal's default action cannot end the test process.
struct SigintGuard {
    ev: EventLoop,
    _serial: MutexGuard<'static, ()>,
}

impl SigintGuard {
    fn new() -> SigintGuard {
        let serial = SIGINT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let ev = EventLoop::new().expect("guard loop");
        ev.add_signal_handler(signal::SIGINT, |_| {})
            .expect("guard SIGINT handler");
        SigintGuard {
            ev,
            _serial: serial,
        }
    }
}

impl Drop for SigintGuard {
    fn drop(&mut self) {
        let _ = self.ev.remove_signal_handler(signal::SIGINT);
        let _ = self.ev.close();
    }
}

/// Raises SIGINT once, from a loop callback.
fn interrupt_self(ev: &EventLoop) {
    ev.call_soon(|_| signal::raise(signal::SIGINT).expect("raise SIGINT"))
        .expect("loop open");
}

/// An executor that counts its shutdowns and runs jobs on a one-thread pool.
struct RecordingExecutor {
    shutdowns: AtomicUsize,
    pool: ThreadPoolExecutor,
}

impl Executor for RecordingExecutor {
    fn execute(&self, job: Job) -> Result<(), Error> {
        self.pool.execute(job)
    }

    fn shutdown(&self, wait: bool) {
        self.shutdowns.fetch_add(1, Ordering::SeqCst);
        self.pool.shutdown(wait);
    }
}

mod runner_tests {
    use super::*;

    /// CPython: RunnerTests.test_non_debug
    #[test]
    fn test_non_debug() {
        let mut runner = Runner::new().debug(false);
        assert!(!runner.get_loop().unwrap().get_debug());
    }

    /// CPython: RunnerTests.test_debug
    #[test]
    fn test_debug() {
        let mut runner = Runner::new().debug(true);
        assert!(runner.get_loop().unwrap().get_debug());
    }

    #[test]
    #[ignore = "n/a: Runner takes no loop_factory"]
    fn test_custom_factory() {}

    /// CPython: RunnerTests.test_run
    #[test]
    fn test_run() {
        let mut runner = Runner::new();
        let value = runner
            .run(async {
                yield_now().await?;
                Ok::<_, Error>("done")
            })
            .unwrap();
        assert_eq!(value, "done");
        let ev = runner.get_loop().unwrap();
        runner.close().unwrap(); // end of `with`
        let err = runner.get_loop().unwrap_err();
        assert!(
            runtime_message(&err).contains("Runner is closed"),
            "{err:?}"
        );
        assert!(ev.is_closed());
    }

    #[test]
    #[ignore = "n/a: Runner::run takes a std::future::Future; anything else is a compile error"]
    fn test_run_non_coro() {}

    /// CPython: RunnerTests.test_run_future
    #[test]
    fn test_run_future() {
        let mut runner = Runner::new();
        let fut = runner.get_loop().unwrap().create_future::<&str>();
        fut.set_result("done").unwrap();
        assert_eq!(runner.run(fut).unwrap(), "done");
    }

    /// Any awaitable, not just an `async` block.
    ///
    /// CPython: RunnerTests.test_run_awaitable
    #[test]
    fn test_run_awaitable() {
        struct MyAwaitable;

        impl StdFuture for MyAwaitable {
            type Output = Result<&'static str, Error>;

            fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Self::Output> {
                Poll::Ready(Ok("done"))
            }
        }

        let mut runner = Runner::new();
        assert_eq!(runner.run(MyAwaitable).unwrap(), "done");
    }

    /// CPython: RunnerTests.test_explicit_close
    #[test]
    fn test_explicit_close() {
        let mut runner = Runner::new();
        let ev = runner.get_loop().unwrap();
        runner.close().unwrap();
        let err = runner.get_loop().unwrap_err();
        assert!(
            runtime_message(&err).contains("Runner is closed"),
            "{err:?}"
        );
        assert!(ev.is_closed());
    }

    /// CPython: RunnerTests.test_double_close
    #[test]
    fn test_double_close() {
        let mut runner = Runner::new();
        let ev = runner.get_loop().unwrap();
        runner.close().unwrap();
        assert!(ev.is_closed());
        // the second call is no-op
        runner.close().unwrap();
        assert!(ev.is_closed());
    }

    /// CPython: RunnerTests.test_second_with_block_raises
    #[test]
    fn test_second_with_block_raises() {
        let ret = Rc::new(RefCell::new(Vec::new()));
        let f = |arg: i32| {
            let ret = ret.clone();
            async move {
                ret.borrow_mut().push(arg);
            }
        };
        let mut runner = Runner::new();
        runner.run(f(1)).unwrap();
        runner.close().unwrap();
        let err = runner.run(f(2)).unwrap_err();
        assert!(
            runtime_message(&err).contains("Runner is closed"),
            "{err:?}"
        );
        assert_eq!(*ret.borrow(), [1]);
    }

    /// The runner keeps one context for all its runs: a value set by one
    /// run is seen by the next, and not outside the runner.
    ///
    /// CPython: RunnerTests.test_run_keeps_context
    #[test]
    fn test_run_keeps_context() {
        let cvar = ContextVar::with_default("cvar", -1);
        let f = |val: i32| {
            let cvar = cvar.clone();
            async move {
                let old = cvar.get();
                yield_now().await?;
                cvar.set(val);
                Ok::<_, Error>(old)
            }
        };
        let mut runner = Runner::new();
        assert_eq!(runner.run(f(1)).unwrap(), Some(-1));
        assert_eq!(runner.run(f(2)).unwrap(), Some(1));
        let get_context = {
            let cvar = cvar.clone();
            async move { Ok::<_, Error>(cvar.get()) }
        };
        assert_eq!(runner.run(get_context).unwrap(), Some(2));
        runner.close().unwrap();
        assert_eq!(
            cvar.get(),
            Some(-1),
            "the runner's values stay in the runner"
        );
    }

    /// `Runner::run` from inside a running loop is refused and the
    /// coroutine never runs (Python warns it was never awaited).
    ///
    /// CPython: RunnerTests.test_recursive_run
    #[test]
    fn test_recursive_run() {
        let g_ran = Rc::new(Cell::new(false));
        let flag = g_ran.clone();
        let mut runner = Runner::new();
        let err = runner
            .run(async move {
                let g = async move {
                    flag.set(true);
                };
                Ok::<_, Error>(Runner::new().run(g).unwrap_err())
            })
            .unwrap();
        assert_eq!(
            runtime_message(&err),
            "Runner.run() cannot be called from a running event loop"
        );
        assert!(!g_ran.get());
        // The runner is still usable.
        assert_eq!(runner.run(async { Ok::<_, Error>(5) }).unwrap(), 5);
    }

    /// SIGINT while the main task only yields (never suspended on a
    /// future): the next yield delivers the cancellation.
    ///
    /// CPython: RunnerTests.test_interrupt_call_soon
    #[test]
    fn test_interrupt_call_soon() {
        let _guard = SigintGuard::new();
        let mut runner = Runner::new().handle_sigint(true);
        let ev = runner.get_loop().unwrap();
        watchdog(&ev);
        interrupt_self(&ev);
        let err = runner
            .run(async {
                for _ in 0..1_000_000 {
                    if let Err(err) = yield_now().await {
                        assert!(err.is_cancelled(), "{err:?}");
                        return Err(err);
                    }
                }
                Ok(())
            })
            .unwrap_err();
        assert_eq!(
            cancel_message(&err),
            Some(Some("interrupted by SIGINT".to_owned()))
        );
        runner.close().unwrap();
    }

    /// A SIGINT handler the user added to the runner's loop is kept: the
    /// runner does not install its own over it (asyncio installs its
    /// handler only over the default one), and the user's handler gets
    /// the signal, the main task is not cancelled.
    ///
    /// CPython: RunnerTests.test_signal_install_not_supported_ok (the
    /// handler-already-set half of the runner's check)
    #[test]
    fn test_users_sigint_handler_on_the_runners_loop_is_kept() {
        let _guard = SigintGuard::new();
        let mut runner = Runner::new().handle_sigint(true);
        let ev = runner.get_loop().unwrap();
        watchdog(&ev);
        let seen = Rc::new(Cell::new(0));
        let s = seen.clone();
        ev.add_signal_handler(signal::SIGINT, move |_| s.set(s.get() + 1))
            .unwrap();
        interrupt_self(&ev);
        let arrived = seen.clone();
        let value = runner
            .run(async move {
                // Until the signal has arrived (a few iterations; bounded).
                for _ in 0..1_000 {
                    if arrived.get() > 0 {
                        break;
                    }
                    yield_now().await?;
                }
                Ok::<_, Error>(7)
            })
            .unwrap();
        assert_eq!(value, 7, "the main task was not cancelled");
        assert!(ev.has_signal_handler(signal::SIGINT), "still installed");
        assert!(ev.remove_signal_handler(signal::SIGINT).unwrap());
        assert_eq!(seen.get(), 1, "the user's handler got the signal");
        runner.close().unwrap();
    }

    /// SIGINT while the main task waits on a future cancels both.
    ///
    /// CPython: RunnerTests.test_interrupt_wait
    #[test]
    fn test_interrupt_wait() {
        let _guard = SigintGuard::new();
        let mut runner = Runner::new().handle_sigint(true);
        let ev = runner.get_loop().unwrap();
        watchdog(&ev);
        let fut = ev.create_future::<()>();
        interrupt_self(&ev);
        let awaited = fut.clone();
        let err = runner
            .run(async move {
                let err = awaited.await.unwrap_err();
                assert!(err.is_cancelled(), "{err:?}");
                Err::<(), _>(err)
            })
            .unwrap_err();
        assert_eq!(
            cancel_message(&err),
            Some(Some("interrupted by SIGINT".to_owned()))
        );
        assert!(fut.cancelled());
        runner.close().unwrap();
    }

    /// SIGINT on a main task that was already cancelled once: one more
    /// cancellation request (asyncio: `CancelledError`, not
    /// `KeyboardInterrupt`, because `uncancel()` does not reach 0).
    ///
    /// Unlike CPython's version, the main task swallows the first
    /// cancellation and stays pending until the second one: tulip handles
    /// the signal in a later loop iteration, and a SIGINT that finds the
    /// main task already done is treated as the second Ctrl-C (the default
    /// action, which would end the test process).
    ///
    /// CPython: RunnerTests.test_interrupt_cancelled_task
    #[test]
    fn test_interrupt_cancelled_task() {
        let _guard = SigintGuard::new();
        let mut runner = Runner::new().handle_sigint(true);
        let ev = runner.get_loop().unwrap();
        watchdog(&ev);
        let cancellations = Rc::new(Cell::new(0));
        let levels = Rc::new(Cell::new(0));
        let (count, level) = (cancellations.clone(), levels.clone());
        let err = runner
            .run(async move {
                let main = current_task().unwrap();
                create_task(async move {
                    yield_now().await?;
                    main.cancel(None);
                    signal::raise(signal::SIGINT)?;
                    Ok::<_, Error>(())
                })?;
                let ev = get_running_loop()?;
                for _ in 0..2 {
                    if let Err(err) = ev.create_future::<()>().await {
                        count.set(count.get() + 1);
                        if count.get() == 2 {
                            level.set(current_task().unwrap().cancelling());
                            return Err(err);
                        }
                    }
                }
                Ok(())
            })
            .unwrap_err();
        assert!(err.is_cancelled(), "{err:?}");
        assert_eq!(cancellations.get(), 2);
        assert_eq!(levels.get(), 2, "both cancellation requests are counted");
        runner.close().unwrap();
    }

    #[test]
    #[ignore = "n/a: the OS cannot be made to refuse the SIGINT handler from a test"]
    fn test_signal_install_not_supported_ok() {}

    /// asyncio installs its loop once for all runs; here: every run uses the
    /// runner's one loop.
    ///
    /// CPython: RunnerTests.test_set_event_loop_called_once
    #[test]
    fn test_set_event_loop_called_once() {
        let mut runner = Runner::new();
        let ev = runner.get_loop().unwrap();
        for _ in 0..2 {
            let running = runner
                .run(async { Ok::<_, Error>(get_running_loop()?) })
                .unwrap();
            assert!(running.same_loop(&ev));
        }
        assert!(runner.get_loop().unwrap().same_loop(&ev));
        runner.close().unwrap();
        assert!(ev.is_closed());
    }

    #[test]
    #[ignore = "n/a: Python's repr; the result is moved out, never formatted"]
    fn test_no_repr_is_call_on_the_task_result() {}
}

/// Runner behaviour the brief asks for beyond CPython's cases.
mod runner_teardown {
    use super::*;

    /// Several runs on one loop see each other's state; `close` cancels
    /// the tasks left over by earlier runs, shuts the default executor down
    /// (once) and closes the loop.
    #[test]
    fn close_cancels_leftover_tasks_and_shuts_the_executor_down() {
        let executor = Arc::new(RecordingExecutor {
            shutdowns: AtomicUsize::new(0),
            pool: ThreadPoolExecutor::new(1),
        });
        let mut runner = Runner::new();
        let ev = runner.get_loop().unwrap();
        ev.set_default_executor(executor.clone());
        let cleaned_up = Rc::new(Cell::new(false));
        let flag = cleaned_up.clone();
        let leftover = runner
            .run(async move {
                create_task(async move {
                    let waited = get_running_loop()?.create_future::<()>().await;
                    flag.set(waited.as_ref().is_err_and(Error::is_cancelled));
                    waited
                })
            })
            .unwrap();
        // A second run on the same loop: the leftover task is still there.
        let probe = leftover.clone();
        let pending = runner
            .run(async move {
                let tasks = loop_futures::all_tasks(&get_running_loop()?);
                Ok::<_, Error>(tasks.iter().any(|t| *t == probe))
            })
            .unwrap();
        assert!(pending, "the leftover task survives between runs");
        let doubled = runner
            .run(async { get_running_loop()?.run_in_executor(None, || 21 * 2)?.await })
            .unwrap();
        assert_eq!(doubled, 42);
        assert!(!leftover.done());
        runner.close().unwrap();
        assert!(leftover.cancelled());
        assert!(cleaned_up.get(), "the leftover task saw its cancellation");
        assert_eq!(executor.shutdowns.load(Ordering::SeqCst), 1);
        assert!(ev.is_closed());
        runner.close().unwrap();
        assert_eq!(executor.shutdowns.load(Ordering::SeqCst), 1);
    }

    /// Dropping a runner tears it down like `close`.
    #[test]
    fn dropping_the_runner_closes_it() {
        let mut runner = Runner::new();
        let ev = runner.get_loop().unwrap();
        let leftover = runner
            .run(async { create_task(async { get_running_loop()?.create_future::<()>().await }) })
            .unwrap();
        drop(runner);
        assert!(leftover.cancelled());
        assert!(ev.is_closed());
    }

    /// An error of `run` (the coroutine's own) leaves the runner usable.
    #[test]
    fn a_failed_run_leaves_the_runner_usable() {
        let mut runner = Runner::new();
        let err = runner
            .run(async { Err::<(), _>(Error::new(Boom("first"))) })
            .unwrap_err();
        assert_eq!(err.downcast_ref::<Boom>(), Some(&Boom("first")));
        assert_eq!(runner.run(async { Ok::<_, Error>(2) }).unwrap(), 2);
    }
}

//! CPython's `Lib/test/test_asyncio/test_futures2.py`, ported to
//! loop-futures' public API.
//!
//! CPython runs `FutureTests` twice (`_CTask`, `_PyTask`) inside an
//! `IsolatedAsyncioTestCase`; tulip has one `Task`, so the mixin is ported
//! once and each test body runs in `run_until_complete` on a manual-clock
//! loop. Context-variable checks are Python-only; the behaviour around
//! them (the exception handler is called) is kept.

mod support;

use loop_core::{EventLoop, get_running_loop};
use loop_futures::{Error, EventLoopExt, all_tasks, create_task, yield_now};

use support::{Boom, Reports, test_loop};

/// CPython's `1/0` inside a callback: Rust panics on an integer division
/// by zero.
fn divide_by_zero() -> i32 {
    1 / std::hint::black_box(0)
}

mod future_tests {
    use super::*;

    /// CPython: `FutureTests.test_future_traceback`
    ///
    /// Awaiting a failed task several times gives the same exception each
    /// time (the traceback-count part is Python-only). Awaiting retrieves
    /// it, so nothing is reported afterwards.
    #[test]
    fn test_future_traceback() {
        let ev = test_loop();
        let reports = Reports::capture(&ev);
        let seen = ev
            .run_until_complete(async {
                let future = create_task(async { Err::<(), _>(Error::new(Boom("42"))) })?;
                let mut seen = Vec::new();
                for _ in 0..5 {
                    match future.clone().await {
                        Err(err) => seen.push(err),
                        Ok(()) => panic!("the error was not returned"),
                    }
                }
                Ok::<_, Error>(seen)
            })
            .unwrap();
        assert_eq!(seen.len(), 5);
        let first = seen[0].to_shared();
        for err in &seen {
            assert_eq!(err.downcast_ref::<Boom>(), Some(&Boom("42")));
            assert!(std::sync::Arc::ptr_eq(&err.to_shared(), &first));
        }
        assert!(reports.is_empty(), "{reports:?}");
    }

    /// CPython: `FutureTests.test_task_exc_handler_correct_context`
    ///
    /// gh-96704 is about the context *variables* seen by the handler
    /// (Python-only). What stays: a task that fails and whose handle was
    /// dropped is reported to the loop's exception handler once it
    /// finishes, by the time the awaiting coroutine runs again.
    #[test]
    fn test_task_exc_handler_correct_context() {
        let ev = test_loop();
        let reports = Reports::capture(&ev);
        let probe = reports.clone();
        let count_after_yield = ev
            .run_until_complete(async move {
                let task =
                    create_task(async { Err::<(), _>(Error::new(Boom("division by zero"))) })?;
                drop(task);
                assert!(probe.is_empty(), "the task has not run yet");
                yield_now().await?;
                Ok::<_, Error>(probe.len())
            })
            .unwrap();
        assert_eq!(count_after_yield, 1);
        assert_eq!(reports.messages(), ["Task exception was never retrieved"]);
        reports.with(0, |ctx| {
            let err = ctx.error().expect("the exception");
            assert_eq!(err.downcast_ref::<Boom>(), Some(&Boom("division by zero")));
            assert_eq!(ctx.site().expect("creation site").file(), file!());
        });
    }

    /// CPython: `FutureTests.test_handle_exc_handler_correct_context`
    ///
    /// As above for a plain callback: the panic of a `call_soon` callback
    /// reaches the handler before the coroutine resumes, and the loop goes
    /// on.
    #[test]
    fn test_handle_exc_handler_correct_context() {
        let ev = test_loop();
        let reports = Reports::capture(&ev);
        let probe = reports.clone();
        let count_after_yield = ev
            .run_until_complete(async move {
                let running = get_running_loop()?;
                running.call_soon(|_| {
                    divide_by_zero();
                })?;
                yield_now().await?;
                Ok::<_, Error>(probe.len())
            })
            .unwrap();
        assert_eq!(count_after_yield, 1);
        reports.with(0, |ctx| {
            let msg = ctx.panic_message().expect("a panic payload");
            assert!(msg.contains("divide by zero"), "{msg}");
        });
        // The loop is still usable.
        assert_eq!(
            ev.run_until_complete(async { Ok::<_, Error>(3) }).unwrap(),
            3
        );
    }
}

mod future_repr_tests {
    use super::*;

    /// CPython: `FutureReprTests.test_recursive_repr_for_pending_tasks`
    ///
    /// bpo-42183: formatting a task whose result contains that task must not
    /// recurse. Here the result of `all_tasks()` taken inside a task holds
    /// the task itself (and the main task); `Debug` formats each once.
    #[test]
    fn test_recursive_repr_for_pending_tasks() {
        let ev = test_loop();
        let tasks = ev
            .run_until_complete(async {
                let waiter = create_task(async {
                    let running: EventLoop = get_running_loop()?;
                    Ok::<_, Error>(all_tasks(&running))
                })?;
                let name = waiter.get_name();
                let tasks = waiter.await?;
                Ok::<_, Error>((name, tasks))
            })
            .unwrap();
        let (name, tasks) = tasks;
        assert_eq!(tasks.len(), 2, "the main task and the waiter");
        assert!(tasks.iter().any(|t| t.get_name() == name));
        let text = format!("{tasks:?}");
        assert!(text.contains(&name), "{text}");
        assert!(tasks.iter().all(|t| t.done()));
    }
}

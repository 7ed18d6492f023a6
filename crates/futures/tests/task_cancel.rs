//! How a task is cancelled, aborted, owned, reported and stepped.
//!
//! asyncio's cancellation is an exception thrown into the coroutine at its
//! suspension point; in tulip it is `Err(Error::Cancelled)` returned by the
//! awaited tulip future (see `loop_futures::Task`'s module docs). These
//! tests pin the rules down one by one: where the error arrives, what the
//! coroutine's choice (propagate or swallow) does to the task, how
//! `cancel` travels to the futures and tasks being awaited, `abort`, the
//! loop's ownership of tasks, the reports made for lost tasks and panics,
//! and the one-step-per-wake scheduling.
//!
//! Every loop runs on the manual clock; every `run_until_complete` has a
//! far-away watchdog timer, so a broken test fails instead of hanging.

use std::cell::{Cell, RefCell};
use std::future::Future as StdFuture;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use loop_core::{EventLoop, ExceptionContext, ManualClock};
use loop_futures::{
    Error, EventLoopExt, IntoTaskResult, all_tasks, checkpoint_if_cancelled, current_task,
    yield_now,
};

// ===== helpers =====

/// A loop on a fresh manual clock, debug mode off.
fn test_loop() -> EventLoop {
    EventLoop::builder()
        .manual_clock(ManualClock::new())
        .debug(false)
        .build()
        .expect("create loop")
}

/// Runs exactly one loop iteration (CPython's `test_utils.run_briefly`).
fn run_briefly(ev: &EventLoop) {
    ev.call_soon(|ev| ev.stop()).expect("loop open");
    ev.run_forever().expect("run one iteration");
}

/// `run_until_complete` with a watchdog: if `aw` never completes, the idle
/// loop jumps (manual clock) to the watchdog, which stops it, and the call
/// returns "Event loop stopped before Future completed." instead of hanging.
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

/// An ordered record of what happened.
#[derive(Clone, Default)]
struct Log(Rc<RefCell<Vec<String>>>);

impl Log {
    fn push(&self, entry: impl Into<String>) {
        self.0.borrow_mut().push(entry.into());
    }

    fn entries(&self) -> Vec<String> {
        self.0.borrow().clone()
    }
}

/// Sets its flag when dropped: observes when a coroutine is dropped.
struct DropFlag(Rc<Cell<bool>>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

/// What the loop's exception handler received, in order.
#[derive(Clone, Default)]
struct Reports(Rc<RefCell<Vec<ExceptionContext>>>);

impl Reports {
    fn install(ev: &EventLoop) -> Reports {
        let reports = Reports::default();
        let sink = reports.clone();
        ev.set_exception_handler(Some(move |_: &EventLoop, ctx: ExceptionContext| {
            sink.0.borrow_mut().push(ctx);
        }));
        reports
    }

    fn messages(&self) -> Vec<String> {
        self.0
            .borrow()
            .iter()
            .map(|c| c.message().to_owned())
            .collect()
    }
}

/// The message of a cancellation error (`None` for another error).
fn cancel_message(err: &Error) -> Option<Option<String>> {
    err.as_cancelled().map(|c| c.message().map(str::to_owned))
}

// ===== where the cancellation arrives =====

/// A task suspended on a tulip future: `cancel` cancels that future at
/// once, and the coroutine's await returns `Err(Cancelled)` with the
/// message.
#[test]
fn cancel_is_delivered_at_the_current_await() {
    let ev = test_loop();
    let log = Log::default();
    let fut = ev.create_future::<u32>();
    let task = {
        let (log, fut) = (log.clone(), fut.clone());
        ev.create_task(async move {
            log.push("suspending");
            let outcome = fut.await;
            log.push(format!(
                "await returned {:?}",
                outcome.as_ref().map_err(cancel_message)
            ));
            outcome
        })
        .unwrap()
    };
    run_briefly(&ev);
    assert_eq!(log.entries(), ["suspending"]);

    assert!(task.cancel(Some("stop")));
    assert!(
        fut.cancelled(),
        "the awaited future is cancelled by Task::cancel"
    );
    assert!(!task.done(), "the coroutine has not seen it yet");
    assert_eq!(task.cancelling(), 1);

    let err = run(&ev, task.clone()).unwrap_err();
    assert_eq!(cancel_message(&err), Some(Some("stop".to_owned())));
    assert_eq!(
        log.entries(),
        ["suspending", "await returned Err(Some(Some(\"stop\")))"]
    );
    assert!(task.done() && task.cancelled());
    assert!(!task.cancel(None), "a done task cannot be cancelled again");
}

/// A hand-written await point that parks the task's waker (no tulip
/// future): ready once `open` is set and the waker taken back.
struct Parked {
    open: Rc<Cell<bool>>,
    waker: Rc<RefCell<Option<Waker>>>,
}

impl StdFuture for Parked {
    type Output = Result<(), Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        checkpoint_if_cancelled()?;
        if self.open.get() {
            return Poll::Ready(Ok(()));
        }
        *self.waker.borrow_mut() = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// A task suspended on a future that parks its waker (not a tulip future):
/// `cancel` wakes it, and `checkpoint_if_cancelled` at the start of that
/// future's poll turns the wake into `Err(Cancelled)` with the message.
/// Without a cancel the same future completes normally; outside a task the
/// checkpoint is `Ok`.
#[test]
fn checkpoint_if_cancelled_delivers_a_cancel_at_a_waker_await() {
    assert!(checkpoint_if_cancelled().is_ok(), "outside a task");
    let ev = test_loop();
    let parked = |open: &Rc<Cell<bool>>, waker: &Rc<RefCell<Option<Waker>>>| Parked {
        open: open.clone(),
        waker: waker.clone(),
    };
    let (open, waker) = (Rc::new(Cell::new(false)), Rc::new(RefCell::new(None)));

    // Opened: completes.
    let task = ev.create_task(parked(&open, &waker)).unwrap();
    run_briefly(&ev);
    assert!(!task.done() && waker.borrow().is_some());
    open.set(true);
    waker.borrow_mut().take().unwrap().wake();
    assert!(run(&ev, task.clone()).is_ok());

    // Cancelled while parked: cancel wakes it, the checkpoint delivers.
    open.set(false);
    let task = ev.create_task(parked(&open, &waker)).unwrap();
    run_briefly(&ev);
    assert!(!task.done());
    assert!(task.cancel(Some("parked")));
    let err = run(&ev, task.clone()).unwrap_err();
    assert_eq!(cancel_message(&err), Some(Some("parked".to_owned())));
    assert!(task.cancelled());
    assert!(!open.get(), "ended by the cancel, not by opening");
}

/// A task that cancels itself keeps running until its next await, which
/// returns `Err(Cancelled)` at once.
#[test]
fn cancel_of_a_running_task_arrives_at_its_next_await() {
    let ev = test_loop();
    let log = Log::default();
    let task = {
        let log = log.clone();
        ev.create_task(async move {
            let me = current_task().expect("inside a task");
            assert!(me.cancel(Some("self")));
            log.push("cancel returned, body goes on");
            match yield_now().await {
                Ok(()) => {
                    log.push("yield_now: ok");
                    Ok(())
                }
                Err(err) => {
                    log.push(format!("yield_now: {:?}", cancel_message(&err)));
                    Err(err)
                }
            }
        })
        .unwrap()
    };
    let err = run(&ev, task.clone()).unwrap_err();
    assert_eq!(cancel_message(&err), Some(Some("self".to_owned())));
    assert_eq!(
        log.entries(),
        [
            "cancel returned, body goes on",
            "yield_now: Some(Some(\"self\"))"
        ]
    );
    assert!(task.cancelled());
}

/// asyncio: a task cancelled while running cancels the next future it
/// suspends on (`__step` cancels the yielded future when `_must_cancel` is
/// set), so the cancellation reaches that future too.
#[test]
fn cancel_of_a_running_task_cancels_the_next_future_it_awaits() {
    let ev = test_loop();
    let next = ev.create_future::<u8>();
    let task = {
        let next = next.clone();
        ev.create_task(async move {
            current_task().expect("inside a task").cancel(Some("self"));
            next.await
        })
        .unwrap()
    };
    let err = run(&ev, task.clone()).unwrap_err();
    assert_eq!(cancel_message(&err), Some(Some("self".to_owned())));
    assert!(task.cancelled());
    assert!(
        next.cancelled(),
        "the awaited future carries the cancellation"
    );
    assert_eq!(
        cancel_message(&next.result().unwrap_err()),
        Some(Some("self".to_owned()))
    );
}

// ===== what the coroutine does with it =====

/// Catching the cancellation, cleaning up (awaits during cleanup work: the
/// request was consumed) and returning the error: the task ends cancelled.
#[test]
fn cleanup_then_returning_the_error_ends_the_task_cancelled() {
    let ev = test_loop();
    let log = Log::default();
    let fut = ev.create_future::<u8>();
    let cleanup_step = ev.create_future::<&'static str>();
    let task = {
        let (log, fut, cleanup_step, ev2) =
            (log.clone(), fut.clone(), cleanup_step.clone(), ev.clone());
        ev.create_task(async move {
            match fut.await {
                Ok(v) => Ok(v),
                Err(err) => {
                    log.push("cleanup starts");
                    let setter = cleanup_step.clone();
                    ev2.call_soon(move |_| setter.set_result("flushed").unwrap())?;
                    let done = cleanup_step.await?;
                    log.push(format!("cleanup awaited: {done}"));
                    Err(err)
                }
            }
        })
        .unwrap()
    };
    run_briefly(&ev);
    task.cancel(Some("bye"));
    let err = run(&ev, task.clone()).unwrap_err();
    assert_eq!(cancel_message(&err), Some(Some("bye".to_owned())));
    assert_eq!(
        log.entries(),
        ["cleanup starts", "cleanup awaited: flushed"]
    );
    assert!(task.cancelled());
    assert_eq!(
        cancel_message(&task.result().unwrap_err()),
        Some(Some("bye".to_owned()))
    );
    assert_eq!(
        cancel_message(&task.exception().unwrap_err()),
        Some(Some("bye".to_owned()))
    );
}

/// Swallowing the cancellation: the task goes on and ends with its value,
/// not cancelled, and `cancelling()` still counts the request until
/// `uncancel`.
#[test]
fn swallowing_the_cancellation_goes_on_and_cancelling_counts_until_uncancel() {
    let ev = test_loop();
    let first = ev.create_future::<u8>();
    let second = ev.create_future::<u8>();
    let seen_inside = Rc::new(Cell::new(u32::MAX));
    let task = {
        let (first, second, seen_inside) = (first.clone(), second.clone(), seen_inside.clone());
        ev.create_task(async move {
            let swallowed = first.await.is_err();
            seen_inside.set(current_task().unwrap().cancelling());
            let v = second.await?;
            Ok::<_, Error>((swallowed, v))
        })
        .unwrap()
    };
    run_briefly(&ev);
    assert!(task.cancel(None));
    run_briefly(&ev);
    assert_eq!(
        seen_inside.get(),
        1,
        "the request is counted inside the coroutine"
    );
    assert!(!task.done(), "the task went on to its next await");
    assert!(
        !second.cancelled(),
        "a swallowed cancellation is not re-delivered"
    );

    second.set_result(9).unwrap();
    assert_eq!(run(&ev, task.clone()).unwrap(), (true, 9));
    assert!(!task.cancelled());
    assert_eq!(
        task.cancelling(),
        1,
        "still counted after the task finished"
    );
    assert_eq!(task.uncancel(), 0);
    assert_eq!(task.cancelling(), 0);
    assert_eq!(task.uncancel(), 0, "uncancel never goes below zero");
}

/// A coroutine that swallows and calls `uncancel` itself sees the count go
/// back to zero; a second `cancel` is delivered again.
#[test]
fn uncancel_inside_the_coroutine_then_a_second_cancel() {
    let ev = test_loop();
    let first = ev.create_future::<()>();
    let second = ev.create_future::<()>();
    let after_uncancel = Rc::new(Cell::new(u32::MAX));
    let task = {
        let (first, second, after_uncancel) =
            (first.clone(), second.clone(), after_uncancel.clone());
        ev.create_task(async move {
            if let Err(err) = first.await {
                assert!(err.is_cancelled());
                after_uncancel.set(current_task().unwrap().uncancel());
            }
            second.await
        })
        .unwrap()
    };
    run_briefly(&ev);
    task.cancel(Some("one"));
    run_briefly(&ev);
    assert_eq!(after_uncancel.get(), 0);
    assert_eq!(task.cancelling(), 0);
    assert!(task.cancel(Some("two")));
    assert_eq!(task.cancelling(), 1);
    let err = run(&ev, task.clone()).unwrap_err();
    assert_eq!(cancel_message(&err), Some(Some("two".to_owned())));
    assert!(task.cancelled() && second.cancelled());
}

// ===== before the first step =====

/// A task cancelled before its first step never runs its body; its
/// coroutine is dropped when the task finishes.
#[test]
fn cancel_before_the_first_step_never_runs_the_body() {
    let ev = test_loop();
    let ran = Rc::new(Cell::new(false));
    let dropped = Rc::new(Cell::new(false));
    let task = {
        let ran = ran.clone();
        let guard = DropFlag(dropped.clone());
        ev.create_task(async move {
            let _guard = guard;
            ran.set(true);
        })
        .unwrap()
    };
    assert!(task.cancel(Some("early")));
    assert!(!dropped.get(), "nothing happens before the loop runs");
    let err = run(&ev, task.clone()).unwrap_err();
    assert_eq!(cancel_message(&err), Some(Some("early".to_owned())));
    assert!(!ran.get(), "the body never ran");
    assert!(dropped.get(), "the coroutine was dropped");
    assert!(task.cancelled());
}

/// `uncancel` before the first step withdraws the request: the body runs.
#[test]
fn uncancel_before_the_first_step_lets_the_body_run() {
    let ev = test_loop();
    let ran = Rc::new(Cell::new(false));
    let task = {
        let ran = ran.clone();
        ev.create_task(async move {
            ran.set(true);
            yield_now().await?;
            Ok::<_, Error>(5)
        })
        .unwrap()
    };
    assert!(task.cancel(None));
    assert_eq!(task.uncancel(), 0);
    assert_eq!(run(&ev, task.clone()).unwrap(), 5);
    assert!(ran.get());
    assert!(!task.cancelled());
}

// ===== how cancel travels =====

/// asyncio cancels the future the task waits on, and that future may be
/// shared: the other task awaiting it gets `CancelledError` as well,
/// although nobody cancelled that task.
#[test]
fn cancel_of_a_task_cancels_a_future_another_task_also_awaits() {
    let ev = test_loop();
    let shared = ev.create_future::<u8>();
    let other_saw = Rc::new(RefCell::new(None));
    let a = {
        let shared = shared.clone();
        ev.create_task(shared).unwrap()
    };
    let b = {
        let (shared, other_saw) = (shared.clone(), other_saw.clone());
        ev.create_task(async move {
            let outcome = shared.await;
            *other_saw.borrow_mut() = Some(outcome.clone().map_err(|e| cancel_message(&e)));
            outcome
        })
        .unwrap()
    };
    run_briefly(&ev);
    assert!(a.cancel(Some("only a")));
    assert!(shared.cancelled());
    let err = run(&ev, b.clone()).unwrap_err();
    assert_eq!(cancel_message(&err), Some(Some("only a".to_owned())));
    assert_eq!(
        *other_saw.borrow(),
        Some(Err(Some(Some("only a".to_owned()))))
    );
    assert!(b.cancelled(), "b returned the error it got");
    assert_eq!(b.cancelling(), 0, "b itself was never asked to cancel");
    assert!(run(&ev, a.clone()).unwrap_err().is_cancelled());
    assert!(a.cancelled());
}

/// Cancelling a task that awaits another task cancels the inner task (with
/// the message), which cancels what it awaits; both end cancelled.
#[test]
fn cancel_of_a_task_awaiting_a_task_propagates_into_it() {
    let ev = test_loop();
    let fut = ev.create_future::<u8>();
    let inner = {
        let fut = fut.clone();
        ev.create_task(fut).unwrap()
    };
    let outer = {
        let inner = inner.clone();
        ev.create_task(inner).unwrap()
    };
    run_briefly(&ev);
    assert!(outer.cancel(Some("deep")));
    assert_eq!(inner.cancelling(), 1, "the inner task was asked at once");
    assert!(fut.cancelled(), "and it cancelled the future it awaits");
    let err = run(&ev, outer.clone()).unwrap_err();
    assert_eq!(cancel_message(&err), Some(Some("deep".to_owned())));
    assert!(inner.cancelled() && outer.cancelled());
    assert_eq!(
        cancel_message(&inner.result().unwrap_err()),
        Some(Some("deep".to_owned()))
    );
}

/// If the inner task swallows the cancellation and returns a value, the
/// outer task gets that value and is not cancelled (asyncio semantics).
#[test]
fn cancel_through_a_task_that_swallows_it_returns_its_value() {
    let ev = test_loop();
    let fut = ev.create_future::<u8>();
    let inner = {
        let fut = fut.clone();
        ev.create_task(async move {
            match fut.await {
                Err(err) if err.is_cancelled() => Ok::<_, Error>(77),
                other => other,
            }
        })
        .unwrap()
    };
    let outer = {
        let inner = inner.clone();
        ev.create_task(inner).unwrap()
    };
    run_briefly(&ev);
    outer.cancel(None);
    assert_eq!(run(&ev, outer.clone()).unwrap(), 77);
    assert!(!outer.cancelled() && !inner.cancelled());
    assert_eq!(outer.cancelling(), 1);
}

// ===== abort =====

/// `abort` drops the coroutine right away (a guard inside it observes it),
/// the task ends cancelled, and the future it awaited is left alone.
#[test]
fn abort_drops_the_coroutine_now() {
    let ev = test_loop();
    let dropped = Rc::new(Cell::new(false));
    let reached_end = Rc::new(Cell::new(false));
    let fut = ev.create_future::<u8>();
    let task = {
        let (dropped, reached_end, fut) = (dropped.clone(), reached_end.clone(), fut.clone());
        ev.create_task(async move {
            let _guard = DropFlag(dropped);
            let v = fut.await?;
            reached_end.set(true);
            Ok::<_, Error>(v)
        })
        .unwrap()
    };
    run_briefly(&ev);
    assert!(!dropped.get());
    assert_eq!(all_tasks(&ev).len(), 1);

    task.abort();
    assert!(
        dropped.get(),
        "dropped inside abort(), before any loop iteration"
    );
    assert!(task.done() && task.cancelled());
    assert!(task.result().unwrap_err().is_cancelled());
    assert!(all_tasks(&ev).is_empty());
    assert!(
        !fut.cancelled(),
        "abort does not cancel what the task awaited"
    );

    // The loop and the future stay usable; nothing runs the dropped body.
    fut.set_result(1).unwrap();
    run_briefly(&ev);
    run_briefly(&ev);
    assert!(!reached_end.get());
    task.abort(); // aborting a done task does nothing
    assert!(task.cancelled());
    assert_eq!(run(&ev, async { Ok::<_, Error>(3) }).unwrap(), 3);
}

/// `abort` of a pending task wakes the tasks awaiting it with
/// `Err(Cancelled)`.
#[test]
fn abort_wakes_the_tasks_awaiting_it() {
    let ev = test_loop();
    let never = ev.create_future::<u8>();
    let victim = ev.create_task(never).unwrap();
    let waiter = {
        let victim = victim.clone();
        ev.create_task(victim).unwrap()
    };
    run_briefly(&ev);
    victim.abort();
    assert!(run(&ev, waiter.clone()).unwrap_err().is_cancelled());
    assert!(waiter.cancelled());
}

/// `abort` from inside the task's own coroutine: the rest of the step runs,
/// then the coroutine is dropped when the step returns.
#[test]
fn abort_from_inside_its_own_coroutine() {
    let ev = test_loop();
    let log = Log::default();
    let dropped = Rc::new(Cell::new(false));
    let fut = ev.create_future::<u8>();
    let task = {
        let (log, dropped, fut) = (log.clone(), dropped.clone(), fut.clone());
        ev.create_task(async move {
            let _guard = DropFlag(dropped);
            current_task().expect("inside a task").abort();
            log.push("after abort");
            let v = fut.await?;
            log.push("after await");
            Ok::<_, Error>(v)
        })
        .unwrap()
    };
    run_briefly(&ev);
    assert_eq!(log.entries(), ["after abort"]);
    assert!(dropped.get(), "dropped at the end of the step");
    assert!(task.done() && task.cancelled());
    fut.set_result(1).unwrap();
    run_briefly(&ev);
    assert_eq!(log.entries(), ["after abort"]);
}

// ===== ownership =====

/// The loop owns a pending task: dropping every handle neither cancels nor
/// loses it.
#[test]
fn dropping_every_task_handle_neither_cancels_nor_loses_the_task() {
    let ev = test_loop();
    let fut = ev.create_future::<u8>();
    let outcome = Rc::new(RefCell::new(None));
    let task = {
        let (fut, outcome) = (fut.clone(), outcome.clone());
        ev.create_task(async move {
            let got = fut.await;
            *outcome.borrow_mut() = Some(got.map_err(|e| e.to_string()));
        })
        .unwrap()
    };
    let name = task.get_name();
    drop(task);
    run_briefly(&ev);
    let tasks = all_tasks(&ev);
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0].get_name(), name);
    assert!(!tasks[0].cancelled());
    drop(tasks);

    fut.set_result(4).unwrap();
    run_briefly(&ev);
    assert_eq!(*outcome.borrow(), Some(Ok(4)));
    assert!(all_tasks(&ev).is_empty());
    assert_eq!(
        ev.stats().runnables,
        0,
        "the finished task released the loop"
    );
}

/// A task dropped before its first step still runs.
#[test]
fn a_task_whose_handle_is_dropped_before_its_first_step_still_runs() {
    let ev = test_loop();
    let ran = Rc::new(Cell::new(false));
    {
        let ran = ran.clone();
        drop(ev.create_task(async move { ran.set(true) }).unwrap());
    }
    run_briefly(&ev);
    assert!(ran.get());
}

/// A task still pending when the loop closes is reported as "Task was
/// destroyed but it is pending!" with its name and creation site, and its
/// coroutine is dropped.
#[test]
fn pending_task_at_loop_close_is_reported() {
    let ev = test_loop();
    let reports = Reports::install(&ev);
    let dropped = Rc::new(Cell::new(false));
    let never = ev.create_future::<()>();
    let guard = DropFlag(dropped.clone());
    let task = ev
        .create_task(async move {
            let _guard = guard;
            never.await
        })
        .unwrap();
    task.set_name("forgotten");
    run_briefly(&ev);
    assert!(reports.messages().is_empty());

    ev.close().unwrap();
    assert_eq!(
        reports.messages(),
        ["Task was destroyed but it is pending!"]
    );
    {
        let ctx = &reports.0.borrow()[0];
        assert_eq!(ctx.extra("task"), Some("forgotten"));
        let site = ctx.site().expect("creation site");
        assert_eq!(site, task.site(), "where create_task was called");
        assert_eq!(site.file(), file!());
    }
    assert!(dropped.get(), "the coroutine was dropped at close");
    assert!(!task.done());
    assert!(all_tasks(&ev).is_empty());
    drop(task);
    assert_eq!(
        reports.messages().len(),
        1,
        "nothing more when the handle goes"
    );
}

/// A task that finished before close is not reported.
#[test]
fn finished_tasks_are_not_reported_at_close() {
    let ev = test_loop();
    let reports = Reports::install(&ev);
    let task = ev.create_task(async { Ok::<_, Error>(1) }).unwrap();
    assert_eq!(run(&ev, task).unwrap(), 1);
    ev.close().unwrap();
    assert!(reports.messages().is_empty());
}

// ===== panics =====

/// A panicking coroutine ends its task with `Error::Panic`; other tasks go
/// on; a retrieved panic is not reported.
#[test]
fn panicking_coroutine_ends_with_panic_error_and_other_tasks_go_on() {
    let ev = test_loop();
    let reports = Reports::install(&ev);
    let log = Log::default();
    let bad = {
        let log = log.clone();
        ev.create_task(async move {
            log.push("bad: before");
            yield_now().await?;
            if log.entries().len() < 100 {
                panic!("boom");
            }
            Ok::<_, Error>(1)
        })
        .unwrap()
    };
    let good = {
        let log = log.clone();
        ev.create_task(async move {
            for i in 0..3 {
                log.push(format!("good: {i}"));
                yield_now().await?;
            }
            Ok::<_, Error>(2)
        })
        .unwrap()
    };
    assert_eq!(run(&ev, good).unwrap(), 2);
    assert_eq!(
        log.entries(),
        ["bad: before", "good: 0", "good: 1", "good: 2"]
    );
    assert!(bad.done() && !bad.cancelled());
    match bad.result() {
        Err(Error::Panic(p)) => assert_eq!(p.message(), "boom"),
        other => panic!("expected a panic error, got {other:?}"),
    }
    assert!(bad.exception().unwrap().is_some_and(|e| e.is_panic()));
    drop(bad);
    assert!(reports.messages().is_empty(), "the panic was retrieved");
}

/// A panic nobody retrieves is reported when the last handle goes.
#[test]
fn unretrieved_panic_is_reported() {
    let ev = test_loop();
    let reports = Reports::install(&ev);
    let task = ev
        .create_task(async {
            if std::hint::black_box(true) {
                panic!("nobody looks");
            }
        })
        .unwrap();
    run_briefly(&ev);
    assert!(task.done());
    assert!(reports.messages().is_empty(), "a handle is still alive");
    drop(task);
    assert_eq!(reports.messages(), ["Task exception was never retrieved"]);
    let ctx = &reports.0.borrow()[0];
    let err = ctx.error().expect("the error is attached");
    assert!(err.to_string().contains("nobody looks"), "{err}");
    assert!(ctx.extra("task").is_some_and(|n| n.starts_with("Task-")));
}

/// A panic in a task whose handles are all gone is reported at once.
#[test]
fn panic_in_a_detached_task_is_reported_when_it_happens() {
    let ev = test_loop();
    let reports = Reports::install(&ev);
    drop(
        ev.create_task(async {
            if std::hint::black_box(true) {
                panic!("detached");
            }
        })
        .unwrap(),
    );
    run_briefly(&ev);
    assert_eq!(reports.messages(), ["Task exception was never retrieved"]);
    // The loop goes on.
    assert_eq!(run(&ev, async { Ok::<_, Error>(8) }).unwrap(), 8);
}

// ===== scheduling =====

/// `yield_now` runs the task again in the next iteration, after the
/// callbacks that were already ready (asyncio's `sleep(0)`).
#[test]
fn yield_now_runs_the_task_again_after_ready_callbacks() {
    let ev = test_loop();
    let log = Log::default();
    let make = |name: &'static str| {
        let (log, ev2) = (log.clone(), ev.clone());
        ev.create_task(async move {
            log.push(format!("{name}1"));
            let log2 = log.clone();
            ev2.call_soon(move |_| log2.push(format!("cb-{name}")))?;
            yield_now().await?;
            log.push(format!("{name}2"));
            Ok::<_, Error>(())
        })
        .unwrap()
    };
    let a = make("a");
    let b = make("b");
    run_briefly(&ev);
    assert_eq!(log.entries(), ["a1", "b1"]);
    run_briefly(&ev);
    assert_eq!(log.entries(), ["a1", "b1", "cb-a", "a2", "cb-b", "b2"]);
    assert!(a.done() && b.done());
}

/// A future that wakes itself `wakes` times per poll for `rounds` polls,
/// then is ready; counts its polls and keeps the last waker.
struct SelfWaker {
    polls: Rc<Cell<u32>>,
    wakes: u32,
    rounds: u32,
    last_waker: Rc<RefCell<Option<Waker>>>,
}

impl StdFuture for SelfWaker {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.polls.set(self.polls.get() + 1);
        *self.last_waker.borrow_mut() = Some(cx.waker().clone());
        if self.polls.get() > self.rounds {
            return Poll::Ready(());
        }
        for i in 0..self.wakes {
            if i % 2 == 0 {
                cx.waker().wake_by_ref();
            } else {
                // By value, through a clone: the other way to wake.
                let waker = cx.waker().clone();
                waker.wake();
            }
        }
        Poll::Pending
    }
}

/// N wakes during a step schedule exactly one more step.
#[test]
fn n_wakes_during_a_step_schedule_exactly_one_step() {
    let ev = test_loop();
    let polls = Rc::new(Cell::new(0));
    let last_waker = Rc::new(RefCell::new(None));
    let task = ev
        .create_task(SelfWaker {
            polls: polls.clone(),
            wakes: 5,
            rounds: 3,
            last_waker: last_waker.clone(),
        })
        .unwrap();
    for iteration in 1..=4 {
        run_briefly(&ev);
        assert_eq!(polls.get(), iteration, "one poll per iteration");
    }
    assert!(task.done());
    // A wake after the task finished runs nothing.
    last_waker.borrow().as_ref().unwrap().wake_by_ref();
    run_briefly(&ev);
    run_briefly(&ev);
    assert_eq!(polls.get(), 4);
}

/// N wakes between steps, from a callback or from another thread, schedule
/// exactly one step.
#[test]
fn n_wakes_between_steps_schedule_exactly_one_step() {
    let ev = test_loop();
    let polls = Rc::new(Cell::new(0));
    let last_waker: Rc<RefCell<Option<Waker>>> = Rc::new(RefCell::new(None));
    let task = ev
        .create_task(SelfWaker {
            polls: polls.clone(),
            wakes: 0,
            rounds: 2,
            last_waker: last_waker.clone(),
        })
        .unwrap();
    run_briefly(&ev);
    assert_eq!(polls.get(), 1);
    run_briefly(&ev);
    assert_eq!(polls.get(), 1, "nobody woke it");

    // From a callback on the loop thread.
    let waker = last_waker.borrow().clone().unwrap();
    ev.call_soon(move |_| {
        for _ in 0..7 {
            waker.wake_by_ref();
        }
    })
    .unwrap();
    run_briefly(&ev); // the callback wakes the task: its step runs next iteration
    run_briefly(&ev);
    run_briefly(&ev);
    assert_eq!(polls.get(), 2);

    // From another thread.
    let waker = last_waker.borrow().clone().unwrap();
    std::thread::spawn(move || {
        for _ in 0..7 {
            waker.wake_by_ref();
        }
    })
    .join()
    .unwrap();
    run_briefly(&ev);
    run_briefly(&ev);
    assert_eq!(polls.get(), 3);
    assert!(task.done());
}

/// `wait` on tasks that are already done still suspends once, as
/// asyncio's (its done callbacks resolve the waiter an iteration later),
/// so a cancellation pending on the waiting task is delivered there.
#[test]
fn wait_on_tasks_already_done_delivers_a_pending_cancellation() {
    let ev = test_loop();
    let done = ev.create_task(async { Ok::<_, Error>(1) }).unwrap();
    let d = done.clone();
    let waiter = ev
        .create_task(async move {
            let me = current_task().expect("in a task");
            while !d.done() {
                yield_now().await?;
            }
            me.cancel(None);
            // Nothing to wait for: returns only after one suspension, where
            // the cancellation arrives.
            let waited =
                loop_futures::wait(vec![d], None, loop_futures::ReturnWhen::AllCompleted).await;
            Ok::<_, Error>(waited.map(|(done, pending)| (done.len(), pending.len())))
        })
        .unwrap();
    let got = ev.run_until_complete(waiter).unwrap();
    assert!(got.unwrap_err().is_cancelled());
    // Without a pending cancellation the result comes after one yield.
    let d = done.clone();
    let counts = ev
        .run_until_complete(async move {
            loop_futures::wait(vec![d], None, loop_futures::ReturnWhen::AllCompleted)
                .await
                .map(|(done, pending)| (done.len(), pending.len()))
        })
        .unwrap();
    assert_eq!(counts, (1, 0));
}

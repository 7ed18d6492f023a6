//! A task's coroutine whose drop panics (a value in it with a panicking
//! destructor), and a refused `run_until_complete`.
//!
//! The task is still ended, whatever path drops its coroutine (cancelled
//! before its first step, aborted while suspended, finished, failed, the
//! loop closed): the panic goes to the exception handler, and whoever
//! awaits the task gets its outcome instead of waiting forever.
//!
//! Every loop runs on the manual clock with a far-away watchdog timer, and
//! the one `run` is bounded by a channel timeout, so a broken test fails
//! instead of hanging.

use std::cell::{Cell, RefCell};
use std::future::Future as StdFuture;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::mpsc;
use std::task::{Context, Poll};
use std::time::Duration;

use loop_core::{EventLoop, ExceptionContext, LoopError, ManualClock};
use loop_futures::{Error, EventLoopExt, yield_now};

fn manual_loop() -> EventLoop {
    EventLoop::builder()
        .manual_clock(ManualClock::new())
        .build()
        .expect("loop")
}

/// Stops the loop in an hour of virtual time: reached only when a test is
/// broken.
fn watchdog(ev: &EventLoop) {
    ev.call_later(Duration::from_secs(3600), |ev| ev.stop())
        .unwrap();
}

/// A value whose destructor panics (unless already unwinding).
struct Bomb;

impl Drop for Bomb {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("bomb");
        }
    }
}

/// The (message, panic text) of each report the exception handler gets.
fn record(ev: &EventLoop) -> Rc<RefCell<Vec<(String, String)>>> {
    let log = Rc::new(RefCell::new(Vec::new()));
    let l = log.clone();
    ev.set_exception_handler(Some(move |_: &EventLoop, c: ExceptionContext| {
        l.borrow_mut().push((
            c.message().to_string(),
            c.panic_message().unwrap_or_default().to_string(),
        ));
    }));
    log
}

const DROP_REPORT: &str = "Exception in dropping a task's coroutine";

/// A task that holds a [`Bomb`] and waits on a future nobody completes.
fn suspended_with_a_bomb(ev: &EventLoop) -> loop_futures::Task<()> {
    let never = ev.create_future::<()>();
    ev.create_task(async move {
        let _b = Bomb;
        never.await
    })
    .unwrap()
}

fn assert_one_drop_report(log: &RefCell<Vec<(String, String)>>) {
    assert_eq!(
        *log.borrow(),
        vec![(DROP_REPORT.to_string(), "bomb".to_string())]
    );
}

#[test]
fn a_task_cancelled_before_its_first_step_ends_cancelled_when_its_drop_panics() {
    let ev = manual_loop();
    let log = record(&ev);
    let bomb = Bomb;
    let task = ev
        .create_task(async move {
            let _b = bomb;
            Ok::<_, Error>(())
        })
        .unwrap();
    assert!(task.cancel(None));
    watchdog(&ev);
    let t = task.clone();
    let out = ev.run_until_complete(t);
    assert!(matches!(out, Err(Error::Cancelled(_))), "{out:?}");
    assert!(task.cancelled());
    assert_one_drop_report(&log);
}

#[test]
fn an_aborted_task_ends_cancelled_when_its_drop_panics() {
    let ev = manual_loop();
    let log = record(&ev);
    let task = suspended_with_a_bomb(&ev);
    let t = task.clone();
    ev.call_later(Duration::from_secs(1), move |_| t.abort())
        .unwrap();
    watchdog(&ev);
    let t = task.clone();
    let out = ev.run_until_complete(t);
    assert!(matches!(out, Err(Error::Cancelled(_))), "{out:?}");
    assert!(task.cancelled());
    assert_one_drop_report(&log);
}

/// A hand-written future that is ready at once and keeps a [`Bomb`] until
/// it is dropped (a finished `async` block has dropped its locals).
struct ReadyWithBomb(#[allow(dead_code)] Bomb);

impl StdFuture for ReadyWithBomb {
    type Output = Result<u32, Error>;

    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Self::Output> {
        Poll::Ready(Ok(7))
    }
}

#[test]
fn a_finished_task_keeps_its_result_when_its_drop_panics() {
    let ev = manual_loop();
    let log = record(&ev);
    let task = ev.create_task(ReadyWithBomb(Bomb)).unwrap();
    watchdog(&ev);
    let t = task.clone();
    let out = ev.run_until_complete(t);
    assert_eq!(out.unwrap(), 7);
    assert_one_drop_report(&log);
}

#[test]
fn a_task_whose_body_panics_fails_with_that_panic_when_its_drop_panics_too() {
    struct PanicsWithBomb(#[allow(dead_code)] Bomb);
    impl StdFuture for PanicsWithBomb {
        type Output = Result<u32, Error>;
        fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Self::Output> {
            panic!("body failed");
        }
    }
    let ev = manual_loop();
    let log = record(&ev);
    let task = ev.create_task(PanicsWithBomb(Bomb)).unwrap();
    watchdog(&ev);
    let t = task.clone();
    let out = ev.run_until_complete(t);
    match out {
        Err(Error::Panic(p)) => assert_eq!(p.message(), "body failed"),
        other => panic!("expected the body's panic, got {other:?}"),
    }
    assert_one_drop_report(&log);
}

#[test]
fn closing_the_loop_reports_a_pending_tasks_drop_panic_and_finishes_closing() {
    let ev = manual_loop();
    let log = record(&ev);
    let task = suspended_with_a_bomb(&ev);
    ev.run_until_complete(yield_now()).unwrap();
    assert!(!task.done());
    ev.close().unwrap();
    assert!(ev.is_closed());
    let log = log.borrow();
    assert_eq!(log.len(), 2, "{log:?}");
    assert_eq!(log[0].0, "Task was destroyed but it is pending!");
    assert_eq!(log[1], (DROP_REPORT.to_string(), "bomb".to_string()));
}

/// asyncio.run's shutdown cancels the tasks left and runs until they are
/// done: an aborted task whose drop panicked used to stay pending, and the
/// shutdown spun forever.
#[test]
fn run_returns_when_an_aborted_tasks_drop_panicked() {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let out = loop_futures::run(async {
            let ev = loop_core::get_running_loop().unwrap();
            let reports = Rc::new(Cell::new(0));
            let r = reports.clone();
            ev.set_exception_handler(Some(move |_: &EventLoop, _: ExceptionContext| {
                r.set(r.get() + 1)
            }));
            let task = suspended_with_a_bomb(&ev);
            yield_now().await?;
            let t = task.clone();
            ev.call_soon(move |_| t.abort()).unwrap();
            yield_now().await?;
            yield_now().await?;
            Ok::<_, Error>((task.cancelled(), reports.get()))
        });
        let _ = tx.send(format!("{out:?}"));
    });
    let got = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("run() returned (no shutdown hang)");
    assert_eq!(got, "Ok((true, 1))");
}

/// asyncio's `run_until_complete` checks that no loop is running before it
/// makes the coroutine a task: a refused coroutine never runs.
#[test]
fn run_until_complete_inside_another_running_loop_is_refused_before_spawning() {
    let a = manual_loop();
    let b = manual_loop();
    let ran = Rc::new(Cell::new(false));
    let refused = Rc::new(RefCell::new(None));
    let (b2, ran2, refused2) = (b.clone(), ran.clone(), refused.clone());
    a.call_soon(move |a| {
        let out = b2.run_until_complete(async move {
            ran2.set(true);
            Ok::<_, Error>(())
        });
        *refused2.borrow_mut() = Some(out);
        a.stop();
    })
    .unwrap();
    a.run_forever().unwrap();
    // asyncio's RuntimeError, with the loop's message.
    match refused.borrow_mut().take() {
        Some(Err(Error::Runtime(e))) => {
            assert_eq!(e.to_string(), LoopError::AnotherLoopRunning.to_string())
        }
        other => panic!("expected RuntimeError, got {other:?}"),
    }
    watchdog(&b);
    b.run_until_complete(yield_now()).unwrap();
    assert!(!ran.get(), "the refused coroutine never runs");
    assert_eq!(loop_futures::all_tasks(&b).len(), 0);
}

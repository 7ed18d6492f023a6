//! User code that panics, or is dropped midway, inside the high-level API:
//! the API's state stays consistent (every waiter woken, no child task
//! outliving its group, no stale timer, no dead worker). Each test is
//! bounded (manual clock with a far watchdog, or blocking waits with
//! timeouts).

use std::cell::{Cell, RefCell};
use std::future::Future as StdFuture;
use std::pin::Pin;
use std::rc::Rc;
use std::task::Poll;
use std::time::Duration;

use loop_core::{EventLoop, ExceptionContext, ManualClock};
use loop_futures::{
    Error, EventLoopExt, Queue, QueueShutDown, TaskGroup, ThreadPoolExecutor, sleep, timeout,
    yield_now,
};

fn manual_loop() -> EventLoop {
    let ev = EventLoop::builder()
        .manual_clock(ManualClock::new())
        .build()
        .expect("loop");
    ev.call_later(Duration::from_secs(3600), |ev| ev.stop())
        .unwrap();
    ev
}

fn quiet(ev: &EventLoop) -> Rc<RefCell<Vec<String>>> {
    let log = Rc::new(RefCell::new(Vec::new()));
    let l = log.clone();
    ev.set_exception_handler(Some(move |_: &EventLoop, c: ExceptionContext| {
        l.borrow_mut().push(c.message().to_string());
    }));
    log
}

/// An item whose destructor panics when `.0` is true.
struct Item(bool);

impl Drop for Item {
    fn drop(&mut self) {
        if self.0 && !std::thread::panicking() {
            panic!("item drop");
        }
    }
}

/// Queue::shutdown(immediate) with an item whose Drop panics: the
/// waiting putter and the joiner must still be woken (asyncio wakes
/// every getter/putter and sets `finished`).
#[test]
fn queue_shutdown_immediate_item_drop_panics_wakes_waiters() {
    let ev = manual_loop();
    let _log = quiet(&ev);
    let ev2 = ev.clone();
    let out = ev.run_until_complete(async move {
        let q: Queue<Item> = Queue::new(1);
        q.put_nowait(Item(true)).ok().unwrap();
        let qp = q.clone();
        let putter = ev2.create_task(async move { qp.put(Item(false)).await })?;
        let qj = q.clone();
        let joiner = ev2.create_task(async move { qj.join().await })?;
        for _ in 0..3 {
            yield_now().await?;
        }
        let qs = q.clone();
        let panicked =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| qs.shutdown(true))).is_err();
        for _ in 0..5 {
            yield_now().await?;
        }
        let putter_outcome = if putter.done() {
            Some(matches!(
                putter.result(),
                Err(ref e) if e.downcast_ref::<QueueShutDown>().is_some()
            ))
        } else {
            None
        };
        Ok::<_, Error>((panicked, putter_outcome, joiner.done()))
    });
    let (panicked, putter, joiner_done) = out.expect("ran");
    assert!(panicked, "the item's Drop panic reached shutdown's caller");
    assert_eq!(putter, Some(true), "putter left waiting for ever");
    assert!(joiner_done, "joiner left waiting for ever");
}

/// A TaskGroup body that panics: asyncio's __aexit__ cancels the
/// children and waits for them. Here the children must not outlive the
/// group.
#[test]
fn task_group_body_panic_cancels_children() {
    let ev = manual_loop();
    let _log = quiet(&ev);
    let ev2 = ev.clone();
    let ran_on = Rc::new(Cell::new(false));
    let r = ran_on.clone();
    let out = ev.run_until_complete(async move {
        let child_slot: Rc<RefCell<Option<loop_futures::Task<()>>>> = Rc::default();
        let slot = child_slot.clone();
        let parent = ev2.create_task(async move {
            TaskGroup::scope(|tg| async move {
                let child = tg.create_task(async move {
                    sleep(Duration::from_secs(10)).await?;
                    r.set(true);
                    Ok::<_, Error>(())
                })?;
                *slot.borrow_mut() = Some(child);
                yield_now().await?;
                if slot.borrow().is_some() {
                    panic!("body panics");
                }
                Ok::<_, Error>(())
            })
            .await
        })?;
        let parent_result = parent.clone().await;
        let child = child_slot.borrow().clone().unwrap();
        let child_done_when_parent_done = child.done();
        // Let the child run if it still can.
        sleep(Duration::from_secs(20)).await?;
        Ok::<_, Error>((
            matches!(parent_result, Err(Error::Panic(_))),
            child_done_when_parent_done,
        ))
    });
    let (parent_panicked, child_done) = out.expect("ran");
    assert!(parent_panicked);
    assert!(
        child_done && !ran_on.get(),
        "child outlived its TaskGroup (done at parent end: {child_done}, ran on after: {})",
        ran_on.get()
    );
}

/// A timeout scope whose future is dropped mid-body (the other branch of
/// a select won, or a combinator dropped it): its timer must not cancel
/// the task later.
#[test]
fn timeout_dropped_mid_body_does_not_cancel_task_later() {
    let ev = manual_loop();
    let _log = quiet(&ev);
    let out = ev.run_until_complete(async move {
        // The scope handle is kept (as to ask `expired()` after a select).
        let scope = timeout(Some(Duration::from_millis(100)));
        {
            let mut fut: Pin<Box<dyn StdFuture<Output = Result<(), Error>>>> =
                Box::pin(scope.run(std::future::pending::<Result<(), Error>>()));
            // Poll once (enters the scope, arms the timer), then give up on
            // it, as a select whose other branch won does.
            std::future::poll_fn(|cx| {
                let _ = fut.as_mut().poll(cx);
                Poll::Ready(())
            })
            .await;
        }
        // Later work of the same task, unrelated to the dropped scope.
        let later = sleep(Duration::from_millis(500)).await;
        drop(scope);
        Ok::<_, Error>(later.is_ok())
    });
    assert!(
        matches!(out, Ok(true)),
        "the dropped scope's timer cancelled the task later (Ok(false): sleep cancelled): {out:?}"
    );
}

struct SendBomb;

impl Drop for SendBomb {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("job closure drop");
        }
    }
}

/// A job cancelled before it ran, whose closure's Drop panics, kills the
/// pool's only worker: every later job waits for ever.
#[test]
fn executor_cancelled_job_drop_panic_does_not_kill_worker() {
    let pool = ThreadPoolExecutor::new(1);
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let a = pool
        .submit(move || {
            let _ = rx.recv_timeout(Duration::from_secs(5));
        })
        .unwrap();
    let bomb = SendBomb;
    let b = pool
        .submit(move || {
            let _keep = &bomb;
        })
        .unwrap();
    assert!(b.cancel(), "B cancelled before it ran");
    tx.send(()).unwrap();
    a.result(Some(Duration::from_secs(5))).unwrap();
    let c = pool.submit(|| 42).unwrap();
    let got = c.result(Some(Duration::from_secs(3)));
    assert_eq!(got.ok(), Some(42), "later job never ran: the worker died");
}

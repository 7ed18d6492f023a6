//! Futures of loop-futures dropped before they completed (the losing
//! branch of a select, a task aborted while suspended): each cleans up in
//! `Drop` what asyncio cleans up when the await is cancelled (`finally:`,
//! `except CancelledError:`), and the task that dropped one is not hit by
//! it later.
//!
//! Every loop runs on the manual clock with a far watchdog timer, except
//! the executor test (real threads, bounded by timeouts).

use std::cell::{Cell, RefCell};
use std::future::Future as StdFuture;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::Duration;

use loop_core::{EventLoop, ExceptionContext, ManualClock};
use loop_futures::{
    Condition, Error, EventLoopExt, Lock, create_task, current_task, sleep, yield_now,
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

fn run_briefly(ev: &EventLoop) {
    ev.call_soon(|ev| ev.stop()).unwrap();
    ev.run_forever().unwrap();
}

/// A task that sleeps 10 s (virtual): the child a parent awaits.
fn sleeping_child(ev: &EventLoop) -> loop_futures::Task<()> {
    ev.create_task(async move {
        sleep(Duration::from_secs(10)).await?;
        Ok::<_, Error>(())
    })
    .unwrap()
}

/// Cancels `parent` (suspended awaiting `child`) and checks that the
/// cancellation went to the child, as asyncio's `Task.cancel` cancels the
/// future its task awaits.
fn assert_cancel_reaches_the_child(
    ev: &EventLoop,
    parent: &loop_futures::Task<()>,
    child: &loop_futures::Task<()>,
) {
    parent.cancel(None);
    run_briefly(ev);
    run_briefly(ev);
    let _ = ev.run_until_complete(parent.clone());
    assert!(parent.cancelled(), "parent cancelled");
    assert!(
        child.cancelled(),
        "the child the parent awaited was not cancelled (done={})",
        child.done()
    );
}

async fn poll_once_and_drop<F: StdFuture>(fut: F) {
    let mut f = Box::pin(fut);
    std::future::poll_fn(|cx| {
        let _ = f.as_mut().poll(cx);
        Poll::Ready(())
    })
    .await;
    drop(f);
}

/// A non-tulip future (a foreign channel, say): ready once `flag` is set.
#[derive(Clone, Default)]
struct Flag(Rc<(Cell<bool>, RefCell<Option<Waker>>)>);
impl Flag {
    fn set(&self) {
        self.0.0.set(true);
        if let Some(w) = self.0.1.borrow_mut().take() {
            w.wake();
        }
    }
    async fn wait(&self) {
        std::future::poll_fn(|cx| {
            if self.0.0.get() {
                Poll::Ready(())
            } else {
                *self.0.1.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }
}

/// A tulip future polled then dropped stays the task's `fut_waiter`: a
/// later `cancel()` while the task waits on a foreign future cancels the
/// dropped future, and the task never sees the cancellation.
#[test]
fn cancel_after_dropped_tulip_future_is_not_lost() {
    let ev = manual_loop();
    let flag = Flag::default();
    let f2 = flag.clone();
    let task = ev
        .create_task(async move {
            poll_once_and_drop(sleep(Duration::from_secs(10))).await;
            f2.wait().await; // foreign await
            yield_now().await?; // first tulip await after: cancellation due here
            Ok::<_, Error>("finished normally")
        })
        .unwrap();
    run_briefly(&ev);
    assert!(task.cancel(None), "cancel accepted");
    flag.set();
    let out = ev.run_until_complete(task.clone());
    assert!(
        task.cancelled(),
        "cancel() returned true but the task was not cancelled: {out:?}"
    );
}

/// Polls `a` then `b` (as `futures::select!` does, biased); returns which
/// finished first and its output; the other is dropped.
async fn select2<A: StdFuture, B: StdFuture>(a: A, b: B) -> Result<A::Output, B::Output> {
    let mut a = Box::pin(a);
    let mut b = Box::pin(b);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(x) = a.as_mut().poll(cx) {
            return Poll::Ready(Ok(x));
        }
        if let Poll::Ready(y) = b.as_mut().poll(cx) {
            return Poll::Ready(Err(y));
        }
        Poll::Pending
    })
    .await
}

/// Same root cause, collateral damage: a child task's handle polled once
/// and dropped stays the parent's `fut_waiter`; cancelling the parent
/// cancels the child (which the parent no longer awaits) instead of the
/// parent.
#[test]
fn cancel_of_parent_does_not_hit_a_child_it_stopped_awaiting() {
    let ev = manual_loop();
    let ev2 = ev.clone();
    let flag = Flag::default();
    let f2 = flag.clone();
    let child = ev
        .create_task(async move {
            sleep(Duration::from_secs(1)).await?;
            Ok::<_, Error>(())
        })
        .unwrap();
    let c2 = child.clone();
    let parent = ev2
        .create_task(async move {
            poll_once_and_drop(c2).await;
            f2.wait().await;
            yield_now().await?;
            Ok::<_, Error>(())
        })
        .unwrap();
    run_briefly(&ev);
    parent.cancel(None);
    flag.set();
    run_briefly(&ev);
    run_briefly(&ev);
    let _ = ev.run_until_complete(child.clone());
    let _ = ev.run_until_complete(parent.clone());
    assert!(
        !child.cancelled() && parent.cancelled(),
        "parent.cancel() hit the child instead: child cancelled={}, parent cancelled={}",
        child.cancelled(),
        parent.cancelled()
    );
}

/// A timeout scope in one branch of a select, a shared future in the
/// other, polled in either order: the expiry cancels the future the
/// scope's body awaits (the scope keeps it from its body's last poll), not
/// the one the task recorded last (the shared future, when its branch is
/// polled second), and the scope reports `Timeout`; the shared future is
/// untouched. (A first version cancelled the shared future for every
/// holder.)
#[test]
fn a_timeout_in_either_select_branch_reports_timeout_and_spares_the_other() {
    for timeout_first in [true, false] {
        let ev = manual_loop();
        let shared: loop_futures::Future<u32> = ev.create_future();
        let s2 = shared.clone();
        let out = ev
            .run_until_complete(async move {
                let scope = loop_futures::timeout(Some(Duration::from_millis(100)));
                let body = scope.run(sleep(Duration::from_secs(10)));
                let r = if timeout_first {
                    format!("{:?}", select2(body, s2.clone()).await)
                } else {
                    format!("{:?}", select2(s2.clone(), body).await)
                };
                Ok::<_, Error>(r)
            })
            .unwrap();
        assert!(
            !shared.cancelled() && out.contains("Timeout"),
            "timeout first: {timeout_first}: select returned {out}; shared future cancelled: {}",
            shared.cancelled()
        );
    }
}

/// A TaskGroup scope dropped mid-body (a select's losing branch): its
/// child keeps running, and when the child fails later the group cancels
/// the parent task's unrelated later work.
#[test]
fn task_group_dropped_mid_body_does_not_cancel_parent_later() {
    let ev = manual_loop();
    let ran_after = Rc::new(Cell::new(false));
    let ra = ran_after.clone();
    let out = ev.run_until_complete(async move {
        poll_once_and_drop(loop_futures::TaskGroup::scope(move |tg| async move {
            tg.create_task(async move {
                sleep(Duration::from_millis(100)).await?;
                ra.set(true);
                Err::<(), Error>(Error::msg("child failed"))
            })?;
            std::future::pending::<Result<(), Error>>().await
        }))
        .await;
        // Unrelated later work of the same task.
        sleep(Duration::from_millis(500)).await?;
        Ok::<_, Error>(())
    });
    assert!(
        out.is_ok() && !ran_after.get(),
        "later work: {out:?}; child ran on after the group was dropped: {}",
        ran_after.get()
    );
}

/// `Condition::wait` dropped while the lock is released (another task
/// holds it by then): the caller's `LockGuard` then releases the *other*
/// task's lock, and a third task gets in while the second still holds it.
#[test]
fn condition_wait_dropped_guard_releases_someone_elses_lock() {
    let ev = manual_loop();
    let cond = loop_futures::Condition::new(None);
    let inside = Rc::new(Cell::new(0u32));
    let max_inside = Rc::new(Cell::new(0u32));
    let (c1, c2, c3) = (cond.clone(), cond.clone(), cond.clone());
    let a = ev
        .create_task(async move {
            let _g = c1.lock().lock().await?;
            c1.wait().await?;
            Ok::<_, Error>(())
        })
        .unwrap();
    run_briefly(&ev); // A holds the lock, then releases it in wait()
    let enter = |c: loop_futures::Condition, inside: Rc<Cell<u32>>, max: Rc<Cell<u32>>| async move {
        let _g = c.lock().lock().await?;
        inside.set(inside.get() + 1);
        max.set(max.get().max(inside.get()));
        sleep(Duration::from_millis(100)).await?;
        inside.set(inside.get() - 1);
        Ok::<_, Error>(())
    };
    let b = ev
        .create_task(enter(c2, inside.clone(), max_inside.clone()))
        .unwrap();
    run_briefly(&ev); // B holds the lock
    a.abort(); // A's coroutine dropped: its LockGuard releases B's lock
    let c = ev
        .create_task(enter(c3, inside.clone(), max_inside.clone()))
        .unwrap();
    let _ = ev.run_until_complete(b);
    let _ = ev.run_until_complete(c);
    assert_eq!(max_inside.get(), 1, "two tasks held the lock at once");
}

/// `as_completed(...).next_task()` dropped before a task completed (a
/// select with a tick): the claimed item is gone, the iteration ends
/// before yielding every task.
#[test]
fn as_completed_next_task_dropped_loses_an_item() {
    let ev = manual_loop();
    let out = ev.run_until_complete(async move {
        let t = loop_futures::create_task(async {
            sleep(Duration::from_millis(100)).await?;
            Ok::<_, Error>(1)
        })?;
        let mut it = loop_futures::as_completed(vec![t], None)?;
        poll_once_and_drop(it.next_task()).await;
        let next = it.next_task().await;
        Ok::<_, Error>((next.is_some(), it.remaining()))
    });
    assert!(
        matches!(out, Ok((true, _))),
        "the only task was never yielded: {out:?}"
    );
}

/// A `gather` dropped mid-wait (the awaiting task's select went the other
/// way) cancels its children, as asyncio's equivalent (the awaiting task
/// cancelled) does. They used to run on unsupervised, and a child's error
/// was marked retrieved by the orphaned core: nobody ever heard of it.
#[test]
fn gather_dropped_mid_wait_leaves_children_running_and_swallows_errors() {
    let ev = manual_loop();
    let reports = Rc::new(RefCell::new(Vec::<String>::new()));
    let r2 = reports.clone();
    ev.set_exception_handler(Some(move |_: &EventLoop, c: ExceptionContext| {
        r2.borrow_mut().push(c.message().to_string());
    }));
    let ran_on = Rc::new(Cell::new(false));
    let ro = ran_on.clone();
    let out = ev.run_until_complete(async move {
        let child = async move {
            sleep(Duration::from_millis(100)).await?;
            ro.set(true);
            Err::<(), Error>(Error::msg("child failed"))
        };
        poll_once_and_drop(loop_futures::gather(vec![Box::pin(child)])).await;
        sleep(Duration::from_millis(500)).await?;
        Ok::<_, Error>(())
    });
    assert!(out.is_ok());
    assert!(
        !ran_on.get(),
        "child outlived its dropped gather; reports: {:?}",
        reports.borrow()
    );
}

/// `to_thread` dropped while its job is still queued (a select with a
/// timeout gave up on it): as asyncio's to_thread cancelled, the job never
/// runs. It used to run anyway (a select-with-timeout loop piled jobs up).
/// A plain `run_in_executor` handle is a shared `Future`: dropping one
/// leaves the job alone; `Future::cancel_on_drop` is the opt-in.
#[test]
fn to_thread_dropped_while_queued_never_runs_the_job() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let ev = EventLoop::new().unwrap();
    let watchdog = ev
        .call_later(Duration::from_secs(10), |ev| ev.stop())
        .unwrap();
    loop_futures::set_default_executor(&ev, Arc::new(loop_futures::ThreadPoolExecutor::new(1)));
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let dropped_polled = Arc::new(AtomicBool::new(false));
    let dropped_unpolled = Arc::new(AtomicBool::new(false));
    let awaited = Arc::new(AtomicBool::new(false));
    let (d1, d2, a) = (
        dropped_polled.clone(),
        dropped_unpolled.clone(),
        awaited.clone(),
    );
    let out = ev.run_until_complete(async move {
        // The only worker is busy until `tx` sends.
        let busy = loop_futures::to_thread(move || {
            let _ = rx.recv_timeout(Duration::from_secs(5));
        });
        let busy = loop_futures::create_task(busy)?;
        poll_once_and_drop(loop_futures::to_thread(move || {
            d1.store(true, Ordering::SeqCst);
        }))
        .await;
        // Dropped without being polled: the job was submitted all the same
        // (eagerly), and is cancelled all the same.
        drop(loop_futures::to_thread(move || {
            d2.store(true, Ordering::SeqCst);
        }));
        // The last one is awaited: it runs, after the two cancelled ones.
        let last = loop_futures::to_thread(move || a.store(true, Ordering::SeqCst));
        // The loop future's cancellation reaches the job's concurrent
        // future through a done callback, in the next iteration (asyncio's
        // `_chain_future` too): only then is the worker let go.
        yield_now().await?;
        yield_now().await?;
        tx.send(()).unwrap();
        busy.await?;
        last.await?;
        Ok::<_, Error>(())
    });
    watchdog.cancel();
    out.unwrap();
    assert!(awaited.load(Ordering::SeqCst), "the awaited job ran");
    assert!(
        !dropped_polled.load(Ordering::SeqCst) && !dropped_unpolled.load(Ordering::SeqCst),
        "the job of a dropped to_thread ran although it had not started"
    );
}

/// A tulip future kept across a select (`&mut shutdown`, the common
/// `loop { select(&mut shutdown, next_item) }` shape) is polled pending in
/// the same step as the child task awaited next: `parent.cancel()` cancels
/// the child the parent awaits (asyncio: cancelling a task cancels the
/// future it awaits). A first fix that recorded nothing when one step
/// polled two pending futures broke this.
#[test]
fn cancel_reaches_awaited_child_after_a_select_with_a_kept_future() {
    let ev = manual_loop();
    let child = sleeping_child(&ev);
    let c2 = child.clone();
    let shutdown: loop_futures::Future<()> = ev.create_future();
    let s2 = shutdown.clone();
    let parent = ev
        .create_task(async move {
            let mut shutdown = s2;
            // One select: `shutdown` pending (kept), the other branch ready.
            std::future::poll_fn(|cx| {
                let _ = std::pin::Pin::new(&mut shutdown).poll(cx);
                Poll::Ready(())
            })
            .await;
            // Same step: await the child.
            c2.await?;
            drop(shutdown);
            Ok::<_, Error>(())
        })
        .unwrap();
    run_briefly(&ev);
    assert_cancel_reaches_the_child(&ev, &parent, &child);
}

/// asyncio: `async with lock: lock.release(); await lock.acquire()` leaves
/// the lock released at the block's exit.
#[test]
fn guard_after_manual_release_and_reacquire_releases() {
    let ev = manual_loop();
    let lock = Lock::new();
    let l2 = lock.clone();
    ev.run_until_complete(async move {
        let _g = l2.lock().await?;
        l2.release()?;
        l2.acquire().await?;
        Ok::<_, Error>(())
    })
    .unwrap();
    assert!(!lock.locked(), "the guard left the lock held forever");
}

/// Same through a Condition over the guard's lock: `cond.release()` then
/// `cond.acquire()` (asyncio: the `async with` exit releases).
#[test]
fn guard_after_condition_release_acquire_releases() {
    let ev = manual_loop();
    let cond = Condition::new(None);
    let c2 = cond.clone();
    ev.run_until_complete(async move {
        let _g = c2.lock().lock().await?;
        c2.release()?;
        sleep(Duration::from_millis(1)).await?;
        c2.acquire().await?;
        Ok::<_, Error>(())
    })
    .unwrap();
    assert!(!cond.locked(), "the guard left the lock held forever");
}

/// A guard made stale by a `Condition::wait` dropped after it released
/// the lock never releases the lock another task took since (a first fix
/// numbered acquisitions and let `wait` restore its number, which a later
/// acquisition could be given again).
#[test]
fn a_stale_guard_never_releases_another_tasks_lock() {
    let ev = manual_loop();
    let cond = Condition::new(None);
    let inside = Rc::new(Cell::new(0u32));
    let max_inside = Rc::new(Cell::new(0u32));
    let ca = cond.clone();
    ev.create_task(async move {
        let g = ca.lock().lock().await?;
        ca.wait().await?; // releases, then re-acquires for `g`
        drop(g); // releases
        Ok::<_, Error>(())
    })
    .unwrap();
    run_briefly(&ev);
    let cb = cond.clone();
    let b = ev
        .create_task(async move {
            let g = cb.lock().lock().await?;
            cb.notify(1)?;
            // A wait dropped after it released: `g` is stale.
            poll_once_and_drop(cb.wait()).await;
            sleep(Duration::from_millis(50)).await?;
            drop(g); // must not release anyone else's acquisition
            Ok::<_, Error>(())
        })
        .unwrap();
    run_briefly(&ev);
    run_briefly(&ev);
    let enter = |c: Condition, inside: Rc<Cell<u32>>, max: Rc<Cell<u32>>| async move {
        let _g = c.lock().lock().await?;
        inside.set(inside.get() + 1);
        max.set(max.get().max(inside.get()));
        sleep(Duration::from_millis(100)).await?;
        inside.set(inside.get() - 1);
        Ok::<_, Error>(())
    };
    let c = ev
        .create_task(enter(cond.clone(), inside.clone(), max_inside.clone()))
        .unwrap();
    let d = ev
        .create_task(enter(cond.clone(), inside.clone(), max_inside.clone()))
        .unwrap();
    let _ = ev.run_until_complete(b);
    let _ = ev.run_until_complete(c);
    let _ = ev.run_until_complete(d);
    assert_eq!(max_inside.get(), 1, "two tasks held the lock at once");
}

/// A guard handed to a worker task that waits on a `Condition` over the
/// lock: the wait's re-acquisition continues the guard's acquisition, so
/// dropping the guard releases the lock (a first owner-by-task rule left
/// it held for ever).
#[test]
fn a_guard_moved_to_a_task_that_waits_on_the_condition_still_releases() {
    let ev = manual_loop();
    let cond = Condition::new(None);
    let c = cond.clone();
    ev.run_until_complete(async move {
        let g = c.lock().lock().await?;
        let c2 = c.clone();
        let worker = create_task(async move {
            let _g = g; // the worker now holds the lock
            c2.wait().await?;
            Ok::<_, Error>(())
        })?;
        sleep(Duration::from_millis(1)).await?;
        {
            let _n = c.lock().lock().await?;
            c.notify(1)?;
        }
        worker.await?;
        Ok::<_, Error>(())
    })
    .unwrap();
    assert!(
        !cond.locked(),
        "lock held for ever after the guard was dropped"
    );
}

/// One task, two handles of the same child: the one polled first is
/// dropped after the other was polled pending (a join whose second branch
/// is a select dropping its loser): the child stays what the task awaits,
/// and `parent.cancel()` cancels it.
#[test]
fn dropping_one_handle_keeps_the_record_of_another_still_awaited() {
    let ev = manual_loop();
    let child = sleeping_child(&ev);
    let c2 = child.clone();
    let parent = ev
        .create_task(async move {
            let mut h2 = c2.clone();
            let mut h1 = Some(c2.clone());
            let r = std::future::poll_fn(|cx| {
                if let Poll::Ready(r) = Pin::new(&mut h2).poll(cx) {
                    return Poll::Ready(r);
                }
                if let Some(h) = h1.as_mut() {
                    let _ = Pin::new(h).poll(cx);
                    h1 = None; // the select's losing branch
                }
                Poll::Pending
            })
            .await;
            r?;
            Ok::<_, Error>(())
        })
        .unwrap();
    run_briefly(&ev);
    assert_cancel_reaches_the_child(&ev, &parent, &child);
}

/// Task B awaits the child and, in the same step, aborts task A, whose
/// body holds a polled handle of the same child: A's handle dropped in B's
/// step leaves B's record alone, and `b.cancel()` cancels the child.
#[test]
fn a_handle_dropped_in_another_tasks_step_keeps_that_tasks_record() {
    let ev = manual_loop();
    let child = sleeping_child(&ev);
    let ca = child.clone();
    let a = ev
        .create_task(async move {
            ca.await?;
            Ok::<_, Error>(())
        })
        .unwrap();
    run_briefly(&ev);
    let cb = child.clone();
    let slot = Rc::new(RefCell::new(Some(a)));
    let b = ev
        .create_task(async move {
            let mut h = cb;
            let r = std::future::poll_fn(|cx| {
                if let Poll::Ready(r) = Pin::new(&mut h).poll(cx) {
                    return Poll::Ready(r);
                }
                if let Some(a) = slot.borrow_mut().take() {
                    a.abort(); // drops A's body now: its handle of the child
                }
                Poll::Pending
            })
            .await;
            r?;
            Ok::<_, Error>(())
        })
        .unwrap();
    run_briefly(&ev);
    assert_cancel_reaches_the_child(&ev, &b, &child);
}

/// The timeout's body awaits F, and F completes in the iteration the scope
/// expires in, before the task's step: F refuses the cancellation, which
/// then waits for the body instead of going to the task's record (the
/// other branch's shared future).
#[test]
fn a_timeout_expiring_as_its_body_completes_spares_the_other_branch() {
    let ev = manual_loop();
    let shared: loop_futures::Future<u32> = ev.create_future();
    let s2 = shared.clone();
    let f: loop_futures::Future<u32> = ev.create_future();
    let f2 = f.clone();
    let ev2 = ev.clone();
    let out = ev
        .run_until_complete(async move {
            let scope = loop_futures::timeout(None);
            let sc = scope.clone();
            let ev3 = ev2.clone();
            ev2.call_later(Duration::from_secs(1), move |_| {
                sc.reschedule(Some(ev3.time())).unwrap(); // expiry queued first
                f2.set_result(7).unwrap(); // then the task's wake-up
            })
            .unwrap();
            let body = scope.run(f.clone());
            let r = select2(body, s2.clone()).await;
            Ok::<_, Error>(format!("{r:?}"))
        })
        .unwrap();
    assert!(
        !shared.cancelled(),
        "shared future cancelled by the body's timeout; select returned {out}"
    );
}

/// A timeout whose body awaits no tulip future (it only yields), in a
/// select beside a shared future, either branch first: the expiry goes to
/// the body's next yield, the scope reports `Timeout`, the shared future
/// is untouched.
#[test]
fn a_timeout_whose_body_awaits_no_future_reports_timeout_in_a_select() {
    for timeout_first in [false, true] {
        let ev = manual_loop();
        let shared: loop_futures::Future<u32> = ev.create_future();
        let s2 = shared.clone();
        let ev2 = ev.clone();
        let out = ev
            .run_until_complete(async move {
                let scope = loop_futures::timeout(None);
                let sc = scope.clone();
                let body = scope.run(async move {
                    for i in 0..1000u32 {
                        if i == 3 {
                            sc.reschedule(Some(ev2.time()))?;
                        }
                        yield_now().await?;
                    }
                    Ok::<_, Error>("body never cancelled")
                });
                let r = if timeout_first {
                    format!("{:?}", select2(body, s2.clone()).await)
                } else {
                    format!("{:?}", select2(s2.clone(), body).await)
                };
                Ok::<_, Error>(r)
            })
            .unwrap();
        assert!(
            !shared.cancelled() && out.contains("Timeout"),
            "timeout_first={timeout_first}: select returned {out}; shared cancelled: {}",
            shared.cancelled()
        );
    }
}

/// A timeout body that awaits no tulip future: it yields; at the 4th
/// yield `trigger` runs; on the first `Cancelled` it does a cleanup of 3
/// yields (asyncio's `except CancelledError: await cleanup(); raise`) and
/// returns the error.
async fn yielding_body_with_cleanup(
    trigger: impl FnOnce(),
    cleaned: Rc<Cell<bool>>,
) -> Result<&'static str, Error> {
    let mut trigger = Some(trigger);
    for i in 0..1000u32 {
        if i == 3 {
            (trigger.take().unwrap())();
        }
        if let Err(e) = yield_now().await {
            for _ in 0..3 {
                yield_now().await?;
            }
            cleaned.set(true);
            return Err(e);
        }
    }
    Ok("never cancelled")
}

/// An outer `task.cancel()` and the scope's expiry in one iteration, the
/// body awaiting no tulip future: one `Cancelled` (asyncio: two cancels,
/// one `CancelledError`), the body's cleanup completes, the scope passes
/// the outer cancellation on, `cancelling()` is 1 after. (A first version
/// delivered the expiry again into the cleanup.)
#[test]
fn external_cancel_and_expiry_are_one_cancellation() {
    let ev = manual_loop();
    let cleaned = Rc::new(Cell::new(false));
    let c2 = cleaned.clone();
    let ev2 = ev.clone();
    let out = ev
        .run_until_complete(async move {
            let scope = loop_futures::timeout(None);
            let sc = scope.clone();
            let r = scope
                .run(yielding_body_with_cleanup(
                    move || {
                        let t = current_task().unwrap();
                        ev2.call_soon(move |_| {
                            t.cancel(None);
                        })
                        .unwrap();
                        sc.reschedule(Some(ev2.time())).unwrap();
                    },
                    c2,
                ))
                .await;
            let n = current_task().unwrap().cancelling();
            Ok::<_, Error>(format!("{r:?} cancelling={n}"))
        })
        .unwrap();
    assert!(
        cleaned.get() && out.contains("Cancelled") && out.contains("cancelling=1"),
        "cleanup finished: {}; {out}",
        cleaned.get()
    );
}

/// Inner and outer scopes expire in one iteration while the body only
/// yields: one `Cancelled` (asyncio), the cleanup completes, the inner
/// scope passes it on, the outer reports `Timeout`, `cancelling()` is 0.
#[test]
fn nested_scopes_expiring_together_deliver_once() {
    let ev = manual_loop();
    let cleaned = Rc::new(Cell::new(false));
    let c2 = cleaned.clone();
    let ev2 = ev.clone();
    let out = ev
        .run_until_complete(async move {
            let outer = loop_futures::timeout(None);
            let inner = loop_futures::timeout(None);
            let (o2, i2) = (outer.clone(), inner.clone());
            let r = outer
                .run(inner.run(yielding_body_with_cleanup(
                    move || {
                        o2.reschedule(Some(ev2.time())).unwrap();
                        i2.reschedule(Some(ev2.time())).unwrap();
                    },
                    c2,
                )))
                .await;
            let n = current_task().unwrap().cancelling();
            Ok::<_, Error>(format!("{r:?} cancelling={n}"))
        })
        .unwrap();
    assert!(
        cleaned.get() && out.contains("Timeout") && out.contains("cancelling=0"),
        "cleanup finished: {}; {out}",
        cleaned.get()
    );
}

/// A timeout body that panics in the poll the scope armed the expiry's
/// cancellation for (the panic caught in the task, the failed scope kept):
/// the task's next await does not receive that cancellation. (The panic
/// unwinds through the scope's `run`, whose guard leaves the scope, and
/// its `uncancel` takes the armed request back.)
#[test]
fn a_timeout_body_panicking_in_its_armed_poll_leaves_no_stray_cancellation() {
    let ev = manual_loop();
    let flag = Flag::default();
    let out = ev
        .run_until_complete(async move {
            let scope = loop_futures::timeout(None);
            let (sc, f) = (scope.clone(), flag.clone());
            let ev = loop_core::get_running_loop()?;
            ev.call_soon(move |ev| {
                sc.reschedule(Some(ev.time())).unwrap();
                f.set();
            })?;
            let expired = flag.clone();
            // A foreign await that panics once the flag is set: it never
            // takes the armed cancellation.
            let mut run = Box::pin(scope.run(async move {
                expired.wait().await;
                panic!("body failed");
                #[allow(unreachable_code)]
                Ok::<(), Error>(())
            }));
            let caught = std::future::poll_fn(|cx| {
                match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    run.as_mut().poll(cx)
                })) {
                    Ok(Poll::Pending) => Poll::Pending,
                    Ok(Poll::Ready(_)) => Poll::Ready(false),
                    Err(_) => Poll::Ready(true),
                }
            })
            .await;
            // Awaited while the failed scope is still alive (dropping it
            // takes its request back).
            let next = yield_now().await;
            drop(run);
            Ok::<_, Error>((caught, next.is_ok(), current_task().unwrap().cancelling()))
        })
        .unwrap();
    assert_eq!(
        out,
        (true, true, 0),
        "(panic caught, next await ok, cancelling)"
    );
}

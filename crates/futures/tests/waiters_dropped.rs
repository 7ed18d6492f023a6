//! Primitives whose waiter is dropped mid-wait (`Task::abort`, a `select`
//! that went the other way): the waiter leaves the queue, and a wake-up it
//! was handed is passed on.
//!
//! * `Condition::wait`: a notify that went to a waiter aborted before it
//!   ran reaches another waiter (asyncio: `except BaseException:
//!   self._notify(1)`), and an aborted waiter is not notified instead of a
//!   live one.
//! * `Event::wait` and `Barrier::wait`: no dead waiter stays queued.

mod support;

use loop_futures::{Barrier, Condition, Error, Event, create_task, yield_now};
use support::run_test;

async fn settle() -> Result<(), Error> {
    for _ in 0..5 {
        yield_now().await?;
    }
    Ok(())
}

fn condition_waiter(cond: &Condition) -> Result<loop_futures::Task<()>, Error> {
    let c = cond.clone();
    Ok(create_task(async move {
        c.acquire().await?;
        c.wait().await?;
        c.release()
    })?)
}

#[test]
fn a_notify_skips_a_condition_waiter_aborted_while_waiting() {
    run_test(async {
        let cond = Condition::new(None);
        let t1 = condition_waiter(&cond)?;
        let t2 = condition_waiter(&cond)?;
        settle().await?;
        t1.abort();
        settle().await?;
        cond.acquire().await?;
        cond.notify(1)?;
        cond.release()?;
        settle().await?;
        assert!(t2.done(), "the notify reached the live waiter: {cond:?}");
        assert!(t1.cancelled());
        Ok(())
    });
}

#[test]
fn a_notify_taken_by_an_aborted_condition_waiter_is_passed_on() {
    run_test(async {
        let cond = Condition::new(None);
        let t1 = condition_waiter(&cond)?;
        let t2 = condition_waiter(&cond)?;
        settle().await?;
        // t1 is notified, then aborted before it runs.
        cond.acquire().await?;
        cond.notify(1)?;
        cond.release()?;
        t1.abort();
        settle().await?;
        assert!(t1.cancelled());
        assert!(t2.done(), "the notify t1 took went on to t2: {cond:?}");
        Ok(())
    });
}

#[test]
fn aborted_event_waiters_leave_the_queue() {
    run_test(async {
        let event = Event::new();
        let mut tasks = Vec::new();
        for _ in 0..3 {
            let e = event.clone();
            tasks.push(create_task(async move { e.wait().await })?);
        }
        settle().await?;
        assert!(format!("{event:?}").contains("waiters: 3"), "{event:?}");
        for task in &tasks {
            task.abort();
        }
        settle().await?;
        assert!(format!("{event:?}").contains("waiters: 0"), "{event:?}");
        // A live waiter still wakes.
        let e = event.clone();
        let live = create_task(async move { e.wait().await })?;
        settle().await?;
        event.set();
        settle().await?;
        assert!(live.done());
        Ok(())
    });
}

#[test]
fn aborted_barrier_waiters_leave_the_queue() {
    run_test(async {
        let barrier = Barrier::new(3)?;
        let mut tasks = Vec::new();
        for _ in 0..2 {
            let b = barrier.clone();
            tasks.push(create_task(async move { b.wait().await.map(|_| ()) })?);
        }
        settle().await?;
        assert!(format!("{barrier:?}").contains("queued: 2"), "{barrier:?}");
        for task in &tasks {
            task.abort();
        }
        settle().await?;
        assert!(format!("{barrier:?}").contains("queued: 0"), "{barrier:?}");
        assert_eq!(barrier.n_waiting(), 0);
        Ok(())
    });
}

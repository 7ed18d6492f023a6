//! The doors between threads and the loop, where they meet each other:
//! bridge keys are never reused (a late cancel or `forget` never reaches
//! another bridge), `run_coroutine_threadsafe` with a `make` that panics,
//! a `ConcurrentFuture` waited on for `Duration::MAX`, and a panicking
//! callback added to a future already done.
//!
//! Loops run on the manual clock (the sleeps are virtual); the other
//! threads are joined before the loop looks at what they did.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use loop_core::{EventLoop, ManualClock};
use loop_futures::{
    ConcurrentFuture, Error, EventLoopExt, run_coroutine_threadsafe, sleep, wait_for, wrap_future,
};

fn manual_loop() -> EventLoop {
    EventLoop::builder()
        .manual_clock(ManualClock::new())
        .build()
        .expect("loop")
}

#[test]
fn a_late_forget_does_not_reach_a_bridge_made_since() {
    // A run_coroutine_threadsafe task outlives its cancellation a while;
    // its cancel entry is taken, a wrap_future made meanwhile gets a key,
    // and the task's end then forgets the cancel key: with reused keys
    // that was the wrap_future's entry, and its future never completed.
    let ev = manual_loop();
    let ev2 = ev.clone();
    let got = ev.run_until_complete(async move {
        let remote = ev2.remote();
        let cf = run_coroutine_threadsafe(&remote, || async {
            let _ = sleep(Duration::from_secs(100)).await; // cancelled
            let _ = sleep(Duration::from_millis(50)).await; // lingers
            Ok::<_, Error>(1)
        })?;
        sleep(Duration::from_millis(10)).await?;
        assert!(cf.cancel());
        sleep(Duration::from_millis(10)).await?; // the cancel entry ran
        let source = ConcurrentFuture::<i32>::new();
        let wrapped = wrap_future(&ev2, source.clone());
        sleep(Duration::from_millis(100)).await?; // the task ended: forget
        let s = source.clone();
        thread::spawn(move || s.set_result(7).unwrap())
            .join()
            .unwrap();
        wait_for(wrapped, Some(Duration::from_secs(1))).await
    });
    assert_eq!(got.unwrap(), 7);
}

#[test]
fn a_make_that_panics_fails_the_concurrent_future() {
    let ev = manual_loop();
    let ev2 = ev.clone();
    let cf = ev
        .run_until_complete(async move {
            let cf = run_coroutine_threadsafe(
                &ev2.remote(),
                || -> std::future::Ready<Result<i32, Error>> { panic!("make failed") },
            )?;
            sleep(Duration::from_millis(1)).await?;
            Ok::<_, Error>(cf)
        })
        .unwrap();
    assert!(cf.done(), "not left pending");
    let err = cf.result(Some(Duration::ZERO)).unwrap_err();
    assert!(matches!(err, Error::Panic(_)), "{err:?}");
    assert!(err.to_string().contains("make failed"), "{err}");
}

#[test]
fn waiting_duration_max_on_a_concurrent_future_does_not_overflow() {
    let done = ConcurrentFuture::<i32>::new();
    done.set_result(3).unwrap();
    assert_eq!(done.result(Some(Duration::MAX)).unwrap(), 3);
    assert!(done.exception(Some(Duration::MAX)).unwrap().is_none());
    // Pending: completed by another thread while this one waits "for ever".
    let pending = ConcurrentFuture::<i32>::new();
    let p = pending.clone();
    let setter = thread::spawn(move || p.set_result(4).unwrap());
    assert_eq!(pending.result(Some(Duration::MAX)).unwrap(), 4);
    setter.join().unwrap();
}

#[test]
fn a_panicking_callback_on_a_done_concurrent_future_is_caught() {
    let cf = ConcurrentFuture::<i32>::new();
    cf.set_result(1).unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    // Runs at once (the future is done); its panic is logged, not raised.
    cf.add_done_callback(move |_| {
        c.fetch_add(1, Ordering::SeqCst);
        panic!("callback failed");
    });
    let c = calls.clone();
    cf.add_done_callback(move |_| {
        c.fetch_add(1, Ordering::SeqCst);
    });
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

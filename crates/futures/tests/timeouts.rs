//! `sleep`, `timeout`, `wait_for` on the deterministic clock.

use std::time::Duration;

use loop_core::{EventLoop, ManualClock};
use loop_futures::{Error, EventLoopExt, sleep, timeout, wait_for};

fn manual_loop() -> (EventLoop, ManualClock) {
    let clock = ManualClock::new();
    let ev = EventLoop::builder()
        .manual_clock(clock.clone())
        .build()
        .unwrap();
    (ev, clock)
}

#[test]
fn wait_for_times_out_at_the_deadline_on_virtual_time() {
    let (ev, _clock) = manual_loop();
    let start = ev.time();
    let err = ev
        .run_until_complete(async {
            wait_for(sleep(Duration::from_secs(10)), Some(Duration::from_secs(1))).await
        })
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert_eq!(ev.time() - start, Duration::from_secs(1));
}

#[test]
fn wait_for_returns_a_result_that_arrives_before_the_deadline() {
    let (ev, _clock) = manual_loop();
    let ev2 = ev.clone();
    let got = ev
        .run_until_complete(async move {
            let fut = ev2.create_future::<u32>();
            let setter = fut.clone();
            ev2.call_later(Duration::from_millis(500), move |_| {
                let _ = setter.set_result(7);
            })?;
            wait_for(fut, Some(Duration::from_secs(1))).await
        })
        .unwrap();
    assert_eq!(got, 7);
}

#[test]
fn an_outer_cancel_is_not_turned_into_a_timeout() {
    let (ev, _clock) = manual_loop();
    let task = ev
        .create_task(async {
            wait_for(sleep(Duration::from_secs(10)), Some(Duration::from_secs(5))).await
        })
        .unwrap();
    let handle = task.clone();
    ev.call_later(Duration::from_secs(1), move |_| {
        handle.cancel(Some("outer"));
    })
    .unwrap();
    let err = ev.run_until_complete(task.clone()).unwrap_err();
    assert_eq!(
        err.as_cancelled().and_then(|c| c.message()),
        Some("outer"),
        "{err:?}"
    );
    assert!(task.cancelled());
}

#[test]
fn nested_timeouts_report_the_one_that_expired() {
    let (ev, _clock) = manual_loop();
    let outcome = ev
        .run_until_complete(async {
            let outer = timeout(Some(Duration::from_secs(10)));
            let outer2 = outer.clone();
            let inner_result = outer
                .run(async {
                    let inner = timeout(Some(Duration::from_secs(1)));
                    let r = inner.run(sleep(Duration::from_secs(5))).await;
                    Ok::<_, Error>((r.map_err(|e| e.is_timeout()), inner.expired()))
                })
                .await?;
            Ok::<_, Error>((inner_result, outer2.expired()))
        })
        .unwrap();
    assert_eq!(outcome, ((Err(true), true), false));
}

#[test]
fn sleep_zero_yields_one_iteration_and_sleep_is_cancellable() {
    let (ev, _clock) = manual_loop();
    let task = ev
        .create_task(async { sleep(Duration::from_secs(3600)).await })
        .unwrap();
    let handle = task.clone();
    ev.call_soon(move |_| {
        handle.cancel(None);
    })
    .unwrap();
    let start = ev.time();
    assert!(ev.run_until_complete(task).unwrap_err().is_cancelled());
    assert!(
        ev.time() - start < Duration::from_secs(1),
        "the cancelled sleep's timer still ran"
    );
    assert_eq!(
        ev.stats().timers,
        0,
        "cancelled sleep left its timer behind"
    );
}

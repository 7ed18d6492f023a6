//! `sleep`, `timeout`, `wait_for` on the deterministic clock: the starter
//! cases, `Timeout::reschedule` / `expired` / `when`, and the `wait_for`
//! races CPython 3.12 fixed (cpython#86296, cpython#84849).

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use loop_core::{EventLoop, ManualClock, get_running_loop};
use loop_futures::{
    Error, EventLoopExt, create_task, current_task, sleep, sleep_until, timeout, timeout_at,
    wait_for, yield_now,
};

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

// ===== reschedule / expired / when =====

#[test]
fn reschedule_moves_the_deadline_and_the_scope_fires_there() {
    let (ev, _clock) = manual_loop();
    let start = ev.time();
    let (result, cm, elapsed) = ev
        .run_until_complete(async move {
            let cm = timeout(Some(Duration::from_secs(1)));
            let scope = cm.clone();
            let result = cm
                .run(async move {
                    sleep(Duration::from_millis(500)).await?;
                    assert!(!scope.expired());
                    // Later than the first deadline: the first one must not fire.
                    let later = get_running_loop()?.time() + Duration::from_secs(2);
                    scope.reschedule(Some(later))?;
                    assert_eq!(scope.when(), Some(later));
                    sleep(Duration::from_secs(10)).await
                })
                .await;
            Ok::<_, Error>((result, cm, get_running_loop()?.time() - start))
        })
        .unwrap();
    assert!(result.unwrap_err().is_timeout());
    assert!(cm.expired());
    assert_eq!(elapsed, Duration::from_millis(2500));
}

#[test]
fn reschedule_into_the_past_expires_before_the_next_step() {
    let (ev, clock) = manual_loop();
    clock.advance(Duration::from_secs(60));
    let result = ev
        .run_until_complete(async {
            let cm = timeout(Some(Duration::from_secs(10)));
            let scope = cm.clone();
            Ok::<_, Error>(
                cm.run(async move {
                    let past = get_running_loop()?.time() - Duration::from_secs(1);
                    scope.reschedule(Some(past))?;
                    // A bare yield is enough for the expiry to land.
                    yield_now().await?;
                    Ok::<_, Error>("not reached")
                })
                .await,
            )
        })
        .unwrap();
    assert!(result.unwrap_err().is_timeout());
}

#[test]
fn reschedule_to_none_disables_the_deadline() {
    let (ev, _clock) = manual_loop();
    let start = ev.time();
    let (value, cm) = ev
        .run_until_complete(async {
            let cm = timeout(Some(Duration::from_millis(10)));
            let scope = cm.clone();
            let value = cm
                .run(async move {
                    scope.reschedule(None)?;
                    assert_eq!(scope.when(), None);
                    sleep(Duration::from_secs(1)).await?;
                    Ok::<_, Error>(7)
                })
                .await?;
            Ok::<_, Error>((value, cm))
        })
        .unwrap();
    assert_eq!(value, 7);
    assert!(!cm.expired());
    assert_eq!(ev.time() - start, Duration::from_secs(1));
}

#[test]
fn reschedule_after_expiry_or_exit_is_refused_and_the_loop_goes_on() {
    let (ev, _clock) = manual_loop();
    let messages = ev
        .run_until_complete(async {
            let cm = timeout(Some(Duration::from_millis(10)));
            let scope = cm.clone();
            let during_expiry = Rc::new(RefCell::new(None));
            let slot = during_expiry.clone();
            let result = cm
                .run(async move {
                    let slept = sleep(Duration::from_secs(1)).await;
                    // The scope expired and cancelled us: too late to move it.
                    *slot.borrow_mut() = Some(scope.reschedule(None).unwrap_err().to_string());
                    slept
                })
                .await;
            assert!(result.unwrap_err().is_timeout());
            let after = cm.reschedule(None).unwrap_err().to_string();
            let during = during_expiry.borrow_mut().take().unwrap();
            // The loop is still usable.
            sleep(Duration::from_millis(1)).await?;
            Ok::<_, Error>((during, after))
        })
        .unwrap();
    assert!(messages.0.contains("expiring"), "{messages:?}");
    assert!(messages.1.contains("expired"), "{messages:?}");
}

#[test]
fn timeout_at_reports_its_absolute_deadline_and_sleep_until_meets_it() {
    let (ev, _clock) = manual_loop();
    let start = ev.time();
    let deadline = start + Duration::from_millis(300);
    let (cm, result) = ev
        .run_until_complete(async move {
            let cm = timeout_at(Some(deadline));
            let result = cm
                .run(sleep_until(deadline + Duration::from_millis(1)))
                .await;
            Ok::<_, Error>((cm, result))
        })
        .unwrap();
    assert_eq!(cm.when(), Some(deadline));
    assert!(cm.expired());
    assert!(result.unwrap_err().is_timeout());
    assert_eq!(ev.time(), deadline);
}

// ===== wait_for races fixed in CPython 3.12 =====

/// cpython#86296: the awaited future gets its result and the waiting task
/// is cancelled in the same callback. The cancellation wins (it is not
/// swallowed), and the result stays in the future.
#[test]
fn wait_for_result_and_explicit_cancel_in_one_callback_ends_cancelled() {
    let (ev, _clock) = manual_loop();
    let fut = ev.create_future::<u32>();
    let reached = Rc::new(Cell::new(false));
    let task = {
        let (fut, reached) = (fut.clone(), reached.clone());
        ev.create_task(async move {
            let value = wait_for(fut, Some(Duration::from_secs(100))).await?;
            reached.set(true);
            Ok::<_, Error>(value)
        })
        .unwrap()
    };
    let (setter, canceller) = (fut.clone(), task.clone());
    ev.call_later(Duration::from_millis(5), move |_| {
        setter.set_result(7).unwrap();
        canceller.cancel(Some("explicit"));
    })
    .unwrap();
    let err = ev.run_until_complete(task.clone()).unwrap_err();
    assert_eq!(err.as_cancelled().unwrap().message(), Some("explicit"));
    assert!(task.cancelled());
    assert!(!reached.get(), "the cancellation was swallowed");
    assert_eq!(
        fut.result().unwrap(),
        7,
        "the result is still in the future"
    );
}

/// cpython#86296, the timeout side: an explicit cancel that arrives while
/// the scope is expiring is not turned into a timeout.
#[test]
fn wait_for_explicit_cancel_during_the_expiry_is_not_a_timeout() {
    let (ev, _clock) = manual_loop();
    let task = ev
        .create_task(async {
            wait_for(sleep(Duration::from_secs(10)), Some(Duration::from_secs(1))).await
        })
        .unwrap();
    let canceller = task.clone();
    // Due at the same instant as the deadline, scheduled after it.
    ev.call_later(Duration::from_secs(1), move |_| {
        canceller.cancel(Some("outer"));
    })
    .unwrap();
    let err = ev.run_until_complete(task.clone()).unwrap_err();
    // As in asyncio the coroutine sees the sleep's cancellation (the timeout
    // cancelled it first), but the task is cancelled, not timed out.
    assert!(err.is_cancelled(), "{err:?}");
    assert!(task.cancelled());
}

/// cpython#84849: the awaited task returns a value while the timeout
/// cancels it; `wait_for` returns that value instead of losing it.
#[test]
fn wait_for_returns_a_result_the_awaited_task_produced_while_cancelled() {
    let (ev, _clock) = manual_loop();
    let (value, inner) = ev
        .run_until_complete(async {
            let inner = create_task(async {
                match sleep(Duration::from_secs(10)).await {
                    Err(Error::Cancelled(_)) => Ok(42),
                    other => other.map(|()| 0),
                }
            })?;
            let value = wait_for(inner.clone(), Some(Duration::from_millis(100))).await?;
            Ok::<_, Error>((value, inner))
        })
        .unwrap();
    assert_eq!(value, 42);
    assert!(!inner.cancelled());
}

/// Nested `wait_for`s: the inner deadline fires first and is handled inside;
/// the outer one is left running and not counted as cancelled.
#[test]
fn nested_wait_for_inner_timeout_is_handled_inside() {
    let (ev, _clock) = manual_loop();
    let start = ev.time();
    let (inner, cancelling) = ev
        .run_until_complete(async {
            let inner = wait_for(
                async {
                    let r = wait_for(sleep(Duration::from_secs(10)), Some(Duration::from_secs(1)))
                        .await;
                    sleep(Duration::from_millis(10)).await?;
                    Ok::<_, Error>(r)
                },
                Some(Duration::from_secs(5)),
            )
            .await?;
            Ok::<_, Error>((inner, current_task().unwrap().cancelling()))
        })
        .unwrap();
    assert!(inner.unwrap_err().is_timeout());
    assert_eq!(cancelling, 0);
    assert_eq!(ev.time() - start, Duration::from_millis(1010));
}

/// `Duration::MAX` is Rust's "forever" (asyncio takes `inf`): a deadline
/// that far does not overflow `Instant` (it used to panic inside the task);
/// it is a century away, so nothing times out.
#[test]
fn a_duration_max_deadline_never_comes_and_does_not_overflow() {
    let (ev, clock) = manual_loop();
    let now = ev.time();
    let far = ev.time_after(Duration::MAX);
    assert!(far - now >= Duration::from_secs(99 * 365 * 24 * 3600));
    let handle = ev.call_later(Duration::MAX, |_| {}).unwrap();
    assert_eq!(handle.when(), far);
    handle.cancel();
    let c = clock.clone();
    let got = ev
        .run_until_complete(async move {
            let a = wait_for(async { Ok::<_, Error>(1) }, Some(Duration::MAX)).await?;
            let b = timeout(Some(Duration::MAX))
                .run(async { Ok::<_, Error>(2) })
                .await?;
            // A sleep for ever, cut short by an ordinary timeout.
            let c2 = c.clone();
            let sleeper = create_task(async move { sleep(Duration::MAX).await })?;
            let later = create_task(async move {
                c2.advance(Duration::from_secs(3600));
                Ok::<_, Error>(())
            })?;
            later.await?;
            assert!(!sleeper.done(), "sleep(MAX) is still sleeping an hour on");
            sleeper.cancel(None);
            assert!(sleeper.await.unwrap_err().is_cancelled());
            Ok::<_, Error>((a, b))
        })
        .unwrap();
    assert_eq!(got, (1, 2));
}

/// A task that finishes after `as_completed`'s timeout is not yielded: its
/// item is a `TimeoutError`, as asyncio's timeout removes the completion
/// callbacks of the tasks still pending.
#[test]
fn as_completed_does_not_yield_a_task_finished_after_its_timeout() {
    let (ev, _clock) = manual_loop();
    let got = ev
        .run_until_complete(async move {
            let fast = create_task(async {
                sleep(Duration::from_secs(1)).await?;
                Ok::<_, Error>(1)
            })?;
            let slow = create_task(async {
                sleep(Duration::from_secs(3)).await?;
                Ok::<_, Error>(2)
            })?;
            let mut it =
                loop_futures::as_completed(vec![fast, slow.clone()], Some(Duration::from_secs(2)))?;
            // Nothing consumed until both tasks are done (at 4 s).
            sleep(Duration::from_secs(4)).await?;
            assert!(slow.done());
            let mut got = Vec::new();
            for item in it.by_ref() {
                got.push(item.await.map_err(|e| e.is_timeout()));
            }
            Ok::<_, Error>(got)
        })
        .unwrap();
    assert_eq!(got, vec![Ok(1), Err(true)]);
}

//! CPython's `Lib/test/test_asyncio/test_locks.py` (3.13), ported to
//! loop-futures' synchronisation primitives.
//!
//! Each CPython test class is a `mod`; each case keeps its CPython name and
//! a `CPython: Class.test_x` doc line. Cases that cannot apply stay as
//! `#[ignore = "n/a: …"]` stubs so that coverage can be counted: reprs
//! (Python's `repr` format), `await lock` / `with await lock` / `loop=`
//! arguments (compile errors in Rust), negative counts (`usize`).
//!
//! How the asyncio idioms translate:
//! * Every test body runs as a task on a manual-clock loop (CPython's
//!   `IsolatedAsyncioTestCase`); `asyncio.sleep(d)` jumps the clock.
//! * `await asyncio.sleep(0)` is [`yield_now`].
//! * `async with lock` is the guard of [`Lock::lock`] (or of the
//!   condition's lock); `async with barrier as i` is `barrier.wait()`.
//! * `len(x._waiters)` (private in CPython too) is read from the `Debug`
//!   output's `waiters` field.
//! * `raise` / `except CancelledError` is returning / matching
//!   `Err(Error::Cancelled)`.
//! * A panicking assertion inside a child task fails that task; every test
//!   awaits its tasks or checks their results, and the loop's exception
//!   handler must stay silent, so such a failure fails the test.

use std::cell::{Cell, RefCell};
use std::fmt::Debug;
use std::future::Future as StdFuture;
use std::rc::Rc;
use std::time::Duration;

use loop_core::get_running_loop;
use loop_futures::{
    Barrier, BoundedSemaphore, BrokenBarrierError, Condition, Error, Event, EventLoopExt, Lock,
    Semaphore, Task, TaskGroup, create_task, sleep, timeout, wait_for, yield_now,
};

// ===== harness =====

mod support;
use support::{ms, run_test};

/// CPython's `result = []`.
type Log<T> = Rc<RefCell<Vec<T>>>;

fn new_log<T>() -> Log<T> {
    Rc::new(RefCell::new(Vec::new()))
}

fn snapshot<T: Clone>(log: &Log<T>) -> Vec<T> {
    log.borrow().clone()
}

/// The value of `field` in `value`'s `Debug` output.
fn debug_field(value: &impl Debug, field: &str) -> String {
    let text = format!("{value:?}");
    let key = format!("{field}: ");
    let start = text
        .find(&key)
        .unwrap_or_else(|| panic!("no `{field}` in {text}"))
        + key.len();
    text[start..]
        .split([',', ' ', '}'])
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// `len(x._waiters)`.
fn waiters(value: &impl Debug) -> usize {
    debug_field(value, "waiters")
        .parse()
        .expect("waiters is a number")
}

fn is_runtime(err: &Error) -> bool {
    matches!(err, Error::Runtime(_))
}

fn is_broken(err: &Error) -> bool {
    err.downcast_ref::<BrokenBarrierError>().is_some()
}

/// `await asyncio.gather(*tasks, return_exceptions=True)` for tasks that
/// already exist: every outcome, in order.
async fn settle<T: Clone + 'static>(tasks: &[Task<T>]) -> Vec<Result<T, Error>> {
    let mut out = Vec::with_capacity(tasks.len());
    for task in tasks {
        out.push(task.clone().await);
    }
    out
}

/// `await asyncio.gather(*tasks)`: every result, or the first error.
async fn gather_all<T: Clone + 'static>(tasks: &[Task<T>]) -> Result<Vec<T>, Error> {
    settle(tasks).await.into_iter().collect()
}

/// `async with cond: body` — the lock is released on the way out, and a
/// failing release (the lock is not held) replaces the body's outcome, as
/// `__aexit__` raising does.
async fn with_cond<T>(
    cond: &Condition,
    body: impl StdFuture<Output = Result<T, Error>>,
) -> Result<T, Error> {
    cond.acquire().await?;
    let outcome = body.await;
    cond.release()?;
    outcome
}

/// Declares `#[ignore]`d stubs for cases that cannot apply.
macro_rules! not_applicable {
    ($($class:ident . $name:ident => $reason:literal;)*) => {
        $(
            #[doc = concat!("CPython: ", stringify!($class), ".", stringify!($name))]
            #[test]
            #[ignore = $reason]
            fn $name() {}
        )*
    };
}

// ===== LockTests =====

mod lock_tests {
    use super::*;

    not_applicable! {
        LockTests.test_repr => "n/a: Python repr format";
        LockTests.test_lock => "n/a: `await lock` is a TypeError in Python; Lock is not a Future, a compile error in Rust";
        LockTests.test_lock_doesnt_accept_loop_parameter => "n/a: constructors take no loop argument (compile error)";
        LockTests.test_lock_by_with_statement => "n/a: `with await lock` is a TypeError in Python; a compile error in Rust";
    }

    /// CPython: LockTests.test_acquire
    #[test]
    fn test_acquire() {
        run_test(async {
            let lock = Lock::new();
            let result = new_log();
            lock.acquire().await?;
            let c = |n: i32| {
                let (lock, result) = (lock.clone(), result.clone());
                async move {
                    lock.acquire().await?;
                    result.borrow_mut().push(n);
                    Ok::<_, Error>(true)
                }
            };
            let t1 = create_task(c(1))?;
            let t2 = create_task(c(2))?;
            yield_now().await?;
            assert_eq!(snapshot(&result), [] as [i32; 0]);

            lock.release()?;
            yield_now().await?;
            assert_eq!(snapshot(&result), [1]);

            yield_now().await?;
            assert_eq!(snapshot(&result), [1]);

            let t3 = create_task(c(3))?;
            lock.release()?;
            yield_now().await?;
            assert_eq!(snapshot(&result), [1, 2]);

            lock.release()?;
            yield_now().await?;
            assert_eq!(snapshot(&result), [1, 2, 3]);

            for t in [&t1, &t2, &t3] {
                assert!(t.done());
                assert!(t.result()?);
            }
            Ok(())
        });
    }

    /// CPython: LockTests.test_acquire_cancel
    #[test]
    fn test_acquire_cancel() {
        run_test(async {
            let lock = Lock::new();
            lock.acquire().await?;
            let l = lock.clone();
            let task = create_task(async move { l.acquire().await })?;
            let handle = task.clone();
            get_running_loop()?.call_soon(move |_| {
                handle.cancel(None);
            })?;
            let err = task.clone().await.unwrap_err();
            assert!(err.is_cancelled(), "{err}");
            assert!(task.cancelled());
            assert_eq!(waiters(&lock), 0);
            // The lock is still ours and works.
            assert!(lock.locked());
            lock.release()?;
            assert!(!lock.locked());
            Ok(())
        });
    }

    /// CPython: LockTests.test_cancel_race
    #[test]
    fn test_cancel_race() {
        // A holds the lock, B and C wait. B is cancelled while A releases:
        // the release must go to C, not be lost on B.
        run_test(async {
            let lock = Lock::new();
            let lockit = |blocker: Option<loop_futures::Future<()>>| {
                let lock = lock.clone();
                async move {
                    lock.acquire().await?;
                    let outcome = match blocker {
                        Some(blocker) => blocker.await,
                        None => Ok(()),
                    };
                    lock.release()?;
                    outcome
                }
            };
            let fa = get_running_loop()?.create_future::<()>();
            let ta = create_task(lockit(Some(fa.clone())))?;
            yield_now().await?;
            assert!(lock.locked());
            let tb = create_task(lockit(None))?;
            yield_now().await?;
            assert_eq!(waiters(&lock), 1);
            let tc = create_task(lockit(None))?;
            yield_now().await?;
            assert_eq!(waiters(&lock), 2);

            // Create the race.
            fa.set_result(())?;
            tb.cancel(None);
            // CPython checks `lock._waiters[0].cancelled()`: B's waiter is
            // still queued (it leaves when B runs).
            assert_eq!(waiters(&lock), 2);
            yield_now().await?;
            assert!(!lock.locked());
            assert!(ta.done());
            assert!(tb.cancelled());
            tc.clone().await?;
            assert!(!lock.locked());
            Ok(())
        });
    }

    /// CPython: LockTests.test_cancel_release_race
    #[test]
    fn test_cancel_release_race() {
        // bpo-32734: with 3 waiters, cancelling the first while releasing
        // must let exactly one other waiter take the lock.
        run_test(async {
            let ev = get_running_loop()?;
            let lock = Lock::new();
            let lock_count = Rc::new(Cell::new(0));
            let call_count = Rc::new(Cell::new(0));
            let lockit = || {
                let (lock, lock_count, call_count) =
                    (lock.clone(), lock_count.clone(), call_count.clone());
                async move {
                    call_count.set(call_count.get() + 1);
                    lock.acquire().await?;
                    lock_count.set(lock_count.get() + 1);
                    Ok::<_, Error>(())
                }
            };
            lock.acquire().await?;
            let t1 = create_task(lockit())?;
            let t2 = create_task(lockit())?;
            let t3 = create_task(lockit())?;
            // Start the tasks.
            yield_now().await?;

            let (h1, l) = (t1.clone(), lock.clone());
            ev.call_soon(move |_| {
                h1.cancel(None);
                l.release().expect("lock held");
            })?;
            let err = t1.clone().await.unwrap_err();
            assert!(err.is_cancelled(), "{err}");

            // Only one acquisition, while 3 calls were made.
            assert_eq!(lock_count.get(), 1);
            assert_eq!(call_count.get(), 3);
            assert!(t1.cancelled() && t2.done());

            // Clean up the task stuck in acquire.
            t3.cancel(None);
            yield_now().await?;
            assert!(t3.cancelled());
            Ok(())
        });
    }

    /// CPython: LockTests.test_finished_waiter_cancelled
    #[test]
    fn test_finished_waiter_cancelled() {
        run_test(async {
            let lock = Lock::new();
            lock.acquire().await?;
            assert!(lock.locked());

            let l = lock.clone();
            let tb = create_task(async move { l.acquire().await })?;
            yield_now().await?;
            assert_eq!(waiters(&lock), 1);

            // A second waiter; wake the first and cancel it. The second
            // must still get the lock.
            let l = lock.clone();
            let tc = create_task(async move { l.acquire().await })?;
            tb.cancel(None);
            lock.release()?;
            yield_now().await?;

            assert!(lock.locked());
            assert!(tb.cancelled());
            tc.clone().await?;
            assert!(lock.locked());
            Ok(())
        });
    }

    /// CPython: LockTests.test_release_not_acquired
    #[test]
    fn test_release_not_acquired() {
        let lock = Lock::new();
        let err = lock.release().unwrap_err();
        assert!(is_runtime(&err), "{err}");
        assert_eq!(err.to_string(), "RuntimeError: Lock is not acquired.");
        // Still usable.
        run_test(async move {
            lock.acquire().await?;
            assert!(lock.locked());
            lock.release()
        });
    }

    /// CPython: LockTests.test_release_no_waiters
    #[test]
    fn test_release_no_waiters() {
        run_test(async {
            let lock = Lock::new();
            lock.acquire().await?;
            assert!(lock.locked());
            lock.release()?;
            assert!(!lock.locked());
            Ok(())
        });
    }

    /// CPython: LockTests.test_context_manager
    #[test]
    fn test_context_manager() {
        run_test(async {
            let lock = Lock::new();
            assert!(!lock.locked());
            {
                let _guard = lock.lock().await?;
                assert!(lock.locked());
            }
            assert!(!lock.locked());
            Ok(())
        });
    }
}

// ===== EventTests =====

mod event_tests {
    use super::*;

    not_applicable! {
        EventTests.test_repr => "n/a: Python repr format";
    }

    /// CPython: EventTests.test_wait
    #[test]
    fn test_wait() {
        run_test(async {
            let ev = Event::new();
            assert!(!ev.is_set());
            let result = new_log();
            let c = |n: i32| {
                let (ev, result) = (ev.clone(), result.clone());
                async move {
                    ev.wait().await?;
                    result.borrow_mut().push(n);
                    Ok::<_, Error>(())
                }
            };
            let t1 = create_task(c(1))?;
            let t2 = create_task(c(2))?;
            yield_now().await?;
            assert_eq!(snapshot(&result), [] as [i32; 0]);

            let t3 = create_task(c(3))?;
            ev.set();
            yield_now().await?;
            assert_eq!(snapshot(&result), [3, 1, 2]);

            for t in [&t1, &t2, &t3] {
                assert!(t.done());
                t.result()?;
            }
            Ok(())
        });
    }

    /// CPython: EventTests.test_wait_on_set
    #[test]
    fn test_wait_on_set() {
        run_test(async {
            let ev = Event::new();
            ev.set();
            ev.wait().await?;
            assert!(ev.is_set());
            Ok(())
        });
    }

    /// CPython: EventTests.test_wait_cancel
    #[test]
    fn test_wait_cancel() {
        run_test(async {
            let ev = Event::new();
            let e = ev.clone();
            let wait = create_task(async move { e.wait().await })?;
            let handle = wait.clone();
            get_running_loop()?.call_soon(move |_| {
                handle.cancel(None);
            })?;
            let err = wait.clone().await.unwrap_err();
            assert!(err.is_cancelled(), "{err}");
            assert_eq!(waiters(&ev), 0);
            Ok(())
        });
    }

    /// CPython: EventTests.test_clear
    #[test]
    fn test_clear() {
        let ev = Event::new();
        assert!(!ev.is_set());
        ev.set();
        assert!(ev.is_set());
        ev.clear();
        assert!(!ev.is_set());
    }

    /// CPython: EventTests.test_clear_with_waiters
    #[test]
    fn test_clear_with_waiters() {
        run_test(async {
            let ev = Event::new();
            let result = new_log();
            let (e, r) = (ev.clone(), result.clone());
            let t = create_task(async move {
                e.wait().await?;
                r.borrow_mut().push(1);
                Ok::<_, Error>(true)
            })?;
            yield_now().await?;
            assert_eq!(snapshot(&result), [] as [i32; 0]);

            ev.set();
            ev.clear();
            assert!(!ev.is_set());

            ev.set();
            ev.set();
            assert_eq!(waiters(&ev), 1);

            yield_now().await?;
            assert_eq!(snapshot(&result), [1]);
            assert_eq!(waiters(&ev), 0);

            assert!(t.done());
            assert!(t.result()?);
            Ok(())
        });
    }
}

// ===== ConditionTests =====

mod condition_tests {
    use super::*;

    not_applicable! {
        ConditionTests.test_repr => "n/a: Python repr format";
        ConditionTests.test_ambiguous_loops => "n/a: primitives are not bound to a loop (waiters are created on the running loop); no private `_loop` to tamper with";
    }

    /// `await cond.acquire(); if await cond.wait(): result.append(n);
    /// [cond.release()]; return True`.
    fn waiter(
        cond: &Condition,
        result: &Log<i32>,
        n: i32,
        release: bool,
    ) -> impl StdFuture<Output = Result<bool, Error>> + 'static {
        let (cond, result) = (cond.clone(), result.clone());
        async move {
            cond.acquire().await?;
            cond.wait().await?;
            result.borrow_mut().push(n);
            if release {
                cond.release()?;
            }
            Ok(true)
        }
    }

    /// CPython: ConditionTests.test_wait
    #[test]
    fn test_wait() {
        run_test(async {
            let cond = Condition::default();
            let result = new_log();
            let t1 = create_task(waiter(&cond, &result, 1, false))?;
            let t2 = create_task(waiter(&cond, &result, 2, false))?;
            let t3 = create_task(waiter(&cond, &result, 3, false))?;

            yield_now().await?;
            assert_eq!(snapshot(&result), [] as [i32; 0]);
            assert!(!cond.locked());

            cond.acquire().await?;
            cond.notify(1)?;
            yield_now().await?;
            assert_eq!(snapshot(&result), [] as [i32; 0]);
            assert!(cond.locked());

            cond.release()?;
            yield_now().await?;
            assert_eq!(snapshot(&result), [1]);
            assert!(cond.locked());

            cond.notify(2)?;
            yield_now().await?;
            assert_eq!(snapshot(&result), [1]);
            assert!(cond.locked());

            cond.release()?;
            yield_now().await?;
            assert_eq!(snapshot(&result), [1, 2]);
            assert!(cond.locked());

            cond.release()?;
            yield_now().await?;
            assert_eq!(snapshot(&result), [1, 2, 3]);
            assert!(cond.locked());

            for t in [&t1, &t2, &t3] {
                assert!(t.done());
                assert!(t.result()?);
            }
            Ok(())
        });
    }

    /// CPython: ConditionTests.test_wait_cancel
    #[test]
    fn test_wait_cancel() {
        run_test(async {
            let cond = Condition::default();
            cond.acquire().await?;
            let c = cond.clone();
            let wait = create_task(async move { c.wait().await })?;
            let handle = wait.clone();
            get_running_loop()?.call_soon(move |_| {
                handle.cancel(None);
            })?;
            let err = wait.clone().await.unwrap_err();
            assert!(err.is_cancelled(), "{err}");
            assert_eq!(waiters(&cond), 0);
            // wait() re-acquired the lock before returning the error.
            assert!(cond.locked());
            Ok(())
        });
    }

    /// CPython: ConditionTests.test_wait_cancel_contested
    #[test]
    fn test_wait_cancel_contested() {
        run_test(async {
            let ev = get_running_loop()?;
            let cond = Condition::default();
            cond.acquire().await?;
            assert!(cond.locked());

            let c = cond.clone();
            let wait_task = create_task(async move { c.wait().await })?;
            yield_now().await?;
            assert!(!cond.locked());

            // Notify, but contest the lock before cancelling.
            cond.acquire().await?;
            assert!(cond.locked());
            cond.notify(1)?;
            let handle = wait_task.clone();
            ev.call_soon(move |_| {
                handle.cancel(None);
            })?;
            let c = cond.clone();
            ev.call_soon(move |_| {
                c.release().expect("lock held");
            })?;

            // Cancelled or not, the waiter holds the lock again.
            match wait_task.clone().await {
                Ok(()) => {}
                Err(err) => assert!(err.is_cancelled(), "{err}"),
            }
            assert!(cond.locked());
            Ok(())
        });
    }

    /// CPython: ConditionTests.test_wait_cancel_after_notify
    #[test]
    fn test_wait_cancel_after_notify() {
        // bpo-32841
        run_test(async {
            let waited = Rc::new(Cell::new(false));
            let cond = Condition::default();
            let (c, w) = (cond.clone(), waited.clone());
            let waiter = create_task(async move {
                with_cond(&c, async {
                    w.set(true); // Make sure this area was reached.
                    c.wait().await
                })
                .await
            })?;
            yield_now().await?; // Start waiting.

            cond.acquire().await?;
            cond.notify(1)?;
            yield_now().await?; // Get to acquire().
            waiter.cancel(None);
            yield_now().await?; // Activate cancellation.
            cond.release()?;
            yield_now().await?; // Cancellation should occur.

            assert!(waiter.cancelled());
            assert!(waited.get());
            Ok(())
        });
    }

    /// CPython: ConditionTests.test_wait_unacquired
    #[test]
    fn test_wait_unacquired() {
        run_test(async {
            let cond = Condition::default();
            let err = cond.wait().await.unwrap_err();
            assert!(is_runtime(&err), "{err}");
            assert!(!cond.locked());
            Ok(())
        });
    }

    /// CPython: ConditionTests.test_wait_for
    #[test]
    fn test_wait_for() {
        run_test(async {
            let cond = Condition::default();
            let presult = Rc::new(Cell::new(false));
            let result = new_log();
            let (c, p, r) = (cond.clone(), presult.clone(), result.clone());
            let t = create_task(async move {
                c.acquire().await?;
                c.wait_for(|| p.get()).await?;
                r.borrow_mut().push(1);
                c.release()?;
                Ok::<_, Error>(true)
            })?;

            yield_now().await?;
            assert_eq!(snapshot(&result), [] as [i32; 0]);

            cond.acquire().await?;
            cond.notify(1)?;
            cond.release()?;
            yield_now().await?;
            assert_eq!(snapshot(&result), [] as [i32; 0]);

            presult.set(true);
            cond.acquire().await?;
            cond.notify(1)?;
            cond.release()?;
            yield_now().await?;
            assert_eq!(snapshot(&result), [1]);

            assert!(t.done());
            assert!(t.result()?);
            Ok(())
        });
    }

    /// CPython: ConditionTests.test_wait_for_unacquired
    #[test]
    fn test_wait_for_unacquired() {
        run_test(async {
            let cond = Condition::default();
            // The predicate can hold at once: no lock needed.
            cond.wait_for(|| true).await?;
            let err = cond.wait_for(|| false).await.unwrap_err();
            assert!(is_runtime(&err), "{err}");
            Ok(())
        });
    }

    /// CPython: ConditionTests.test_notify
    #[test]
    fn test_notify() {
        run_test(async {
            let cond = Condition::default();
            let result = new_log();
            let t1 = create_task(waiter(&cond, &result, 1, true))?;
            let t2 = create_task(waiter(&cond, &result, 2, true))?;
            let t3 = create_task(waiter(&cond, &result, 3, true))?;

            yield_now().await?;
            assert_eq!(snapshot(&result), [] as [i32; 0]);

            cond.acquire().await?;
            cond.notify(1)?;
            cond.release()?;
            yield_now().await?;
            assert_eq!(snapshot(&result), [1]);

            cond.acquire().await?;
            cond.notify(1)?;
            cond.notify(2048)?;
            cond.release()?;
            yield_now().await?;
            assert_eq!(snapshot(&result), [1, 2, 3]);

            for t in [&t1, &t2, &t3] {
                assert!(t.done());
                assert!(t.result()?);
            }
            Ok(())
        });
    }

    /// CPython: ConditionTests.test_notify_all
    #[test]
    fn test_notify_all() {
        run_test(async {
            let cond = Condition::default();
            let result = new_log();
            let t1 = create_task(waiter(&cond, &result, 1, true))?;
            let t2 = create_task(waiter(&cond, &result, 2, true))?;

            yield_now().await?;
            assert_eq!(snapshot(&result), [] as [i32; 0]);

            cond.acquire().await?;
            cond.notify_all()?;
            cond.release()?;
            yield_now().await?;
            assert_eq!(snapshot(&result), [1, 2]);

            for t in [&t1, &t2] {
                assert!(t.done());
                assert!(t.result()?);
            }
            Ok(())
        });
    }

    /// CPython: ConditionTests.test_notify_unacquired
    #[test]
    fn test_notify_unacquired() {
        let cond = Condition::default();
        let err = cond.notify(1).unwrap_err();
        assert!(is_runtime(&err), "{err}");
        assert!(!cond.locked());
    }

    /// CPython: ConditionTests.test_notify_all_unacquired
    #[test]
    fn test_notify_all_unacquired() {
        let cond = Condition::default();
        let err = cond.notify_all().unwrap_err();
        assert!(is_runtime(&err), "{err}");
        assert!(!cond.locked());
    }

    /// CPython: ConditionTests.test_context_manager
    #[test]
    fn test_context_manager() {
        // `async with cond` holds the condition's lock.
        run_test(async {
            let cond = Condition::default();
            assert!(!cond.locked());
            {
                let _guard = cond.lock().lock().await?;
                assert!(cond.locked());
            }
            assert!(!cond.locked());
            Ok(())
        });
    }

    /// CPython: ConditionTests.test_explicit_lock
    #[test]
    fn test_explicit_lock() {
        async fn f(lock: Option<Lock>, cond: Option<Condition>) -> Result<(), Error> {
            let lock = lock.unwrap_or_default();
            let cond = cond.unwrap_or_else(|| Condition::new(Some(lock.clone())));
            // `cond._lock is lock`: the same lock, seen from both sides.
            assert!(!lock.locked());
            assert!(!cond.locked());
            with_cond(&cond, async {
                assert!(lock.locked());
                assert!(cond.locked());
                assert!(cond.lock().locked());
                Ok(())
            })
            .await?;
            assert!(!lock.locked());
            assert!(!cond.locked());
            {
                let _guard = lock.lock().await?;
                assert!(lock.locked());
                assert!(cond.locked());
            }
            assert!(!lock.locked());
            assert!(!cond.locked());
            Ok(())
        }

        run_test(async {
            // All should work in the same way.
            f(None, None).await?;
            f(Some(Lock::new()), None).await?;
            let lock = Lock::new();
            f(Some(lock.clone()), Some(Condition::new(Some(lock)))).await
        });
    }

    /// CPython: ConditionTests.test_timeout_in_block
    #[test]
    fn test_timeout_in_block() {
        // A wait ended by a timeout still re-acquires the lock, so leaving
        // `async with` (a release) succeeds.
        run_test(async {
            let condition = Condition::default();
            let outcome = with_cond(&condition, async {
                let err = wait_for(condition.wait(), Some(ms(500))).await.unwrap_err();
                assert!(err.is_timeout(), "{err}");
                assert!(condition.locked());
                Ok(())
            })
            .await;
            outcome?;
            assert!(!condition.locked());
            assert_eq!(waiters(&condition), 0);
            Ok(())
        });
    }

    /// The consumer of `test_cancelled_error_*`: waits for `wake` under the
    /// lock and returns the cancellation it receives (recorded in `raised`).
    async fn wait_for_wake(
        cond: Condition,
        wake: Rc<Cell<bool>>,
        raised: Rc<RefCell<Option<Error>>>,
    ) -> Result<(), Error> {
        with_cond(&cond, async {
            let err = cond.wait_for(|| wake.get()).await.unwrap_err();
            assert!(err.is_cancelled(), "{err}");
            *raised.borrow_mut() = Some(err.clone());
            Err::<(), Error>(err)
        })
        .await
    }

    /// CPython: ConditionTests.test_cancelled_error_wakeup
    #[test]
    fn test_cancelled_error_wakeup() {
        // A cancellation received while waiting for the notify is passed
        // on unchanged (with its message).
        run_test(async {
            let wake = Rc::new(Cell::new(false));
            let raised = Rc::new(RefCell::new(None));
            let cond = Condition::default();
            let task = create_task(wait_for_wake(cond.clone(), wake, raised.clone()))?;
            yield_now().await?;
            // The task waits on the condition: cancel it there.
            task.cancel(Some("foo"));
            let err = task.clone().await.unwrap_err();
            assert_eq!(err.as_cancelled().and_then(|c| c.message()), Some("foo"));
            let raised = raised
                .borrow()
                .clone()
                .expect("the task saw the cancellation");
            assert_eq!(raised.as_cancelled().and_then(|c| c.message()), Some("foo"));
            assert!(!cond.locked());
            Ok(())
        });
    }

    /// CPython: ConditionTests.test_cancelled_error_re_aquire
    #[test]
    fn test_cancelled_error_re_aquire() {
        // A cancellation received while re-acquiring the lock is passed on
        // unchanged (with its message).
        run_test(async {
            let wake = Rc::new(Cell::new(false));
            let raised = Rc::new(RefCell::new(None));
            let cond = Condition::default();
            let task = create_task(wait_for_wake(cond.clone(), wake.clone(), raised.clone()))?;
            yield_now().await?;
            // The task waits on the condition.
            cond.acquire().await?;
            wake.set(true);
            cond.notify(1)?;
            yield_now().await?;
            // It now tries to re-acquire the lock: cancel it there.
            task.cancel(Some("foo"));
            cond.release()?;
            let err = task.clone().await.unwrap_err();
            assert_eq!(err.as_cancelled().and_then(|c| c.message()), Some("foo"));
            let raised = raised
                .borrow()
                .clone()
                .expect("the task saw the cancellation");
            assert_eq!(raised.as_cancelled().and_then(|c| c.message()), Some("foo"));
            assert!(!cond.locked());
            Ok(())
        });
    }

    /// `test_cancelled_wakeup*`'s consumer: takes one unit of `state` per
    /// wake-up, returns when it goes negative.
    async fn consumer(condition: Condition, state: Rc<Cell<i32>>) -> Result<(), Error> {
        with_cond(&condition, async {
            loop {
                condition.wait_for(|| state.get() != 0).await?;
                if state.get() < 0 {
                    return Ok(());
                }
                state.set(state.get() - 1);
            }
        })
        .await
    }

    /// The producer side of `test_cancelled_wakeup*`: `state` is consumed
    /// although the notified consumer `victim` was cancelled meanwhile.
    async fn check_wakeup_not_lost(relock: bool) -> Result<(), Error> {
        let condition = Condition::default();
        let state = Rc::new(Cell::new(0));
        let c0 = create_task(consumer(condition.clone(), state.clone()))?;
        let c1 = create_task(consumer(condition.clone(), state.clone()))?;
        // Let them settle.
        yield_now().await?;
        with_cond(&condition, async {
            // Produce one item and wake up one consumer.
            state.set(state.get() + 1);
            condition.notify(1)?;
            if relock {
                // Let the woken consumer settle on re-acquiring the lock.
                yield_now().await?;
            }
            // Cancel it (while it waits to run / waits for the lock).
            c0.cancel(None);
            // The item must be consumed anyway: the notify is not lost.
            let waited = timeout(Some(ms(10)))
                .run(condition.wait_for(|| state.get() == 0))
                .await;
            match waited {
                Ok(()) => {}
                Err(err) => assert!(err.is_timeout(), "{err}"),
            }
            assert_eq!(state.get(), 0);
            // Clean up.
            state.set(-1);
            condition.notify_all()
        })
        .await?;
        c1.clone().await?;
        assert!(c0.cancelled());
        assert!(!condition.locked());
        Ok(())
    }

    /// CPython: ConditionTests.test_cancelled_wakeup
    #[test]
    fn test_cancelled_wakeup() {
        // Cancelled while waiting to run after the notify.
        run_test(check_wakeup_not_lost(false));
    }

    /// CPython: ConditionTests.test_cancelled_wakeup_relock
    #[test]
    fn test_cancelled_wakeup_relock() {
        // Cancelled while re-acquiring the lock after the notify.
        run_test(check_wakeup_not_lost(true));
    }
}

// ===== SemaphoreTests =====

mod semaphore_tests {
    use super::*;

    not_applicable! {
        SemaphoreTests.test_repr => "n/a: Python repr format";
        SemaphoreTests.test_semaphore => "n/a: `await sem` is a TypeError in Python; Semaphore is not a Future, a compile error in Rust";
        SemaphoreTests.test_semaphore_value => "n/a: a negative initial value is ruled out by `usize`";
    }

    /// `await sem.acquire(); result.append(n); return True`.
    fn acquirer(
        sem: &Semaphore,
        result: &Log<i32>,
        n: i32,
    ) -> impl StdFuture<Output = Result<bool, Error>> + 'static {
        let (sem, result) = (sem.clone(), result.clone());
        async move {
            sem.acquire().await?;
            result.borrow_mut().push(n);
            Ok(true)
        }
    }

    fn acquire_task(sem: &Semaphore) -> Result<Task<()>, Error> {
        let sem = sem.clone();
        Ok(create_task(async move { sem.acquire().await })?)
    }

    /// CPython: SemaphoreTests.test_initial_value_zero
    #[test]
    fn test_initial_value_zero() {
        let sem = Semaphore::new(0);
        assert!(sem.locked());
    }

    /// CPython: SemaphoreTests.test_acquire
    #[test]
    fn test_acquire() {
        run_test(async {
            let sem = Semaphore::new(3);
            let result = new_log();
            sem.acquire().await?;
            sem.acquire().await?;
            assert!(!sem.locked());

            let t1 = create_task(acquirer(&sem, &result, 1))?;
            let t2 = create_task(acquirer(&sem, &result, 2))?;
            let t3 = create_task(acquirer(&sem, &result, 3))?;

            yield_now().await?;
            assert_eq!(snapshot(&result), [1]);
            assert!(sem.locked());
            assert_eq!(waiters(&sem), 2);
            assert_eq!(sem.value(), 0);

            let t4 = create_task(acquirer(&sem, &result, 4))?;

            sem.release()?;
            sem.release()?;
            assert_eq!(sem.value(), 0);

            yield_now().await?;
            assert_eq!(sem.value(), 0);
            assert_eq!(result.borrow().len(), 3);
            assert!(sem.locked());
            assert_eq!(waiters(&sem), 1);
            assert_eq!(sem.value(), 0);

            assert!(t1.done());
            assert!(t1.result()?);
            let race_tasks = [t2, t3, t4];
            let done = race_tasks
                .iter()
                .filter(|t| t.done() && t.result().unwrap_or(false))
                .count();
            assert_eq!(done, 2);

            // Clean up the locked semaphore.
            sem.release()?;
            gather_all(&race_tasks).await?;
            assert_eq!(result.borrow().len(), 4);
            Ok(())
        });
    }

    /// CPython: SemaphoreTests.test_acquire_cancel
    #[test]
    fn test_acquire_cancel() {
        run_test(async {
            let sem = Semaphore::new(1);
            sem.acquire().await?;
            let acquire = acquire_task(&sem)?;
            let handle = acquire.clone();
            get_running_loop()?.call_soon(move |_| {
                handle.cancel(None);
            })?;
            let err = acquire.clone().await.unwrap_err();
            assert!(err.is_cancelled(), "{err}");
            assert_eq!(waiters(&sem), 0);
            assert_eq!(sem.value(), 0);
            Ok(())
        });
    }

    /// CPython: SemaphoreTests.test_acquire_cancel_before_awoken
    #[test]
    fn test_acquire_cancel_before_awoken() {
        run_test(async {
            let sem = Semaphore::new(0);
            let t1 = acquire_task(&sem)?;
            let t2 = acquire_task(&sem)?;
            let t3 = acquire_task(&sem)?;
            let t4 = acquire_task(&sem)?;
            yield_now().await?;

            t1.cancel(None);
            t2.cancel(None);
            sem.release()?;

            yield_now().await?;
            yield_now().await?;
            let num_done = [&t3, &t4].iter().filter(|t| t.done()).count();
            assert_eq!(num_done, 1);
            assert!(t3.done());
            assert!(!t4.done());
            assert!(t1.cancelled() && t2.cancelled());

            t3.cancel(None);
            t4.cancel(None);
            yield_now().await?;
            assert!(t3.result().is_ok());
            assert!(t4.cancelled());
            Ok(())
        });
    }

    /// CPython: SemaphoreTests.test_acquire_hang
    #[test]
    fn test_acquire_hang() {
        run_test(async {
            let sem = Semaphore::new(0);
            let t1 = acquire_task(&sem)?;
            let t2 = acquire_task(&sem)?;
            yield_now().await?;

            t1.cancel(None);
            sem.release()?;
            yield_now().await?;
            yield_now().await?;
            assert!(sem.locked());
            assert!(t2.done());
            assert!(t2.result().is_ok());
            assert!(t1.cancelled());
            Ok(())
        });
    }

    /// CPython: SemaphoreTests.test_acquire_no_hang
    #[test]
    fn test_acquire_no_hang() {
        run_test(async {
            let sem = Semaphore::new(1);
            let t2_slot: Rc<RefCell<Option<Task<()>>>> = Rc::default();

            let (s, slot) = (sem.clone(), t2_slot.clone());
            let t1 = create_task(async move {
                {
                    let _permit = s.guard().await?;
                    yield_now().await?;
                }
                if let Some(t2) = slot.borrow().as_ref() {
                    t2.cancel(None);
                }
                Ok::<_, Error>(())
            })?;
            let s = sem.clone();
            let t2 = create_task(async move {
                let _permit = s.guard().await?;
                Err::<(), Error>(Error::msg("c2 must never get the permit"))
            })?;
            *t2_slot.borrow_mut() = Some(t2.clone());

            let r1 = t1.clone().await;
            let r2 = t2.clone().await;
            assert!(r1.is_ok());
            assert!(r2.unwrap_err().is_cancelled());

            // The permit t2 was handed is back: acquire does not hang.
            wait_for(sem.acquire(), Some(Duration::from_secs(1))).await?;
            Ok(())
        });
    }

    /// CPython: SemaphoreTests.test_release_not_acquired
    #[test]
    fn test_release_not_acquired() {
        let sem = BoundedSemaphore::new(1);
        let err = sem.release().unwrap_err();
        assert_eq!(err.to_string(), "BoundedSemaphore released too many times");
        // Still usable, and still bounded.
        assert_eq!(sem.value(), 1);
        run_test(async move {
            sem.acquire().await?;
            assert!(sem.locked());
            sem.release()?;
            assert!(sem.release().is_err());
            assert_eq!(sem.value(), 1);
            Ok(())
        });
    }

    /// CPython: SemaphoreTests.test_release_no_waiters
    #[test]
    fn test_release_no_waiters() {
        run_test(async {
            let sem = Semaphore::new(1);
            sem.acquire().await?;
            assert!(sem.locked());
            sem.release()?;
            assert!(!sem.locked());
            Ok(())
        });
    }

    /// CPython: SemaphoreTests.test_acquire_fifo_order
    #[test]
    fn test_acquire_fifo_order() {
        run_test(async {
            let sem = Semaphore::new(1);
            let result: Log<String> = new_log();
            let coro = |tag: &'static str| {
                let (sem, result) = (sem.clone(), result.clone());
                async move {
                    sem.acquire().await?;
                    result.borrow_mut().push(format!("{tag}_1"));
                    sleep(ms(10)).await?;
                    sem.release()?;

                    sem.acquire().await?;
                    result.borrow_mut().push(format!("{tag}_2"));
                    sleep(ms(10)).await?;
                    sem.release()?;
                    Ok::<_, Error>(())
                }
            };
            TaskGroup::scope(|tg| async move {
                tg.create_task(coro("c1"))?;
                tg.create_task(coro("c2"))?;
                tg.create_task(coro("c3"))?;
                Ok::<_, Error>(())
            })
            .await?;
            assert_eq!(
                snapshot(&result),
                ["c1_1", "c2_1", "c3_1", "c1_2", "c2_2", "c3_2"]
            );
            Ok(())
        });
    }

    /// CPython: SemaphoreTests.test_acquire_fifo_order_2
    #[test]
    fn test_acquire_fifo_order_2() {
        run_test(async {
            let sem = Semaphore::new(1);
            let result = new_log();
            let t1 = create_task(acquirer(&sem, &result, 1))?;
            let (s, r) = (sem.clone(), result.clone());
            let t2 = create_task(async move {
                s.acquire().await?;
                r.borrow_mut().push(2);
                s.release()?;
                s.acquire().await?;
                r.borrow_mut().push(4);
                Ok::<_, Error>(true)
            })?;
            let t3 = create_task(acquirer(&sem, &result, 3))?;

            yield_now().await?;
            sem.release()?;
            sem.release()?;

            gather_all(&[t1, t2, t3]).await?;
            assert_eq!(snapshot(&result), [1, 2, 3, 4]);
            Ok(())
        });
    }

    /// CPython: SemaphoreTests.test_acquire_fifo_order_3
    #[test]
    fn test_acquire_fifo_order_3() {
        run_test(async {
            let sem = Semaphore::new(0);
            let result = new_log();
            let t1 = create_task(acquirer(&sem, &result, 1))?;
            let t2 = create_task(acquirer(&sem, &result, 2))?;
            let t3 = create_task(acquirer(&sem, &result, 3))?;
            yield_now().await?;

            t1.cancel(None);
            yield_now().await?;

            sem.release()?;
            sem.release()?;

            let outcomes = settle(&[t1, t2, t3]).await;
            assert!(outcomes[0].as_ref().unwrap_err().is_cancelled());
            assert!(outcomes[1..].iter().all(Result::is_ok));
            assert_eq!(snapshot(&result), [2, 3]);
            Ok(())
        });
    }

    /// CPython: SemaphoreTests.test_acquire_fifo_order_4
    #[test]
    fn test_acquire_fifo_order_4() {
        // A successful acquire() wakes up as many queued tasks as there are
        // permits: FIFO order holds although permits were released while
        // the first waiter had not run yet.
        run_test(async {
            let sem = Semaphore::new(0);
            let result = new_log();
            let t4_slot: Rc<RefCell<Option<Task<bool>>>> = Rc::default();

            let (s, r, slot) = (sem.clone(), result.clone(), t4_slot.clone());
            let t1 = create_task(async move {
                // Waits at once; c2 wakes it.
                assert_eq!(s.value(), 0);
                s.acquire().await?;
                // Every waiter that could be woken was.
                assert_eq!(s.value(), 0);
                // A fourth task runs after c3, not before c2.
                let r4 = r.clone();
                *slot.borrow_mut() = Some(create_task(async move {
                    r4.borrow_mut().push(4);
                    Ok::<_, Error>(true)
                })?);
                r.borrow_mut().push(1);
                Ok::<_, Error>(true)
            })?;
            let (s, r) = (sem.clone(), result.clone());
            let t2 = create_task(async move {
                // Three permits: for c1, c2 and c3.
                s.release()?;
                s.release()?;
                s.release()?;
                assert_eq!(s.value(), 2);
                // Locked: c1 has not woken up yet.
                assert!(s.locked());
                s.acquire().await?;
                r.borrow_mut().push(2);
                Ok::<_, Error>(true)
            })?;
            let (s, r) = (sem.clone(), result.clone());
            let t3 = create_task(async move {
                s.acquire().await?;
                assert!(s.locked());
                r.borrow_mut().push(3);
                Ok::<_, Error>(true)
            })?;

            yield_now().await?;
            // Three tasks queued; the first has not woken up yet.
            assert_eq!(sem.value(), 2);
            assert_eq!(waiters(&sem), 3);
            yield_now().await?;

            let t4 = t4_slot.borrow().clone().expect("c1 created t4");
            gather_all(&[t1, t2, t3, t4]).await?;
            assert_eq!(snapshot(&result), [1, 2, 3, 4]);
            Ok(())
        });
    }
}

// ===== BarrierTests =====

mod barrier_tests {
    use super::*;

    /// `self.N`.
    const N: usize = 5;

    not_applicable! {
        BarrierTests.test_barrier => "n/a: `await barrier` is a TypeError in Python; Barrier is not a Future, a compile error in Rust";
        BarrierTests.test_repr => "n/a: Python repr format";
    }

    /// `make_tasks(n, coro)`.
    fn make_tasks<F, Fut, T>(n: usize, coro: F) -> Result<Vec<Task<T>>, Error>
    where
        F: Fn() -> Fut,
        Fut: StdFuture<Output = Result<T, Error>> + 'static,
        T: 'static,
    {
        (0..n).map(|_| Ok(create_task(coro())?)).collect()
    }

    /// `gather_tasks(n, coro)`: the results of `n` tasks running `coro`.
    async fn gather_tasks<F, Fut, T>(n: usize, coro: F) -> Result<Vec<T>, Error>
    where
        F: Fn() -> Fut,
        Fut: StdFuture<Output = Result<T, Error>> + 'static,
        T: Clone + 'static,
    {
        let tasks = make_tasks(n, coro)?;
        gather_all(&tasks).await
    }

    fn state(barrier: &Barrier) -> String {
        debug_field(barrier, "state")
    }

    /// CPython: BarrierTests.test_barrier_parties
    #[test]
    fn test_barrier_parties() {
        let err = Barrier::new(0).unwrap_err();
        assert_eq!(err.to_string(), "parties must be > 0");
        // (`Barrier(-4)` is ruled out by `usize`.)
        let barrier = Barrier::new(N).expect("valid parties");
        assert_eq!(barrier.parties(), N);
    }

    /// CPython: BarrierTests.test_context_manager
    #[test]
    fn test_context_manager() {
        run_test(async {
            let n = 3;
            let barrier = Barrier::new(n)?;
            let results = new_log();
            gather_tasks(n, || {
                let (b, r) = (barrier.clone(), results.clone());
                async move {
                    let i = b.wait().await?;
                    r.borrow_mut().push(i);
                    Ok(())
                }
            })
            .await?;
            let mut sorted = snapshot(&results);
            sorted.sort_unstable();
            assert_eq!(sorted, (0..n).collect::<Vec<_>>());
            assert_eq!(barrier.n_waiting(), 0);
            assert!(!barrier.broken());
            Ok(())
        });
    }

    /// CPython: BarrierTests.test_filling_one_task
    #[test]
    fn test_filling_one_task() {
        run_test(async {
            let barrier = Barrier::new(1)?;
            let ret = async {
                barrier.wait().await?;
                Ok::<_, Error>(true)
            }
            .await?;
            assert!(ret);
            assert_eq!(barrier.n_waiting(), 0);
            assert!(!barrier.broken());
            Ok(())
        });
    }

    /// CPython: BarrierTests.test_filling_one_task_twice
    #[test]
    fn test_filling_one_task_twice() {
        run_test(async {
            let barrier = Barrier::new(1)?;
            let b = barrier.clone();
            let t1 = create_task(async move { b.wait().await })?;
            yield_now().await?;
            assert_eq!(barrier.n_waiting(), 0);

            let b = barrier.clone();
            let t2 = create_task(async move { b.wait().await })?;
            yield_now().await?;

            assert_eq!(t1.result()?, t2.result()?);
            assert_eq!(t1.done(), t2.done());
            assert_eq!(barrier.n_waiting(), 0);
            assert!(!barrier.broken());
            Ok(())
        });
    }

    /// CPython: BarrierTests.test_filling_task_by_task
    #[test]
    fn test_filling_task_by_task() {
        run_test(async {
            let barrier = Barrier::new(3)?;
            let spawn = || {
                let b = barrier.clone();
                create_task(async move { b.wait().await })
            };
            let t1 = spawn()?;
            yield_now().await?;
            assert_eq!(barrier.n_waiting(), 1);
            assert_eq!(state(&barrier), "Filling");

            let t2 = spawn()?;
            yield_now().await?;
            assert_eq!(barrier.n_waiting(), 2);
            assert_eq!(state(&barrier), "Filling");

            let t3 = spawn()?;
            yield_now().await?;

            gather_all(&[t1, t2, t3]).await?;
            assert_eq!(barrier.n_waiting(), 0);
            assert!(!barrier.broken());
            Ok(())
        });
    }

    /// CPython: BarrierTests.test_filling_tasks_wait_twice
    #[test]
    fn test_filling_tasks_wait_twice() {
        run_test(async {
            let barrier = Barrier::new(N)?;
            let results = new_log();
            gather_tasks(N, || {
                let (b, r) = (barrier.clone(), results.clone());
                async move {
                    b.wait().await?;
                    r.borrow_mut().push(true);
                    b.wait().await?;
                    r.borrow_mut().push(false);
                    Ok(())
                }
            })
            .await?;
            let results = snapshot(&results);
            assert_eq!(results.len(), N * 2);
            assert_eq!(results.iter().filter(|r| **r).count(), N);
            assert_eq!(results.iter().filter(|r| !**r).count(), N);
            assert_eq!(barrier.n_waiting(), 0);
            assert!(!barrier.broken());
            Ok(())
        });
    }

    /// CPython: BarrierTests.test_filling_tasks_check_return_value
    #[test]
    fn test_filling_tasks_check_return_value() {
        run_test(async {
            let barrier = Barrier::new(N)?;
            let results1 = new_log();
            let results2 = new_log();
            let mut res = gather_tasks(N, || {
                let (b, r1, r2) = (barrier.clone(), results1.clone(), results2.clone());
                async move {
                    b.wait().await?;
                    r1.borrow_mut().push(true);
                    let i = b.wait().await?;
                    r2.borrow_mut().push(true);
                    Ok(i)
                }
            })
            .await?;
            assert_eq!(snapshot(&results1), [true; N]);
            assert_eq!(snapshot(&results2), [true; N]);
            res.sort_unstable();
            assert_eq!(res, (0..N).collect::<Vec<_>>());
            assert_eq!(barrier.n_waiting(), 0);
            assert!(!barrier.broken());
            Ok(())
        });
    }

    /// CPython: BarrierTests.test_draining_state
    #[test]
    fn test_draining_state() {
        run_test(async {
            let barrier = Barrier::new(N)?;
            let results = new_log();
            gather_tasks(N, || {
                let (b, r) = (barrier.clone(), results.clone());
                async move {
                    b.wait().await?;
                    // The last task out turns the barrier back to filling.
                    r.borrow_mut().push(state(&b) == "Draining");
                    Ok(())
                }
            })
            .await?;
            let results = snapshot(&results);
            assert_eq!(results.len(), N);
            assert!(!results[N - 1]);
            assert!(results[..N - 1].iter().all(|r| *r));
            assert_eq!(barrier.n_waiting(), 0);
            assert!(!barrier.broken());
            Ok(())
        });
    }

    /// CPython: BarrierTests.test_blocking_tasks_while_draining
    #[test]
    fn test_blocking_tasks_while_draining() {
        // Success means that `barrier_nowaiting` was waited for exactly
        // N - rewait times.
        run_test(async {
            let rewait = 2;
            let barrier = Barrier::new(N)?;
            let barrier_nowaiting = Barrier::new(N - rewait)?;
            let rewait_n = Rc::new(Cell::new(rewait));
            gather_tasks(N, || {
                let (b, nb, rn) = (barrier.clone(), barrier_nowaiting.clone(), rewait_n.clone());
                async move {
                    // First wait, for all the tasks.
                    b.wait().await?;
                    if rn.get() > 0 {
                        rn.set(rn.get() - 1);
                        // Wait again, only the `rewait` tasks (blocked
                        // while the barrier drains).
                        b.wait().await?;
                    } else {
                        // Wait for the end of draining, then for the
                        // waiting tasks.
                        nb.wait().await?;
                        b.wait().await?;
                    }
                    Ok(())
                }
            })
            .await?;
            assert_eq!(barrier.n_waiting(), 0);
            assert!(!barrier.broken());
            assert!(!barrier_nowaiting.broken());
            Ok(())
        });
    }

    /// CPython: BarrierTests.test_filling_tasks_cancel_one
    #[test]
    fn test_filling_tasks_cancel_one() {
        // A cancelled waiter leaves the barrier without breaking it.
        run_test(async {
            let barrier = Barrier::new(3)?;
            let results = new_log();
            let coro = || {
                let (b, r) = (barrier.clone(), results.clone());
                create_task(async move {
                    b.wait().await?;
                    r.borrow_mut().push(true);
                    Ok::<_, Error>(())
                })
            };
            let t1 = coro()?;
            yield_now().await?;
            assert_eq!(barrier.n_waiting(), 1);

            let t2 = coro()?;
            yield_now().await?;
            assert_eq!(barrier.n_waiting(), 2);

            t1.cancel(None);
            yield_now().await?;
            assert_eq!(barrier.n_waiting(), 1);
            let err = t1.clone().await.unwrap_err();
            assert!(err.is_cancelled(), "{err}");
            assert!(t1.cancelled());

            let t3 = coro()?;
            yield_now().await?;
            assert_eq!(barrier.n_waiting(), 2);

            let t4 = coro()?;
            gather_all(&[t2, t3, t4]).await?;

            assert_eq!(snapshot(&results), [true; 3]);
            assert_eq!(barrier.n_waiting(), 0);
            assert!(!barrier.broken());
            Ok(())
        });
    }

    /// CPython: BarrierTests.test_reset_barrier
    #[test]
    fn test_reset_barrier() {
        run_test(async {
            let barrier = Barrier::new(1)?;
            let b = barrier.clone();
            let t = create_task(async move { b.reset() })?;
            yield_now().await?;
            assert!(t.done());
            assert_eq!(barrier.n_waiting(), 0);
            assert!(!barrier.broken());
            Ok(())
        });
    }

    /// CPython: BarrierTests.test_reset_barrier_while_tasks_waiting
    #[test]
    fn test_reset_barrier_while_tasks_waiting() {
        run_test(async {
            let barrier = Barrier::new(N)?;
            let results = new_log();
            // N-1 tasks wait on a barrier of N parties.
            let tasks = make_tasks(N - 1, || {
                let (b, r) = (barrier.clone(), results.clone());
                async move {
                    match b.wait().await {
                        Err(err) if is_broken(&err) => r.borrow_mut().push(true),
                        other => {
                            other?;
                        }
                    }
                    Ok(())
                }
            })?;
            yield_now().await?;

            // Reset the barrier.
            let b = barrier.clone();
            create_task(async move { b.reset() })?;
            gather_all(&tasks).await?;

            assert_eq!(snapshot(&results), [true; N - 1]);
            assert_eq!(barrier.n_waiting(), 0);
            assert_ne!(state(&barrier), "Resetting");
            assert!(!barrier.broken());
            Ok(())
        });
    }

    /// CPython: BarrierTests.test_reset_barrier_when_tasks_half_draining
    #[test]
    fn test_reset_barrier_when_tasks_half_draining() {
        run_test(async {
            let barrier = Barrier::new(N)?;
            let results1 = new_log();
            let rest_of_tasks = N / 2;
            // CPython compares with the private `barrier._count` (tasks
            // still inside the barrier); before the reset that is N minus
            // the tasks that passed it.
            let passed = Rc::new(Cell::new(0));
            gather_tasks(N, || {
                let (b, r1, passed) = (barrier.clone(), results1.clone(), passed.clone());
                async move {
                    match b.wait().await {
                        // Here the tasks still waiting.
                        Err(err) if is_broken(&err) => r1.borrow_mut().push(true),
                        Err(err) => return Err(err),
                        Ok(_) => {
                            // Here the drained tasks, outside the barrier.
                            passed.set(passed.get() + 1);
                            if N - passed.get() == rest_of_tasks {
                                b.reset();
                            }
                        }
                    }
                    Ok(())
                }
            })
            .await?;
            assert_eq!(snapshot(&results1), vec![true; rest_of_tasks]);
            assert_eq!(barrier.n_waiting(), 0);
            assert_ne!(state(&barrier), "Resetting");
            assert!(!barrier.broken());
            Ok(())
        });
    }

    /// CPython: BarrierTests.test_reset_barrier_when_tasks_half_draining_half_blocking
    #[test]
    fn test_reset_barrier_when_tasks_half_draining_half_blocking() {
        run_test(async {
            let barrier = Barrier::new(N)?;
            let results1 = new_log();
            let results2 = new_log();
            let blocking_tasks = N / 2;
            let count = Rc::new(Cell::new(0));
            gather_tasks(N, || {
                let (b, r1, r2, count) = (
                    barrier.clone(),
                    results1.clone(),
                    results2.clone(),
                    count.clone(),
                );
                async move {
                    match b.wait().await {
                        Err(err) if is_broken(&err) => {
                            // Here the tasks still waiting.
                            r1.borrow_mut().push(true);
                            // Wait again to reach the parties.
                            b.wait().await?;
                        }
                        Err(err) => return Err(err),
                        Ok(_) => {
                            count.set(count.get() + 1);
                            if count.get() > blocking_tasks {
                                // Reset now: the waiting tasks break.
                                b.reset();
                                // Wait again to reach the parties.
                                b.wait().await?;
                            } else {
                                match b.wait().await {
                                    // The blocked tasks do not break.
                                    Err(err) if is_broken(&err) => r2.borrow_mut().push(true),
                                    other => {
                                        other?;
                                    }
                                }
                            }
                        }
                    }
                    Ok(())
                }
            })
            .await?;
            assert_eq!(snapshot(&results1), vec![true; blocking_tasks]);
            assert_eq!(snapshot(&results2), [] as [bool; 0]);
            assert_eq!(barrier.n_waiting(), 0);
            assert_ne!(state(&barrier), "Resetting");
            assert!(!barrier.broken());
            Ok(())
        });
    }

    /// CPython: BarrierTests.test_reset_barrier_while_tasks_waiting_and_waiting_again
    #[test]
    fn test_reset_barrier_while_tasks_waiting_and_waiting_again() {
        run_test(async {
            let barrier = Barrier::new(N)?;
            let results1 = new_log();
            let results2 = new_log();
            let tasks = make_tasks(N - 1, || {
                let (b, r1, r2) = (barrier.clone(), results1.clone(), results2.clone());
                async move {
                    match b.wait().await {
                        Err(err) if is_broken(&err) => r1.borrow_mut().push(true),
                        other => {
                            other?;
                        }
                    }
                    // `finally:`
                    b.wait().await?;
                    r2.borrow_mut().push(true);
                    Ok(())
                }
            })?;

            // Reset the barrier: the N-1 waiting tasks break.
            let b = barrier.clone();
            create_task(async move { b.reset() })?;
            yield_now().await?;

            // Complete the waiting tasks in their `finally`.
            let (b, r2) = (barrier.clone(), results2.clone());
            let t = create_task(async move {
                b.wait().await?;
                r2.borrow_mut().push(true);
                Ok::<_, Error>(())
            })?;

            gather_all(&tasks).await?;
            t.await?;

            assert!(!barrier.broken());
            assert_eq!(snapshot(&results1), [true; N - 1]);
            assert_eq!(snapshot(&results2), [true; N]);
            assert_eq!(barrier.n_waiting(), 0);
            Ok(())
        });
    }

    /// CPython: BarrierTests.test_reset_barrier_while_tasks_draining
    #[test]
    fn test_reset_barrier_while_tasks_draining() {
        run_test(async {
            let barrier = Barrier::new(N)?;
            let results1 = new_log();
            let results2 = new_log();
            let results3 = new_log();
            let count = Rc::new(Cell::new(0));
            gather_tasks(N, || {
                let (b, r1, r2, r3, count) = (
                    barrier.clone(),
                    results1.clone(),
                    results2.clone(),
                    results3.clone(),
                    count.clone(),
                );
                async move {
                    b.wait().await?;
                    count.set(count.get() + 1);
                    if count.get() == N {
                        // The last task out of the barrier.
                        b.reset();
                        // Wait here to reach the parties.
                        b.wait().await?;
                    } else {
                        // Second wait: N-1 tasks here.
                        match b.wait().await {
                            Ok(_) => r1.borrow_mut().push(true),
                            // Never here.
                            Err(_) => r2.borrow_mut().push(true),
                        }
                    }
                    // Pass the barrier again: this wait must complete.
                    b.wait().await?;
                    r3.borrow_mut().push(true);
                    Ok(())
                }
            })
            .await?;
            assert!(!barrier.broken());
            assert_eq!(snapshot(&results1), [true; N - 1]);
            assert_eq!(snapshot(&results2), [] as [bool; 0]);
            assert_eq!(snapshot(&results3), [true; N]);
            assert_eq!(barrier.n_waiting(), 0);
            Ok(())
        });
    }

    /// CPython: BarrierTests.test_abort_barrier
    #[test]
    fn test_abort_barrier() {
        run_test(async {
            let barrier = Barrier::new(1)?;
            let b = barrier.clone();
            let t = create_task(async move { b.abort() })?;
            yield_now().await?;
            assert!(t.done());
            assert_eq!(barrier.n_waiting(), 0);
            assert!(barrier.broken());
            // A broken barrier refuses waiters at once.
            let err = barrier.wait().await.unwrap_err();
            assert!(is_broken(&err), "{err}");
            Ok(())
        });
    }

    /// CPython: BarrierTests.test_abort_barrier_when_tasks_half_draining_half_blocking
    #[test]
    fn test_abort_barrier_when_tasks_half_draining_half_blocking() {
        run_test(async {
            let barrier = Barrier::new(N)?;
            let results1 = new_log();
            let results2 = new_log();
            let blocking_tasks = N / 2;
            let count = Rc::new(Cell::new(0));
            gather_tasks(N, || {
                let (b, r1, r2, count) = (
                    barrier.clone(),
                    results1.clone(),
                    results2.clone(),
                    count.clone(),
                );
                async move {
                    match b.wait().await {
                        // Here the tasks waiting to drain.
                        Err(err) if is_broken(&err) => r1.borrow_mut().push(true),
                        Err(err) => return Err(err),
                        Ok(_) => {
                            count.set(count.get() + 1);
                            if count.get() > blocking_tasks {
                                // Abort now: every task breaks.
                                b.abort();
                            } else {
                                match b.wait().await {
                                    // Here the blocked (already drained) tasks.
                                    Err(err) if is_broken(&err) => r2.borrow_mut().push(true),
                                    other => {
                                        other?;
                                    }
                                }
                            }
                        }
                    }
                    Ok(())
                }
            })
            .await?;
            assert!(barrier.broken());
            assert_eq!(snapshot(&results1), vec![true; blocking_tasks]);
            assert_eq!(snapshot(&results2), vec![true; N - blocking_tasks - 1]);
            assert_eq!(barrier.n_waiting(), 0);
            assert_ne!(state(&barrier), "Resetting");
            Ok(())
        });
    }

    /// CPython: BarrierTests.test_abort_barrier_when_exception
    #[test]
    fn test_abort_barrier_when_exception() {
        // From threading.Barrier's `lock_tests.test_reset`.
        #[derive(Debug)]
        struct Boom;
        impl std::fmt::Display for Boom {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("boom")
            }
        }
        impl std::error::Error for Boom {}

        run_test(async {
            let barrier = Barrier::new(N)?;
            let results1 = new_log();
            let results2 = new_log();
            gather_tasks(N, || {
                let (b, r1, r2) = (barrier.clone(), results1.clone(), results2.clone());
                async move {
                    let attempt = async {
                        let i = b.wait().await?;
                        if i == N / 2 {
                            return Err(Error::new(Boom));
                        }
                        b.wait().await?;
                        r1.borrow_mut().push(true);
                        Ok(())
                    }
                    .await;
                    match attempt {
                        Ok(()) => {}
                        Err(err) if is_broken(&err) => r2.borrow_mut().push(true),
                        Err(err) if err.downcast_ref::<Boom>().is_some() => b.abort(),
                        Err(err) => return Err(err),
                    }
                    Ok(())
                }
            })
            .await?;
            assert!(barrier.broken());
            assert_eq!(snapshot(&results1), [] as [bool; 0]);
            assert_eq!(snapshot(&results2), [true; N - 1]);
            assert_eq!(barrier.n_waiting(), 0);
            Ok(())
        });
    }

    /// CPython: BarrierTests.test_abort_barrier_when_exception_then_resetting
    #[test]
    fn test_abort_barrier_when_exception_then_resetting() {
        // From threading.Barrier's `lock_tests.test_abort_and_reset`.
        #[derive(Debug)]
        struct Boom;
        impl std::fmt::Display for Boom {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("boom")
            }
        }
        impl std::error::Error for Boom {}

        run_test(async {
            let barrier1 = Barrier::new(N)?;
            let barrier2 = Barrier::new(N)?;
            let results1 = new_log();
            let results2 = new_log();
            let results3 = new_log();
            gather_tasks(N, || {
                let (b1, b2, r1, r2, r3) = (
                    barrier1.clone(),
                    barrier2.clone(),
                    results1.clone(),
                    results2.clone(),
                    results3.clone(),
                );
                async move {
                    let attempt = async {
                        let i = b1.wait().await?;
                        if i == N / 2 {
                            return Err(Error::new(Boom));
                        }
                        b1.wait().await?;
                        r1.borrow_mut().push(true);
                        Ok(())
                    }
                    .await;
                    match attempt {
                        Ok(()) => {}
                        Err(err) if is_broken(&err) => r2.borrow_mut().push(true),
                        Err(err) if err.downcast_ref::<Boom>().is_some() => b1.abort(),
                        Err(err) => return Err(err),
                    }
                    // Synchronise and reset the barrier: synchronise first so
                    // that everyone has left it when we reset, and after so
                    // that no one enters it before the reset.
                    let i = b2.wait().await?;
                    if i == N / 2 {
                        b1.reset();
                    }
                    b2.wait().await?;
                    b1.wait().await?;
                    r3.borrow_mut().push(true);
                    Ok(())
                }
            })
            .await?;
            assert!(!barrier1.broken());
            assert_eq!(snapshot(&results1), [] as [bool; 0]);
            assert_eq!(snapshot(&results2), [true; N - 1]);
            assert_eq!(snapshot(&results3), [true; N]);
            assert_eq!(barrier1.n_waiting(), 0);
            Ok(())
        });
    }
}

// ===== not in CPython: waiters whose coroutine is dropped =====

/// Rust-only paths: `Task::abort` drops a coroutine mid-wait, where asyncio
/// can only cancel. A waiter dropped after being woken must pass its
/// wake-up on (a lock turn, a permit), and a dropped barrier party must
/// leave the barrier, exactly as a cancelled one does.
mod dropped_waiters {
    use super::*;

    #[test]
    fn lock_waiter_aborted_after_wake_passes_the_lock_on() {
        run_test(async {
            let lock = Lock::new();
            lock.acquire().await?;
            let spawn = || {
                let l = lock.clone();
                create_task(async move { l.acquire().await })
            };
            let t1 = spawn()?;
            let t2 = spawn()?;
            yield_now().await?;
            assert_eq!(waiters(&lock), 2);

            lock.release()?; // t1 is woken...
            t1.abort(); // ...and dropped before it runs.
            assert_eq!(waiters(&lock), 1);
            yield_now().await?;
            assert!(t1.cancelled());
            assert!(t2.done(), "the turn t1 held went to t2");
            assert!(lock.locked());
            assert_eq!(waiters(&lock), 0);
            lock.release()?;

            // A waiter aborted before any wake-up just leaves the queue.
            lock.acquire().await?;
            let t3 = spawn()?;
            yield_now().await?;
            t3.abort();
            assert_eq!(waiters(&lock), 0);
            lock.release()?;
            lock.acquire().await?;
            lock.release()
        });
    }

    #[test]
    fn semaphore_waiter_aborted_after_wake_gives_the_permit_back() {
        run_test(async {
            let sem = Semaphore::new(0);
            let spawn = || {
                let s = sem.clone();
                create_task(async move { s.acquire().await })
            };
            let t1 = spawn()?;
            let t2 = spawn()?;
            yield_now().await?;

            sem.release()?; // The permit goes to t1...
            assert_eq!(sem.value(), 0);
            t1.abort(); // ...which is dropped: it goes on to t2.
            yield_now().await?;
            assert!(t1.cancelled());
            assert!(t2.done());
            assert_eq!(sem.value(), 0);
            assert_eq!(waiters(&sem), 0);
            sem.release()?;
            assert_eq!(sem.value(), 1);
            assert!(!sem.locked());
            Ok(())
        });
    }

    #[test]
    fn barrier_party_aborted_while_filling_leaves_the_barrier() {
        run_test(async {
            let barrier = Barrier::new(2)?;
            let spawn = || {
                let b = barrier.clone();
                create_task(async move { b.wait().await })
            };
            let t1 = spawn()?;
            yield_now().await?;
            assert_eq!(barrier.n_waiting(), 1);
            t1.abort();
            assert_eq!(barrier.n_waiting(), 0);
            assert!(!barrier.broken());

            let t2 = spawn()?;
            let t3 = spawn()?;
            let mut indexes = gather_all(&[t2, t3]).await?;
            indexes.sort_unstable();
            assert_eq!(indexes, [0, 1]);
            assert_eq!(barrier.n_waiting(), 0);
            Ok(())
        });
    }
}

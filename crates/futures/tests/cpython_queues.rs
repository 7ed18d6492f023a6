//! CPython's `Lib/test/test_asyncio/test_queues.py` (3.13), ported to
//! loop-futures' [`Queue`], [`LifoQueue`] and [`PriorityQueue`].
//!
//! Each CPython test class is a `mod`; each case keeps its CPython name and
//! a `CPython: Class.test_x` doc line. The join and shutdown mixins run for
//! the three queue kinds, as in CPython (one `mod` per concrete class).
//! Cases that cannot apply stay as `#[ignore = "n/a: …"]` stubs: reprs and
//! `_format()` (Python's text formats), generic aliases and float sizes
//! (Python-only typing).
//!
//! How the asyncio idioms translate:
//! * Every test body runs as a task on a manual-clock loop (CPython's
//!   `IsolatedAsyncioTestCase`); `asyncio.sleep(d)` and `call_later` jump
//!   the clock.
//! * `await asyncio.sleep(0)` is [`yield_now`].
//! * `len(q._getters)` / `len(q._putters)` (private in CPython too) are
//!   read from the `Debug` output's `getters` / `putters` fields.
//! * `put_nowait` hands the item back with its error: `Err((item, err))`.
//! * A panicking assertion inside a child task fails that task; every test
//!   awaits its tasks or checks their results, and the loop's exception
//!   handler must stay silent, so such a failure fails the test.

use std::cell::{Cell, RefCell};
use std::fmt::Debug;
use std::rc::Rc;

use loop_core::get_running_loop;
use loop_futures::{
    Error, Event, Fifo, Lifo, LifoQueue, Priority, PriorityQueue, Queue, QueueEmpty, QueueFull,
    QueueShutDown, QueueStore, Task, TaskGroup, create_task, wait_for, yield_now,
};

// ===== harness =====

mod support;
use support::{ms, run_test};

/// The value of `field` in `value`'s `Debug` output.
fn debug_field(value: &impl Debug, field: &str) -> usize {
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
        .parse()
        .expect("a number")
}

/// `len(q._getters)`.
fn getters(q: &impl Debug) -> usize {
    debug_field(q, "getters")
}

/// `len(q._putters)`.
fn putters(q: &impl Debug) -> usize {
    debug_field(q, "putters")
}

/// `q._unfinished_tasks`.
fn unfinished(q: &impl Debug) -> usize {
    debug_field(q, "unfinished")
}

fn is_shut_down(err: &Error) -> bool {
    err.downcast_ref::<QueueShutDown>().is_some()
}

/// The error of a failed `put_nowait` (the item handed back is checked).
#[track_caller]
fn put_nowait_error<T: PartialEq + Debug>(result: Result<(), (T, Error)>, item: T) -> Error {
    let (back, err) = result.expect_err("put_nowait should fail");
    assert_eq!(back, item, "put_nowait hands the item back");
    err
}

/// `await asyncio.gather(*tasks)` for tasks that already exist.
async fn gather_all<T: Clone + 'static>(tasks: &[Task<T>]) -> Result<Vec<T>, Error> {
    let mut out = Vec::with_capacity(tasks.len());
    for task in tasks {
        out.push(task.clone().await?);
    }
    Ok(out)
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

// ===== QueueBasicTests =====

mod queue_basic_tests {
    use super::*;

    not_applicable! {
        QueueBasicTests.test_repr => "n/a: Python repr format";
        QueueBasicTests.test_str => "n/a: Python str format";
        QueueBasicTests.test_generic_alias => "n/a: Python generic aliases; Queue<T> is generic at compile time";
    }

    /// CPython: QueueBasicTests.test_empty
    #[test]
    fn test_empty() {
        run_test(async {
            let q: Queue<i32> = Queue::new(0);
            assert!(q.empty());
            q.put(1).await?;
            assert!(!q.empty());
            assert_eq!(q.get().await?, 1);
            assert!(q.empty());
            Ok(())
        });
    }

    /// CPython: QueueBasicTests.test_full
    #[test]
    fn test_full() {
        run_test(async {
            let q: Queue<i32> = Queue::new(0);
            assert!(!q.full());

            let q: Queue<i32> = Queue::new(1);
            q.put(1).await?;
            assert!(q.full());
            Ok(())
        });
    }

    /// CPython: QueueBasicTests.test_order
    #[test]
    fn test_order() {
        run_test(async {
            let q: Queue<i32> = Queue::new(0);
            for i in [1, 3, 2] {
                q.put(i).await?;
            }
            let mut items = Vec::new();
            for _ in 0..3 {
                items.push(q.get().await?);
            }
            assert_eq!(items, [1, 3, 2]);
            Ok(())
        });
    }

    /// CPython: QueueBasicTests.test_maxsize
    #[test]
    fn test_maxsize() {
        run_test(async {
            let q: Queue<i32> = Queue::new(2);
            assert_eq!(q.maxsize(), 2);
            let have_been_put = Rc::new(RefCell::new(Vec::new()));
            let (p, log) = (q.clone(), have_been_put.clone());
            let t = create_task(async move {
                for i in 0..3 {
                    p.put(i).await?;
                    log.borrow_mut().push(i);
                }
                Ok::<_, Error>(true)
            })?;
            for _ in 0..2 {
                yield_now().await?;
            }

            // The putter is blocked after putting two items.
            assert_eq!(*have_been_put.borrow(), [0, 1]);
            assert_eq!(q.get().await?, 0);

            // Let the putter resume and put the last item.
            yield_now().await?;
            assert_eq!(*have_been_put.borrow(), [0, 1, 2]);
            assert_eq!(q.get().await?, 1);
            assert_eq!(q.get().await?, 2);

            assert!(t.done());
            assert!(t.result()?);
            Ok(())
        });
    }
}

// ===== QueueGetTests =====

mod queue_get_tests {
    use super::*;

    /// CPython: QueueGetTests.test_blocking_get
    #[test]
    fn test_blocking_get() {
        run_test(async {
            let q: Queue<i32> = Queue::new(0);
            q.put_nowait(1).map_err(|(_, err)| err)?;
            assert_eq!(q.get().await?, 1);
            Ok(())
        });
    }

    /// CPython: QueueGetTests.test_get_with_putters
    #[test]
    fn test_get_with_putters() {
        // CPython appends a bare future to the private `_putters`; here a
        // real putter waits on the full queue, and `get` must wake it.
        run_test(async {
            let q: Queue<i32> = Queue::new(1);
            q.put(1).await?;
            let p = q.clone();
            let putter = create_task(async move { p.put(2).await })?;
            yield_now().await?;
            assert_eq!(putters(&q), 1);

            assert_eq!(q.get().await?, 1);
            // The putter's waiter was woken (and taken out of the queue).
            assert_eq!(putters(&q), 0);
            yield_now().await?;
            assert!(putter.done());
            putter.result()?;
            assert_eq!(q.get_nowait()?, 2);
            Ok(())
        });
    }

    /// CPython: QueueGetTests.test_blocking_get_wait
    #[test]
    fn test_blocking_get_wait() {
        run_test(async {
            let ev = get_running_loop()?;
            let q: Queue<i32> = Queue::new(0);
            let started = Event::new();
            let finished = Rc::new(Cell::new(false));
            let (g, s, f) = (q.clone(), started.clone(), finished.clone());
            let queue_get_task = create_task(async move {
                s.set();
                let res = g.get().await?;
                f.set(true);
                Ok::<_, Error>(res)
            })?;
            started.wait().await?;
            assert!(!finished.get());
            let p = q.clone();
            ev.call_later(ms(10), move |_| {
                p.put_nowait(1).expect("unbounded queue");
            })?;
            let res = queue_get_task.await?;
            assert!(finished.get());
            assert_eq!(res, 1);
            Ok(())
        });
    }

    /// CPython: QueueGetTests.test_nonblocking_get
    #[test]
    fn test_nonblocking_get() {
        let q: Queue<i32> = Queue::new(0);
        q.put_nowait(1).map_err(|(_, err)| err).expect("put");
        assert_eq!(q.get_nowait().expect("an item"), 1);
    }

    /// CPython: QueueGetTests.test_nonblocking_get_exception
    #[test]
    fn test_nonblocking_get_exception() {
        let q: Queue<i32> = Queue::new(0);
        let err = q.get_nowait().unwrap_err();
        assert!(err.downcast_ref::<QueueEmpty>().is_some(), "{err}");
        assert_eq!(err.to_string(), "queue is empty");
        // Still usable.
        q.put_nowait(7).map_err(|(_, err)| err).expect("put");
        assert_eq!(q.get_nowait().expect("an item"), 7);
    }

    /// CPython: QueueGetTests.test_get_cancelled_race
    #[test]
    fn test_get_cancelled_race() {
        run_test(async {
            let q: Queue<&str> = Queue::new(0);
            let spawn = || {
                let g = q.clone();
                create_task(async move { g.get().await })
            };
            let t1 = spawn()?;
            let t2 = spawn()?;

            yield_now().await?;
            t1.cancel(None);
            yield_now().await?;
            assert!(t1.done());
            assert!(t1.cancelled());
            q.put("a").await?;
            yield_now().await?;
            assert_eq!(t2.await?, "a");
            Ok(())
        });
    }

    /// CPython: QueueGetTests.test_get_with_waiting_putters
    #[test]
    fn test_get_with_waiting_putters() {
        run_test(async {
            let q: Queue<&str> = Queue::new(1);
            let (p1, p2) = (q.clone(), q.clone());
            let ta = create_task(async move { p1.put("a").await })?;
            let tb = create_task(async move { p2.put("b").await })?;
            assert_eq!(q.get().await?, "a");
            assert_eq!(q.get().await?, "b");
            gather_all(&[ta, tb]).await?;
            Ok(())
        });
    }

    /// CPython: QueueGetTests.test_why_are_getters_waiting
    #[test]
    fn test_why_are_getters_waiting() {
        run_test(async {
            let producer_num_items = 5;
            let q: Queue<i32> = Queue::new(1);
            let (p, c) = (q.clone(), q.clone());
            TaskGroup::scope(|tg| async move {
                tg.create_task(async move {
                    for i in 0..producer_num_items {
                        p.put(i).await?;
                    }
                    Ok::<_, Error>(())
                })?;
                tg.create_task(async move {
                    for i in 0..producer_num_items {
                        assert_eq!(c.get().await?, i);
                    }
                    Ok::<_, Error>(())
                })?;
                Ok::<_, Error>(())
            })
            .await?;
            assert!(q.empty());
            assert_eq!((getters(&q), putters(&q)), (0, 0));
            Ok(())
        });
    }

    /// CPython: QueueGetTests.test_cancelled_getters_not_being_held_in_self_getters
    #[test]
    fn test_cancelled_getters_not_being_held_in_self_getters() {
        run_test(async {
            let queue: Queue<i32> = Queue::new(5);
            let err = wait_for(queue.get(), Some(ms(100))).await.unwrap_err();
            assert!(err.is_timeout(), "{err}");
            assert_eq!(getters(&queue), 0);
            Ok(())
        });
    }
}

// ===== QueuePutTests =====

mod queue_put_tests {
    use super::*;

    not_applicable! {
        QueuePutTests.test_float_maxsize => "n/a: maxsize is a usize; a float bound is a compile error";
    }

    /// CPython: QueuePutTests.test_blocking_put
    #[test]
    fn test_blocking_put() {
        run_test(async {
            let q: Queue<i32> = Queue::new(0);
            // No maxsize: does not block.
            q.put(1).await?;
            assert_eq!(q.get().await?, 1);
            Ok(())
        });
    }

    /// CPython: QueuePutTests.test_blocking_put_wait
    #[test]
    fn test_blocking_put_wait() {
        run_test(async {
            let q: Queue<i32> = Queue::new(1);
            let started = Event::new();
            let finished = Rc::new(Cell::new(false));
            let (p, s, f) = (q.clone(), started.clone(), finished.clone());
            let ev = get_running_loop()?;
            let g = q.clone();
            ev.call_later(ms(10), move |_| {
                assert_eq!(g.get_nowait().expect("an item"), 1);
            })?;
            let queue_put_task = create_task(async move {
                s.set();
                p.put(1).await?;
                p.put(2).await?;
                f.set(true);
                Ok::<_, Error>(())
            })?;
            started.wait().await?;
            assert!(!finished.get());
            queue_put_task.await?;
            assert!(finished.get());
            assert_eq!(q.get_nowait()?, 2);
            Ok(())
        });
    }

    /// CPython: QueuePutTests.test_nonblocking_put
    #[test]
    fn test_nonblocking_put() {
        let q: Queue<i32> = Queue::new(0);
        q.put_nowait(1).map_err(|(_, err)| err).expect("put");
        assert_eq!(q.get_nowait().expect("an item"), 1);
    }

    /// CPython: QueuePutTests.test_get_cancel_drop_one_pending_reader
    #[test]
    fn test_get_cancel_drop_one_pending_reader() {
        // A reader woken for an item and cancelled before it ran must not
        // lose that item.
        run_test(async {
            let q: Queue<i32> = Queue::new(0);
            let spawn = || {
                let g = q.clone();
                create_task(async move { g.get().await })
            };
            let reader = spawn()?;
            yield_now().await?;

            q.put_nowait(1).map_err(|(_, err)| err)?;
            q.put_nowait(2).map_err(|(_, err)| err)?;
            reader.cancel(None);

            let result = match reader.clone().await {
                Ok(item) => item,
                Err(err) => {
                    assert!(err.is_cancelled(), "{err}");
                    // Try again.
                    spawn()?.await?
                }
            };
            // Getting 2 would mean that 1 was dropped.
            assert_eq!(result, 1);
            Ok(())
        });
    }

    /// CPython: QueuePutTests.test_get_cancel_drop_many_pending_readers
    #[test]
    fn test_get_cancel_drop_many_pending_readers() {
        run_test(async {
            let q: Queue<i32> = Queue::new(0);
            let qq = q.clone();
            let (reader2, reader3) = TaskGroup::scope(|tg| async move {
                let spawn = || {
                    let g = qq.clone();
                    tg.create_task(async move { g.get().await })
                };
                let reader1 = spawn()?;
                let reader2 = spawn()?;
                let reader3 = spawn()?;
                yield_now().await?;

                qq.put_nowait(1).map_err(|(_, err)| err)?;
                qq.put_nowait(2).map_err(|(_, err)| err)?;
                reader1.cancel(None);

                let err = reader1.clone().await.unwrap_err();
                assert!(err.is_cancelled(), "{err}");
                reader3.clone().await?;
                Ok::<_, Error>((reader2, reader3))
            })
            .await?;
            // Which reader gets which item is not specified.
            let mut got = [reader2.result()?, reader3.result()?];
            got.sort_unstable();
            assert_eq!(got, [1, 2]);
            assert!(q.empty());
            Ok(())
        });
    }

    /// CPython: QueuePutTests.test_put_cancel_drop
    #[test]
    fn test_put_cancel_drop() {
        run_test(async {
            let q: Queue<i32> = Queue::new(1);
            q.put_nowait(1).map_err(|(_, err)| err)?;

            // Putting a second item has to block (qsize == 1).
            let spawn = || {
                let p = q.clone();
                create_task(async move { p.put(2).await })
            };
            let writer = spawn()?;
            yield_now().await?;

            assert_eq!(q.get_nowait()?, 1);

            writer.cancel(None);
            if let Err(err) = writer.clone().await {
                assert!(err.is_cancelled(), "{err}");
                // Try again.
                spawn()?.await?;
            }

            assert_eq!(q.get_nowait()?, 2);
            assert_eq!(q.qsize(), 0);
            Ok(())
        });
    }

    /// CPython: QueuePutTests.test_nonblocking_put_exception
    #[test]
    fn test_nonblocking_put_exception() {
        let q: Queue<i32> = Queue::new(1);
        q.put_nowait(1)
            .map_err(|(_, err)| err)
            .expect("room for one");
        let err = put_nowait_error(q.put_nowait(2), 2);
        assert!(err.downcast_ref::<QueueFull>().is_some(), "{err}");
        assert_eq!(err.to_string(), "queue is full");
        // Still usable.
        assert_eq!(q.qsize(), 1);
        assert_eq!(q.get_nowait().expect("an item"), 1);
    }

    /// CPython: QueuePutTests.test_put_cancelled
    #[test]
    fn test_put_cancelled() {
        run_test(async {
            let q: Queue<i32> = Queue::new(0);
            let p = q.clone();
            let t = create_task(async move {
                p.put(1).await?;
                Ok::<_, Error>(true)
            })?;
            assert_eq!(q.get().await?, 1);
            assert!(t.done());
            assert!(t.result()?);
            Ok(())
        });
    }

    /// CPython: QueuePutTests.test_put_cancelled_race
    #[test]
    fn test_put_cancelled_race() {
        // A cancelled putter must not take the free slot meant for the
        // next one.
        run_test(async {
            let q: Queue<&str> = Queue::new(1);
            let spawn = |item| {
                let p = q.clone();
                create_task(async move { p.put(item).await })
            };
            let put_a = spawn("a")?;
            let put_b = spawn("b")?;
            let put_c = spawn("X")?;

            yield_now().await?;
            assert!(put_a.done());
            assert!(!put_b.done());

            put_c.cancel(None);
            yield_now().await?;
            assert!(put_c.done());
            assert!(put_c.cancelled());
            assert_eq!(q.get_nowait()?, "a");
            yield_now().await?;
            assert_eq!(q.get_nowait()?, "b");

            put_b.await?;
            assert!(q.empty());
            Ok(())
        });
    }

    /// CPython: QueuePutTests.test_put_with_waiting_getters
    #[test]
    fn test_put_with_waiting_getters() {
        run_test(async {
            let q: Queue<&str> = Queue::new(0);
            let g = q.clone();
            let t = create_task(async move { g.get().await })?;
            yield_now().await?;
            q.put("a").await?;
            assert_eq!(t.await?, "a");
            Ok(())
        });
    }

    /// CPython: QueuePutTests.test_why_are_putters_waiting
    #[test]
    fn test_why_are_putters_waiting() {
        run_test(async {
            let queue: Queue<i32> = Queue::new(2);
            let q = queue.clone();
            TaskGroup::scope(|tg| async move {
                let g = q.clone();
                tg.create_task(async move {
                    yield_now().await?;
                    let num = g.qsize();
                    for _ in 0..num {
                        g.get_nowait()?;
                    }
                    Ok::<_, Error>(())
                })?;
                for item in 0..4 {
                    let p = q.clone();
                    tg.create_task(async move { p.put(item).await })?;
                }
                Ok::<_, Error>(())
            })
            .await?;
            // Two items were taken, two put after them.
            assert_eq!(queue.qsize(), 2);
            assert_eq!(putters(&queue), 0);
            Ok(())
        });
    }

    /// CPython: QueuePutTests.test_cancelled_puts_not_being_held_in_self_putters
    #[test]
    fn test_cancelled_puts_not_being_held_in_self_putters() {
        run_test(async {
            // Full queue.
            let queue: Queue<i32> = Queue::new(1);
            queue.put_nowait(1).map_err(|(_, err)| err)?;

            // A task waiting for room.
            let p = queue.clone();
            let put_task = create_task(async move { p.put(1).await })?;
            yield_now().await?;

            // The putter leaves `_putters` when its task is cancelled.
            assert_eq!(putters(&queue), 1);
            put_task.cancel(None);
            let err = put_task.await.unwrap_err();
            assert!(err.is_cancelled(), "{err}");
            assert_eq!(putters(&queue), 0);
            assert_eq!(queue.qsize(), 1);
            Ok(())
        });
    }

    /// CPython: QueuePutTests.test_cancelled_put_silence_value_error_exception
    #[test]
    fn test_cancelled_put_silence_value_error_exception() {
        run_test(async {
            // Full queue.
            let queue: Queue<i32> = Queue::new(1);
            queue.put_nowait(1).map_err(|(_, err)| err)?;

            // A task waiting for room.
            let p = queue.clone();
            let put_task = create_task(async move { p.put(1).await })?;
            yield_now().await?;

            // get_nowait() takes the putter out of `_putters` (waking it);
            // the cancelled put must not trip over its missing entry.
            queue.get_nowait()?;
            put_task.cancel(None);

            let err = put_task.await.unwrap_err();
            assert!(err.is_cancelled(), "{err}");
            assert_eq!(putters(&queue), 0);
            assert!(queue.empty());
            Ok(())
        });
    }
}

// ===== LifoQueueTests / PriorityQueueTests =====

mod lifo_queue_tests {
    use super::*;

    /// CPython: LifoQueueTests.test_order
    #[test]
    fn test_order() {
        run_test(async {
            let q: LifoQueue<i32> = LifoQueue::new(0);
            for i in [1, 3, 2] {
                q.put(i).await?;
            }
            let mut items = Vec::new();
            for _ in 0..3 {
                items.push(q.get().await?);
            }
            assert_eq!(items, [2, 3, 1]);
            Ok(())
        });
    }
}

mod priority_queue_tests {
    use super::*;

    /// CPython: PriorityQueueTests.test_order
    #[test]
    fn test_order() {
        run_test(async {
            let q: PriorityQueue<i32> = PriorityQueue::new(0);
            for i in [1, 3, 2] {
                q.put(i).await?;
            }
            let mut items = Vec::new();
            for _ in 0..3 {
                items.push(q.get().await?);
            }
            assert_eq!(items, [1, 2, 3]);
            Ok(())
        });
    }
}

// ===== _QueueJoinTestMixin: QueueJoinTests, LifoQueueJoinTests, PriorityQueueJoinTests =====

/// The bodies of `_QueueJoinTestMixin`, for any queue kind `S`.
mod join_mixin {
    use super::*;

    pub(crate) fn test_task_done_underflow<S: QueueStore<i32> + 'static>() {
        let q: Queue<i32, S> = Queue::new(0);
        let err = q.task_done().unwrap_err();
        assert_eq!(err.to_string(), "task_done() called too many times");
        // The count did not go negative: one put, one task_done.
        q.put_nowait(1).map_err(|(_, err)| err).expect("put");
        q.get_nowait().expect("an item");
        q.task_done().expect("one item to mark done");
        assert!(q.task_done().is_err());
    }

    pub(crate) fn test_task_done<S: QueueStore<i32> + 'static>() {
        run_test(async {
            let q: Queue<i32, S> = Queue::new(0);
            for i in 0..100 {
                q.put_nowait(i).map_err(|(_, err)| err)?;
            }
            // Two workers get items and call task_done after each; join
            // returns once every item was processed.
            let accumulator = Rc::new(Cell::new(0));
            let running = Rc::new(Cell::new(true));
            let (qq, acc, run) = (q.clone(), accumulator.clone(), running.clone());
            TaskGroup::scope(|tg| async move {
                let workers = 2;
                for _ in 0..workers {
                    let (q, acc, run) = (qq.clone(), acc.clone(), run.clone());
                    tg.create_task(async move {
                        while run.get() {
                            let item = q.get().await?;
                            acc.set(acc.get() + item);
                            q.task_done()?;
                        }
                        Ok::<_, Error>(())
                    })?;
                }
                qq.join().await?;
                assert_eq!(acc.get(), (0..100).sum::<i32>());

                // Let the workers finish.
                run.set(false);
                for _ in 0..workers {
                    qq.put_nowait(0).map_err(|(_, err)| err)?;
                }
                Ok::<_, Error>(())
            })
            .await?;
            assert_eq!(accumulator.get(), (0..100).sum::<i32>());
            assert!(q.empty());
            assert_eq!(unfinished(&q), 0);
            Ok(())
        });
    }

    pub(crate) fn test_join_empty_queue<S: QueueStore<i32> + 'static>() {
        run_test(async {
            let q: Queue<i32, S> = Queue::new(0);
            // join() returns at once (twice for insurance).
            q.join().await?;
            q.join().await?;
            Ok(())
        });
    }
}

macro_rules! join_tests {
    ($mod:ident, $class:ident, $store:ident) => {
        mod $mod {
            use super::*;

            not_applicable! {
                $class.test_format => "n/a: the private `_format()` text";
            }

            #[doc = concat!("CPython: ", stringify!($class), ".test_task_done_underflow")]
            #[test]
            fn test_task_done_underflow() {
                join_mixin::test_task_done_underflow::<$store<i32>>();
            }

            #[doc = concat!("CPython: ", stringify!($class), ".test_task_done")]
            #[test]
            fn test_task_done() {
                join_mixin::test_task_done::<$store<i32>>();
            }

            #[doc = concat!("CPython: ", stringify!($class), ".test_join_empty_queue")]
            #[test]
            fn test_join_empty_queue() {
                join_mixin::test_join_empty_queue::<$store<i32>>();
            }
        }
    };
}

join_tests!(queue_join_tests, QueueJoinTests, Fifo);
join_tests!(lifo_queue_join_tests, LifoQueueJoinTests, Lifo);
join_tests!(priority_queue_join_tests, PriorityQueueJoinTests, Priority);

// ===== _QueueShutdownTestMixin: QueueShutdownTests, LifoQueueShutdownTests, PriorityQueueShutdownTests =====

/// The bodies of `_QueueShutdownTestMixin`, for any queue kind `S`.
mod shutdown_mixin {
    use super::*;

    type Item = &'static str;

    /// put(), put_nowait(), get() and get_nowait() all fail with
    /// `QueueShutDown`.
    async fn assert_all_shut_down<S: QueueStore<Item> + 'static>(
        q: &Queue<Item, S>,
    ) -> Result<(), Error> {
        let err = q.put("data").await.unwrap_err();
        assert!(is_shut_down(&err), "{err}");
        let err = put_nowait_error(q.put_nowait("data"), "data");
        assert!(is_shut_down(&err), "{err}");
        let err = q.get().await.unwrap_err();
        assert!(is_shut_down(&err), "{err}");
        let err = q.get_nowait().unwrap_err();
        assert!(is_shut_down(&err), "{err}");
        assert_eq!(err.to_string(), "queue is shut down");
        Ok(())
    }

    pub(crate) fn test_shutdown_empty<S: QueueStore<Item> + 'static>() {
        run_test(async {
            // An empty queue with a get() task.
            let q: Queue<Item, S> = Queue::new(0);
            let g = q.clone();
            let get_task = create_task(async move { g.get().await })?;
            yield_now().await?; // The get task waits before the shutdown.

            q.shutdown(false); // Unfinished tasks: 0 -> 0.
            assert!(q.is_shutdown());
            assert_eq!(q.qsize(), 0);

            // join() returns.
            q.join().await?;

            // The get task finished with QueueShutDown.
            yield_now().await?;
            assert!(get_task.done());
            let err = get_task.await.unwrap_err();
            assert!(is_shut_down(&err), "{err}");

            assert_all_shut_down(&q).await
        });
    }

    pub(crate) fn test_shutdown_nonempty<S: QueueStore<Item> + 'static>() {
        run_test(async {
            // A full queue of 1 item, with join() and put() tasks.
            let q: Queue<Item, S> = Queue::new(1);
            q.put_nowait("data").map_err(|(_, err)| err)?;
            let j = q.clone();
            let join_task = create_task(async move { j.join().await })?;
            let p = q.clone();
            let put_task = create_task(async move { p.put("data2").await })?;

            // The put task waits.
            yield_now().await?;
            assert!(!put_task.done());

            q.shutdown(false); // Unfinished tasks: 1 -> 1.
            assert_eq!(q.qsize(), 1);

            // The put task finished with QueueShutDown.
            yield_now().await?;
            assert!(put_task.done());
            let err = put_task.await.unwrap_err();
            assert!(is_shut_down(&err), "{err}");

            // get() still returns the queued item.
            assert_eq!(q.get().await?, "data");

            // join() still waits.
            yield_now().await?;
            assert!(!join_task.done());

            assert_all_shut_down(&q).await?;

            // One unfinished task: marking it done ends the join.
            q.task_done()?;
            yield_now().await?;
            assert!(join_task.done());
            join_task.await?;

            let err = q.task_done().unwrap_err();
            assert_eq!(err.to_string(), "task_done() called too many times");
            Ok(())
        });
    }

    pub(crate) fn test_shutdown_immediate<S: QueueStore<Item> + 'static>() {
        run_test(async {
            // A queue of 1 item, with a join() task.
            let q: Queue<Item, S> = Queue::new(0);
            q.put_nowait("data").map_err(|(_, err)| err)?;
            let j = q.clone();
            let join_task = create_task(async move { j.join().await })?;

            q.shutdown(true); // Unfinished tasks: 1 -> 0.
            assert_eq!(q.qsize(), 0);

            // The join task finished.
            yield_now().await?;
            assert!(join_task.done());
            join_task.await?;

            assert_all_shut_down(&q).await?;

            // No unfinished tasks are left.
            let err = q.task_done().unwrap_err();
            assert_eq!(err.to_string(), "task_done() called too many times");
            Ok(())
        });
    }

    pub(crate) fn test_shutdown_immediate_with_unfinished<S: QueueStore<Item> + 'static>() {
        run_test(async {
            // A queue of 2 items (1 taken), with a join() task.
            let q: Queue<Item, S> = Queue::new(0);
            q.put_nowait("data").map_err(|(_, err)| err)?;
            q.put_nowait("data").map_err(|(_, err)| err)?;
            let j = q.clone();
            let join_task = create_task(async move { j.join().await })?;
            assert_eq!(q.get().await?, "data");

            q.shutdown(true); // Unfinished tasks: 2 -> 1.
            assert_eq!(q.qsize(), 0);

            // The join task still waits.
            yield_now().await?;
            assert!(!join_task.done());

            assert_all_shut_down(&q).await?;

            // One unfinished task is left.
            q.task_done()?;
            let err = q.task_done().unwrap_err();
            assert_eq!(err.to_string(), "task_done() called too many times");

            // The join task finished.
            yield_now().await?;
            assert!(join_task.done());
            join_task.await?;
            Ok(())
        });
    }
}

macro_rules! shutdown_tests {
    ($mod:ident, $class:ident, $store:ident) => {
        mod $mod {
            use super::*;

            not_applicable! {
                $class.test_format => "n/a: the private `_format()` text";
            }

            #[doc = concat!("CPython: ", stringify!($class), ".test_shutdown_empty")]
            #[test]
            fn test_shutdown_empty() {
                shutdown_mixin::test_shutdown_empty::<$store<&'static str>>();
            }

            #[doc = concat!("CPython: ", stringify!($class), ".test_shutdown_nonempty")]
            #[test]
            fn test_shutdown_nonempty() {
                shutdown_mixin::test_shutdown_nonempty::<$store<&'static str>>();
            }

            #[doc = concat!("CPython: ", stringify!($class), ".test_shutdown_immediate")]
            #[test]
            fn test_shutdown_immediate() {
                shutdown_mixin::test_shutdown_immediate::<$store<&'static str>>();
            }

            #[doc = concat!("CPython: ", stringify!($class), ".test_shutdown_immediate_with_unfinished")]
            #[test]
            fn test_shutdown_immediate_with_unfinished() {
                shutdown_mixin::test_shutdown_immediate_with_unfinished::<$store<&'static str>>();
            }
        }
    };
}

shutdown_tests!(queue_shutdown_tests, QueueShutdownTests, Fifo);
shutdown_tests!(lifo_queue_shutdown_tests, LifoQueueShutdownTests, Lifo);
shutdown_tests!(
    priority_queue_shutdown_tests,
    PriorityQueueShutdownTests,
    Priority
);

// ===== not in CPython: regressions =====

/// Cases CPython's suite does not spell out, for behaviour asyncio has.
mod regressions {
    use super::*;

    /// Cancelling one task blocked in `join()` leaves the other joiners
    /// waiting (asyncio's `join` waits on an `Event`, one waiter future per
    /// joiner), and a later `join()` still works.
    #[test]
    fn cancelling_one_joiner_does_not_cancel_the_others() {
        run_test(async {
            let q: Queue<i32> = Queue::new(0);
            q.put_nowait(1).map_err(|(_, err)| err)?;
            let spawn = || {
                let j = q.clone();
                create_task(async move { j.join().await })
            };
            let j1 = spawn()?;
            let j2 = spawn()?;
            yield_now().await?;

            j1.cancel(None);
            yield_now().await?;
            assert!(j1.cancelled());
            assert!(!j2.done(), "j2 was not cancelled");

            let j3 = spawn()?;
            yield_now().await?;
            assert!(!j3.done(), "one item is still unfinished");

            q.get_nowait()?;
            q.task_done()?;
            gather_all(&[j2, j3]).await?;
            Ok(())
        });
    }

    /// A getter dropped (`Task::abort`) after a put woke it passes the item
    /// on; a putter dropped after a get woke it passes the free slot on.
    #[test]
    fn aborted_waiters_pass_items_and_slots_on() {
        run_test(async {
            let q: Queue<i32> = Queue::new(1);
            let get = || {
                let g = q.clone();
                create_task(async move { g.get().await })
            };
            let g1 = get()?;
            let g2 = get()?;
            yield_now().await?;
            q.put_nowait(1).map_err(|(_, err)| err)?; // Wakes g1...
            g1.abort(); // ...which is dropped before it runs.
            yield_now().await?;
            assert!(g1.cancelled());
            assert!(g2.done(), "the item went to g2");
            assert_eq!(g2.result()?, 1);
            assert_eq!(getters(&q), 0);

            q.put_nowait(2).map_err(|(_, err)| err)?;
            let put = |item| {
                let p = q.clone();
                create_task(async move { p.put(item).await })
            };
            let p1 = put(3)?;
            let p2 = put(4)?;
            yield_now().await?;
            assert_eq!(q.get_nowait()?, 2); // Wakes p1...
            p1.abort(); // ...which is dropped before it runs.
            yield_now().await?;
            assert!(p1.cancelled());
            assert!(p2.done(), "the free slot went to p2");
            assert_eq!(q.get_nowait()?, 4);
            assert_eq!(putters(&q), 0);
            Ok(())
        });
    }
}

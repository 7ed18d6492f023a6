//! A task's wake → step path allocates nothing once warmed up, and any
//! number of wakes before a step schedule exactly one step (loop-core's
//! runnable invariants 2 and 3, seen through real tasks and tulip futures).
//!
//! A counting global allocator counts the allocations made by the test's
//! own thread while a measurement is on; other threads (the test harness,
//! helper threads) are not counted.

// The counting allocator needs `unsafe impl GlobalAlloc`; this file only.
#![allow(unsafe_code)]

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use loop_core::{EventLoop, ManualClock, get_running_loop};
use loop_futures::{Error, EventLoopExt, Future, yield_now};

#[path = "../../../tests/support/counting_alloc.rs"]
mod counting_alloc;

use counting_alloc::{allocations_in, serial};

/// A loop on the deterministic clock. Every test below keeps something
/// ready in each iteration, so `run_once` never blocks.
fn manual_loop() -> EventLoop {
    EventLoop::builder()
        .manual_clock(ManualClock::new())
        .debug(false)
        .build()
        .expect("create loop")
}

/// Upper bound on a test; only reached when a wake got lost.
const WATCHDOG: std::time::Duration = std::time::Duration::from_secs(10);

/// Stops the loop from another thread if the test has not finished within
/// [`WATCHDOG`], so a lost wake (a `run_once` blocked in its poller) fails
/// the test's assertions instead of hanging it. Its thread is not counted.
struct Watchdog {
    done: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watchdog {
    fn start(ev: &EventLoop) -> Self {
        let remote = ev.remote();
        let (done, rx) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(WATCHDOG) {
                let _ = remote.call_soon_threadsafe(|ev| ev.stop());
            }
        });
        Watchdog {
            done: Some(done),
            thread: Some(thread),
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        drop(self.done.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Wake → step rounds measured per test.
const ROUNDS: u64 = 1_000;
/// Rounds run before measuring (queues and slabs reach their size).
const WARM_UP: u64 = 16;

#[test]
fn counter_sees_allocations() {
    let _serial = serial();
    // The meter works, so a zero below means something.
    let n = allocations_in(|| {
        let boxed = std::hint::black_box(Box::new(7u64));
        let mut v: Vec<u64> = std::hint::black_box(Vec::with_capacity(1));
        v.push(*boxed);
        std::hint::black_box(&mut v);
        v.push(8);
        std::hint::black_box(v);
    });
    assert_eq!(n, 3, "one Box, one Vec buffer, one Vec growth");
    // Creating a tulip future allocates (its shared state): counted.
    let ev = manual_loop();
    let _watchdog = Watchdog::start(&ev);
    let n = allocations_in(|| drop(std::hint::black_box(ev.create_future::<u32>())));
    assert!(n >= 1, "a new future allocates, the meter saw {n}");
    ev.close().unwrap();
}

#[test]
fn self_waking_task_steps_allocate_nothing() {
    let _serial = serial();
    let ev = manual_loop();
    let _watchdog = Watchdog::start(&ev);
    let steps = Rc::new(Cell::new(0u64));
    let total = WARM_UP + ROUNDS + 10;
    let task = {
        let steps = steps.clone();
        ev.create_task(async move {
            for _ in 0..total {
                // Wakes its own waker, returns pending once.
                yield_now().await?;
                steps.set(steps.get() + 1);
            }
            Ok::<_, Error>(())
        })
        .unwrap()
    };
    // Step k (k >= 2) finishes the yield of step k - 1.
    for _ in 0..=WARM_UP {
        ev.run_once().unwrap();
    }
    assert_eq!(steps.get(), WARM_UP);
    assert_eq!(ev.stats().ready, 1, "one step queued by the yield");

    let n = allocations_in(|| {
        for _ in 0..ROUNDS {
            ev.run_once().unwrap();
        }
    });
    assert_eq!(steps.get(), WARM_UP + ROUNDS, "every wake ran one step");
    assert_eq!(ev.stats().ready, 1);
    assert_eq!(n, 0, "{n} allocations for {ROUNDS} wake → step rounds");

    ev.run_until_complete(task).unwrap();
    assert_eq!(steps.get(), total);
    ev.close().unwrap();
}

thread_local! {
    /// The futures the next `complete_next` calls complete, in order.
    static TO_COMPLETE: RefCell<VecDeque<Future<u64>>> = const { RefCell::new(VecDeque::new()) };
}

/// A zero-sized callback (a fn item), so `call_soon` boxes nothing: sets
/// the next future's result, which wakes the task awaiting it.
fn complete_next(_: &EventLoop) {
    let next = TO_COMPLETE.with(|q| q.borrow_mut().pop_front());
    if let Some(fut) = next {
        fut.set_result(1).expect("pending");
    }
}

#[test]
fn task_woken_by_futures_completed_via_call_soon_allocates_nothing() {
    let _serial = serial();
    let ev = manual_loop();
    let _watchdog = Watchdog::start(&ev);
    assert_eq!(std::mem::size_of_val(&complete_next), 0);
    let total = WARM_UP + ROUNDS + 4;
    // Created up front: a new future's shared state is an allocation of its
    // own, not part of the wake → step path. Each future's waiter list is
    // grown once too (a callback added and removed), so that the task's
    // waker registration reuses it: that list belongs to the future as well.
    let futures: Vec<Future<u64>> = (0..total)
        .map(|_| {
            let fut = ev.create_future();
            let id = fut.add_done_callback(|_| {});
            assert_eq!(fut.remove_done_callback(id), 1);
            fut
        })
        .collect();
    TO_COMPLETE.with(|q| q.borrow_mut().extend(futures.iter().cloned()));

    let rounds = Rc::new(Cell::new(0u64));
    let task = {
        let rounds = rounds.clone();
        ev.create_task(async move {
            let ev = get_running_loop()?;
            for fut in futures {
                // Completed by a callback in the next iteration.
                drop(ev.call_soon(complete_next)?);
                rounds.set(rounds.get() + fut.await?);
            }
            Ok::<_, Error>(())
        })
        .unwrap()
    };
    // Iteration 1: the first step; then each round is two iterations (the
    // callback completes and wakes; the step runs and awaits the next).
    ev.run_once().unwrap();
    for _ in 0..WARM_UP {
        ev.run_once().unwrap();
        ev.run_once().unwrap();
    }
    assert_eq!(rounds.get(), WARM_UP);

    let n = allocations_in(|| {
        for _ in 0..ROUNDS {
            ev.run_once().unwrap();
            ev.run_once().unwrap();
        }
    });
    assert_eq!(
        rounds.get(),
        WARM_UP + ROUNDS,
        "every completion ran one step"
    );
    assert_eq!(
        n, 0,
        "{n} allocations for {ROUNDS} complete → wake → step rounds"
    );

    ev.run_until_complete(task).unwrap();
    assert_eq!(rounds.get(), total);
    assert!(TO_COMPLETE.with(|q| q.borrow().is_empty()));
    ev.close().unwrap();
}

/// Polls every future with the task's waker (a hand-written join): each
/// pending one registers the same waker.
struct JoinAll {
    futures: Vec<Future<u64>>,
    polls: Rc<Cell<u32>>,
}

impl std::future::Future for JoinAll {
    type Output = Result<u64, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.polls.set(self.polls.get() + 1);
        let mut sum = 0;
        let mut pending = false;
        for fut in &mut self.futures {
            match Pin::new(fut).poll(cx) {
                Poll::Ready(Ok(v)) => sum += v,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => pending = true,
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(Ok(sum))
        }
    }
}

#[test]
fn many_future_completions_before_a_step_schedule_one_step() {
    let _serial = serial();
    let ev = manual_loop();
    let _watchdog = Watchdog::start(&ev);
    const N: u64 = 8;
    let futures: Vec<Future<u64>> = (0..N).map(|_| ev.create_future()).collect();
    let polls = Rc::new(Cell::new(0));
    let task = ev
        .create_task(JoinAll {
            futures: futures.clone(),
            polls: polls.clone(),
        })
        .unwrap();
    ev.run_once().unwrap();
    assert_eq!(polls.get(), 1);
    assert_eq!(ev.stats().ready, 0, "suspended on {N} futures");

    // One callback completes all of them: N wakes of the same task.
    ev.call_soon(move |_| {
        for (i, fut) in futures.iter().enumerate() {
            fut.set_result(i as u64).unwrap();
        }
    })
    .unwrap();
    ev.run_once().unwrap();
    assert_eq!(polls.get(), 1, "the step runs in the next iteration");
    assert_eq!(ev.stats().ready, 1, "{N} wakes queued exactly one step");
    ev.run_once().unwrap();
    assert_eq!(polls.get(), 2, "one step");
    assert!(task.done());
    assert_eq!(task.result().unwrap(), (0..N).sum::<u64>());
    assert_eq!(ev.stats().ready, 0, "and no other");
    ev.close().unwrap();
}

/// Returns pending on its first poll after waking its task `wakes` times
/// (or handing the waker out, with `wakes == 0`); ready afterwards.
struct WakeTimes {
    wakes: u32,
    polls: Rc<Cell<u32>>,
    waker_out: Rc<RefCell<Option<Waker>>>,
}

impl std::future::Future for WakeTimes {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.polls.set(self.polls.get() + 1);
        if self.polls.get() > 1 {
            return Poll::Ready(());
        }
        for _ in 0..self.wakes {
            cx.waker().wake_by_ref();
        }
        *self.waker_out.borrow_mut() = Some(cx.waker().clone());
        Poll::Pending
    }
}

#[test]
fn many_self_wakes_during_a_step_schedule_one_step() {
    let _serial = serial();
    let ev = manual_loop();
    let _watchdog = Watchdog::start(&ev);
    let polls = Rc::new(Cell::new(0));
    let task = ev
        .create_task(WakeTimes {
            wakes: 5,
            polls: polls.clone(),
            waker_out: Rc::default(),
        })
        .unwrap();
    ev.run_once().unwrap();
    assert_eq!(polls.get(), 1);
    assert_eq!(
        ev.stats().ready,
        1,
        "five wakes during the step queued one step"
    );
    ev.run_once().unwrap();
    assert_eq!(polls.get(), 2);
    assert!(task.done());
    assert_eq!(ev.stats().ready, 0);
    ev.close().unwrap();
}

#[test]
fn many_wakes_from_other_threads_schedule_one_step() {
    let _serial = serial();
    let ev = manual_loop();
    let _watchdog = Watchdog::start(&ev);
    let polls = Rc::new(Cell::new(0));
    let waker_out = Rc::new(RefCell::new(None));
    let task = ev
        .create_task(WakeTimes {
            wakes: 0,
            polls: polls.clone(),
            waker_out: waker_out.clone(),
        })
        .unwrap();
    ev.run_once().unwrap();
    assert_eq!(polls.get(), 1);
    assert_eq!(ev.stats().ready, 0, "suspended, nothing queued");
    let waker: Waker = waker_out.borrow_mut().take().expect("waker handed out");

    // 3 threads × 5 wakes while the loop is idle: through the remote queue.
    std::thread::scope(|s| {
        for _ in 0..3 {
            let waker = waker.clone();
            s.spawn(move || {
                for _ in 0..5 {
                    waker.wake_by_ref();
                }
            });
        }
    });
    // The remote wake-up is pending, so this iteration does not block.
    ev.run_once().unwrap();
    assert_eq!(polls.get(), 2, "fifteen wakes ran one step");
    assert!(task.done());
    assert_eq!(ev.stats().ready, 0, "and queued no other");
    ev.close().unwrap();
}

#[test]
fn a_task_is_one_allocation_from_spawn_to_finish() {
    let _serial = serial();
    let ev = manual_loop();
    let _watchdog = Watchdog::start(&ev);
    let ran = Rc::new(Cell::new(0u64));
    let spawn_and_run = |ev: &EventLoop| {
        let ran = ran.clone();
        let task = ev
            .create_task(async move { ran.set(ran.get() + 1) })
            .expect("create_task");
        drop(task);
        ev.run_once().expect("run_once");
    };
    // Warm-up: the runnable slab, the ready queue and a spare waker exist.
    for _ in 0..WARM_UP {
        spawn_and_run(&ev);
    }
    assert_eq!(ran.get(), WARM_UP);
    let n = allocations_in(|| {
        for _ in 0..ROUNDS {
            spawn_and_run(&ev);
        }
    });
    assert_eq!(ran.get(), WARM_UP + ROUNDS, "every task ran");
    // The task's state and its coroutine share one pinned allocation; the
    // waker is recycled; nothing else is allocated per task.
    assert_eq!(n, ROUNDS, "{n} allocations for {ROUNDS} tasks");
    ev.close().unwrap();
}

//! The hot paths allocate nothing once warmed up: `call_soon` of a
//! zero-sized closure and running it, `call_later` of one and firing it, and
//! a task wake followed by its step (handle invariant 5, runnable
//! invariant 3). A counting global allocator counts the allocations made by
//! the test's own thread while a measurement is on.

// The counting allocator needs `unsafe impl GlobalAlloc`; this file only.
#![allow(unsafe_code)]

use std::cell::{Cell, RefCell};
use std::pin::Pin;
use std::rc::Rc;
use std::task::Waker;
use std::time::Duration;

use loop_core::{EventLoop, ManualClock, Runnable, RunnableId};

#[path = "../../../tests/support/counting_alloc.rs"]
mod counting_alloc;

use counting_alloc::{allocations_in, serial};

fn manual_loop() -> EventLoop {
    EventLoop::builder()
        .manual_clock(ManualClock::new())
        .debug(false)
        .build()
        .expect("create loop")
}

const BATCH: u32 = 10_000;

/// `run_once` when something is ready, so that it cannot block in the poller.
fn run_ready(ev: &EventLoop) {
    assert!(ev.stats().ready > 0, "nothing ready: run_once would block");
    ev.run_once().unwrap();
}

/// `run_once` without blocking (the loop is told to stop first), for work
/// that arrives through the remote queue and its wake-up fd.
fn run_nonblocking(ev: &EventLoop) {
    ev.stop();
    ev.run_once().unwrap();
}

#[test]
fn counter_sees_allocations() {
    let _serial = serial();
    // The meter itself works: a Box, a Vec's first buffer and its growth
    // (a realloc) are three allocations.
    let n = allocations_in(|| {
        let boxed = std::hint::black_box(Box::new(7u64));
        let mut v = std::hint::black_box(Vec::with_capacity(1));
        v.push(*boxed);
        v.push(8);
        std::hint::black_box(v);
    });
    assert_eq!(n, 3, "one Box, one Vec buffer, one Vec growth");
    // A non-ZST closure does allocate in call_soon: the meter sees the box.
    let ev = manual_loop();
    let payload = [0u8; 64];
    ev.call_soon(move |_| {
        std::hint::black_box(payload);
    })
    .unwrap();
    run_ready(&ev);
    let n = allocations_in(|| {
        drop(
            ev.call_soon(move |_| {
                std::hint::black_box(payload);
            })
            .unwrap(),
        );
    });
    assert_eq!(n, 1, "a 64-byte closure is boxed once");
    ev.close().unwrap();
}

#[test]
fn call_soon_of_zst_closure_then_run_allocates_nothing() {
    let _serial = serial();
    let ev = manual_loop();
    // Warm-up: grow the callback slab and the ready queue to the batch size,
    // and let one-time lazy initialisation happen.
    for _ in 0..2 {
        for _ in 0..BATCH {
            drop(ev.call_soon(|_| {}).unwrap());
        }
        run_ready(&ev);
    }
    assert_eq!(ev.stats().callbacks, 0);

    fn zst(_: &EventLoop) {}
    assert_eq!(std::mem::size_of_val(&zst), 0);
    let n = allocations_in(|| {
        for _ in 0..BATCH {
            let handle = ev.call_soon(zst).unwrap();
            drop(handle);
        }
        run_ready(&ev);
    });
    assert_eq!(ev.stats().ready, 0, "every callback ran");
    assert_eq!(ev.stats().callbacks, 0, "every slot was freed");
    assert_eq!(n, 0, "{n} allocations for {BATCH} call_soon + run");

    // The measured path really runs callbacks (a counting, non-ZST closure,
    // outside the measurement).
    let ran = Rc::new(Cell::new(0u32));
    let r = ran.clone();
    ev.call_soon(move |_| r.set(r.get() + 1)).unwrap();
    run_ready(&ev);
    assert_eq!(ran.get(), 1);
    ev.close().unwrap();
}

#[test]
fn call_later_of_zst_closure_then_fire_allocates_nothing() {
    let _serial = serial();
    let ev = manual_loop();
    let delay = Duration::from_millis(5);
    // Warm-up: grow the slab and the timer heap.
    for _ in 0..2 {
        for _ in 0..BATCH {
            drop(ev.call_later(delay, |_| {}).unwrap());
        }
        // Nothing else is ready: the idle loop jumps its manual clock to the
        // deadline (it never blocks for a timer on a manual clock) and fires
        // the whole batch in this one iteration.
        ev.run_once().unwrap();
        assert_eq!(ev.stats().timers, 0);
    }

    let start = ev.time();
    let n = allocations_in(|| {
        for _ in 0..BATCH {
            drop(ev.call_later(delay, |_| {}).unwrap());
        }
        ev.run_once().unwrap();
    });
    assert_eq!(ev.time() - start, delay, "the batch fired at its deadline");
    assert_eq!(ev.stats().timers, 0, "every timer fired");
    assert_eq!(ev.stats().callbacks, 0, "every slot was freed");
    assert_eq!(n, 0, "{n} allocations for {BATCH} call_later + fire");
    ev.close().unwrap();
}

/// A task stand-in: counts its steps and, while `rewakes` is positive,
/// wakes itself from inside its step (a task whose coroutine yields).
struct SelfWaking {
    steps: Cell<u32>,
    rewakes: Cell<u32>,
    waker: RefCell<Option<Waker>>,
}

impl SelfWaking {
    fn new() -> Rc<Self> {
        Rc::new(SelfWaking {
            steps: Cell::new(0),
            rewakes: Cell::new(0),
            waker: RefCell::new(None),
        })
    }

    fn waker(&self) -> Waker {
        self.waker.borrow().clone().expect("spawned")
    }
}

impl Runnable for SelfWaking {
    fn run(self: Pin<Rc<Self>>, _ev: &EventLoop) {
        self.steps.set(self.steps.get() + 1);
        let left = self.rewakes.get();
        if left > 0 {
            self.rewakes.set(left - 1);
            if let Some(waker) = self.waker.borrow().as_ref() {
                waker.wake_by_ref();
            }
        }
    }
}

fn spawn(ev: &EventLoop) -> (Rc<SelfWaking>, RunnableId) {
    let task = SelfWaking::new();
    let (id, waker) = ev
        .spawn_runnable(Pin::new(task.clone()) as Pin<Rc<dyn Runnable>>)
        .unwrap();
    *task.waker.borrow_mut() = Some(waker);
    run_ready(ev);
    assert_eq!(task.steps.get(), 1, "spawning schedules the first step");
    (task, id)
}

#[test]
fn many_wakes_before_a_step_schedule_one_step() {
    let _serial = serial();
    let ev = manual_loop();
    let (task, id) = spawn(&ev);

    // On the loop thread, while the loop runs: 5 wakes from one callback.
    let waker = task.waker();
    ev.call_soon(move |_| {
        for _ in 0..5 {
            waker.wake_by_ref();
        }
    })
    .unwrap();
    run_ready(&ev);
    assert_eq!(task.steps.get(), 1, "the step runs next iteration");
    assert_eq!(ev.stats().ready, 1, "five wakes queued one step");
    run_ready(&ev);
    assert_eq!(task.steps.get(), 2);
    assert_eq!(ev.stats().ready, 0);

    // On the loop thread while the loop is not running: through the remote
    // queue; still one step.
    let waker = task.waker();
    for _ in 0..5 {
        waker.wake_by_ref();
    }
    ev.schedule_runnable(id);
    run_nonblocking(&ev);
    assert_eq!(task.steps.get(), 3, "six wakes ran one step");
    assert_eq!(ev.stats().ready, 0, "and queued no other");
    run_nonblocking(&ev);
    assert_eq!(task.steps.get(), 3, "no step left in the remote queue");

    // From other threads: still one step.
    std::thread::scope(|s| {
        for _ in 0..3 {
            let waker = task.waker();
            s.spawn(move || {
                for _ in 0..5 {
                    waker.wake_by_ref();
                }
            });
        }
    });
    run_nonblocking(&ev);
    assert_eq!(
        task.steps.get(),
        4,
        "fifteen cross-thread wakes ran one step"
    );
    assert_eq!(ev.stats().ready, 0);
    run_nonblocking(&ev);
    assert_eq!(task.steps.get(), 4, "no step left in the remote queue");

    // A wake during the step schedules the next one.
    task.rewakes.set(1);
    ev.schedule_runnable(id);
    run_nonblocking(&ev);
    assert_eq!(task.steps.get(), 5);
    assert_eq!(ev.stats().ready, 1, "the step re-woke itself");
    run_ready(&ev);
    assert_eq!(task.steps.get(), 6);
    assert_eq!(ev.stats().ready, 0);

    assert!(ev.remove_runnable(id));
    ev.close().unwrap();
}

#[test]
fn wake_then_step_allocates_nothing() {
    let _serial = serial();
    let ev = manual_loop();
    let (task, id) = spawn(&ev);
    const WARM_UP: u32 = 10;
    const STEPS: u32 = 1_000;

    // Each step wakes itself on the loop thread while the loop runs (a
    // coroutine that yields), and the next iteration runs that step.
    task.rewakes.set(WARM_UP + STEPS);
    ev.schedule_runnable(id);
    run_nonblocking(&ev);
    for _ in 1..WARM_UP {
        run_ready(&ev);
    }
    assert_eq!(task.steps.get(), 1 + WARM_UP);

    // Measured: STEPS rounds of wake → step.
    let n = allocations_in(|| {
        for _ in 0..STEPS {
            run_ready(&ev);
        }
    });
    assert_eq!(
        task.steps.get(),
        1 + WARM_UP + STEPS,
        "every wake ran one step"
    );
    assert_eq!(n, 0, "{n} allocations for {STEPS} wake → step rounds");

    // The last step's wake is still queued; then the chain ends.
    run_ready(&ev);
    assert_eq!(task.steps.get(), 2 + WARM_UP + STEPS);
    assert_eq!(ev.stats().ready, 0);

    assert!(ev.remove_runnable(id));
    ev.close().unwrap();
}

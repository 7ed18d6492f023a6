//! Timers: `call_later` / `call_at`, their order, cancellation, and the
//! heap's bounded memory (asyncio's timer-handle compaction).
//!
//! All but one test run on a `ManualClock`; the one on the real monotonic
//! clock checks a correctness property (never early), not a duration.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::{Duration, Instant};

use loop_core::{EventLoop, MIN_SCHEDULED_TIMER_HANDLES, ManualClock, TimerHandle};

fn manual_loop() -> (EventLoop, ManualClock) {
    let clock = ManualClock::new();
    let ev = EventLoop::builder()
        .manual_clock(clock.clone())
        .build()
        .unwrap();
    (ev, clock)
}

/// A small deterministic pseudo-random generator (64-bit LCG).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
}

/// Counts drops of the value it guards.
struct DropCount(Rc<Cell<usize>>);

impl Drop for DropCount {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

fn assert_heap_bounded(ev: &EventLoop, live: usize, at: usize) {
    let stats = ev.stats();
    let bound = (2 * live).max(MIN_SCHEDULED_TIMER_HANDLES) + 1;
    assert!(
        stats.timers <= bound,
        "after {at} timers: heap {} > bound {bound} (live {live})",
        stats.timers
    );
    assert_eq!(
        stats.timers - stats.cancelled_timers,
        live,
        "after {at} timers: live entries"
    );
    assert_eq!(
        stats.callbacks, stats.timers,
        "after {at} timers: a slot per heap entry, cancelled slots freed"
    );
}

#[test]
fn a_million_scheduled_and_cancelled_timers_keep_the_heap_bounded() {
    const TOTAL: usize = 1_000_000;
    const WINDOW: usize = 500;
    let (ev, _clock) = manual_loop();
    let fired = Rc::new(Cell::new(0usize));
    let mut rng = Lcg(7);
    let mut live: Vec<TimerHandle> = Vec::with_capacity(WINDOW + 1);
    let hour = Duration::from_secs(3600);

    for i in 0..TOTAL {
        let delay = hour + Duration::from_micros(rng.next() % 1_000_000);
        let f = fired.clone();
        let handle = ev.call_later(delay, move |_| f.set(f.get() + 1)).unwrap();
        if rng.next() % 4 != 0 {
            // Most timers are cancelled right away (a timeout that did not trigger)…
            handle.cancel();
        } else {
            // …the others live a while, then are cancelled in random order.
            live.push(handle);
            if live.len() > WINDOW {
                let victim = rng.next() as usize % live.len();
                live.swap_remove(victim).cancel();
            }
        }
        if i % 997 == 0 {
            assert_heap_bounded(&ev, live.len(), i);
        }
    }
    assert_heap_bounded(&ev, live.len(), TOTAL);

    // Cancel the rest in scheduling order (the heap's top first).
    for handle in live.drain(..) {
        handle.cancel();
    }
    assert_heap_bounded(&ev, 0, TOTAL);
    assert!(ev.stats().timers <= MIN_SCHEDULED_TIMER_HANDLES + 1);

    // Running discards what is left; nothing fires.
    ev.call_later(2 * hour, |ev| ev.stop()).unwrap();
    ev.run_forever().unwrap();
    assert_eq!(fired.get(), 0);
    let stats = ev.stats();
    assert_eq!(
        (stats.timers, stats.cancelled_timers, stats.callbacks),
        (0, 0, 0)
    );
    ev.close().unwrap();
}

#[test]
fn timers_fire_in_deadline_then_insertion_order_never_early() {
    let (ev, _clock) = manual_loop();
    let start = ev.time();
    let fired = Rc::new(RefCell::new(Vec::new()));
    let mut rng = Lcg(42);
    let mut expected = Vec::new();
    for i in 0..300usize {
        // Few distinct deadlines, so many ties; half via call_at.
        let delay = Duration::from_millis(rng.next() % 20);
        let f = fired.clone();
        let callback = move |ev: &EventLoop| f.borrow_mut().push((i, ev.time()));
        let handle = if i % 2 == 0 {
            ev.call_later(delay, callback).unwrap()
        } else {
            ev.call_at(start + delay, callback).unwrap()
        };
        assert_eq!(handle.when(), start + delay);
        expected.push((start + delay, i));
    }
    ev.call_later(Duration::from_secs(1), |ev| ev.stop())
        .unwrap();
    ev.run_forever().unwrap();

    expected.sort(); // (when, insertion index)
    let fired = fired.borrow();
    let order: Vec<usize> = fired.iter().map(|(i, _)| *i).collect();
    let expected_order: Vec<usize> = expected.iter().map(|(_, i)| *i).collect();
    assert_eq!(order, expected_order);
    for ((i, at), (when, _)) in fired.iter().zip(&expected) {
        // The idle loop jumps the manual clock exactly to the next deadline.
        assert_eq!(at, when, "timer {i}");
    }
    ev.close().unwrap();
}

#[test]
fn equal_deadlines_run_fifo() {
    let (ev, _clock) = manual_loop();
    let when = ev.time() + Duration::from_millis(5);
    let fired = Rc::new(RefCell::new(Vec::new()));
    for i in 0..100 {
        let f = fired.clone();
        if i % 3 == 0 {
            ev.call_later(Duration::from_millis(5), move |_| f.borrow_mut().push(i))
                .unwrap();
        } else {
            ev.call_at(when, move |_| f.borrow_mut().push(i)).unwrap();
        }
    }
    ev.run_once().unwrap();
    assert_eq!(*fired.borrow(), (0..100).collect::<Vec<_>>());
    assert_eq!(ev.time(), when);
    ev.close().unwrap();
}

#[test]
fn past_and_zero_delay_timers_run_after_ready_callbacks_in_deadline_order() {
    let (ev, _clock) = manual_loop();
    let now = ev.time();
    let order = Rc::new(RefCell::new(Vec::new()));
    let push = |name: &'static str| {
        let order = order.clone();
        move |_: &EventLoop| order.borrow_mut().push(name)
    };
    ev.call_later(Duration::ZERO, push("zero")).unwrap();
    ev.call_soon(push("soon-a")).unwrap();
    ev.call_at(now - Duration::from_secs(1), push("past-1s"))
        .unwrap();
    let far_past = ev
        .call_at(now - Duration::from_secs(2), push("past-2s"))
        .unwrap();
    assert_eq!(far_past.when(), now - Duration::from_secs(2));
    ev.call_at(now, push("now")).unwrap();
    ev.call_soon(push("soon-b")).unwrap();

    ev.run_once().unwrap();
    assert_eq!(
        *order.borrow(),
        ["soon-a", "soon-b", "past-2s", "past-1s", "zero", "now"],
        "ready callbacks first, then due timers by (deadline, insertion)"
    );
    assert_eq!(ev.time(), now, "nothing waited");
    assert_eq!(ev.stats().timers, 0);
    ev.close().unwrap();
}

#[test]
fn a_due_timer_scheduled_by_a_callback_runs_in_the_next_iteration() {
    let (ev, _clock) = manual_loop();
    let order = Rc::new(RefCell::new(Vec::new()));
    let o = order.clone();
    ev.call_soon(move |ev| {
        o.borrow_mut().push("outer");
        let o2 = o.clone();
        ev.call_later(Duration::ZERO, move |_| o2.borrow_mut().push("inner"))
            .unwrap();
        let o3 = o.clone();
        ev.call_at(ev.time() - Duration::from_secs(1), move |_| {
            o3.borrow_mut().push("inner-past")
        })
        .unwrap();
    })
    .unwrap();
    ev.run_once().unwrap();
    assert_eq!(*order.borrow(), ["outer"]);
    ev.run_once().unwrap();
    assert_eq!(*order.borrow(), ["outer", "inner-past", "inner"]);
    ev.close().unwrap();
}

#[test]
fn timers_never_fire_before_their_deadline_on_the_real_clock() {
    const COUNT: usize = 50;
    let ev = EventLoop::new().unwrap();
    let fired = Rc::new(RefCell::new(Vec::new()));
    let timed_out = Rc::new(Cell::new(false));
    let mut handles = Vec::new();
    for i in 0..COUNT {
        // 150 µs … ~3 ms, increasing with i.
        let delay = Duration::from_micros(150 + 57 * i as u64);
        let f = fired.clone();
        let callback = move |ev: &EventLoop| {
            let mut fired = f.borrow_mut();
            fired.push((i, ev.time()));
            if fired.len() == COUNT {
                ev.stop();
            }
        };
        let handle = if i % 2 == 0 {
            ev.call_later(delay, callback).unwrap()
        } else {
            ev.call_at(Instant::now() + delay, callback).unwrap()
        };
        handles.push(handle);
    }
    let t = timed_out.clone();
    // Failure fallback only.
    let watchdog = ev
        .call_later(Duration::from_secs(10), move |ev| {
            t.set(true);
            ev.stop();
        })
        .unwrap();
    ev.run_forever().unwrap();
    watchdog.cancel();
    assert!(!timed_out.get(), "not every timer fired");

    let fired = fired.borrow();
    assert_eq!(fired.len(), COUNT);
    for &(i, at) in fired.iter() {
        assert!(
            at >= handles[i].when(),
            "timer {i} fired {:?} early",
            handles[i].when() - at
        );
    }
    let mut by_deadline: Vec<usize> = (0..COUNT).collect();
    by_deadline.sort_by_key(|&i| (handles[i].when(), i));
    let order: Vec<usize> = fired.iter().map(|(i, _)| *i).collect();
    assert_eq!(order, by_deadline);
    ev.close().unwrap();
}

#[test]
fn cancel_before_run_drops_the_callback_and_it_never_runs() {
    let (ev, _clock) = manual_loop();
    let dropped = Rc::new(Cell::new(0usize));
    let ran = Rc::new(Cell::new(false));
    let guard = DropCount(dropped.clone());
    let r = ran.clone();
    let handle = ev
        .call_later(Duration::from_secs(1), move |_| {
            let _keep = &guard;
            r.set(true);
        })
        .unwrap();
    assert!(!handle.cancelled());
    handle.cancel();
    assert!(handle.cancelled());
    assert_eq!(dropped.get(), 1, "cancel drops the closure at once");
    assert_eq!(ev.stats().cancelled_timers, 1);
    handle.cancel();
    assert_eq!(
        ev.stats().cancelled_timers,
        1,
        "cancelling twice is a no-op"
    );

    // The earliest timer is cancelled: the loop waits for the next one only.
    let start = ev.time();
    ev.call_later(Duration::from_secs(5), |ev| ev.stop())
        .unwrap();
    ev.run_forever().unwrap();
    assert!(!ran.get());
    assert_eq!(ev.time() - start, Duration::from_secs(5));
    assert_eq!(ev.stats().timers, 0);
    ev.close().unwrap();
}

#[test]
fn cancel_after_run_does_nothing_even_when_the_slot_is_reused() {
    let (ev, _clock) = manual_loop();
    let log = Rc::new(RefCell::new(Vec::new()));
    let l = log.clone();
    let first = ev
        .call_later(Duration::from_secs(1), move |_| {
            l.borrow_mut().push("first")
        })
        .unwrap();
    ev.run_once().unwrap();
    assert_eq!(*log.borrow(), ["first"]);

    // The next timer takes the freed slot; the stale handle must not touch it.
    let l = log.clone();
    let second = ev
        .call_later(Duration::from_secs(1), move |_| {
            l.borrow_mut().push("second")
        })
        .unwrap();
    let before = ev.stats();
    first.cancel();
    assert!(first.cancelled());
    assert_eq!(
        ev.stats(),
        before,
        "cancelling a timer that ran changes nothing"
    );
    ev.run_once().unwrap();
    assert_eq!(*log.borrow(), ["first", "second"]);
    assert!(!second.cancelled());

    // Same for a call_soon handle.
    let l = log.clone();
    let soon = ev.call_soon(move |_| l.borrow_mut().push("soon")).unwrap();
    ev.run_once().unwrap();
    let l = log.clone();
    ev.call_soon(move |_| l.borrow_mut().push("soon-2"))
        .unwrap();
    soon.cancel();
    ev.run_once().unwrap();
    assert_eq!(*log.borrow(), ["first", "second", "soon", "soon-2"]);
    ev.close().unwrap();
}

#[test]
fn timer_handle_when_is_the_deadline_on_the_loop_clock() {
    let (ev, clock) = manual_loop();
    let t0 = ev.time();
    let later = ev.call_later(Duration::from_millis(250), |_| {}).unwrap();
    assert_eq!(later.when(), t0 + Duration::from_millis(250));
    let at = t0 + Duration::from_secs(7);
    assert_eq!(ev.call_at(at, |_| {}).unwrap().when(), at);

    clock.advance(Duration::from_secs(1));
    let after = ev.call_later(Duration::from_millis(5), |_| {}).unwrap();
    assert_eq!(
        after.when(),
        t0 + Duration::from_secs(1) + Duration::from_millis(5),
        "call_later counts from the loop's current time"
    );
    assert!(after.site().file().ends_with("loop_timers.rs"));
    ev.close().unwrap();
}

#[test]
fn cancelled_timers_are_discarded_in_order_and_live_ones_still_fire() {
    let (ev, _clock) = manual_loop();
    let fired = Rc::new(RefCell::new(Vec::new()));
    let mut handles = VecDeque::new();
    for i in 0..400usize {
        let f = fired.clone();
        handles.push_back(
            ev.call_later(Duration::from_millis(i as u64), move |_| {
                f.borrow_mut().push(i)
            })
            .unwrap(),
        );
    }
    // Cancel every timer except multiples of 10 (enough to trigger compaction).
    let mut expected = Vec::new();
    for (i, handle) in handles.iter().enumerate() {
        if i % 10 == 0 {
            expected.push(i);
        } else {
            handle.cancel();
        }
    }
    assert_heap_bounded(&ev, expected.len(), 400);
    ev.call_later(Duration::from_secs(1), |ev| ev.stop())
        .unwrap();
    ev.run_forever().unwrap();
    assert_eq!(*fired.borrow(), expected);
    ev.close().unwrap();
}

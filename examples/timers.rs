//! Timers: `call_later` (a delay from now), `call_at` (a deadline on the
//! loop's clock, `EventLoop::time`), and cancelling a `TimerHandle`. Timers
//! fire in deadline order, equal deadlines in the order they were scheduled,
//! and never before their deadline. The last part runs an hour-long timer on
//! a `ManualClock`, the virtual clock tests use: it fires at once.

// cargo run --example timers

#![allow(clippy::print_stdout)]

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use loop_core::{EventLoop, LoopError, ManualClock, TimerHandle};

type Log = Rc<RefCell<Vec<(&'static str, Instant)>>>;

/// Schedules named timers that print and log when they ran.
struct Timers {
    ev: EventLoop,
    start: Instant,
    log: Log,
    handles: Vec<(&'static str, TimerHandle)>,
}

impl Timers {
    /// A callback that prints its name and the time since `start`, and logs
    /// when it ran.
    fn callback(&self, name: &'static str) -> impl FnOnce(&EventLoop) + 'static {
        let (start, log) = (self.start, self.log.clone());
        move |ev| {
            let now = ev.time();
            println!("{:>7.1} ms  {name}", (now - start).as_secs_f64() * 1e3);
            log.borrow_mut().push((name, now));
        }
    }

    fn later(&mut self, name: &'static str, delay: Duration) -> Result<&TimerHandle, LoopError> {
        let handle = self.ev.call_later(delay, self.callback(name))?;
        self.handles.push((name, handle));
        Ok(&self.handles[self.handles.len() - 1].1)
    }

    fn at(&mut self, name: &'static str, when: Instant) -> Result<&TimerHandle, LoopError> {
        let handle = self.ev.call_at(when, self.callback(name))?;
        self.handles.push((name, handle));
        Ok(&self.handles[self.handles.len() - 1].1)
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let ev = EventLoop::new()?;
    let start = ev.time();
    let ms = Duration::from_millis;
    let mut t = Timers {
        ev: ev.clone(),
        start,
        log: Rc::default(),
        handles: Vec::new(),
    };

    // Scheduled out of order; they fire in deadline order.
    t.later("C: call_later(300 ms)", ms(300))?;
    t.later("A: call_later(100 ms)", ms(100))?;
    t.at("B: call_at(start + 200 ms)", start + ms(200))?;
    // Equal deadlines keep the order they were scheduled in.
    t.at("D1: call_at(start + 250 ms)", start + ms(250))?;
    t.at("D2: call_at(start + 250 ms)", start + ms(250))?;
    // A deadline in the past (asyncio's negative delay) runs in the next
    // iteration, before every timer that is not yet due.
    let past = start.checked_sub(ms(1000)).unwrap_or(start);
    t.at("P: call_at(start - 1 s)", past)?;

    // Cancelled before it is due: it never fires.
    let cancelled = t.later("X: cancelled, never fires", ms(150))?;
    cancelled.cancel();
    println!(
        "X cancelled: {} (it was due at start + {:.1?})",
        cancelled.cancelled(),
        cancelled.when() - start
    );

    // A timer can cancel another one that is still pending.
    let victim = Rc::new(ev.call_later(ms(280), t.callback("Y: cancelled by A2, never fires"))?);
    let target = victim.clone();
    let a2 = t.callback("A2: call_later(120 ms) cancels Y");
    let handle = ev.call_later(ms(120), move |ev| {
        target.cancel();
        a2(ev);
    })?;
    t.handles.push(("A2: call_later(120 ms) cancels Y", handle));

    ev.call_later(ms(350), |ev| ev.stop())?;
    ev.run_forever()?;

    let log = t.log.borrow();
    let order: Vec<&str> = log.iter().map(|(name, _)| *name).collect();
    assert_eq!(
        order,
        [
            "P: call_at(start - 1 s)",
            "A: call_later(100 ms)",
            "A2: call_later(120 ms) cancels Y",
            "B: call_at(start + 200 ms)",
            "D1: call_at(start + 250 ms)",
            "D2: call_at(start + 250 ms)",
            "C: call_later(300 ms)",
        ]
    );
    assert!(victim.cancelled());

    // Never early: each timer ran at or after `handle.when()`.
    println!("\nlateness (time it ran - its deadline):");
    for (name, fired_at) in log.iter() {
        let (_, handle) = t
            .handles
            .iter()
            .find(|(n, _)| n == name)
            .expect("a logged timer is listed");
        let late = fired_at
            .checked_duration_since(handle.when())
            .expect("a timer never fires before its deadline");
        println!("  {name:<34} +{late:?}");
    }
    ev.close()?;

    // The same API on virtual time: an idle loop jumps to its next timer.
    let clock = ManualClock::new();
    let virtual_loop = EventLoop::builder().manual_clock(clock.clone()).build()?;
    let virtual_start = virtual_loop.time();
    let real_start = Instant::now();
    virtual_loop.call_later(Duration::from_secs(3600), |ev| ev.stop())?;
    virtual_loop.run_forever()?;
    let jumped = virtual_loop.time() - virtual_start;
    println!(
        "\nManualClock: a 1 h timer fired after {:?} of virtual time, {:.1} ms of real time",
        jumped,
        real_start.elapsed().as_secs_f64() * 1e3
    );
    assert_eq!(jumped, Duration::from_secs(3600));
    virtual_loop.close()?;
    Ok(())
}

//! The loop's notion of time.
//!
//! Invariants:
//! 1. [`Clock::now`] never goes backwards.
//! 2. A loop on the monotonic clock blocks in the poller until its earliest
//!    timer; a loop on a [`ManualClock`] never sleeps for a timer: when it
//!    would block with a timer pending and nothing else to do, it advances
//!    the manual clock to that timer's deadline (CPython's `TestLoop` and
//!    tokio's paused clock do the same). Time therefore only moves when a test
//!    moves it or when the loop is otherwise idle, which makes timer tests
//!    deterministic and instant.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Where an [`EventLoop`](crate::EventLoop) reads the time from.
#[derive(Debug, Clone, Default)]
pub enum Clock {
    /// `std::time::Instant::now()` (`CLOCK_MONOTONIC`), the default.
    #[default]
    Monotonic,
    /// Virtual time that only moves when told to (see [`ManualClock`]).
    Manual(ManualClock),
}

impl Clock {
    /// The current time of this clock.
    #[inline]
    pub fn now(&self) -> Instant {
        match self {
            Clock::Monotonic => Instant::now(),
            Clock::Manual(clock) => clock.now(),
        }
    }

    pub(crate) fn manual(&self) -> Option<&ManualClock> {
        match self {
            Clock::Monotonic => None,
            Clock::Manual(clock) => Some(clock),
        }
    }
}

/// A deterministic clock for tests: virtual time that a test advances.
///
/// Cloning gives another handle to the same time. The clock starts at the
/// real `Instant::now()` of its creation and only moves through
/// [`advance`](ManualClock::advance) / [`set`](ManualClock::set) or when an
/// idle loop jumps to its next timer.
///
/// # Examples
///
/// ```
/// use loop_core::{EventLoop, ManualClock};
/// use std::time::Duration;
///
/// let clock = ManualClock::new();
/// let ev = EventLoop::builder().manual_clock(clock.clone()).build().unwrap();
/// let start = ev.time();
/// ev.call_later(Duration::from_secs(3600), |ev| ev.stop()).unwrap();
/// ev.run_forever().unwrap(); // returns at once: the idle loop jumps an hour
/// assert_eq!(ev.time() - start, Duration::from_secs(3600));
/// ```
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Rc<Cell<Instant>>,
}

impl ManualClock {
    /// A clock that starts at the current real time.
    pub fn new() -> Self {
        ManualClock {
            now: Rc::new(Cell::new(Instant::now())),
        }
    }

    /// The clock's time.
    #[inline]
    pub fn now(&self) -> Instant {
        self.now.get()
    }

    /// Moves the clock forward by `by` (`Duration::MAX`: a century on, as
    /// [`EventLoop::time_after`](crate::EventLoop::time_after) saturates).
    pub fn advance(&self, by: Duration) {
        self.now.set(saturating_after(self.now.get(), by));
    }

    /// Moves the clock to `when`; a `when` in the past is ignored, so time
    /// never goes backwards.
    pub fn set(&self, when: Instant) {
        if when > self.now.get() {
            self.now.set(when);
        }
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

/// How far a time whose delay does not fit an `Instant` is put: a century
/// (it never comes in practice; the time itself only if even that does not
/// fit, which no supported clock reaches).
const FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// `now + delay`, saturating a century on instead of overflowing.
pub(crate) fn saturating_after(now: Instant, delay: Duration) -> Instant {
    now.checked_add(delay)
        .or_else(|| now.checked_add(FOREVER))
        .unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_never_goes_backwards() {
        let clock = ManualClock::new();
        let t0 = clock.now();
        clock.advance(Duration::from_millis(5));
        clock.set(t0);
        assert_eq!(clock.now() - t0, Duration::from_millis(5));
        let other = clock.clone();
        other.advance(Duration::from_millis(1));
        assert_eq!(clock.now() - t0, Duration::from_millis(6));
    }

    #[test]
    fn advancing_by_duration_max_saturates_instead_of_panicking() {
        let clock = ManualClock::new();
        let t0 = clock.now();
        clock.advance(Duration::MAX);
        assert!(clock.now() - t0 >= Duration::from_secs(99 * 365 * 24 * 3600));
    }
}

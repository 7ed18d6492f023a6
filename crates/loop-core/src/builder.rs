//! [`Builder`]: options for a new [`EventLoop`].

use std::io;
use std::time::Duration;

use crate::clock::{Clock, ManualClock};
use crate::constants::{DEBUG_ENV_VAR, EVENTS_CAPACITY, SLOW_CALLBACK_DURATION};
use crate::event_loop::EventLoop;

/// Options for a new [`EventLoop`].
///
/// # Examples
///
/// ```
/// use loop_core::EventLoop;
/// use std::time::Duration;
///
/// let ev = EventLoop::builder()
///     .debug(true)
///     .slow_callback_duration(Duration::from_millis(10))
///     .build()
///     .unwrap();
/// assert!(ev.get_debug());
/// ```
#[derive(Debug, Clone)]
pub struct Builder {
    clock: Clock,
    debug: Option<bool>,
    events_capacity: usize,
    slow_callback_duration: Duration,
}

impl Builder {
    /// Defaults: monotonic clock, debug from `TULIP_DEBUG`, 1024 events per
    /// poll, 100 ms slow-callback threshold.
    pub fn new() -> Self {
        Builder {
            clock: Clock::Monotonic,
            debug: None,
            events_capacity: EVENTS_CAPACITY,
            slow_callback_duration: SLOW_CALLBACK_DURATION,
        }
    }

    /// Debug mode on or off, overriding `TULIP_DEBUG`.
    pub fn debug(mut self, enabled: bool) -> Self {
        self.debug = Some(enabled);
        self
    }

    /// Runs the loop on virtual time (see [`ManualClock`]).
    pub fn manual_clock(mut self, clock: ManualClock) -> Self {
        self.clock = Clock::Manual(clock);
        self
    }

    /// How many readiness events one poll may return (at least 1).
    pub fn events_capacity(mut self, capacity: usize) -> Self {
        self.events_capacity = capacity.max(1);
        self
    }

    /// The slow-callback threshold of debug mode.
    pub fn slow_callback_duration(mut self, duration: Duration) -> Self {
        self.slow_callback_duration = duration;
        self
    }

    /// Creates the loop.
    ///
    /// # Errors
    ///
    /// The OS refused to create the poller.
    pub fn build(self) -> io::Result<EventLoop> {
        let debug = self.debug.unwrap_or_else(debug_from_env);
        EventLoop::from_builder(
            self.clock,
            debug,
            self.events_capacity,
            self.slow_callback_duration,
        )
    }
}

impl Default for Builder {
    fn default() -> Self {
        Self::new()
    }
}

/// `TULIP_DEBUG` set to a non-empty value other than `0`.
fn debug_from_env() -> bool {
    std::env::var_os(DEBUG_ENV_VAR).is_some_and(|v| !v.is_empty() && v != "0")
}

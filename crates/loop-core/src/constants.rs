//! Tunables in one place (asyncio's `constants.py` plus the thresholds
//! `base_events.py` keeps as module globals; uvloop's `consts.pxi` idea).

use std::time::Duration;

/// Timer compaction starts only when more than this many timers are queued
/// (asyncio `_MIN_SCHEDULED_TIMER_HANDLES`).
pub const MIN_SCHEDULED_TIMER_HANDLES: usize = 100;

/// ... and when more than this fraction of them is cancelled
/// (asyncio `_MIN_CANCELLED_TIMER_HANDLES_FRACTION`, expressed as 1/2).
pub const CANCELLED_TIMER_FRACTION_DENOMINATOR: usize = 2;

/// The longest a single poll may block (asyncio `MAXIMUM_SELECT_TIMEOUT`, 24 h).
pub const MAXIMUM_SELECT_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// Debug mode reports callbacks that run at least this long
/// (asyncio `slow_callback_duration`).
pub const SLOW_CALLBACK_DURATION: Duration = Duration::from_millis(100);

/// How many readiness events one poll can return (tokio uses 1024 too).
pub const EVENTS_CAPACITY: usize = 1024;

/// Initial capacity of the ready queue (tokio's `INITIAL_CAPACITY`).
pub const READY_CAPACITY: usize = 64;

/// The environment variable that turns debug mode on for new loops
/// (asyncio: `PYTHONASYNCIODEBUG`).
pub const DEBUG_ENV_VAR: &str = "TULIP_DEBUG";

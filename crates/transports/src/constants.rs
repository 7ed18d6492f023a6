//! Tunables of the transports (asyncio's `constants.py` and
//! `selector_events.py` values).

use std::time::Duration;

/// Bytes read per `recv` (asyncio's `max_size`, 256 KiB).
pub const MAX_READ_SIZE: usize = 256 * 1024;

/// Reads per readiness event before yielding to the rest of the loop: one
/// busy connection cannot starve the others.
pub const READS_PER_WAKEUP: usize = 4;

/// Default high-water mark of the write buffer (64 KiB).
pub const DEFAULT_HIGH_WATER: usize = 64 * 1024;

/// Writes after the connection is lost are dropped; from this many on, a
/// warning is logged (asyncio's `LOG_THRESHOLD_FOR_CONNLOST_WRITES`).
pub const LOG_THRESHOLD_FOR_CONNLOST_WRITES: usize = 5;

/// How long a server waits before accepting again after running out of
/// file descriptors (asyncio's `ACCEPT_RETRY_DELAY`).
pub const ACCEPT_RETRY_DELAY: Duration = Duration::from_secs(1);

/// Default listen backlog, and connections accepted per readiness event.
pub const DEFAULT_BACKLOG: u32 = 100;

/// Most buffers handed to one vectored send.
pub(crate) const MAX_IOVECS: usize = 64;

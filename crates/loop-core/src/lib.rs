//! tulip's event loop: Python's asyncio loop model on one thread, on mio.
//!
//! An [`EventLoop`] runs callbacks ([`call_soon`](EventLoop::call_soon)),
//! timers ([`call_later`](EventLoop::call_later),
//! [`call_at`](EventLoop::call_at)), I/O readiness callbacks
//! ([`add_reader`](EventLoop::add_reader),
//! [`add_writer`](EventLoop::add_writer)) and signal handlers, with
//! asyncio's ordering rules. Other threads schedule work through a
//! [`Remote`]. Errors that no caller can receive (a panicking callback) go
//! to the loop's exception handler.
//!
//! Tasks and futures live one layer up, in `loop-futures`: this crate has no
//! futures, tasks or awaiting of its own; tasks plug in through
//! [`Runnable`], and [`TaskCell`] polls the pinned coroutine the layer above
//! gives it (its one use of `std::future::Future`).
//!
//! # Examples
//!
//! ```
//! use loop_core::EventLoop;
//! use std::time::Duration;
//!
//! let ev = EventLoop::new()?;
//! ev.call_soon(|_| tracing::info!("first"))?;
//! ev.call_later(Duration::from_millis(1), |ev| ev.stop())?;
//! ev.run_forever()?;
//! ev.close()?;
//! # Ok::<(), loop_core::LoopError>(())
//! ```
//!
//! # Layering
//!
//! `loop-core` ← `loop-futures` ← `loop-transports` ← `tulip`; see
//! `docs/architecture.md` for one loop iteration walked through.
//!
//! # Divergences from asyncio
//!
//! * Times are `Instant`/`Duration`, not float seconds; a past `Instant`
//!   stands in for a negative delay.
//! * Timers never fire early (asyncio fires up to one clock resolution
//!   early).
//! * `call_soon_threadsafe` returns `Result<(), LoopError>`, not a
//!   cancellable handle.
//! * Thread misuse is a compile error (`EventLoop` is `!Send`), so there is
//!   no debug-mode thread check.
//!
//! The full list is in `docs/asyncio-mapping.md`.

#![doc(test(attr(deny(warnings))))]

mod builder;
mod clock;
mod constants;
mod context;
mod error;
mod event_loop;
mod exception;
mod handle;
mod io;
mod poller;
mod ready;
mod remote;
mod remote_queue;
mod runnable;
mod signals;
mod slot_table;
mod source;
mod sync;
mod task_cell;
pub mod task_context;
mod timers;
mod wake_flag;

pub use builder::Builder;
pub use clock::{Clock, ManualClock};
pub use constants::{
    CANCELLED_TIMER_FRACTION_DENOMINATOR, DEBUG_ENV_VAR, EVENTS_CAPACITY, MAXIMUM_SELECT_TIMEOUT,
    MIN_SCHEDULED_TIMER_HANDLES, READY_CAPACITY, SLOW_CALLBACK_DURATION,
};
pub use context::{check_running_loop, get_running_loop};
pub use error::LoopError;
pub use event_loop::{EventLoop, LoopStats};
pub use exception::{ExceptionContext, ExceptionHandler, SharedError, default_exception_handler};
pub use handle::{Handle, TimerHandle};
pub use io::Descriptor;
pub use remote::Remote;
pub use runnable::{Runnable, RunnableId};
pub use source::{Readiness, SourceHandler, SourceId};
pub use task_cell::{TaskCell, TaskHooks};

/// I/O interest for [`EventLoop::register_source`] (mio's).
pub use mio::Interest;

/// Signal numbers and `raise`, for [`EventLoop::add_signal_handler`].
pub mod signal {
    pub use signal_hook::consts::signal::*;

    /// Sends `sig` to this process (the safe wrapper of `raise(3)`).
    ///
    /// # Errors
    ///
    /// The OS refused (an invalid signal number).
    pub fn raise(sig: i32) -> std::io::Result<()> {
        signal_hook::low_level::raise(sig)
    }
}

/// Internals exposed to the loom models in `tests/loom_*.rs` only.
#[cfg(loom)]
#[doc(hidden)]
pub mod __loom {
    pub use crate::remote_queue::{Notify, RemoteQueue};
    pub use crate::wake_flag::WakeFlag;
}

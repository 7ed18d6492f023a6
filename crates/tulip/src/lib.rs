//! tulip: Python's asyncio event loop model, rebuilt for Rust.
//!
//! One loop per thread runs callbacks, timers and I/O readiness with
//! asyncio's ordering rules; Futures bridge callback code and `async` code;
//! Tasks drive coroutines with asyncio's cancellation. This crate is the
//! facade: it re-exports the layers below.
//!
//! | layer | crate | asyncio |
//! |---|---|---|
//! | event loop | [`loop_core`] | `base_events`, `events`, `selector_events` |
//! | futures and tasks | [`loop_futures`] | `futures`, `tasks`, `runners` |
//! | transports and protocols | [`loop_transports`] | `transports`, `protocols`, `base_events` servers and connections |
//!
//! # Examples
//!
//! ```
//! use tulip::prelude::*;
//! use std::time::Duration;
//!
//! let result = tulip::run(async {
//!     let ev = tulip::get_running_loop()?;
//!     let fut = ev.create_future::<&str>();
//!     let setter = fut.clone();
//!     ev.call_later(Duration::from_millis(1), move |_| {
//!         let _ = setter.set_result("hello from a callback");
//!     })?;
//!     let child = create_task(async move { fut.await })?;
//!     Ok::<_, Error>(child.await?)
//! })
//! .unwrap();
//! assert_eq!(result, "hello from a callback");
//! ```

#![forbid(unsafe_code)]
#![doc(test(attr(deny(warnings))))]

pub use loop_core::{
    Builder, Clock, Descriptor, EventLoop, ExceptionContext, ExceptionHandler, Handle, LoopError,
    LoopStats, ManualClock, Remote, Runnable, RunnableId, SharedError, TimerHandle,
    check_running_loop, default_exception_handler, get_running_loop, signal,
};
pub use loop_futures::*;
pub use loop_transports::*;

pub use loop_core;
pub use loop_futures;
pub use loop_transports;

/// The names most programs need: `use tulip::prelude::*;`.
pub mod prelude {
    pub use loop_core::{EventLoop, LoopError};
    pub use loop_futures::{
        Error, EventLoopExt, Future, Task, TaskGroup, create_task, current_task, gather, run,
        sleep, timeout, wait_for, yield_now,
    };
    pub use loop_transports::{BaseProtocol, Protocol, Transport};
}

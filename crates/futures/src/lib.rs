//! asyncio's Futures and Tasks for tulip's event loop.
//!
//! * [`Future<T>`]: a result set later by a callback and awaited by
//!   coroutines (`asyncio.Future`).
//! * [`Task<T>`]: a coroutine (any `std::future::Future + 'static`) driven
//!   by the loop, with asyncio's cancellation (`asyncio.Task`).
//! * [`EventLoopExt`]: `create_future`, `create_task`,
//!   `run_until_complete` on [`loop_core::EventLoop`].
//!
//! # Examples
//!
//! A future completed by a callback, awaited by a task:
//!
//! ```
//! use loop_core::EventLoop;
//! use loop_futures::{EventLoopExt, Error};
//! use std::time::Duration;
//!
//! let ev = EventLoop::new().unwrap();
//! let fut = ev.create_future::<&str>();
//! let setter = fut.clone();
//! ev.call_later(Duration::from_millis(1), move |_| {
//!     setter.set_result("done").unwrap();
//! })
//! .unwrap();
//! let task = ev.create_task(async move {
//!     let value = fut.await?;
//!     Ok::<_, Error>(value.len())
//! })
//! .unwrap();
//! assert_eq!(ev.run_until_complete(task).unwrap(), 4);
//! ```
//!
//! Cancellation arrives at an await as `Err(Error::Cancelled)`; `?` ends
//! the task cancelled:
//!
//! ```
//! use loop_core::EventLoop;
//! use loop_futures::EventLoopExt;
//!
//! let ev = EventLoop::new().unwrap();
//! let never = ev.create_future::<()>();
//! let task = ev.create_task(async move { never.await }).unwrap();
//! let handle = task.clone();
//! ev.call_soon(move |_| { handle.cancel(Some("enough")); }).unwrap();
//! let err = ev.run_until_complete(task.clone()).unwrap_err();
//! assert_eq!(err.as_cancelled().unwrap().message(), Some("enough"));
//! assert!(task.cancelled());
//! ```
//!
//! # Divergences from asyncio
//!
//! See `docs/asyncio-mapping.md`. In short: cancellation is delivered as an
//! `Err` at the next await instead of a thrown exception; `set_result` does
//! not exist on tasks; `remove_done_callback` takes the id
//! `add_done_callback` returned; dropping a task handle never cancels it.

#![forbid(unsafe_code)]
#![doc(test(attr(deny(warnings))))]

mod bridge;
mod cancel_on_drop;
mod checkpoint;
mod concurrent;
mod context_var;
mod ensure;
mod error;
mod executor;
mod ext;
mod future;
mod gather;
mod queue;
mod run;
mod runner;
mod shield;
mod sleep;
mod sync;
mod sync_primitives;
mod task;
mod task_group;
mod task_number;
mod task_result;
mod timeout;
mod wait;
mod wrap;
mod yield_now;

pub use cancel_on_drop::CancelOnDrop;
pub use checkpoint::checkpoint_if_cancelled;
pub use concurrent::ConcurrentFuture;
pub use context_var::{ContextToken, ContextVar};
#[doc(hidden)]
pub use ensure::__private;
pub use ensure::FutureLike;
pub use error::{
    CancelledError, Error, ExceptionGroup, InvalidStateError, PanicError, RuntimeError,
    TimeoutError,
};
pub use executor::{Executor, Job, ThreadPoolExecutor};
pub use ext::{EventLoopExt, create_task};
pub use future::{CallbackId, Future};
#[doc(hidden)]
pub use gather::tuple as __gather_tuple;
pub use gather::{Gather, GatherSettled, gather, gather_settled};
pub use queue::{
    Fifo, Lifo, LifoQueue, Priority, PriorityQueue, Queue, QueueEmpty, QueueFull, QueueShutDown,
    QueueStore,
};
pub use run::run;
pub use runner::Runner;
pub use shield::{Shieldable, shield};
pub use sleep::{Sleep, sleep, sleep_until};
pub use sync_primitives::{
    Barrier, BoundedSemaphore, BrokenBarrierError, Condition, Event, Lock, LockGuard, Semaphore,
    SemaphoreGuard,
};
pub use task::{AnyTask, Task, all_tasks, current_task};
pub use task_group::TaskGroup;
pub use task_result::IntoTaskResult;
pub use timeout::{Timeout, timeout, timeout_at, wait_for};
pub use wait::{AsCompleted, NextResult, ReturnWhen, as_completed, wait};
pub use wrap::{
    run_coroutine_threadsafe, run_in_executor, set_default_executor, shutdown_default_executor,
    to_thread, wrap_future,
};
pub use yield_now::{YieldNow, yield_now};

/// Internals exposed to the loom models in `tests/loom_*.rs` only.
#[cfg(loom)]
#[doc(hidden)]
pub mod __loom {
    use crate::ConcurrentFuture;

    /// What an executor worker does with a job (`executor::run_job`): skip
    /// it if its future was cancelled, else run it and complete the future.
    pub fn run_job<T, F>(future: &ConcurrentFuture<T>, f: F)
    where
        T: Send + 'static,
        F: FnOnce() -> T,
    {
        crate::executor::run_job(future, f);
    }
}

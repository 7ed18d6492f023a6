//! [`EventLoopExt`]: the loop methods that need futures (asyncio's
//! `create_future`, `create_task`, `run_until_complete`, executors).

use std::panic::Location;
use std::sync::Arc;

use loop_core::{EventLoop, LoopError, get_running_loop};

use crate::error::{Error, RuntimeError};
use crate::executor::Executor;
use crate::future::Future;
use crate::task::Task;
use crate::task_result::IntoTaskResult;

/// Future-level methods on [`EventLoop`].
pub trait EventLoopExt {
    /// A new pending future bound to this loop.
    ///
    /// Equivalent of [`loop.create_future`](https://docs.python.org/3/library/asyncio-eventloop.html#asyncio.loop.create_future).
    #[track_caller]
    fn create_future<T: 'static>(&self) -> Future<T>;

    /// Wraps `coro` in a [`Task`] and schedules its first step.
    ///
    /// Equivalent of [`loop.create_task`](https://docs.python.org/3/library/asyncio-eventloop.html#asyncio.loop.create_task).
    /// `coro` returns `()` or `Result<T, E>`; an `Err` becomes the task's
    /// exception (see [`IntoTaskResult`]).
    ///
    /// # Errors
    ///
    /// [`LoopError::Closed`] if the loop is closed.
    #[track_caller]
    fn create_task<F, R>(&self, coro: F) -> Result<Task<R::Ok>, LoopError>
    where
        F: std::future::Future<Output = R> + 'static,
        R: IntoTaskResult;

    /// Runs the loop until `aw` completes and returns its result.
    ///
    /// Equivalent of [`loop.run_until_complete`](https://docs.python.org/3/library/asyncio-eventloop.html#asyncio.loop.run_until_complete).
    /// `aw` is a coroutine, a [`Future`] or a [`Task`]; it is wrapped in a
    /// task.
    ///
    /// # Errors
    ///
    /// The awaitable's own error; [`Error::Runtime`] if the loop is already
    /// running, closed, or was stopped before `aw` completed ("Event loop
    /// stopped before Future completed.").
    #[track_caller]
    fn run_until_complete<F, R>(&self, aw: F) -> Result<R::Ok, Error>
    where
        F: std::future::Future<Output = R> + 'static,
        R: IntoTaskResult;

    /// Runs `f` on `executor` (the default one when `None`); see
    /// [`run_in_executor`](crate::run_in_executor).
    ///
    /// # Errors
    ///
    /// As [`run_in_executor`](crate::run_in_executor).
    #[track_caller]
    fn run_in_executor<T, F>(
        &self,
        executor: Option<&Arc<dyn Executor>>,
        f: F,
    ) -> Result<Future<T>, Error>
    where
        T: Clone + Send + 'static,
        F: FnOnce() -> T + Send + 'static;

    /// See [`set_default_executor`](crate::set_default_executor).
    fn set_default_executor(&self, executor: Arc<dyn Executor>);

    /// See [`shutdown_default_executor`](crate::shutdown_default_executor).
    fn shutdown_default_executor(&self) -> Future<()>;
}

impl EventLoopExt for EventLoop {
    #[track_caller]
    fn create_future<T: 'static>(&self) -> Future<T> {
        Future::with_site(self, Location::caller())
    }

    #[track_caller]
    fn create_task<F, R>(&self, coro: F) -> Result<Task<R::Ok>, LoopError>
    where
        F: std::future::Future<Output = R> + 'static,
        R: IntoTaskResult,
    {
        Task::spawn(self, coro, Location::caller())
    }

    #[track_caller]
    fn run_until_complete<F, R>(&self, aw: F) -> Result<R::Ok, Error>
    where
        F: std::future::Future<Output = R> + 'static,
        R: IntoTaskResult,
    {
        let site = Location::caller();
        // Both refusals come before the coroutine is made a task, as
        // asyncio's `_check_running` before `ensure_future`: a refused
        // coroutine must not run later.
        if self.is_running() {
            return Err(LoopError::AlreadyRunning.into());
        }
        if loop_core::check_running_loop().is_ok() {
            return Err(LoopError::AnotherLoopRunning.into());
        }
        let task = Task::spawn(self, aw, site)?;
        drive(self, &task)
    }

    #[track_caller]
    fn run_in_executor<T, F>(
        &self,
        executor: Option<&Arc<dyn Executor>>,
        f: F,
    ) -> Result<Future<T>, Error>
    where
        T: Clone + Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        crate::wrap::run_in_executor(self, executor, f)
    }

    fn set_default_executor(&self, executor: Arc<dyn Executor>) {
        crate::wrap::set_default_executor(self, executor);
    }

    fn shutdown_default_executor(&self) -> Future<()> {
        crate::wrap::shutdown_default_executor(self)
    }
}

/// Runs the loop until `task` is done and moves its outcome out
/// (asyncio's `run_until_complete` after `ensure_future`).
pub(crate) fn drive<T: 'static>(ev: &EventLoop, task: &Task<T>) -> Result<T, Error> {
    let stopper = task.add_done_callback(|task| task.get_loop().stop());
    let ran = ev.run_forever();
    task.remove_done_callback(stopper);
    ran?;
    if !task.done() {
        return Err(RuntimeError::new("Event loop stopped before Future completed.").into());
    }
    task.__take_outcome()
}

/// Creates a task on the loop running on this thread.
///
/// Equivalent of [`asyncio.create_task`](https://docs.python.org/3/library/asyncio-task.html#asyncio.create_task).
///
/// # Errors
///
/// [`LoopError::NoRunningLoop`] outside a running loop;
/// [`LoopError::Closed`].
#[track_caller]
pub fn create_task<F, R>(coro: F) -> Result<Task<R::Ok>, LoopError>
where
    F: std::future::Future<Output = R> + 'static,
    R: IntoTaskResult,
{
    let site = Location::caller();
    let ev = get_running_loop()?;
    Task::spawn(&ev, coro, site)
}

//! [`Runner`]: run several top-level coroutines on one loop (asyncio
//! 3.11's `asyncio.Runner`), and the teardown [`run`](crate::run) uses.
//!
//! Invariants:
//! 1. The loop is created lazily, on the first `run` or `get_loop`.
//! 2. `close` cancels the tasks still pending and waits for them (one that
//!    fails instead of ending cancelled is reported to the exception
//!    handler), shuts the default executor down, then closes the loop; it
//!    runs at most once (also from `Drop`).
//! 3. The runner has one context (task-local values, a copy of its
//!    creator's taken when the loop is created): each main task starts with
//!    it and hands back what it ended with, so a value set by one `run` is
//!    seen by the next (asyncio's `Runner._context`).
//! 4. Ctrl-C while `run` runs (main thread only, as asyncio): the first
//!    SIGINT cancels the main task; a second one restores the default
//!    action and re-raises the signal, which interrupts the process.

use std::cell::Cell;
use std::fmt;
use std::rc::Rc;

use loop_core::{EventLoop, ExceptionContext, get_running_loop, signal, task_context};

use crate::error::{Error, RuntimeError};
use crate::ext::EventLoopExt;
use crate::task::{Task, all_tasks};
use crate::task_result::IntoTaskResult;
use crate::wrap::shutdown_default_executor;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Created,
    Initialized,
    Closed,
}

/// A loop that runs coroutines one after another and tears down once.
///
/// Equivalent of [`asyncio.Runner`](https://docs.python.org/3/library/asyncio-runner.html#asyncio.Runner).
///
/// # Examples
///
/// ```
/// use loop_futures::{Error, Runner};
///
/// let mut runner = Runner::new();
/// assert_eq!(runner.run(async { Ok::<_, Error>(1) }).unwrap(), 1);
/// assert_eq!(runner.run(async { Ok::<_, Error>(2) }).unwrap(), 2);
/// runner.close().unwrap();
/// ```
pub struct Runner {
    state: State,
    debug: Option<bool>,
    handle_sigint: Option<bool>,
    ev: Option<EventLoop>,
    /// The main tasks' context (invariant 3).
    context: Option<task_context::Context>,
}

impl Default for Runner {
    fn default() -> Self {
        Self::new()
    }
}

impl Runner {
    /// A runner with default options.
    pub fn new() -> Self {
        Runner {
            state: State::Created,
            debug: None,
            handle_sigint: None,
            ev: None,
            context: None,
        }
    }

    /// Sets the loop's debug mode (default: `TULIP_DEBUG`).
    pub fn debug(mut self, debug: bool) -> Self {
        self.debug = Some(debug);
        self
    }

    /// Whether Ctrl-C cancels the main task (default: only on the thread
    /// named `main`, as asyncio does on the main thread). A SIGINT handler
    /// already added to the runner's loop is kept instead.
    ///
    /// After a `run` that installed its handler, the signal's default
    /// action (ending the process) applies again. A program with its own process-wide SIGINT handling
    /// (`ctrlc`, `signal-hook`, installed before) should turn this off:
    /// asyncio asks `signal.getsignal` whether the handler is still the
    /// default one, which safe Rust cannot ask the OS, so tulip does not
    /// see such a handler and restores the default action over it.
    pub fn handle_sigint(mut self, enabled: bool) -> Self {
        self.handle_sigint = Some(enabled);
        self
    }

    fn lazy_init(&mut self) -> Result<EventLoop, Error> {
        match self.state {
            State::Closed => return Err(RuntimeError::new("Runner is closed").into()),
            State::Initialized => {
                if let Some(ev) = &self.ev {
                    return Ok(ev.clone());
                }
            }
            State::Created => {}
        }
        let mut builder = EventLoop::builder();
        if let Some(debug) = self.debug {
            builder = builder.debug(debug);
        }
        let ev = builder.build().map_err(Error::from)?;
        self.context = task_context::current();
        self.ev = Some(ev.clone());
        self.state = State::Initialized;
        Ok(ev)
    }

    /// The runner's loop (created on first use).
    ///
    /// # Errors
    ///
    /// The runner is closed, or the loop could not be created.
    pub fn get_loop(&mut self) -> Result<EventLoop, Error> {
        self.lazy_init()
    }

    /// Runs `coro` to completion on the runner's loop.
    ///
    /// # Errors
    ///
    /// `coro`'s error; [`Error::Runtime`] from inside a running loop or
    /// after `close`; after Ctrl-C, the main task's cancellation.
    #[track_caller]
    pub fn run<F, R>(&mut self, coro: F) -> Result<R::Ok, Error>
    where
        F: std::future::Future<Output = R> + 'static,
        R: IntoTaskResult,
    {
        if get_running_loop().is_ok() {
            return Err(RuntimeError::new(
                "Runner.run() cannot be called from a running event loop",
            )
            .into());
        }
        let ev = self.lazy_init()?;
        // The main task starts with the runner's context (invariant 3).
        let outer = task_context::replace(self.context.clone());
        let created = ev.create_task(coro);
        task_context::replace(outer);
        let task: Task<R::Ok> = created?;
        let sigint = self
            .handle_sigint
            .unwrap_or_else(|| std::thread::current().name() == Some("main"));
        // A SIGINT handler the user put on this loop is theirs: kept, not
        // replaced (asyncio installs its own only over the default one).
        let installed =
            sigint && !ev.has_signal_handler(signal::SIGINT) && install_sigint(&ev, &task);
        let result = crate::ext::drive(&ev, &task);
        if installed {
            let _ = ev.remove_signal_handler(signal::SIGINT);
        }
        self.context = task.context();
        result
    }

    /// Cancels what is left, shuts the default executor down and closes the
    /// loop. Later calls do nothing.
    ///
    /// # Errors
    ///
    /// Teardown errors (the loop was still running, say).
    pub fn close(&mut self) -> Result<(), Error> {
        if self.state != State::Initialized {
            self.state = State::Closed;
            return Ok(());
        }
        self.state = State::Closed;
        let Some(ev) = self.ev.take() else {
            return Ok(());
        };
        let teardown = cancel_all_tasks(&ev)
            .and_then(|()| ev.run_until_complete(shutdown_default_executor(&ev)));
        ev.close()?;
        teardown
    }
}

fn install_sigint<T: 'static>(ev: &EventLoop, task: &Task<T>) -> bool {
    let main = task.as_any();
    let count = Rc::new(Cell::new(0u32));
    ev.add_signal_handler(signal::SIGINT, move |ev| {
        count.set(count.get() + 1);
        if count.get() == 1 && !main.done() {
            main.cancel(Some("interrupted by SIGINT"));
            return;
        }
        // Second Ctrl-C: give the signal back its default action and re-raise.
        let _ = ev.remove_signal_handler(signal::SIGINT);
        let _ = signal::raise(signal::SIGINT);
    })
    .is_ok()
}

/// Cancels every pending task of `ev` and runs the loop until all are done;
/// a task that failed instead of ending cancelled is reported to the
/// exception handler (asyncio's `_cancel_all_tasks`).
pub(crate) fn cancel_all_tasks(ev: &EventLoop) -> Result<(), Error> {
    let tasks = all_tasks(ev);
    if tasks.is_empty() {
        return Ok(());
    }
    for task in &tasks {
        task.cancel(None);
    }
    while tasks.iter().any(|t| !t.done()) {
        ev.run_once()?;
    }
    for task in &tasks {
        if task.cancelled() {
            continue;
        }
        if let Some(err) = task.error() {
            let context = ExceptionContext::new("unhandled exception during run() shutdown")
                .with_error(err.to_shared())
                .with_extra("task", task.get_name());
            ev.call_exception_handler(context);
        }
    }
    Ok(())
}

impl Drop for Runner {
    fn drop(&mut self) {
        if let Err(err) = self.close() {
            tracing::warn!(target: "tulip", %err, "Runner teardown failed");
        }
    }
}

impl fmt::Debug for Runner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runner")
            .field("state", &self.state)
            .field("debug", &self.debug)
            .finish()
    }
}

//! [`ConcurrentFuture<T>`]: a thread-safe future (Python's
//! `concurrent.futures.Future`), the bridge between the loop and threads.
//!
//! Invariants:
//! 1. The state machine is Python's: `Pending → Running → Finished`, or
//!    `Pending → Cancelled`; a running future cannot be cancelled; a done
//!    future cannot be set again (`InvalidStateError`).
//! 2. Done callbacks run exactly once, outside the lock: in the thread that
//!    completes (or cancels) the future, or at once in the adding thread if
//!    it is already done.
//! 3. Blocking readers (`result(timeout)`) wait on a condition variable
//!    that every completion notifies; they never spin.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{CancelledError, Error, InvalidStateError, RuntimeError, TimeoutError};
use crate::sync::{Condvar, Mutex, MutexGuard};

type ConcurrentCallback<T> = Box<dyn FnOnce(&ConcurrentFuture<T>) + Send>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Pending,
    Running,
    Cancelled,
    Finished,
}

struct State<T> {
    status: Status,
    outcome: Option<Result<T, Error>>,
    callbacks: Vec<ConcurrentCallback<T>>,
}

struct Shared<T> {
    state: Mutex<State<T>>,
    done: Condvar,
}

/// A future that any thread can complete and any thread can wait on.
///
/// Equivalent of [`concurrent.futures.Future`](https://docs.python.org/3/library/concurrent.futures.html#future-objects).
/// Returned by [`ThreadPoolExecutor::submit`](crate::ThreadPoolExecutor::submit)
/// and [`run_coroutine_threadsafe`](crate::run_coroutine_threadsafe);
/// [`wrap_future`](crate::wrap_future) turns it into a loop [`Future`](crate::Future).
pub struct ConcurrentFuture<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Clone for ConcurrentFuture<T> {
    fn clone(&self) -> Self {
        ConcurrentFuture {
            shared: self.shared.clone(),
        }
    }
}

impl<T: Send + 'static> Default for ConcurrentFuture<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Send + 'static> ConcurrentFuture<T> {
    /// A pending future.
    pub fn new() -> Self {
        ConcurrentFuture {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    status: Status::Pending,
                    outcome: None,
                    callbacks: Vec::new(),
                }),
                done: Condvar::new(),
            }),
        }
    }

    /// True if cancelled or finished.
    pub fn done(&self) -> bool {
        matches!(
            self.shared.state.lock().status,
            Status::Cancelled | Status::Finished
        )
    }

    /// True if cancelled.
    pub fn cancelled(&self) -> bool {
        self.shared.state.lock().status == Status::Cancelled
    }

    /// True while running (after `set_running_or_notify_cancel`).
    pub fn running(&self) -> bool {
        self.shared.state.lock().status == Status::Running
    }

    /// Cancels a pending future and runs its callbacks. Returns false if it
    /// is running or finished; true if it is (now) cancelled.
    pub fn cancel(&self) -> bool {
        let callbacks = {
            let mut state = self.shared.state.lock();
            match state.status {
                Status::Running | Status::Finished => return false,
                Status::Cancelled => return true,
                Status::Pending => {}
            }
            state.status = Status::Cancelled;
            self.shared.done.notify_all();
            std::mem::take(&mut state.callbacks)
        };
        self.run_callbacks(callbacks);
        true
    }

    /// Marks the future running, unless it was cancelled: then returns
    /// `Ok(false)` and the work must not start.
    ///
    /// # Errors
    ///
    /// [`RuntimeError`] ("Future in unexpected state", as Python's) if it
    /// is already running or finished.
    pub fn set_running_or_notify_cancel(&self) -> Result<bool, RuntimeError> {
        let mut state = self.shared.state.lock();
        match state.status {
            Status::Cancelled => Ok(false),
            Status::Pending => {
                state.status = Status::Running;
                Ok(true)
            }
            other => Err(RuntimeError::new(format!(
                "Future in unexpected state: {other:?}"
            ))),
        }
    }

    /// Sets the result and runs the callbacks.
    ///
    /// # Errors
    ///
    /// [`InvalidStateError`] if the future is cancelled or finished.
    pub fn set_result(&self, value: T) -> Result<(), InvalidStateError> {
        self.finish(Ok(value))
    }

    /// Sets an error and runs the callbacks.
    ///
    /// # Errors
    ///
    /// [`InvalidStateError`] if the future is cancelled or finished.
    pub fn set_exception(&self, error: impl Into<Error>) -> Result<(), InvalidStateError> {
        self.finish(Err(error.into()))
    }

    fn finish(&self, outcome: Result<T, Error>) -> Result<(), InvalidStateError> {
        let callbacks = {
            let mut state = self.shared.state.lock();
            if matches!(state.status, Status::Cancelled | Status::Finished) {
                return Err(InvalidStateError::new(
                    format!("{:?}", state.status).to_uppercase(),
                ));
            }
            state.status = Status::Finished;
            state.outcome = Some(outcome);
            self.shared.done.notify_all();
            std::mem::take(&mut state.callbacks)
        };
        self.run_callbacks(callbacks);
        Ok(())
    }

    /// Adds `f`, run with the future once it is done: in the thread that
    /// completes it, or now (in this thread) if it is already done.
    pub fn add_done_callback<F>(&self, f: F)
    where
        F: FnOnce(&ConcurrentFuture<T>) + Send + 'static,
    {
        {
            let mut state = self.shared.state.lock();
            if !matches!(state.status, Status::Cancelled | Status::Finished) {
                state.callbacks.push(Box::new(f));
                return;
            }
        }
        // Already done: called now, and a panic is caught and logged as
        // for a callback run at completion (Python logs both).
        self.run_callbacks(vec![Box::new(f)]);
    }

    fn run_callbacks(&self, callbacks: Vec<ConcurrentCallback<T>>) {
        for callback in callbacks {
            if let Err(payload) =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| callback(self)))
            {
                let err = crate::error::PanicError::new(payload);
                tracing::error!(target: "tulip", "exception calling callback for concurrent future: {err}");
            }
        }
    }

    /// Waits (blocking this thread) until done or `timeout` passes.
    fn wait(&self, timeout: Option<Duration>) -> Result<MutexGuard<'_, State<T>>, Error> {
        // A timeout too long for `Instant` (`Duration::MAX`) waits for ever.
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let mut state = self.shared.state.lock();
        while !matches!(state.status, Status::Cancelled | Status::Finished) {
            match deadline {
                None => self.shared.done.wait(&mut state),
                Some(deadline) => {
                    if self
                        .shared
                        .done
                        .wait_until(&mut state, deadline)
                        .timed_out()
                        && !matches!(state.status, Status::Cancelled | Status::Finished)
                    {
                        return Err(TimeoutError.into());
                    }
                }
            }
        }
        Ok(state)
    }

    /// The exception, waiting up to `timeout` (`None`: forever).
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] if not done in time; [`Error::Cancelled`] if
    /// cancelled.
    pub fn exception(&self, timeout: Option<Duration>) -> Result<Option<Error>, Error> {
        let state = self.wait(timeout)?;
        match (&state.status, &state.outcome) {
            (Status::Cancelled, _) => Err(CancelledError::default().into()),
            (_, Some(Err(err))) => Ok(Some(err.clone())),
            _ => Ok(None),
        }
    }
}

impl<T: Clone + Send + 'static> ConcurrentFuture<T> {
    /// The result, waiting up to `timeout` (`None`: forever).
    ///
    /// # Errors
    ///
    /// The stored error; [`Error::Timeout`] if not done in time;
    /// [`Error::Cancelled`] if cancelled.
    pub fn result(&self, timeout: Option<Duration>) -> Result<T, Error> {
        let state = self.wait(timeout)?;
        match (&state.status, &state.outcome) {
            (Status::Cancelled, _) => Err(CancelledError::default().into()),
            (_, Some(outcome)) => outcome.clone(),
            (_, None) => Err(InvalidStateError::new("Result is not set.").into()),
        }
    }
}

impl<T: Clone + Send + 'static> ConcurrentFuture<T> {
    /// The outcome if done, without blocking (for `wrap_future`).
    pub(crate) fn outcome_now(&self) -> Option<Result<T, Error>> {
        let state = self.shared.state.lock();
        match (&state.status, &state.outcome) {
            (Status::Cancelled, _) => Some(Err(CancelledError::default().into())),
            (Status::Finished, Some(outcome)) => Some(outcome.clone()),
            _ => None,
        }
    }
}

impl<T> fmt::Debug for ConcurrentFuture<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = self.shared.state.lock().status;
        f.debug_struct("ConcurrentFuture")
            .field("status", &status)
            .finish()
    }
}

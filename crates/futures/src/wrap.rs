//! [`wrap_future`], [`run_coroutine_threadsafe`] and the loop's executor
//! methods: the doors between the loop thread and other threads.
//!
//! Invariants (asyncio's `_chain_future`):
//! 1. The loop future mirrors the concurrent one: result, error or
//!    cancellation, copied on the loop thread via `call_soon_threadsafe`.
//! 2. Cancelling either side cancels the other.
//! 3. A completion that arrives after the loop closed is dropped without
//!    touching the (gone) loop future.

use std::cell::Cell;
use std::panic::Location;
use std::rc::Rc;
use std::sync::Arc;

use loop_core::{EventLoop, Remote};

use crate::bridge;
use crate::concurrent::ConcurrentFuture;
use crate::error::{Error, RuntimeError};
use crate::executor::{Executor, ThreadPoolExecutor, run_job};
use crate::future::Future;
use crate::sync_primitives::OnDrop;
use crate::task::Task;
use crate::task_result::IntoTaskResult;

/// Wraps a [`ConcurrentFuture`] in a loop [`Future`] completed on the loop
/// thread.
///
/// Equivalent of [`asyncio.wrap_future`](https://docs.python.org/3/library/asyncio-future.html#asyncio.wrap_future).
#[track_caller]
pub fn wrap_future<T>(ev: &EventLoop, source: ConcurrentFuture<T>) -> Future<T>
where
    T: Clone + Send + 'static,
{
    wrap_future_at(ev, source, Location::caller())
}

fn wrap_future_at<T>(
    ev: &EventLoop,
    source: ConcurrentFuture<T>,
    site: &'static Location<'static>,
) -> Future<T>
where
    T: Clone + Send + 'static,
{
    let dest = Future::with_site(ev, site);
    let key = {
        // Strong, as asyncio's source callback holds the destination: a
        // wrapped future whose handle was dropped still completes and runs
        // its done callbacks. (The entry lives in the loop and the future
        // holds the loop: `close` breaks that cycle.)
        let dest = dest.clone();
        let source = source.clone();
        bridge::insert(ev, move |_| copy_state(&source, &dest))
    };
    {
        let source = source.clone();
        dest.add_done_callback(move |dest| {
            if dest.cancelled() {
                source.cancel();
            }
        });
    }
    let remote = ev.remote();
    source.add_done_callback(move |_| {
        if remote
            .call_soon_threadsafe(move |ev| bridge::run(ev, key))
            .is_err()
        {
            tracing::debug!(target: "tulip", "wrap_future: loop closed, completion dropped");
        }
    });
    dest
}

fn copy_state<T: Clone + Send + 'static>(source: &ConcurrentFuture<T>, dest: &Future<T>) {
    if dest.done() {
        return;
    }
    match source.outcome_now() {
        Some(Ok(value)) => {
            let _ = dest.set_result(value);
        }
        Some(Err(Error::Cancelled(_))) => {
            dest.cancel(None);
        }
        Some(Err(err)) => {
            let _ = dest.set_exception(err);
        }
        None => {}
    }
}

/// Runs a coroutine on the loop behind `remote`, from any thread, and
/// returns a [`ConcurrentFuture`] for its result.
///
/// Equivalent of [`asyncio.run_coroutine_threadsafe`](https://docs.python.org/3/library/asyncio-task.html#asyncio.run_coroutine_threadsafe).
/// Divergence: it takes a `Send` closure that *builds* the coroutine on the
/// loop thread, so the coroutine itself may hold `!Send` loop objects.
/// Cancelling the returned future cancels the task.
///
/// A `make` that panics fails the returned future with [`Error::Panic`]
/// (asyncio sets the exception on it).
///
/// # Errors
///
/// [`Error::Runtime`] if the loop is closed.
#[track_caller]
pub fn run_coroutine_threadsafe<M, F, R>(
    remote: &Remote,
    make: M,
) -> Result<ConcurrentFuture<R::Ok>, Error>
where
    M: FnOnce() -> F + Send + 'static,
    F: std::future::Future<Output = R> + 'static,
    R: IntoTaskResult,
    R::Ok: Clone + Send,
{
    let site = Location::caller();
    let result = ConcurrentFuture::new();
    // Fails the result if the loop drops the request or the task's done
    // callback without running it (the loop closed first): a thread
    // waiting on it must not wait for ever.
    let pending = result.clone();
    let unfinished = OnDrop::new(move || {
        if !pending.done() {
            let _ = pending.set_exception(RuntimeError::new(
                "Event loop is closed before the coroutine finished",
            ));
        }
    });
    let completer = result.clone();
    let remote2 = remote.clone();
    remote.call_soon_threadsafe(move |ev| {
        let coro = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(make)) {
            Ok(coro) => coro,
            Err(payload) => {
                let _ =
                    completer.set_exception(Error::Panic(crate::error::PanicError::new(payload)));
                return;
            }
        };
        let task = match Task::spawn(ev, coro, site) {
            Ok(task) => task,
            Err(err) => {
                let _ = completer.set_exception(err);
                return;
            }
        };
        let cancel_key = {
            let task = task.as_any();
            bridge::insert(ev, move |_| {
                task.cancel(None);
            })
        };
        let on_done = completer.clone();
        task.add_done_callback(move |task| {
            let _unfinished = unfinished;
            bridge::forget(&task.get_loop(), cancel_key);
            if task.cancelled() {
                // asyncio copies a cancellation as a cancellation, so the
                // concurrent future reads `cancelled()` too.
                on_done.cancel();
                return;
            }
            if !matches!(on_done.set_running_or_notify_cancel(), Ok(true)) {
                return;
            }
            let _ = match task.result() {
                Ok(value) => on_done.set_result(value),
                Err(err) => on_done.set_exception(err),
            };
        });
        completer.add_done_callback(move |cf| {
            if cf.cancelled() {
                let _ = remote2.call_soon_threadsafe(move |ev| bridge::run(ev, cancel_key));
            }
        });
    })?;
    Ok(result)
}

/// The loop's default executor and whether it was shut down.
#[derive(Default)]
struct DefaultExecutor {
    executor: std::cell::RefCell<Option<Arc<dyn Executor>>>,
    shutdown_called: Cell<bool>,
}

impl Drop for DefaultExecutor {
    fn drop(&mut self) {
        // `close` drops extensions: asyncio shuts the executor down (without
        // waiting) when the loop closes.
        if let Some(executor) = self.executor.get_mut().take() {
            executor.shutdown(false);
        }
    }
}

fn default_state(ev: &EventLoop) -> Rc<DefaultExecutor> {
    ev.extension_or_insert_with(DefaultExecutor::default)
}

/// Runs `f` on `executor` (the loop's default executor when `None`) and
/// returns a loop future for its result.
///
/// Equivalent of [`loop.run_in_executor`](https://docs.python.org/3/library/asyncio-eventloop.html#asyncio.loop.run_in_executor).
///
/// # Errors
///
/// [`Error::Runtime`] if the default executor was shut down or the
/// executor refuses the job; the loop is closed.
#[track_caller]
pub fn run_in_executor<T, F>(
    ev: &EventLoop,
    executor: Option<&Arc<dyn Executor>>,
    f: F,
) -> Result<Future<T>, Error>
where
    T: Clone + Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let site = Location::caller();
    if ev.is_closed() {
        return Err(loop_core::LoopError::Closed.into());
    }
    let executor = match executor {
        Some(executor) => executor.clone(),
        None => {
            let state = default_state(ev);
            if state.shutdown_called.get() {
                return Err(RuntimeError::new("Executor shutdown has been called").into());
            }
            let mut slot = state.executor.borrow_mut();
            slot.get_or_insert_with(|| Arc::new(ThreadPoolExecutor::default()) as Arc<dyn Executor>)
                .clone()
        }
    };
    let source = ConcurrentFuture::new();
    let completer = source.clone();
    executor.execute(Box::new(move || run_job(&completer, f)))?;
    Ok(wrap_future_at(ev, source, site))
}

/// Runs `f` on the running loop's default executor and awaits its result.
///
/// Equivalent of [`asyncio.to_thread`](https://docs.python.org/3/library/asyncio-task.html#asyncio.to_thread).
/// Divergence: task-local values ([`ContextVar`](crate::ContextVar)) are
/// not carried into the thread (they are `!Send`).
///
/// # Errors
///
/// No running loop; the executor's errors; a panic in `f`
/// ([`Error::Panic`]).
#[track_caller]
pub fn to_thread<T, F>(f: F) -> impl std::future::Future<Output = Result<T, Error>>
where
    T: Clone + Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    // The job is submitted now; dropping the returned future before it
    // finished (unpolled, or a select's losing branch) cancels the job, so
    // one not started yet never runs (asyncio's to_thread cancelled).
    let started = loop_core::get_running_loop()
        .map_err(Error::from)
        .and_then(|ev| run_in_executor(&ev, None, f))
        .map(Future::cancel_on_drop);
    async move { started?.await }
}

/// Sets the loop's default executor (used by `run_in_executor(None, …)`).
///
/// Equivalent of [`loop.set_default_executor`](https://docs.python.org/3/library/asyncio-eventloop.html#asyncio.loop.set_default_executor).
pub fn set_default_executor(ev: &EventLoop, executor: Arc<dyn Executor>) {
    let state = default_state(ev);
    let old = state.executor.replace(Some(executor));
    drop(old);
}

/// Shuts the default executor down, waiting for its jobs on a helper
/// thread (the loop keeps running); later `run_in_executor(None, …)` fails.
///
/// Equivalent of [`loop.shutdown_default_executor`](https://docs.python.org/3/library/asyncio-eventloop.html#asyncio.loop.shutdown_default_executor).
/// Returns a future completed once the executor has finished.
pub fn shutdown_default_executor(ev: &EventLoop) -> Future<()> {
    let state = default_state(ev);
    state.shutdown_called.set(true);
    let executor = state.executor.borrow_mut().take();
    let Some(executor) = executor else {
        let done = Future::new(ev);
        let _ = done.set_result(());
        return done;
    };
    let finished = ConcurrentFuture::new();
    let completer = finished.clone();
    let spawned = std::thread::Builder::new()
        .name("tulip-executor-shutdown".into())
        .spawn(move || {
            executor.shutdown(true);
            let _ = completer.set_result(());
        });
    if let Err(err) = spawned {
        let _ = finished.set_exception(err);
    }
    wrap_future(ev, finished)
}

//! Executors: where blocking work runs off the loop thread
//! (`loop.run_in_executor`, `concurrent.futures.ThreadPoolExecutor`).
//!
//! Invariants:
//! 1. A job submitted before `shutdown` runs (unless its future was
//!    cancelled first); a job submitted after it is refused with an error.
//! 2. Worker threads are started lazily, one per job that finds no idle
//!    worker, up to `max_workers`.
//! 3. A panicking job fails its future with [`Error::Panic`]; the worker
//!    survives, also a panic nobody can receive (a raw [`Job`] given to
//!    `execute`, a cancelled job's destructor), which is logged.
//! 4. Dropping the last handle shuts the pool down without waiting.

use std::collections::VecDeque;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::thread::ThreadId;

use parking_lot::{Condvar, Mutex};

use crate::concurrent::ConcurrentFuture;
use crate::error::{Error, PanicError, RuntimeError};

/// A unit of work for an executor.
pub type Job = Box<dyn FnOnce() + Send>;

/// Something that runs jobs off the loop thread.
///
/// [`ThreadPoolExecutor`] is the default; set another with
/// [`set_default_executor`](crate::set_default_executor).
pub trait Executor: Send + Sync {
    /// Queues `job`.
    ///
    /// # Errors
    ///
    /// The executor was shut down.
    fn execute(&self, job: Job) -> Result<(), Error>;

    /// Stops accepting jobs; with `wait`, blocks until queued jobs finished.
    fn shutdown(&self, wait: bool);
}

struct PoolState {
    jobs: VecDeque<Job>,
    idle: usize,
    /// The thread of every worker started (their count; whether a caller
    /// of `shutdown` is one of them). Workers are detached: `shutdown`
    /// waits on `live`, not on join handles.
    workers: Vec<ThreadId>,
    /// Workers that have not exited yet.
    live: usize,
    /// Workers whose job is inside `shutdown(true)` of this pool: they
    /// cannot exit before it returns, so nobody waits for them.
    waiting_workers: usize,
    shutdown: bool,
}

struct Pool {
    state: Mutex<PoolState>,
    work: Condvar,
    /// Told each time a worker exits (`shutdown(true)` waits on it).
    exited: Condvar,
    max_workers: usize,
    name: String,
}

/// A pool of worker threads (Python's `ThreadPoolExecutor`).
///
/// Cloning gives another handle to the same pool.
#[derive(Clone)]
pub struct ThreadPoolExecutor {
    pool: Arc<Pool>,
    _owner: Arc<Owner>,
}

/// Shuts the pool down (without waiting) when the last handle drops.
struct Owner(Arc<Pool>);

impl Drop for Owner {
    fn drop(&mut self) {
        self.0.shutdown(false);
    }
}

impl ThreadPoolExecutor {
    /// A pool of at most `max_workers` threads (at least 1). Python's
    /// default is `min(32, cpus + 4)`: see [`ThreadPoolExecutor::default`].
    pub fn new(max_workers: usize) -> Self {
        let pool = Arc::new(Pool {
            state: Mutex::new(PoolState {
                jobs: VecDeque::new(),
                idle: 0,
                workers: Vec::new(),
                live: 0,
                waiting_workers: 0,
                shutdown: false,
            }),
            work: Condvar::new(),
            exited: Condvar::new(),
            max_workers: max_workers.max(1),
            name: "tulip-executor".to_string(),
        });
        ThreadPoolExecutor {
            _owner: Arc::new(Owner(pool.clone())),
            pool,
        }
    }

    /// Runs `f` on a worker; its return value (or panic) completes the
    /// returned future.
    ///
    /// # Errors
    ///
    /// [`Error::Runtime`] after shutdown.
    pub fn submit<T, F>(&self, f: F) -> Result<ConcurrentFuture<T>, Error>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let future = ConcurrentFuture::new();
        let completer = future.clone();
        self.execute(Box::new(move || run_job(&completer, f)))?;
        Ok(future)
    }

    /// The number of worker threads started so far.
    pub fn worker_count(&self) -> usize {
        self.pool.state.lock().workers.len()
    }
}

/// Runs `f` for `future` unless it was cancelled (invariant 3).
pub(crate) fn run_job<T, F>(future: &ConcurrentFuture<T>, f: F)
where
    T: Send + 'static,
    F: FnOnce() -> T,
{
    if !matches!(future.set_running_or_notify_cancel(), Ok(true)) {
        // Cancelled: the job is dropped unrun, its destructor guarded like
        // its call.
        if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(move || drop(f))) {
            log_worker_panic(payload);
        }
        return;
    }
    let outcome = match panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(value) => future.set_result(value),
        Err(payload) => future.set_exception(Error::Panic(PanicError::new(payload))),
    };
    if let Err(err) = outcome {
        tracing::debug!(target: "tulip", %err, "executor job finished a future that was already done");
    }
}

/// A panic on a worker thread outside a submitted function's call (a raw
/// job, a cancelled job's destructor): nobody can receive it, so it is
/// logged; a payload whose own drop panics is leaked.
fn log_worker_panic(payload: Box<dyn std::any::Any + Send>) {
    let panic = PanicError::new(payload);
    tracing::error!(
        target: "tulip",
        panic = panic.message(),
        "executor job panicked on a worker thread"
    );
    if let Err(again) = panic::catch_unwind(AssertUnwindSafe(move || drop(panic))) {
        Box::leak(again);
    }
}

impl Default for ThreadPoolExecutor {
    fn default() -> Self {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self::new((cpus + 4).min(32))
    }
}

impl Executor for ThreadPoolExecutor {
    fn execute(&self, job: Job) -> Result<(), Error> {
        self.pool.execute(job)
    }

    fn shutdown(&self, wait: bool) {
        self.pool.shutdown(wait);
    }
}

impl Pool {
    fn execute(self: &Arc<Self>, job: Job) -> Result<(), Error> {
        let mut state = self.state.lock();
        if state.shutdown {
            return Err(RuntimeError::new("cannot schedule new futures after shutdown").into());
        }
        state.jobs.push_back(job);
        if state.idle > 0 {
            self.work.notify_one();
        } else if state.workers.len() < self.max_workers {
            let pool = self.clone();
            let name = format!("{}-{}", self.name, state.workers.len());
            match std::thread::Builder::new()
                .name(name)
                .spawn(move || pool.worker())
            {
                Ok(handle) => {
                    state.workers.push(handle.thread().id());
                    state.live += 1;
                }
                Err(err) if state.workers.is_empty() => {
                    state.jobs.pop_back();
                    return Err(Error::new(err));
                }
                Err(err) => tracing::warn!(target: "tulip", %err, "could not start another worker"),
            }
        }
        Ok(())
    }

    fn worker(&self) {
        let mut state = self.state.lock();
        loop {
            if let Some(job) = state.jobs.pop_front() {
                drop(state);
                // A raw `Job` (`Executor::execute`) that panics must not
                // take the worker with it: the pool counts it as alive.
                if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(job)) {
                    log_worker_panic(payload);
                }
                state = self.state.lock();
                continue;
            }
            if state.shutdown {
                state.live -= 1;
                self.exited.notify_all();
                return;
            }
            state.idle += 1;
            self.work.wait(&mut state);
            state.idle -= 1;
        }
    }

    /// With `wait`, returns once every worker exited (each caller: two
    /// threads shutting down at once both wait), except the workers whose
    /// job is itself in here (a job shutting its own pool down, two such
    /// jobs at once): they exit after it returns.
    fn shutdown(&self, wait: bool) {
        let mut state = self.state.lock();
        state.shutdown = true;
        self.work.notify_all();
        if !wait {
            return;
        }
        let me = std::thread::current().id();
        let on_worker = state.workers.contains(&me);
        if on_worker {
            state.waiting_workers += 1;
            self.exited.notify_all();
        }
        while state.live > state.waiting_workers {
            self.exited.wait(&mut state);
        }
        if on_worker {
            state.waiting_workers -= 1;
        }
    }
}

impl fmt::Debug for ThreadPoolExecutor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.pool.state.lock();
        f.debug_struct("ThreadPoolExecutor")
            .field("max_workers", &self.pool.max_workers)
            .field("workers", &state.workers.len())
            .field("queued", &state.jobs.len())
            .field("shutdown", &state.shutdown)
            .finish()
    }
}

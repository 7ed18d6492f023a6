//! [`wait`] and [`as_completed`]: wait on several tasks at once (asyncio's
//! `asyncio.wait` and `asyncio.as_completed`).
//!
//! Invariants:
//! 1. Neither cancels the tasks it waits on, also on timeout (asyncio).
//! 2. Their done callbacks are removed when the wait ends (also when its
//!    future is dropped mid-wait, with its timer), so a long-lived task
//!    does not accumulate callbacks of waits that are over.
//! 3. `as_completed` yields each task exactly once, in completion order;
//!    several of its items may be awaited at the same time.
//! 4. Its iterator and `next_task` together hand out exactly one item per
//!    task, claimed when asked for (asyncio's `_todo_left`): items can be
//!    collected before awaiting them, and once the timeout passed the items
//!    left are `Timeout` errors, after which the iteration ends. An item
//!    dropped before it resolved, or whose wait was cancelled, gives its
//!    claim back.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use loop_core::{EventLoop, TimerHandle, get_running_loop};

use crate::CallbackId;
use crate::error::{Error, TimeoutError};
use crate::future::Future;
use crate::sync_primitives::OnDrop;
use crate::task::Task;

/// When [`wait`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReturnWhen {
    /// As soon as any task finishes (asyncio `FIRST_COMPLETED`).
    FirstCompleted,
    /// As soon as any task fails, or all finished (asyncio `FIRST_EXCEPTION`).
    FirstException,
    /// When every task finished (asyncio `ALL_COMPLETED`).
    AllCompleted,
}

fn failed<T: 'static>(task: &Task<T>) -> bool {
    task.done() && !task.cancelled() && matches!(task.exception(), Ok(Some(_)))
}

/// Waits until `return_when` holds or `timeout` passes; returns the tasks
/// split into `(done, pending)`, each in input order.
///
/// Equivalent of [`asyncio.wait`](https://docs.python.org/3/library/asyncio-task.html#asyncio.wait).
///
/// # Errors
///
/// An empty `tasks` (asyncio's `ValueError`); the waiting task's
/// cancellation. A timeout is not an error: the pending set says it.
pub async fn wait<T: 'static>(
    tasks: Vec<Task<T>>,
    timeout: Option<Duration>,
    return_when: ReturnWhen,
) -> Result<(Vec<Task<T>>, Vec<Task<T>>), Error> {
    if tasks.is_empty() {
        return Err(Error::msg("Set of Tasks/Futures is empty."));
    }
    let ev = get_running_loop()?;
    let waiter: Future<()> = Future::new(&ev);
    let satisfied = |tasks: &[Task<T>]| match return_when {
        ReturnWhen::FirstCompleted => tasks.iter().any(Task::done),
        ReturnWhen::FirstException => tasks.iter().all(Task::done) || tasks.iter().any(failed),
        ReturnWhen::AllCompleted => tasks.iter().all(Task::done),
    };
    if !satisfied(&tasks) {
        let tasks_rc: Rc<Vec<Task<T>>> = Rc::new(tasks.clone());
        let ids: Vec<CallbackId> = tasks
            .iter()
            .map(|task| {
                let waiter = waiter.clone();
                let all = tasks_rc.clone();
                task.add_done_callback(move |_| {
                    let done = match return_when {
                        ReturnWhen::FirstCompleted => true,
                        ReturnWhen::FirstException => {
                            all.iter().all(Task::done) || all.iter().any(failed)
                        }
                        ReturnWhen::AllCompleted => all.iter().all(Task::done),
                    };
                    if done && !waiter.done() {
                        let _ = waiter.set_result(());
                    }
                })
            })
            .collect();
        let timer = match timeout {
            Some(delay) => {
                let waiter = waiter.clone();
                Some(ev.call_later(delay, move |_| {
                    if !waiter.done() {
                        let _ = waiter.set_result(());
                    }
                })?)
            }
            None => None,
        };
        // Also when this future is dropped mid-wait (invariant 2).
        let registered = OnDrop::new(|| {
            if let Some(timer) = timer {
                timer.cancel();
            }
            for (task, id) in tasks.iter().zip(ids) {
                task.remove_done_callback(id);
            }
        });
        let waited = waiter.await;
        drop(registered);
        waited?;
    } else {
        // Already satisfied: asyncio still suspends once (its done
        // callbacks resolve the waiter an iteration later), so a pending
        // cancellation is delivered here too.
        crate::yield_now().await?;
    }
    Ok(tasks.into_iter().partition(Task::done))
}

struct Shared<T> {
    remaining: Cell<usize>,
    /// Items not handed out yet (invariant 4).
    todo_left: Cell<usize>,
    finished: RefCell<VecDeque<Task<T>>>,
    /// One entry per item being awaited: several may wait at once.
    waiters: RefCell<Vec<Future<()>>>,
    timed_out: Cell<bool>,
    timer: RefCell<Option<TimerHandle>>,
}

impl<T> Shared<T> {
    /// Hands out one item; false once every task has one (invariant 4).
    fn claim(&self) -> bool {
        let left = self.todo_left.get();
        if left == 0 {
            return false;
        }
        self.todo_left.set(left - 1);
        true
    }

    fn wake(&self) {
        // Every waiting item looks again; those that find nothing wait again.
        let waiters = std::mem::take(&mut *self.waiters.borrow_mut());
        for waiter in waiters {
            let _ = waiter.set_result(());
        }
    }
}

/// Tasks in completion order; see [`as_completed`].
pub struct AsCompleted<T> {
    shared: Rc<Shared<T>>,
    ev: EventLoop,
}

/// Yields `tasks` as they complete, within an optional overall `timeout`.
///
/// Equivalent of [`asyncio.as_completed`](https://docs.python.org/3/library/asyncio-task.html#asyncio.as_completed):
/// as an iterator of awaitables ([`Iterator`]: each item resolves to the
/// next result), or as an async stream of the tasks themselves
/// ([`AsCompleted::next_task`]). After the timeout every further item is
/// [`Error::Timeout`].
///
/// # Errors
///
/// No running loop.
pub fn as_completed<T: 'static>(
    tasks: Vec<Task<T>>,
    timeout: Option<Duration>,
) -> Result<AsCompleted<T>, Error> {
    let ev = get_running_loop()?;
    let shared = Rc::new(Shared {
        remaining: Cell::new(tasks.len()),
        todo_left: Cell::new(tasks.len()),
        finished: RefCell::new(VecDeque::new()),
        waiters: RefCell::new(Vec::new()),
        timed_out: Cell::new(false),
        timer: RefCell::new(None),
    });
    for task in &tasks {
        let shared = shared.clone();
        task.add_done_callback(move |task| {
            if shared.timed_out.get() {
                // asyncio's timeout removes these callbacks: a task done
                // after it is not yielded, its item is a TimeoutError.
                return;
            }
            shared.finished.borrow_mut().push_back(task.clone());
            shared.wake();
        });
    }
    if let Some(delay) = timeout {
        let weak = Rc::downgrade(&shared);
        let timer = ev.call_later(delay, move |_| {
            if let Some(shared) = weak.upgrade() {
                shared.timed_out.set(true);
                shared.wake();
            }
        })?;
        *shared.timer.borrow_mut() = Some(timer);
    }
    Ok(AsCompleted { shared, ev })
}

impl<T: 'static> AsCompleted<T> {
    /// The next task to complete, or `None` when all were yielded.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] after the overall timeout; the awaiting task's
    /// cancellation.
    pub async fn next_task(&mut self) -> Option<Result<Task<T>, Error>> {
        if !self.shared.claim() {
            return None;
        }
        NextTask::new(&self.shared, &self.ev).await
    }

    /// How many tasks are still to be yielded.
    pub fn remaining(&self) -> usize {
        self.shared.remaining.get()
    }
}

impl<T: Clone + 'static> Iterator for AsCompleted<T> {
    type Item = NextResult<T>;

    fn next(&mut self) -> Option<NextResult<T>> {
        if !self.shared.claim() {
            return None;
        }
        Some(NextResult {
            inner: NextTask::new(&self.shared, &self.ev),
        })
    }
}

impl<T> Drop for AsCompleted<T> {
    fn drop(&mut self) {
        if let Some(timer) = self.shared.timer.borrow_mut().take() {
            timer.cancel();
        }
    }
}

impl<T> fmt::Debug for AsCompleted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsCompleted")
            .field("remaining", &self.shared.remaining.get())
            .finish()
    }
}

struct NextTask<T> {
    shared: Rc<Shared<T>>,
    ev: EventLoop,
    wait: Option<Future<()>>,
    /// Its item was handed out (a task, a timeout or the end).
    resolved: bool,
}

impl<T> NextTask<T> {
    /// An item whose claim was just made.
    fn new(shared: &Rc<Shared<T>>, ev: &EventLoop) -> Self {
        NextTask {
            shared: shared.clone(),
            ev: ev.clone(),
            wait: None,
            resolved: false,
        }
    }
}

/// An item dropped before it resolved (a `next_task()` that lost a
/// select) gives its claim back: the next one yields the task it would
/// have (invariant 4 counts items handed out, not asked for).
impl<T> Drop for NextTask<T> {
    fn drop(&mut self) {
        if !self.resolved {
            self.shared.todo_left.set(self.shared.todo_left.get() + 1);
        }
    }
}

impl<T: 'static> std::future::Future for NextTask<T> {
    type Output = Option<Result<Task<T>, Error>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let item = ready!(this.poll_item(cx));
        // A cancelled wait handed out no task: its claim goes back too.
        this.resolved = !matches!(item, Some(Err(Error::Cancelled(_))));
        Poll::Ready(item)
    }
}

impl<T: 'static> NextTask<T> {
    fn poll_item(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Task<T>, Error>>> {
        let this = self;
        loop {
            if let Some(wait) = this.wait.as_mut() {
                if let Err(err) = ready!(Pin::new(wait).poll(cx)) {
                    return Poll::Ready(Some(Err(err)));
                }
                this.wait = None;
            }
            let shared = &this.shared;
            if shared.remaining.get() == 0 {
                return Poll::Ready(None);
            }
            if let Some(task) = shared.finished.borrow_mut().pop_front() {
                shared.remaining.set(shared.remaining.get() - 1);
                return Poll::Ready(Some(Ok(task)));
            }
            if shared.timed_out.get() {
                return Poll::Ready(Some(Err(TimeoutError.into())));
            }
            let wait = Future::new(&this.ev);
            shared.waiters.borrow_mut().push(wait.clone());
            this.wait = Some(wait);
        }
    }
}

/// One item of [`AsCompleted`]'s iterator: resolves to the next result.
#[must_use = "futures do nothing unless awaited"]
pub struct NextResult<T> {
    inner: NextTask<T>,
}

impl<T: Clone + 'static> std::future::Future for NextResult<T> {
    type Output = Result<T, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match ready!(Pin::new(&mut self.get_mut().inner).poll(cx)) {
            None => Poll::Ready(Err(Error::msg("as_completed: no tasks left"))),
            Some(Err(err)) => Poll::Ready(Err(err)),
            Some(Ok(task)) => Poll::Ready(task.result()),
        }
    }
}

impl<T> fmt::Debug for NextResult<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NextResult").finish_non_exhaustive()
    }
}

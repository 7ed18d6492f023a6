//! [`TaskGroup`]: structured concurrency (asyncio 3.11's
//! `asyncio.TaskGroup`).
//!
//! Invariants (CPython `taskgroups.py`):
//! 1. The group's scope returns only after every child task finished.
//! 2. The first child failure cancels the other children and the body (the
//!    parent task), once; every failure is collected into one
//!    [`ExceptionGroup`] in the order they happened.
//! 3. The parent's own cancellation is told apart with `uncancel`: if the
//!    group cancelled the parent (because a child failed), that cancellation
//!    is consumed and the error group is raised instead; an outer
//!    cancellation of the parent still propagates as `Cancelled`, unless
//!    children failed: then the error group wins and the outer cancellation
//!    is requested again, so the parent's next await delivers it.
//! 4. No child can be added once the group is shutting down or finished.
//! 5. A body that panics is treated as one that failed (the children are
//!    cancelled and awaited), then the panic resumes: the parent task fails
//!    with [`Error::Panic`] and no child outlives the group.
//! 6. A scope dropped before it returned cancels its children, stops
//!    cancelling the parent and takes back a cancellation of the parent it
//!    requested; later child errors go to the exception handler.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::task::Poll;

use loop_core::{EventLoop, ExceptionContext, get_running_loop};

use crate::error::{Error, ExceptionGroup, RuntimeError};
use crate::future::Future;
use crate::sync_primitives::OnDrop;
use crate::task::{AnyTask, Task, current_task};
use crate::task_result::IntoTaskResult;

struct Inner {
    ev: EventLoop,
    parent: AnyTask,
    tasks: RefCell<Vec<AnyTask>>,
    errors: RefCell<Vec<Error>>,
    entered: Cell<bool>,
    exiting: Cell<bool>,
    aborting: Cell<bool>,
    parent_cancel_requested: Cell<bool>,
    /// The scope's future was dropped before it returned.
    abandoned: Cell<bool>,
    on_completed: RefCell<Option<Future<()>>>,
}

/// A scope whose child tasks all finish before it returns; see the module
/// docs.
///
/// Equivalent of [`asyncio.TaskGroup`](https://docs.python.org/3/library/asyncio-task.html#task-groups).
///
/// # Examples
///
/// ```
/// use loop_futures::{Error, TaskGroup, run};
///
/// let total = run(async {
///     TaskGroup::scope(|tg| async move {
///         let a = tg.create_task(async { Ok::<_, Error>(1) })?;
///         let b = tg.create_task(async { Ok::<_, Error>(2) })?;
///         Ok::<_, Error>((a, b))
///     })
///     .await
///     .map(|(a, b)| a.result().unwrap() + b.result().unwrap())
/// })
/// .unwrap();
/// assert_eq!(total, 3);
/// ```
#[derive(Clone)]
pub struct TaskGroup {
    inner: Rc<Inner>,
}

impl TaskGroup {
    /// Runs `body` with a new group and waits for every child.
    ///
    /// # Errors
    ///
    /// [`Error::Group`] with every child failure (and the body's own error,
    /// if it failed with something other than the group's cancellation);
    /// `Cancelled` if the parent task was cancelled from outside;
    /// [`Error::Runtime`] outside a task.
    pub async fn scope<B, Fut, T, E>(body: B) -> Result<T, Error>
    where
        B: FnOnce(TaskGroup) -> Fut,
        Fut: std::future::Future<Output = Result<T, E>>,
        E: Into<Error>,
    {
        let parent = current_task()
            .ok_or_else(|| RuntimeError::new("TaskGroup must be used inside a task"))?;
        let group = TaskGroup {
            inner: Rc::new(Inner {
                ev: get_running_loop()?,
                parent,
                tasks: RefCell::new(Vec::new()),
                errors: RefCell::new(Vec::new()),
                entered: Cell::new(true),
                exiting: Cell::new(false),
                aborting: Cell::new(false),
                parent_cancel_requested: Cell::new(false),
                abandoned: Cell::new(false),
                on_completed: RefCell::new(None),
            }),
        };
        // A panic in the body ends it like an error: the children are
        // cancelled and waited for (invariant 1), then the panic goes on
        // (asyncio's `__aexit__` with a `BaseException`: the children
        // cancelled, then that exception raised, not grouped).
        // Dropped before it returned (a select's losing branch, the parent
        // aborted): the group is abandoned (`abandon`).
        let left = OnDrop::new(|| group.abandon());
        let mut body = std::pin::pin!(body(group.clone()));
        let outcome = std::future::poll_fn(|cx| {
            match panic::catch_unwind(AssertUnwindSafe(|| body.as_mut().poll(cx))) {
                Ok(Poll::Pending) => Poll::Pending,
                Ok(Poll::Ready(result)) => Poll::Ready(Ok(result)),
                Err(payload) => Poll::Ready(Err(payload)),
            }
        })
        .await;
        match outcome {
            Ok(result) => {
                let result = group.exit(result.map_err(Into::into)).await;
                left.defuse();
                result
            }
            Err(payload) => {
                let aborted = RuntimeError::new("the TaskGroup's body panicked");
                let _ = group.exit::<T>(Err(aborted.into())).await;
                left.defuse();
                panic::resume_unwind(payload)
            }
        }
    }

    /// The scope's future was dropped before it returned: the children are
    /// cancelled (none may outlive its group), the group takes no new ones
    /// and will not cancel the parent any more, and a cancellation of the
    /// parent it requested and nobody received is taken back, so it cannot
    /// hit the parent's later work. A child failing from now on is reported
    /// to the exception handler (nobody can receive the group's error).
    fn abandon(&self) {
        let inner = &self.inner;
        inner.abandoned.set(true);
        inner.exiting.set(true);
        self.abort();
        if inner.parent_cancel_requested.replace(false) && !inner.parent.done() {
            inner.parent.uncancel();
        }
        inner.on_completed.borrow_mut().take();
    }

    async fn exit<T>(&self, result: Result<T, Error>) -> Result<T, Error> {
        let inner = &self.inner;
        inner.exiting.set(true);
        let mut propagate_cancel: Option<Error> = match &result {
            Err(err @ Error::Cancelled(_)) => Some(err.clone()),
            _ => None,
        };
        if result.is_err() && !inner.aborting.get() {
            self.abort();
        }
        while !inner.tasks.borrow().is_empty() {
            let waiter: Future<()> = Future::new(&inner.ev);
            *inner.on_completed.borrow_mut() = Some(waiter.clone());
            if let Err(err @ Error::Cancelled(_)) = waiter.await {
                if !inner.aborting.get() {
                    propagate_cancel = Some(err);
                    self.abort();
                }
            }
            inner.on_completed.borrow_mut().take();
        }
        if inner.parent_cancel_requested.get() && inner.parent.uncancel() == 0 {
            // The group cancelled the parent; that cancellation is consumed.
            propagate_cancel = None;
        }
        let result = match result {
            Err(Error::Cancelled(_)) => None,
            Err(err) => {
                inner.errors.borrow_mut().push(err);
                None
            }
            Ok(value) => Some(value),
        };
        let errors = std::mem::take(&mut *inner.errors.borrow_mut());
        if !errors.is_empty() {
            // The errors win over an outer cancellation of the parent, but
            // that cancellation must not be lost: re-request it, keeping the
            // count stable, so the parent's next await delivers it (asyncio
            // 3.13's `uncancel()` + `cancel()`).
            if inner.parent.cancelling() > 0 {
                inner.parent.uncancel();
                inner.parent.cancel(None);
            }
            return Err(ExceptionGroup::new("unhandled errors in a TaskGroup", errors).into());
        }
        if let Some(cancel) = propagate_cancel {
            return Err(cancel);
        }
        result.ok_or_else(|| Error::cancelled(None))
    }

    fn abort(&self) {
        self.inner.aborting.set(true);
        for task in self.inner.tasks.borrow().clone() {
            if !task.done() {
                task.cancel(None);
            }
        }
    }

    /// Starts `coro` as a child task of the group.
    ///
    /// # Errors
    ///
    /// [`Error::Runtime`] once the group is shutting down or finished.
    #[track_caller]
    pub fn create_task<F, R>(&self, coro: F) -> Result<Task<R::Ok>, Error>
    where
        F: std::future::Future<Output = R> + 'static,
        R: IntoTaskResult,
    {
        let site = std::panic::Location::caller();
        let inner = &self.inner;
        if !inner.entered.get() {
            return Err(RuntimeError::new("TaskGroup has not been entered").into());
        }
        if inner.exiting.get() && inner.tasks.borrow().is_empty() {
            return Err(RuntimeError::new("TaskGroup is finished").into());
        }
        if inner.aborting.get() {
            return Err(RuntimeError::new("TaskGroup is shutting down").into());
        }
        let task = Task::spawn(&inner.ev, coro, site)?;
        let any = task.as_any();
        inner.tasks.borrow_mut().push(any.clone());
        let group = self.clone();
        any.add_done_callback(move |task| group.on_task_done(task));
        Ok(task)
    }

    fn on_task_done(&self, task: &AnyTask) {
        let inner = &self.inner;
        inner.tasks.borrow_mut().retain(|t| !t.same_task(task));
        if inner.tasks.borrow().is_empty() {
            if let Some(waiter) = inner.on_completed.borrow().as_ref() {
                if !waiter.done() {
                    let _ = waiter.set_result(());
                }
            }
        }
        if task.cancelled() {
            return;
        }
        let Some(err) = task.error() else { return };
        inner.errors.borrow_mut().push(err.clone());
        if inner.parent.done() || inner.abandoned.get() {
            // The parent is gone, or its scope was dropped: nobody will
            // see the group's error.
            let context = ExceptionContext::new(format!(
                "Task {} has errored out but its parent task {} is already completed",
                task.get_name(),
                inner.parent.get_name()
            ))
            .with_error(err.to_shared());
            inner.ev.call_exception_handler(context);
            return;
        }
        if !inner.aborting.get() && !inner.parent_cancel_requested.get() {
            self.abort();
            inner.parent_cancel_requested.set(true);
            inner.parent.cancel(None);
        }
    }
}

impl fmt::Debug for TaskGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskGroup")
            .field("tasks", &self.inner.tasks.borrow().len())
            .field("errors", &self.inner.errors.borrow().len())
            .field("aborting", &self.inner.aborting.get())
            .finish()
    }
}

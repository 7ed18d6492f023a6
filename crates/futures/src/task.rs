//! [`Task<T>`]: a coroutine driven by the loop (asyncio's `Task`).
//!
//! # How a step runs
//!
//! A task is a [`Runnable`]: the loop owns it and runs one *step* per wake.
//! A step polls the coroutine once with the task's `Waker` (one `Arc`
//! created at spawn, reused by every step), with the task set as the
//! thread's current task.
//!
//! # Cancellation (asyncio's, not tokio's)
//!
//! Rust cannot throw `CancelledError` into a coroutine, so cancellation is
//! delivered at awaits:
//! 1. `cancel(msg)` on a task that is suspended on a tulip future (its
//!    `fut_waiter`) cancels that future; the future's `poll` then returns
//!    `Err(Error::Cancelled)` to the coroutine.
//! 2. Otherwise (the task is running, scheduled, or awaiting something that
//!    is not a tulip future) the task sets `must_cancel`, and the next tulip
//!    await in the coroutine returns `Err(Error::Cancelled)` at once. If
//!    that await is the first poll of a pending tulip future or task, that
//!    future (task) is cancelled instead and delivers the cancellation, as
//!    asyncio's `__step` cancels the future the coroutine yields (so an
//!    awaited task is cancelled too, not left running: bpo-34872).
//! 3. The coroutine decides: returning that error (`?`) ends the task
//!    cancelled; swallowing it goes on (the task is not cancelled, but
//!    `cancelling()` still counts the request until `uncancel`).
//! 4. A task cancelled before its first step never polls its coroutine.
//! 5. `abort()` is the explicit tokio-style alternative: the coroutine is
//!    dropped now and the task ends cancelled.
//!
//! # Invariants
//!
//! 1. The loop owns a pending task (through its runnable slab); dropping
//!    every `Task` handle neither cancels nor loses it. A finished task
//!    releases the loop's reference in the step that finished it.
//! 2. The coroutine is dropped as soon as the task finishes, and never while
//!    it is being polled (an `abort` from inside the coroutine is deferred
//!    to the end of the step).
//! 3. `fut_waiter` is the future the task is suspended on; it is cleared at
//!    the start of every step.
//! 4. A failed task whose error nobody retrieved is reported when the last
//!    handle goes: "Task exception was never retrieved"; a task still
//!    pending when the loop closes is reported as "Task was destroyed but it
//!    is pending!" and its coroutine is dropped.

use std::cell::{Cell, OnceCell, RefCell};
use std::fmt;
use std::panic::{self, AssertUnwindSafe, Location};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use loop_core::{EventLoop, ExceptionContext, LoopError, Runnable, RunnableId};

use crate::error::{CancelledError, Error, PanicError, RuntimeError};
use crate::future::{Future, State};
use crate::registry;
use crate::task_result::IntoTaskResult;

/// Something a task can be suspended on and that `Task::cancel` can cancel.
pub(crate) trait AnyFuture {
    fn cancel_any(self: Rc<Self>, msg: Option<&str>) -> bool;
}

/// The type-erased side of a task: what `current_task`, `all_tasks` and
/// cancellation need without knowing the coroutine's type.
pub(crate) trait TaskControl: AnyFuture {
    fn header(&self) -> &TaskHeader;
    fn cancel_task(self: Rc<Self>, msg: Option<&str>) -> bool;
    fn abort_task(self: Rc<Self>);
    fn is_done(&self) -> bool;
    fn is_cancelled(&self) -> bool;
    fn future_id(&self) -> *const ();
    /// Runs `hook` (through the loop) once the task is done.
    fn add_done_hook(&self, hook: crate::future::Hook) -> crate::CallbackId;
    /// Removes a hook added with `add_done_hook`.
    fn remove_done_hook(&self, id: crate::CallbackId) -> usize;
    /// The task's error if it failed or was cancelled (marks it retrieved).
    fn error_now(&self) -> Option<Error>;
}

/// The non-generic state of a task.
pub(crate) struct TaskHeader {
    ev: EventLoop,
    number: u64,
    name: RefCell<Option<Rc<str>>>,
    site: &'static Location<'static>,
    must_cancel: Cell<bool>,
    cancel_message: RefCell<Option<Rc<str>>>,
    cancels_requested: Cell<u32>,
    fut_waiter: RefCell<Option<Rc<dyn AnyFuture>>>,
    id: Cell<Option<RunnableId>>,
    waker: OnceCell<Waker>,
    started: Cell<bool>,
    abort_requested: Cell<bool>,
    registry_key: Cell<usize>,
    /// Task-local values (a copy of the creator's when spawned).
    context: RefCell<Option<loop_core::task_context::Context>>,
}

impl TaskHeader {
    pub(crate) fn name(&self) -> Rc<str> {
        let mut name = self.name.borrow_mut();
        name.get_or_insert_with(|| Rc::from(format!("Task-{}", self.number)))
            .clone()
    }

    pub(crate) fn set_name(&self, name: &str) {
        let old = self.name.replace(Some(Rc::from(name)));
        drop(old);
    }

    pub(crate) fn site(&self) -> &'static Location<'static> {
        self.site
    }

    pub(crate) fn event_loop(&self) -> &EventLoop {
        &self.ev
    }

    pub(crate) fn cancelling(&self) -> u32 {
        self.cancels_requested.get()
    }

    pub(crate) fn uncancel(&self) -> u32 {
        let n = self.cancels_requested.get();
        if n > 0 {
            self.cancels_requested.set(n - 1);
            if n == 1 {
                self.must_cancel.set(false);
            }
        }
        self.cancels_requested.get()
    }

    fn cancel_message(&self) -> Option<Rc<str>> {
        self.cancel_message.borrow().clone()
    }

    fn wake(&self) {
        if let Some(waker) = self.waker.get() {
            waker.wake_by_ref();
        }
    }
}

struct TaskInner<T, F> {
    header: TaskHeader,
    future: Future<T>,
    coro: RefCell<Option<Pin<Box<F>>>>,
}

impl<T: 'static, F> TaskInner<T, F> {
    /// Ends the task with `result` (asyncio's end of `__step`).
    fn finish(&self, result: Result<T, Error>) {
        let h = &self.header;
        let inner = &self.future.inner;
        match result {
            Ok(_) if h.must_cancel.get() => {
                h.must_cancel.set(false);
                inner.cancel_now(h.cancel_message().as_deref());
            }
            Ok(value) => {
                let _ = inner.complete(State::Done(value));
            }
            Err(Error::Cancelled(c)) => {
                inner.cancel_now(c.message());
            }
            Err(err) => {
                let _ = inner.complete(State::Failed(err));
            }
        }
        self.release();
    }

    /// Gives up the loop's reference and the registry entry.
    fn release(&self) {
        let h = &self.header;
        if let Some(id) = h.id.take() {
            h.ev.remove_runnable(id);
        }
        registry::remove(h.registry_key.replace(usize::MAX));
    }

    fn drop_coroutine(&self) {
        let coro = self.coro.borrow_mut().take();
        drop(coro);
    }
}

impl<T, F, R> Runnable for TaskInner<T, F>
where
    T: 'static,
    F: std::future::Future<Output = R> + 'static,
    R: IntoTaskResult<Ok = T>,
{
    fn run(self: Rc<Self>, _ev: &EventLoop) {
        let h = &self.header;
        if !self.future.inner.is_pending() {
            self.release();
            return;
        }
        let waiter = h.fut_waiter.take();
        drop(waiter);
        if h.abort_requested.get() || (!h.started.get() && h.must_cancel.get()) {
            // Cancelled before its first step (or aborted): the body never runs.
            h.must_cancel.set(false);
            self.drop_coroutine();
            let msg = h.cancel_message();
            self.future.inner.cancel_now(msg.as_deref());
            self.release();
            return;
        }
        h.started.set(true);
        let Some(waker) = h.waker.get() else { return };
        let outcome = {
            let _current = enter(self.clone());
            let _context = ContextSwap::enter(&h.context);
            let mut coro = self.coro.borrow_mut();
            let Some(coro) = coro.as_mut() else { return };
            let mut cx = Context::from_waker(waker);
            panic::catch_unwind(AssertUnwindSafe(|| coro.as_mut().poll(&mut cx)))
        };
        match outcome {
            Ok(Poll::Pending) => {
                if h.abort_requested.get() {
                    self.drop_coroutine();
                    self.future.inner.cancel_now(None);
                    self.release();
                }
            }
            Ok(Poll::Ready(output)) => {
                self.drop_coroutine();
                self.finish(output.into_task_result());
            }
            Err(payload) => {
                self.drop_coroutine();
                self.finish(Err(Error::Panic(PanicError::new(payload))));
            }
        }
    }

    fn on_loop_closed(self: Rc<Self>, ev: &EventLoop) {
        let h = &self.header;
        h.id.take();
        if self.future.inner.is_pending() {
            let context = ExceptionContext::new("Task was destroyed but it is pending!")
                .with_site(h.site)
                .with_extra("task", h.name().to_string());
            ev.call_exception_handler(context);
        }
        self.drop_coroutine();
        let waiter = h.fut_waiter.take();
        drop(waiter);
        self.future.inner.clear_waiters();
        registry::remove(h.registry_key.replace(usize::MAX));
    }

    fn site(&self) -> Option<&'static Location<'static>> {
        Some(self.header.site)
    }
}

impl<T: 'static, F: 'static> AnyFuture for TaskInner<T, F> {
    fn cancel_any(self: Rc<Self>, msg: Option<&str>) -> bool {
        self.cancel_task(msg)
    }
}

impl<T: 'static, F: 'static> TaskControl for TaskInner<T, F> {
    fn header(&self) -> &TaskHeader {
        &self.header
    }

    fn cancel_task(self: Rc<Self>, msg: Option<&str>) -> bool {
        let h = &self.header;
        // As asyncio's `Task.cancel` (`_log_traceback = False` first): a
        // failed task that is cancelled afterwards is not reported.
        self.future.inner.silence_unretrieved();
        if !self.future.inner.is_pending() {
            return false;
        }
        h.cancels_requested.set(h.cancels_requested.get() + 1);
        let waiter = h.fut_waiter.borrow().clone();
        if let Some(waiter) = waiter {
            if waiter.cancel_any(msg) {
                // The awaited future delivers the cancellation (rule 1).
                return true;
            }
        }
        h.must_cancel.set(true);
        let old = h.cancel_message.replace(msg.map(Rc::from));
        drop(old);
        h.wake();
        true
    }

    fn abort_task(self: Rc<Self>) {
        if !self.future.inner.is_pending() {
            return;
        }
        match self.coro.try_borrow_mut() {
            Ok(mut coro) => {
                let coro = coro.take();
                drop(coro);
                self.future.inner.cancel_now(None);
                self.release();
            }
            // Aborting itself from inside its coroutine: finish after the poll.
            Err(_) => self.header.abort_requested.set(true),
        }
    }

    fn is_done(&self) -> bool {
        !self.future.inner.is_pending()
    }

    fn is_cancelled(&self) -> bool {
        self.future.cancelled()
    }

    fn future_id(&self) -> *const () {
        self.future.id()
    }

    fn add_done_hook(&self, hook: crate::future::Hook) -> crate::CallbackId {
        self.future.inner.add_hook(hook, self.header.site)
    }

    fn remove_done_hook(&self, id: crate::CallbackId) -> usize {
        self.future.remove_done_callback(id)
    }

    fn error_now(&self) -> Option<Error> {
        match self.future.exception() {
            Ok(Some(err)) => Some(err),
            Err(err @ Error::Cancelled(_)) => Some(err),
            _ => None,
        }
    }
}

impl<T, F> Drop for TaskInner<T, F> {
    fn drop(&mut self) {
        if let Some(err) = self.future.inner.take_unretrieved_error() {
            let context = ExceptionContext::new("Task exception was never retrieved")
                .with_error(err.to_shared())
                .with_site(self.header.site)
                .with_extra("task", self.header.name().to_string());
            self.header.ev.call_exception_handler(context);
        }
    }
}

/// Makes a task's context current for one step and saves it back after
/// (also when the step panics).
struct ContextSwap<'a> {
    slot: &'a RefCell<Option<loop_core::task_context::Context>>,
    prev: Option<Option<loop_core::task_context::Context>>,
}

impl<'a> ContextSwap<'a> {
    fn enter(slot: &'a RefCell<Option<loop_core::task_context::Context>>) -> Self {
        let mine = slot.borrow_mut().take();
        ContextSwap {
            slot,
            prev: Some(loop_core::task_context::replace(mine)),
        }
    }
}

impl Drop for ContextSwap<'_> {
    fn drop(&mut self) {
        let prev = self.prev.take().unwrap_or_default();
        let mine = loop_core::task_context::replace(prev);
        *self.slot.borrow_mut() = mine;
    }
}

// ===== the current task =====

thread_local! {
    static CURRENT: RefCell<Option<Rc<dyn TaskControl>>> = const { RefCell::new(None) };
}

struct Entered {
    prev: Option<Rc<dyn TaskControl>>,
}

fn enter(task: Rc<dyn TaskControl>) -> Entered {
    Entered {
        prev: CURRENT.with(|c| c.replace(Some(task))),
    }
}

impl Drop for Entered {
    fn drop(&mut self) {
        let prev = self.prev.take();
        let _ = CURRENT.try_with(|c| c.replace(prev));
    }
}

fn with_current<R>(f: impl FnOnce(&dyn TaskControl) -> R) -> Option<R> {
    CURRENT
        .try_with(|c| c.borrow().as_deref().map(f))
        .ok()
        .flatten()
}

/// Rule 2 for an await about to suspend on the pending future `fut_id`
/// (first poll): if the current task has a cancellation pending, cancel
/// that future (`target`) with the task's message; if it accepted, the
/// request is consumed and the future delivers it. A future of another
/// loop or the task's own future is left to [`before_await`].
pub(crate) fn cancel_on_suspend(
    fut_id: *const (),
    fut_loop: &EventLoop,
    target: impl FnOnce() -> Rc<dyn AnyFuture>,
) {
    let msg = with_current(|task| {
        let h = task.header();
        let applies = h.must_cancel.get()
            && h.ev.same_loop(fut_loop)
            && !std::ptr::eq(task.future_id(), fut_id);
        applies.then(|| h.cancel_message())
    })
    .flatten();
    let Some(msg) = msg else { return };
    if target().cancel_any(msg.as_deref()) {
        with_current(|task| task.header().must_cancel.set(false));
    }
}

/// Checks made when a tulip future is polled from inside a task: a pending
/// cancellation is delivered (rule 2), and on the first poll, a future of
/// another loop or the task's own future is refused.
pub(crate) fn before_await(fut_id: *const (), fut_loop: &EventLoop, first: bool) -> Option<Error> {
    with_current(|task| {
        let h = task.header();
        if h.must_cancel.replace(false) {
            return Some(Error::Cancelled(CancelledError::new(
                h.cancel_message().as_deref(),
            )));
        }
        if first {
            if !h.ev.same_loop(fut_loop) {
                return Some(Error::Runtime(RuntimeError::new(format!(
                    "Task {} got Future attached to a different loop",
                    h.name()
                ))));
            }
            if std::ptr::eq(task.future_id(), fut_id) {
                return Some(Error::Runtime(RuntimeError::new(format!(
                    "Task cannot await on itself: {}",
                    h.name()
                ))));
            }
        }
        None
    })
    .flatten()
}

/// Delivers a pending cancellation to a non-future await point (yield).
pub(crate) fn take_must_cancel() -> Option<Error> {
    with_current(|task| {
        let h = task.header();
        h.must_cancel
            .replace(false)
            .then(|| Error::Cancelled(CancelledError::new(h.cancel_message().as_deref())))
    })
    .flatten()
}

/// Records what the current task is suspended on (rule 1).
pub(crate) fn set_fut_waiter(waiter: Rc<dyn AnyFuture>) {
    let old = with_current(|task| task.header().fut_waiter.replace(Some(waiter)));
    drop(old);
}

// ===== public handles =====

/// A coroutine scheduled on the loop: asyncio's `Task`.
///
/// Equivalent of [`asyncio.Task`](https://docs.python.org/3/library/asyncio-task.html#asyncio.Task).
/// A `Task<T>` has the whole [`Future`] API (except `set_result` /
/// `set_exception`, which asyncio forbids on tasks: here they do not exist)
/// plus cancellation control and a name. Awaiting a task yields its
/// `Result<T, Error>`. Dropping every handle does *not* cancel the task:
/// the loop owns it until it finishes.
///
/// # Examples
///
/// ```
/// use loop_core::EventLoop;
/// use loop_futures::{EventLoopExt, Error};
///
/// let ev = EventLoop::new().unwrap();
/// let task = ev.create_task(async { Ok::<_, Error>(6 * 7) }).unwrap();
/// assert_eq!(ev.run_until_complete(task).unwrap(), 42);
/// ```
pub struct Task<T> {
    control: Rc<dyn TaskControl>,
    awaiter: Future<T>,
}

impl<T: 'static> Task<T> {
    /// Spawns `coro` on `ev`. See [`EventLoopExt::create_task`](crate::EventLoopExt::create_task).
    pub(crate) fn spawn<F, R>(
        ev: &EventLoop,
        coro: F,
        site: &'static Location<'static>,
    ) -> Result<Task<T>, LoopError>
    where
        F: std::future::Future<Output = R> + 'static,
        R: IntoTaskResult<Ok = T>,
    {
        if ev.is_closed() {
            return Err(LoopError::Closed);
        }
        let future = Future::with_site(ev, site);
        future.inner.silent.set(true);
        let inner = Rc::new(TaskInner {
            header: TaskHeader {
                ev: ev.clone(),
                number: registry::next_task_number(),
                name: RefCell::new(None),
                site,
                must_cancel: Cell::new(false),
                cancel_message: RefCell::new(None),
                cancels_requested: Cell::new(0),
                fut_waiter: RefCell::new(None),
                id: Cell::new(None),
                waker: OnceCell::new(),
                started: Cell::new(false),
                abort_requested: Cell::new(false),
                registry_key: Cell::new(usize::MAX),
                context: RefCell::new(loop_core::task_context::current()),
            },
            future: future.clone(),
            coro: RefCell::new(Some(Box::pin(coro))),
        });
        let (id, waker) = ev.spawn_runnable(inner.clone())?;
        inner.header.id.set(Some(id));
        let _ = inner.header.waker.set(waker);
        let control: Rc<dyn TaskControl> = inner;
        control
            .header()
            .registry_key
            .set(registry::insert(ev.id(), Rc::downgrade(&control)));
        Ok(Task {
            control,
            awaiter: future,
        })
    }

    /// True once the task finished (result, error or cancelled).
    pub fn done(&self) -> bool {
        self.control.is_done()
    }

    /// True if the task ended cancelled.
    pub fn cancelled(&self) -> bool {
        self.control.is_cancelled()
    }

    /// Requests cancellation (see the module docs for how it is delivered).
    /// Returns false if the task is already done.
    ///
    /// Equivalent of [`Task.cancel`](https://docs.python.org/3/library/asyncio-task.html#asyncio.Task.cancel).
    pub fn cancel(&self, msg: Option<&str>) -> bool {
        self.control.clone().cancel_task(msg)
    }

    /// The number of pending cancellation requests.
    pub fn cancelling(&self) -> u32 {
        self.control.header().cancelling()
    }

    /// Decrements the pending cancellation requests; returns the new count.
    pub fn uncancel(&self) -> u32 {
        self.control.header().uncancel()
    }

    /// Drops the coroutine now; the task ends cancelled (tokio's `abort`).
    /// From inside the task's own coroutine, takes effect when the current
    /// step returns.
    pub fn abort(&self) {
        self.control.clone().abort_task();
    }

    /// The task's name (`Task-N` unless set).
    pub fn get_name(&self) -> String {
        self.control.header().name().to_string()
    }

    /// Renames the task.
    pub fn set_name(&self, name: &str) {
        self.control.header().set_name(name);
    }

    /// Where the task was created.
    pub fn site(&self) -> &'static Location<'static> {
        self.control.header().site()
    }

    /// The loop the task runs on.
    pub fn get_loop(&self) -> EventLoop {
        self.control.header().event_loop().clone()
    }

    /// The exception the task ended with; see [`Future::exception`].
    ///
    /// # Errors
    ///
    /// As [`Future::exception`].
    pub fn exception(&self) -> Result<Option<Error>, Error> {
        self.awaiter.exception()
    }

    /// Adds a callback called (through the loop) with the task once done.
    #[track_caller]
    pub fn add_done_callback<C>(&self, f: C) -> crate::CallbackId
    where
        C: FnOnce(&Task<T>) + 'static,
    {
        let task = self.clone();
        self.awaiter
            .inner
            .add_hook(Box::new(move |_| f(&task)), Location::caller())
    }

    /// Removes a done callback; returns how many were removed (0 or 1).
    pub fn remove_done_callback(&self, id: crate::CallbackId) -> usize {
        self.awaiter.remove_done_callback(id)
    }

    /// A type-erased handle to this task.
    pub fn as_any(&self) -> AnyTask {
        AnyTask {
            control: self.control.clone(),
        }
    }

    pub(crate) fn future(&self) -> &Future<T> {
        &self.awaiter
    }

    /// The task's context (its task-local values) as it is between steps.
    pub(crate) fn context(&self) -> Option<loop_core::task_context::Context> {
        self.control.header().context.borrow().clone()
    }

    /// Moves the result out of a finished task, without `T: Clone`; later
    /// reads report it as taken. For combinators that own the task.
    #[doc(hidden)]
    pub fn __take_outcome(&self) -> Result<T, Error> {
        self.awaiter.take_outcome()
    }
}

impl<T: Clone + 'static> Task<T> {
    /// The result; see [`Future::result`].
    ///
    /// # Errors
    ///
    /// As [`Future::result`].
    pub fn result(&self) -> Result<T, Error> {
        self.awaiter.result()
    }
}

impl<T> Clone for Task<T> {
    fn clone(&self) -> Self {
        Task {
            control: self.control.clone(),
            awaiter: self.awaiter.clone(),
        }
    }
}

impl<T: Clone + 'static> std::future::Future for Task<T> {
    type Output = Result<T, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let waiter: Rc<dyn AnyFuture> = this.control.clone();
        this.awaiter.poll_awaiter(cx, Some(waiter))
    }
}

impl<T> fmt::Debug for Task<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.as_any_ref().fmt(f)
    }
}

impl<T> Task<T> {
    fn as_any_ref(&self) -> AnyTask {
        AnyTask {
            control: self.control.clone(),
        }
    }
}

/// A task of any result type: what [`current_task`] and [`all_tasks`]
/// return.
#[derive(Clone)]
pub struct AnyTask {
    control: Rc<dyn TaskControl>,
}

impl AnyTask {
    /// Runs `f` (through the loop) once the task is done.
    pub fn add_done_callback<C>(&self, f: C) -> crate::CallbackId
    where
        C: FnOnce(&AnyTask) + 'static,
    {
        let task = self.clone();
        self.control.add_done_hook(Box::new(move |_| f(&task)))
    }

    /// Removes a done callback; returns how many were removed (0 or 1).
    pub fn remove_done_callback(&self, id: crate::CallbackId) -> usize {
        self.control.remove_done_hook(id)
    }

    /// The error the task ended with — its exception or its cancellation —
    /// or `None` if it succeeded or is not done. Marks the error retrieved.
    pub fn error(&self) -> Option<Error> {
        self.control.error_now()
    }

    /// The task's name.
    pub fn get_name(&self) -> String {
        self.control.header().name().to_string()
    }

    /// Renames the task.
    pub fn set_name(&self, name: &str) {
        self.control.header().set_name(name);
    }

    /// See [`Task::cancel`].
    pub fn cancel(&self, msg: Option<&str>) -> bool {
        self.control.clone().cancel_task(msg)
    }

    /// See [`Task::cancelling`].
    pub fn cancelling(&self) -> u32 {
        self.control.header().cancelling()
    }

    /// See [`Task::uncancel`].
    pub fn uncancel(&self) -> u32 {
        self.control.header().uncancel()
    }

    /// See [`Task::abort`].
    pub fn abort(&self) {
        self.control.clone().abort_task();
    }

    /// True once the task finished.
    pub fn done(&self) -> bool {
        self.control.is_done()
    }

    /// True if the task ended cancelled.
    pub fn cancelled(&self) -> bool {
        self.control.is_cancelled()
    }

    /// The loop the task runs on.
    pub fn get_loop(&self) -> EventLoop {
        self.control.header().event_loop().clone()
    }

    /// Where the task was created.
    pub fn site(&self) -> &'static Location<'static> {
        self.control.header().site()
    }

    /// True if both handles are the same task.
    pub fn same_task(&self, other: &AnyTask) -> bool {
        Rc::ptr_eq(&self.control, &other.control)
    }
}

impl PartialEq for AnyTask {
    fn eq(&self, other: &Self) -> bool {
        self.same_task(other)
    }
}

impl<T> PartialEq<Task<T>> for AnyTask {
    fn eq(&self, other: &Task<T>) -> bool {
        Rc::ptr_eq(&self.control, &other.control)
    }
}

impl fmt::Debug for AnyTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let h = self.control.header();
        f.debug_struct("Task")
            .field("name", &&*h.name())
            .field("done", &self.control.is_done())
            .field("cancelled", &self.control.is_cancelled())
            .field("created_at", &format_args!("{}", h.site))
            .finish()
    }
}

/// The task running on this thread, if any.
///
/// Equivalent of [`asyncio.current_task`](https://docs.python.org/3/library/asyncio-task.html#asyncio.current_task).
pub fn current_task() -> Option<AnyTask> {
    CURRENT
        .try_with(|c| c.borrow().clone())
        .ok()
        .flatten()
        .map(|control| AnyTask { control })
}

/// The tasks of `ev` that are not done yet.
///
/// Equivalent of [`asyncio.all_tasks`](https://docs.python.org/3/library/asyncio-task.html#asyncio.all_tasks).
pub fn all_tasks(ev: &EventLoop) -> Vec<AnyTask> {
    registry::tasks_of(ev.id())
        .into_iter()
        .filter(|control| !control.is_done())
        .map(|control| AnyTask { control })
        .collect()
}

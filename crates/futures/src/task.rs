//! [`Task<T>`]: a coroutine driven by the loop (asyncio's `Task`).
//!
//! # How a step runs
//!
//! A task is a loop-core [`TaskCell`]: its header, its result future and
//! its coroutine in one pinned allocation, which the loop owns and runs one
//! *step* per wake. A step polls the coroutine once with the task's `Waker`
//! (one `Arc` made at spawn or recycled, reused by every step), with the
//! task set as the thread's current task.
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

use std::any::Any;
use std::cell::{Cell, OnceCell, RefCell};
use std::fmt;
use std::panic::{self, AssertUnwindSafe, Location};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use loop_core::{EventLoop, ExceptionContext, LoopError, RunnableId, TaskCell, TaskHooks};

use crate::error::{CancelledError, Error, PanicError, RuntimeError};
use crate::future::{FutureInner, State};
use crate::task_number;
use crate::task_result::IntoTaskResult;

/// Something a task can be suspended on and that `Task::cancel` can cancel.
pub(crate) trait AnyFuture {
    fn cancel_any(&self, msg: Option<&str>) -> bool;
}

/// The type-erased side of a task: what `current_task`, `all_tasks` and
/// cancellation need without knowing the coroutine's type.
pub(crate) trait TaskControl: AnyFuture {
    fn header(&self) -> &TaskHeader;
    fn event_loop(&self) -> &EventLoop;
    fn site(&self) -> &'static Location<'static>;
    fn cancel_task(&self, msg: Option<&str>) -> bool;
    /// A scope's cancellation (a `timeout` expiring): counted as a request
    /// and delivered to `target` (what the scope's body awaits) if it takes
    /// it; otherwise the task is woken and false returned: the scope then
    /// hands the request to its own body's next poll (`arm_must_cancel`).
    /// Never to the task's record, which may be another branch of a select.
    fn cancel_task_scoped(&self, msg: Option<&str>, target: Option<Pin<Rc<dyn AnyFuture>>>)
    -> bool;
    fn abort_task(&self);
    fn is_done(&self) -> bool;
    fn is_cancelled(&self) -> bool;
    fn future_id(&self) -> *const ();
    /// Runs `hook` (through the loop) once the task is done.
    fn add_done_hook(&self, hook: crate::future::Hook) -> crate::CallbackId;
    /// Adds an observer told inline once the task is done.
    fn add_done_observer(&self, observer: Rc<dyn crate::future::DoneObserver>, index: usize);
    /// Removes a hook added with `add_done_hook`.
    fn remove_done_hook(&self, id: crate::CallbackId) -> usize;
    /// The task's error if it failed or was cancelled (marks it retrieved).
    fn error_now(&self) -> Option<Error>;
    /// True if the task failed or was cancelled (marks nothing).
    fn has_error(&self) -> bool;
    /// The same task, as something an awaiting task can cancel.
    fn as_any_future(self: Pin<Rc<Self>>) -> Pin<Rc<dyn AnyFuture>>;
}

/// The typed side of a task: its result future.
pub(crate) trait TaskOf<T>: TaskControl {
    fn core(&self) -> &FutureInner<T>;
    fn as_control_ref(&self) -> &dyn TaskControl;
    fn as_control(self: Pin<Rc<Self>>) -> Pin<Rc<dyn TaskControl>>;
}

/// The non-generic state of a task.
pub(crate) struct TaskHeader {
    number: u64,
    must_cancel: Cell<bool>,
    cancels_requested: Cell<u32>,
    /// The name and the cancel message, rarely set: out of line, so a
    /// task that needs neither stays small (one allocation in all).
    cold: Cell<Option<Box<Cold>>>,
    fut_waiter: Cell<Option<Pin<Rc<dyn AnyFuture>>>>,
    /// The awaited future's identity (`FutureInner::id`) while `fut_waiter`
    /// is set; null otherwise.
    fut_waiter_id: Cell<*const ()>,
    /// Counts records made (wrapping): a scope compares it around its
    /// body's poll to learn whether the body recorded what it awaits.
    records: Cell<u32>,
    id: Cell<Option<RunnableId>>,
    waker: OnceCell<Waker>,
    started: Cell<bool>,
    abort_requested: Cell<bool>,
    /// Task-local values (a copy of the creator's when spawned).
    context: Cell<Option<loop_core::task_context::Context>>,
}

/// Reads the value in `slot` through `f` (a `Cell` has no borrow: the
/// value is taken out and put back; `f` runs no user code).
fn peek<T, R>(slot: &Cell<Option<T>>, f: impl FnOnce(Option<&T>) -> R) -> R {
    let value = slot.take();
    let out = f(value.as_ref());
    slot.set(value);
    out
}

/// The rarely used parts of a task's header.
#[derive(Default)]
struct Cold {
    name: Option<Rc<str>>,
    cancel_message: Option<Rc<str>>,
}

impl TaskHeader {
    /// Runs `f` on the cold part (made on first use). `f` runs no user
    /// code, so nothing can observe the part while it is taken out.
    fn with_cold<R>(&self, f: impl FnOnce(&mut Cold) -> R) -> R {
        let mut cold = self.cold.take().unwrap_or_default();
        let out = f(&mut cold);
        self.cold.set(Some(cold));
        out
    }

    pub(crate) fn name(&self) -> Rc<str> {
        self.with_cold(|cold| {
            cold.name
                .get_or_insert_with(|| Rc::from(format!("Task-{}", self.number)))
                .clone()
        })
    }

    pub(crate) fn set_name(&self, name: &str) {
        let old = self.with_cold(|cold| cold.name.replace(Rc::from(name)));
        drop(old);
    }

    fn set_cancel_message(&self, msg: Option<&str>) {
        // No message and no cold part yet: nothing to record or allocate.
        if msg.is_none() && peek(&self.cold, |cold| cold.is_none()) {
            return;
        }
        let old =
            self.with_cold(|cold| std::mem::replace(&mut cold.cancel_message, msg.map(Rc::from)));
        drop(old);
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
        peek(&self.cold, |cold| {
            cold.and_then(|c| c.cancel_message.clone())
        })
    }

    fn wake(&self) {
        if let Some(waker) = self.waker.get() {
            waker.wake_by_ref();
        }
    }

    /// Takes `fut_waiter` out (and its identity); the caller drops it
    /// outside any borrow.
    fn take_fut_waiter(&self) -> Option<Pin<Rc<dyn AnyFuture>>> {
        self.fut_waiter_id.set(std::ptr::null());
        self.fut_waiter.take()
    }

    /// Records the pending future `fut_id` (made by `me`) as what the task
    /// is suspended on; returns the record it replaces. Of several pending
    /// futures polled in one step (a select), the last one is kept: the
    /// one a plain `task.cancel()` cancels, as asyncio's cancels the one
    /// future its task awaits.
    #[inline]
    fn record_fut_waiter(
        &self,
        fut_id: *const (),
        me: impl FnOnce() -> Pin<Rc<dyn AnyFuture>>,
    ) -> Option<Pin<Rc<dyn AnyFuture>>> {
        self.fut_waiter_id.set(fut_id);
        self.records.set(self.records.get().wrapping_add(1));
        self.fut_waiter.replace(Some(me()))
    }
}

/// A task's state: the header and its result future. The coroutine sits
/// next to it in the same [`TaskCell`] allocation.
pub(crate) struct TaskHead<T> {
    header: TaskHeader,
    core: FutureInner<T>,
}

/// A task: state and coroutine in one pinned allocation.
type TaskCellOf<T, F> = TaskCell<TaskHead<T>, F>;

impl<T> TaskHead<T> {
    /// The start of every cancellation request: false if the task is done;
    /// else the request is counted (`cancelling()`). As asyncio's
    /// `Task.cancel` (`_log_traceback = False` first), a failed task that
    /// is cancelled afterwards is not reported.
    fn count_cancel_request(&self) -> bool {
        self.core.silence_unretrieved();
        if !self.core.is_pending() {
            return false;
        }
        let h = &self.header;
        h.cancels_requested.set(h.cancels_requested.get() + 1);
        true
    }

    /// Gives up the loop's reference (the task is done).
    fn release(&self) {
        if let Some(id) = self.header.id.take() {
            self.core.event_loop().remove_runnable(id);
        }
    }
}

impl<T: 'static> TaskHead<T> {
    /// Ends the task with `result` (asyncio's end of `__step`).
    fn finish(&self, result: Result<T, Error>) {
        let h = &self.header;
        match result {
            Ok(_) if h.must_cancel.get() => {
                h.must_cancel.set(false);
                self.core.cancel_now(h.cancel_message().as_deref());
            }
            Ok(value) => {
                let _ = self.core.complete(State::Done(value));
            }
            Err(Error::Cancelled(c)) => {
                self.core.cancel_now(c.message());
            }
            Err(err) => {
                let _ = self.core.complete(State::Failed(err));
            }
        }
        self.release();
    }

    /// Ends the task cancelled without running (more of) its coroutine.
    fn end_cancelled<F>(cell: &TaskCellOf<T, F>, msg: Option<&str>) {
        drop_body_reported(cell);
        let head = cell.head();
        head.core.cancel_now(msg);
        head.release();
    }
}

impl<T, F, R> TaskHooks<F> for TaskHead<T>
where
    T: 'static,
    F: std::future::Future<Output = R> + 'static,
    R: IntoTaskResult<Ok = T>,
{
    fn run(cell: Pin<Rc<TaskCellOf<T, F>>>, _ev: &EventLoop) {
        let head = cell.head();
        let h = &head.header;
        if !head.core.is_pending() {
            head.release();
            return;
        }
        let waiter = h.take_fut_waiter();
        drop(waiter);
        if h.abort_requested.get() || (!h.started.get() && h.must_cancel.get()) {
            // Cancelled before its first step (or aborted): the body never runs.
            h.must_cancel.set(false);
            let msg = h.cancel_message();
            TaskHead::end_cancelled(&cell, msg.as_deref());
            return;
        }
        h.started.set(true);
        let Some(waker) = h.waker.get() else { return };
        let mut output = None;
        let outcome = {
            let _current = enter(cell.clone());
            let _context = ContextSwap::enter(&h.context);
            let mut cx = Context::from_waker(waker);
            let pinned = cell.as_ref();
            panic::catch_unwind(AssertUnwindSafe(|| pinned.poll_body(&mut cx, &mut output)))
        };
        match outcome {
            // No body any more, or a re-entrant run: nothing to do.
            Ok(None) => {}
            Ok(Some(Poll::Pending)) => {
                if h.abort_requested.get() {
                    TaskHead::end_cancelled(&cell, None);
                }
            }
            Ok(Some(Poll::Ready(()))) => {
                drop_body_reported(&cell);
                if let Some(output) = output {
                    head.finish(output.into_task_result());
                }
            }
            Err(payload) => {
                drop_body_reported(&cell);
                head.finish(Err(Error::Panic(PanicError::new(payload))));
            }
        }
    }

    fn on_loop_closed(cell: Pin<Rc<TaskCellOf<T, F>>>, ev: &EventLoop) {
        let head = cell.head();
        let h = &head.header;
        h.id.take();
        if head.core.is_pending() {
            let context = ExceptionContext::new("Task was destroyed but it is pending!")
                .with_site(head.core.site())
                .with_extra("task", h.name().to_string());
            ev.call_exception_handler(context);
        }
        drop_body_reported(&cell);
        let waiter = h.take_fut_waiter();
        drop(waiter);
        head.core.clear_waiters();
    }

    fn site(cell: &TaskCellOf<T, F>) -> Option<&'static Location<'static>> {
        Some(cell.head().core.site())
    }

    fn collect(cell: Pin<Rc<TaskCellOf<T, F>>>, sink: &mut dyn Any) {
        if let Some(tasks) = sink.downcast_mut::<Vec<Pin<Rc<dyn TaskControl>>>>() {
            tasks.push(cell);
        }
    }
}

/// Drops the task's coroutine (what is left of it). A destructor that
/// panics there is reported to the exception handler, and the caller goes
/// on to end the task: a task is never left pending because dropping its
/// coroutine failed (the body is gone either way: an assignment that
/// unwinds from the old value's drop still stores the new one).
fn drop_body_reported<T: 'static, F>(cell: &TaskCellOf<T, F>) {
    if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| cell.drop_body())) {
        let head = cell.head();
        let context = ExceptionContext::new("Exception in dropping a task's coroutine")
            .with_panic(payload)
            .with_site(head.core.site())
            .with_extra("task", head.header.name().to_string());
        head.core.event_loop().call_exception_handler(context);
    }
}

impl<T: 'static, F: 'static> AnyFuture for TaskCellOf<T, F> {
    fn cancel_any(&self, msg: Option<&str>) -> bool {
        self.cancel_task(msg)
    }
}

impl<T: 'static, F: 'static> TaskControl for TaskCellOf<T, F> {
    fn header(&self) -> &TaskHeader {
        &self.head().header
    }

    fn event_loop(&self) -> &EventLoop {
        self.head().core.event_loop()
    }

    fn site(&self) -> &'static Location<'static> {
        self.head().core.site()
    }

    fn cancel_task_scoped(
        &self,
        msg: Option<&str>,
        target: Option<Pin<Rc<dyn AnyFuture>>>,
    ) -> bool {
        let h = &self.head().header;
        if !self.head().count_cancel_request() {
            return false;
        }
        if target.is_some_and(|target| target.cancel_any(msg)) {
            // What the scope's body awaits delivers it.
            return true;
        }
        h.set_cancel_message(msg);
        h.wake();
        false
    }

    fn cancel_task(&self, msg: Option<&str>) -> bool {
        let h = &self.head().header;
        if !self.head().count_cancel_request() {
            return false;
        }
        // (Cancelling the awaited future runs no user code inline: nothing
        // can record a new `fut_waiter` meanwhile.)
        let waiter = h.fut_waiter.take();
        let delivered = waiter.as_ref().is_some_and(|w| w.cancel_any(msg));
        h.fut_waiter.set(waiter);
        if delivered {
            // The awaited future delivers the cancellation (rule 1).
            return true;
        }
        h.must_cancel.set(true);
        h.set_cancel_message(msg);
        h.wake();
        true
    }

    fn abort_task(&self) {
        if !self.head().core.is_pending() {
            return;
        }
        if self.is_polling() {
            // Aborting itself from inside its coroutine: finish after the poll.
            self.head().header.abort_requested.set(true);
        } else {
            TaskHead::end_cancelled(self, None);
        }
    }

    fn is_done(&self) -> bool {
        !self.head().core.is_pending()
    }

    fn is_cancelled(&self) -> bool {
        self.head().core.is_cancelled()
    }

    fn future_id(&self) -> *const () {
        self.head().core.id()
    }

    fn add_done_hook(&self, hook: crate::future::Hook) -> crate::CallbackId {
        let core = &self.head().core;
        core.add_hook(hook, core.site())
    }

    fn add_done_observer(&self, observer: Rc<dyn crate::future::DoneObserver>, index: usize) {
        self.head().core.add_observer(observer, index);
    }

    fn remove_done_hook(&self, id: crate::CallbackId) -> usize {
        self.head().core.remove_callback(id)
    }

    fn has_error(&self) -> bool {
        self.head().core.has_error()
    }

    fn error_now(&self) -> Option<Error> {
        match self.head().core.exception() {
            Ok(Some(err)) => Some(err),
            Err(err @ Error::Cancelled(_)) => Some(err),
            _ => None,
        }
    }

    fn as_any_future(self: Pin<Rc<Self>>) -> Pin<Rc<dyn AnyFuture>> {
        self
    }
}

impl<T: 'static, F: 'static> TaskOf<T> for TaskCellOf<T, F> {
    fn core(&self) -> &FutureInner<T> {
        &self.head().core
    }

    fn as_control_ref(&self) -> &dyn TaskControl {
        self
    }

    fn as_control(self: Pin<Rc<Self>>) -> Pin<Rc<dyn TaskControl>> {
        self
    }
}

impl<T> Drop for TaskHead<T> {
    fn drop(&mut self) {
        if let Some(err) = self.core.take_unretrieved_error() {
            let context = ExceptionContext::new("Task exception was never retrieved")
                .with_error(err.to_shared())
                .with_site(self.core.site())
                .with_extra("task", self.header.name().to_string());
            self.core.event_loop().call_exception_handler(context);
        }
    }
}

/// Makes a task's context current for one step and saves it back after
/// (also when the step panics).
struct ContextSwap<'a> {
    slot: &'a Cell<Option<loop_core::task_context::Context>>,
    prev: Option<Option<loop_core::task_context::Context>>,
}

impl<'a> ContextSwap<'a> {
    fn enter(slot: &'a Cell<Option<loop_core::task_context::Context>>) -> Self {
        let mine = slot.take();
        if mine.is_none() && !loop_core::task_context::is_set() {
            // Nothing to swap (the common case: no task-local values).
            return ContextSwap { slot, prev: None };
        }
        ContextSwap {
            slot,
            prev: Some(loop_core::task_context::replace(mine)),
        }
    }
}

impl Drop for ContextSwap<'_> {
    fn drop(&mut self) {
        // Without a swap the outer context was `None`: restore that, and
        // keep whatever the step set (a `ContextVar::set`).
        let prev = self.prev.take().unwrap_or_default();
        let mine = loop_core::task_context::replace(prev);
        if mine.is_some() {
            self.slot.set(mine);
        }
    }
}

// ===== the current task =====

thread_local! {
    static CURRENT: RefCell<Option<Pin<Rc<dyn TaskControl>>>> = const { RefCell::new(None) };
}

struct Entered {
    prev: Option<Pin<Rc<dyn TaskControl>>>,
}

fn enter(task: Pin<Rc<dyn TaskControl>>) -> Entered {
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
    target: impl FnOnce() -> Pin<Rc<dyn AnyFuture>>,
) {
    let msg = with_current(|task| {
        let h = task.header();
        let applies = h.must_cancel.get()
            && task.event_loop().same_loop(fut_loop)
            && !std::ptr::eq(task.future_id(), fut_id);
        applies.then(|| h.cancel_message())
    })
    .flatten();
    let Some(msg) = msg else { return };
    if target().cancel_any(msg.as_deref()) {
        with_current(|task| task.header().must_cancel.set(false));
    }
}

/// The common await, decided in one look at the current task: outside a
/// task, or inside one with no cancellation pending and (on the first poll)
/// a future of the same loop that is not the task's own, returns true and,
/// if the future is `pending`, records it as the task's `fut_waiter` (rule
/// 1). Otherwise returns false and changes nothing: the caller runs
/// [`cancel_on_suspend`], [`before_await`] and [`set_fut_waiter`].
pub(crate) fn await_fast(
    fut_id: *const (),
    fut_loop: &EventLoop,
    first: bool,
    pending: bool,
    me: impl FnOnce() -> Pin<Rc<dyn AnyFuture>>,
) -> bool {
    let outcome = with_current(|task| {
        let h = task.header();
        if h.must_cancel.get() {
            return (false, None);
        }
        if first
            && (!task.event_loop().same_loop(fut_loop) || std::ptr::eq(task.future_id(), fut_id))
        {
            return (false, None);
        }
        let old = if pending {
            h.record_fut_waiter(fut_id, me)
        } else {
            None
        };
        (true, old)
    });
    // The replaced waiter is dropped outside the borrow of the current task.
    match outcome {
        Some((fast, old)) => {
            drop(old);
            fast
        }
        None => true,
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
            if !task.event_loop().same_loop(fut_loop) {
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
#[inline]
pub(crate) fn take_must_cancel() -> Option<Error> {
    // The common case (nothing pending) reads one flag; the message is
    // fetched and the error built only when a cancellation is taken.
    let msg = with_current(|task| {
        let h = task.header();
        h.must_cancel.replace(false).then(|| h.cancel_message())
    })??;
    Some(cancelled_error(msg))
}

#[cold]
fn cancelled_error(msg: Option<Rc<str>>) -> Error {
    Error::Cancelled(CancelledError::new(msg.as_deref()))
}

/// Records what the current task is suspended on (rule 1).
pub(crate) fn set_fut_waiter(fut_id: *const (), waiter: impl FnOnce() -> Pin<Rc<dyn AnyFuture>>) {
    let old = with_current(|task| task.header().record_fut_waiter(fut_id, waiter));
    drop(old);
}

/// Sets the current task's `must_cancel` for a scope's body about to be
/// polled; false (and nothing changed) if it is already set (a request
/// from outside is pending: the body gets that one) or outside a task.
pub(crate) fn arm_must_cancel() -> bool {
    with_current(|task| !task.header().must_cancel.replace(true)).unwrap_or(false)
}

/// After the body's poll: clears `must_cancel` if the body did not take
/// it (it awaited no tulip future), so no other branch of a select takes
/// it; true if it was still set.
pub(crate) fn disarm_must_cancel() -> bool {
    with_current(|task| task.header().must_cancel.replace(false)).unwrap_or(false)
}

/// Whether the current task's `must_cancel` is set.
pub(crate) fn must_cancel_pending() -> bool {
    with_current(|task| task.header().must_cancel.get()).unwrap_or(false)
}

/// How many records the current task made so far (0 outside a task).
pub(crate) fn fut_waiter_records() -> u32 {
    with_current(|task| task.header().records.get()).unwrap_or(0)
}

/// What the current task records as awaited, if a record was made since
/// the count was `before` (see [`fut_waiter_records`]): the future a poll
/// made in between suspended on.
pub(crate) fn fut_waiter_recorded_since(before: u32) -> Option<Pin<Rc<dyn AnyFuture>>> {
    with_current(|task| {
        let h = task.header();
        if h.records.get() == before {
            return None;
        }
        peek(&h.fut_waiter, |waiter| waiter.cloned())
    })
    .flatten()
}

/// An awaiting handle of the future `fut_id` is dropped before its await
/// finished (a select's losing branch): if the current task recorded that
/// future as what it is suspended on and no other handle of it still
/// wakes this task (`still_awaited`, asked with the task's waker), it is
/// not suspended on it any more, and a `cancel` must not go to it (it
/// would cancel a future nobody awaits, and the task would never see the
/// cancellation).
pub(crate) fn forget_fut_waiter(fut_id: *const (), still_awaited: impl FnOnce(&Waker) -> bool) {
    let old = with_current(|task| {
        let h = task.header();
        if h.fut_waiter_id.get() != fut_id || h.waker.get().is_some_and(still_awaited) {
            return None;
        }
        h.take_fut_waiter()
    });
    drop(old.flatten());
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
    cell: Pin<Rc<dyn TaskOf<T>>>,
    /// This handle's waker entry while it is being awaited.
    waiter: Option<std::num::NonZeroU64>,
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
        let head = TaskHead {
            header: TaskHeader {
                number: task_number::next_task_number(),
                must_cancel: Cell::new(false),
                cancels_requested: Cell::new(0),
                cold: Cell::new(None),
                fut_waiter: Cell::new(None),
                fut_waiter_id: Cell::new(std::ptr::null()),
                records: Cell::new(0),
                id: Cell::new(None),
                waker: OnceCell::new(),
                started: Cell::new(false),
                abort_requested: Cell::new(false),
                context: Cell::new(loop_core::task_context::current()),
            },
            core: FutureInner::for_task(ev, site),
        };
        let cell = TaskCell::new(head, coro);
        let (id, waker) = ev.spawn_runnable(cell.clone())?;
        let header = &cell.head().header;
        header.id.set(Some(id));
        let _ = header.waker.set(waker);
        Ok(Task { cell, waiter: None })
    }

    fn core(&self) -> &FutureInner<T> {
        self.cell.core()
    }

    fn header(&self) -> &TaskHeader {
        self.cell.header()
    }

    /// True once the task finished (result, error or cancelled).
    pub fn done(&self) -> bool {
        self.cell.is_done()
    }

    /// True if the task ended cancelled.
    pub fn cancelled(&self) -> bool {
        self.cell.is_cancelled()
    }

    /// Requests cancellation (see the module docs for how it is delivered).
    /// Returns false if the task is already done.
    ///
    /// Equivalent of [`Task.cancel`](https://docs.python.org/3/library/asyncio-task.html#asyncio.Task.cancel).
    pub fn cancel(&self, msg: Option<&str>) -> bool {
        self.cell.cancel_task(msg)
    }

    /// The number of pending cancellation requests.
    pub fn cancelling(&self) -> u32 {
        self.header().cancelling()
    }

    /// Decrements the pending cancellation requests; returns the new count.
    pub fn uncancel(&self) -> u32 {
        self.header().uncancel()
    }

    /// Drops the coroutine now; the task ends cancelled (tokio's `abort`).
    /// From inside the task's own coroutine, takes effect when the current
    /// step returns.
    pub fn abort(&self) {
        self.cell.abort_task();
    }

    /// The task's name (`Task-N` unless set).
    pub fn get_name(&self) -> String {
        self.header().name().to_string()
    }

    /// Renames the task.
    pub fn set_name(&self, name: &str) {
        self.header().set_name(name);
    }

    /// Where the task was created.
    pub fn site(&self) -> &'static Location<'static> {
        self.cell.site()
    }

    /// The loop the task runs on.
    pub fn get_loop(&self) -> EventLoop {
        self.cell.event_loop().clone()
    }

    /// The exception the task ended with; see [`Future::exception`](crate::Future::exception).
    ///
    /// # Errors
    ///
    /// As [`Future::exception`](crate::Future::exception).
    pub fn exception(&self) -> Result<Option<Error>, Error> {
        self.core().exception()
    }

    /// Adds a callback called (through the loop) with the task once done.
    #[track_caller]
    pub fn add_done_callback<C>(&self, f: C) -> crate::CallbackId
    where
        C: FnOnce(&Task<T>) + 'static,
    {
        let task = self.clone();
        self.core()
            .add_hook(Box::new(move |_| f(&task)), Location::caller())
    }

    /// Removes a done callback; returns how many were removed (0 or 1).
    pub fn remove_done_callback(&self, id: crate::CallbackId) -> usize {
        self.core().remove_callback(id)
    }

    /// The task's type-erased side.
    pub(crate) fn control(&self) -> &dyn TaskControl {
        self.cell.as_control_ref()
    }

    /// A type-erased handle to this task.
    pub fn as_any(&self) -> AnyTask {
        AnyTask {
            control: self.cell.clone().as_control(),
        }
    }

    /// The task's context (its task-local values) as it is between steps.
    pub(crate) fn context(&self) -> Option<loop_core::task_context::Context> {
        peek(&self.header().context, |context| context.cloned())
    }

    /// Moves the result out of a finished task, without `T: Clone`; later
    /// reads report it as taken. For combinators that own the task.
    #[doc(hidden)]
    pub fn __take_outcome(&self) -> Result<T, Error> {
        self.core().take_outcome()
    }
}

impl<T: Clone + 'static> Task<T> {
    /// The result; see [`Future::result`](crate::Future::result).
    ///
    /// # Errors
    ///
    /// As [`Future::result`](crate::Future::result).
    pub fn result(&self) -> Result<T, Error> {
        self.core().result()
    }
}

impl<T> Clone for Task<T> {
    fn clone(&self) -> Self {
        Task {
            cell: self.cell.clone(),
            waiter: None,
        }
    }
}

impl<T> Drop for Task<T> {
    fn drop(&mut self) {
        if let Some(id) = self.waiter.take() {
            self.cell.core().drop_waiter(id.get());
        }
    }
}

impl<T: Clone + 'static> std::future::Future for Task<T> {
    type Output = Result<T, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let cell = &this.cell;
        cell.core()
            .poll_as(&mut this.waiter, cx, || cell.clone().as_any_future())
    }
}

impl<T> fmt::Debug for Task<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_task(self.cell.as_control_ref(), f)
    }
}

fn debug_task(task: &dyn TaskControl, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.debug_struct("Task")
        .field("name", &&*task.header().name())
        .field("done", &task.is_done())
        .field("cancelled", &task.is_cancelled())
        .field("created_at", &format_args!("{}", task.site()))
        .finish()
}

/// A task of any result type: what [`current_task`] and [`all_tasks`]
/// return.
#[derive(Clone)]
pub struct AnyTask {
    control: Pin<Rc<dyn TaskControl>>,
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

    /// The task's type-erased side.
    pub(crate) fn control(&self) -> &dyn TaskControl {
        &*self.control
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
        self.control.cancel_task(msg)
    }

    /// A scope's [`cancel`](Self::cancel): see `TaskControl::cancel_task_scoped`.
    pub(crate) fn cancel_scoped(
        &self,
        msg: Option<&str>,
        target: Option<Pin<Rc<dyn AnyFuture>>>,
    ) -> bool {
        self.control.cancel_task_scoped(msg, target)
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
        self.control.abort_task();
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
        self.control.event_loop().clone()
    }

    /// Where the task was created.
    pub fn site(&self) -> &'static Location<'static> {
        self.control.site()
    }

    /// True if both handles are the same task.
    pub fn same_task(&self, other: &AnyTask) -> bool {
        std::ptr::addr_eq(&*self.control, &*other.control)
    }
}

impl PartialEq for AnyTask {
    fn eq(&self, other: &Self) -> bool {
        self.same_task(other)
    }
}

impl<T> PartialEq<Task<T>> for AnyTask {
    fn eq(&self, other: &Task<T>) -> bool {
        std::ptr::addr_eq(&*self.control, &*other.cell)
    }
}

impl fmt::Debug for AnyTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_task(&*self.control, f)
    }
}

/// The current task's number (`Task-N`'s N), or 0 outside a task: a
/// cheap identity for "which task holds this" (the lock's owner).
pub(crate) fn current_task_number() -> u64 {
    with_current(|task| task.header().number).unwrap_or(0)
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
    let mut tasks: Vec<Pin<Rc<dyn TaskControl>>> = Vec::new();
    ev.collect_runnables(&mut tasks);
    tasks
        .into_iter()
        .filter(|control| !control.is_done())
        .map(|control| AnyTask { control })
        .collect()
}

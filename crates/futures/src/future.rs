//! [`Future<T>`]: asyncio's Future — a result that callbacks set and
//! coroutines await.
//!
//! Invariants:
//! 1. State moves once: pending → done (result, error or cancelled); a
//!    second `set_*` or `cancel` fails or returns false without effect.
//! 2. Waiters (done callbacks and the wakers of awaiting tasks) form one
//!    list in registration order. On completion the list is taken whole and
//!    each entry is scheduled *through the loop*: callbacks with
//!    `call_soon`, wakers by waking (which enqueues the task's step). Nothing
//!    runs inline, also for a callback added to an already-done future.
//! 3. Every handle (`Future<T>` value) is one awaiter: it registers at most
//!    one waker entry, updates it in place when polled with a different
//!    waker, and removes it when dropped while pending.
//! 4. An error stored and never retrieved (by `result`, `exception` or an
//!    await) is reported to the loop's exception handler when the last handle
//!    goes: "Future exception was never retrieved", with the creation site.
//!    `cancel()` counts as retrieving it (asyncio clears `_log_traceback`
//!    in `cancel`, also on a done future).
//! 5. No `RefCell` borrow is held while user code runs or user values drop.
//! 6. A [`CallbackId`] is unique across all futures, so an id from another
//!    future removes nothing (`remove_done_callback` returns 0); waker
//!    entries use a tagged per-future id space that never meets it.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::panic::Location;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};

use loop_core::{EventLoop, ExceptionContext};

use crate::error::{CancelledError, Error, InvalidStateError};
use crate::task::{self, AnyFuture};

/// Identifies a done callback, for [`Future::remove_done_callback`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CallbackId(u64);

type DoneCallback<T> = Box<dyn FnOnce(&Future<T>)>;

enum WaiterKind<T> {
    Callback(DoneCallback<T>, &'static Location<'static>),
    /// A done hook that needs no future argument: handed to the loop as is
    /// (one allocation in all, for combinators' bookkeeping).
    Hook(Hook, &'static Location<'static>),
    Waker(Waker),
}

/// A boxed loop callback run once a future is done.
pub(crate) type Hook = Box<dyn FnOnce(&EventLoop)>;

struct Waiter<T> {
    id: u64,
    kind: WaiterKind<T>,
}

/// Waiters in registration order; the first is kept inline, so the usual
/// single awaiter of a fresh future costs no allocation.
struct WaiterList<T> {
    first: Option<Waiter<T>>,
    rest: Vec<Waiter<T>>,
}

impl<T> Default for WaiterList<T> {
    fn default() -> Self {
        WaiterList {
            first: None,
            rest: Vec::new(),
        }
    }
}

impl<T> WaiterList<T> {
    fn push(&mut self, waiter: Waiter<T>) {
        // Inline only while it keeps order: nothing may be queued behind it.
        if self.first.is_none() && self.rest.is_empty() {
            self.first = Some(waiter);
        } else {
            self.rest.push(waiter);
        }
    }

    fn find_mut(&mut self, id: u64) -> Option<&mut Waiter<T>> {
        self.first
            .iter_mut()
            .chain(self.rest.iter_mut())
            .find(|w| w.id == id)
    }

    fn remove_where(&mut self, pred: impl Fn(&Waiter<T>) -> bool) -> Option<Waiter<T>> {
        if self.first.as_ref().is_some_and(&pred) {
            return self.first.take();
        }
        let pos = self.rest.iter().position(pred)?;
        Some(self.rest.remove(pos))
    }

    fn into_ordered(self) -> impl Iterator<Item = Waiter<T>> {
        self.first.into_iter().chain(self.rest)
    }
}

pub(crate) enum State<T> {
    Pending,
    Done(T),
    Failed(Error),
    Cancelled(CancelledError),
    /// The value was moved out by its only consumer (`run_until_complete`).
    Taken,
}

pub(crate) struct FutureInner<T> {
    ev: EventLoop,
    state: RefCell<State<T>>,
    waiters: RefCell<WaiterList<T>>,
    next_waiter: Cell<u64>,
    site: &'static Location<'static>,
    /// An error is stored and nobody retrieved it yet (invariant 4).
    unretrieved: Cell<bool>,
    /// Set for a task's result future: the task reports instead.
    pub(crate) silent: Cell<bool>,
}

/// A result that is set later, by a callback, and awaited by coroutines.
///
/// Equivalent of [`asyncio.Future`](https://docs.python.org/3/library/asyncio-future.html#asyncio.Future).
/// Cloning gives another handle to the same future. Awaiting a handle
/// yields `Result<T, Error>` (`T: Clone`: every awaiter gets the value);
/// several tasks may await one future at once.
///
/// # Examples
///
/// ```
/// use loop_core::EventLoop;
/// use loop_futures::{EventLoopExt, Future};
///
/// let ev = EventLoop::new().unwrap();
/// let fut: Future<u32> = ev.create_future();
/// let setter = fut.clone();
/// ev.call_soon(move |_| setter.set_result(42).unwrap()).unwrap();
/// assert_eq!(ev.run_until_complete(fut).unwrap(), 42);
/// ```
pub struct Future<T> {
    pub(crate) inner: Rc<FutureInner<T>>,
    waiter: Option<u64>,
}

impl<T: 'static> Future<T> {
    /// A pending future bound to `ev`. Same as
    /// [`EventLoopExt::create_future`](crate::EventLoopExt::create_future).
    #[track_caller]
    pub fn new(ev: &EventLoop) -> Self {
        Self::with_site(ev, Location::caller())
    }

    pub(crate) fn with_site(ev: &EventLoop, site: &'static Location<'static>) -> Self {
        Future {
            inner: Rc::new(FutureInner {
                ev: ev.clone(),
                state: RefCell::new(State::Pending),
                waiters: RefCell::new(WaiterList::default()),
                next_waiter: Cell::new(0),
                site,
                unretrieved: Cell::new(false),
                silent: Cell::new(false),
            }),
            waiter: None,
        }
    }

    /// True once the future has a result, an error, or was cancelled.
    pub fn done(&self) -> bool {
        !matches!(*self.inner.state.borrow(), State::Pending)
    }

    /// True if the future was cancelled.
    pub fn cancelled(&self) -> bool {
        matches!(*self.inner.state.borrow(), State::Cancelled(_))
    }

    /// Marks the future done with `value` and schedules its callbacks.
    ///
    /// # Errors
    ///
    /// [`InvalidStateError`] if the future is already done.
    pub fn set_result(&self, value: T) -> Result<(), InvalidStateError> {
        self.inner.complete(State::Done(value))
    }

    /// Marks the future done with an error and schedules its callbacks.
    /// Anything that converts into [`Error`] is accepted (an `io::Error`,
    /// `Error::new(my_error)`, `Error::msg("…")`).
    ///
    /// # Errors
    ///
    /// [`InvalidStateError`] if the future is already done.
    pub fn set_exception(&self, error: impl Into<Error>) -> Result<(), InvalidStateError> {
        self.inner.complete(State::Failed(error.into()))
    }

    /// Cancels the future: if pending, it becomes cancelled (with `msg`) and
    /// its callbacks are scheduled. Returns false if it was already done.
    pub fn cancel(&self, msg: Option<&str>) -> bool {
        self.inner.cancel_now(msg)
    }

    /// The exception the future holds.
    ///
    /// # Errors
    ///
    /// [`Error::Cancelled`] if it was cancelled; [`Error::InvalidState`]
    /// ("Exception is not set.") if it is not done.
    pub fn exception(&self) -> Result<Option<Error>, Error> {
        match &*self.inner.state.borrow() {
            State::Pending => Err(InvalidStateError::new("Exception is not set.").into()),
            State::Cancelled(c) => Err(Error::Cancelled(c.clone())),
            State::Failed(e) => {
                self.inner.unretrieved.set(false);
                Ok(Some(e.clone()))
            }
            State::Done(_) | State::Taken => Ok(None),
        }
    }

    /// Moves the outcome out (no `Clone` needed); the future then reads as
    /// done with its result taken. For a caller that is the only consumer.
    pub(crate) fn take_outcome(&self) -> Result<T, Error> {
        let mut state = self.inner.state.borrow_mut();
        match std::mem::replace(&mut *state, State::Taken) {
            State::Pending => {
                *state = State::Pending;
                Err(InvalidStateError::new("Result is not set.").into())
            }
            State::Done(v) => Ok(v),
            State::Failed(e) => {
                self.inner.unretrieved.set(false);
                *state = State::Failed(e.clone());
                Err(e)
            }
            State::Cancelled(c) => {
                *state = State::Cancelled(c.clone());
                Err(Error::Cancelled(c))
            }
            State::Taken => Err(InvalidStateError::new("Result was taken.").into()),
        }
    }

    /// Adds `f`, to be called (through the loop, never inline) with the
    /// future once it is done; at once (next iteration) if it already is.
    /// Callbacks run in the order they were added.
    #[track_caller]
    pub fn add_done_callback<F>(&self, f: F) -> CallbackId
    where
        F: FnOnce(&Future<T>) + 'static,
    {
        self.inner
            .add_callback(Box::new(f), Location::caller(), self)
    }

    #[allow(dead_code)]
    pub(crate) fn add_done_callback_at<F>(
        &self,
        site: &'static Location<'static>,
        f: F,
    ) -> CallbackId
    where
        F: FnOnce(&Future<T>) + 'static,
    {
        self.inner.add_callback(Box::new(f), site, self)
    }

    /// Removes the done callback `id`. Returns how many were removed (0 or 1).
    pub fn remove_done_callback(&self, id: CallbackId) -> usize {
        self.inner.remove_waiter(id.0, true)
    }

    /// The loop the future is bound to.
    pub fn get_loop(&self) -> EventLoop {
        self.inner.ev.clone()
    }

    /// Where the future was created.
    pub fn site(&self) -> &'static Location<'static> {
        self.inner.site
    }

    /// True if `self` and `other` are handles to the same future.
    pub fn same_future(&self, other: &Future<T>) -> bool {
        Rc::ptr_eq(&self.inner, &other.inner)
    }

    pub(crate) fn id(&self) -> *const () {
        Rc::as_ptr(&self.inner).cast()
    }

    /// Polls as one awaiter; shared by `Future` and `Task`.
    pub(crate) fn poll_awaiter(
        &mut self,
        cx: &mut Context<'_>,
        as_waiter: Option<Rc<dyn AnyFuture>>,
    ) -> Poll<Result<T, Error>>
    where
        T: Clone,
    {
        let first_poll = self.waiter.is_none();
        if first_poll && self.inner.is_pending() {
            // A task cancelled while running cancels what it now suspends
            // on (task.rs, rule 2).
            task::cancel_on_suspend(self.id(), &self.inner.ev, || {
                as_waiter
                    .clone()
                    .unwrap_or_else(|| self.inner.clone() as Rc<dyn AnyFuture>)
            });
        }
        if let Some(err) = task::before_await(self.id(), &self.inner.ev, first_poll) {
            return Poll::Ready(Err(err));
        }
        if let Some(result) = self.inner.try_take_result() {
            if let Some(id) = self.waiter.take() {
                self.inner.remove_waiter(id, false);
            }
            return Poll::Ready(result);
        }
        match self.waiter {
            Some(id) => self.inner.update_waker(id, cx.waker()),
            None => {
                self.waiter = Some(
                    self.inner
                        .push_waiter(WaiterKind::Waker(cx.waker().clone())),
                )
            }
        }
        let waiter = as_waiter.unwrap_or_else(|| self.inner.clone() as Rc<dyn AnyFuture>);
        task::set_fut_waiter(waiter);
        Poll::Pending
    }
}

impl<T: Clone + 'static> Future<T> {
    /// The result.
    ///
    /// # Errors
    ///
    /// The stored error; [`Error::Cancelled`] (with the cancel message) if
    /// cancelled; [`Error::InvalidState`] ("Result is not set.") if not done.
    pub fn result(&self) -> Result<T, Error> {
        self.inner
            .try_take_result()
            .unwrap_or_else(|| Err(InvalidStateError::new("Result is not set.").into()))
    }
}

/// Tags the ids of waker entries (per-future counter) so they never equal a
/// callback id (invariant 6).
const WAKER_ID_TAG: u64 = 1 << 63;

/// Callback ids are unique process-wide (invariant 6). Only
/// `add_done_callback` (which boxes anyway) pays for this atomic, never an
/// await.
static NEXT_CALLBACK_ID: AtomicU64 = AtomicU64::new(0);

impl<T: 'static> FutureInner<T> {
    fn push_waiter(&self, kind: WaiterKind<T>) -> u64 {
        let id = self.next_waiter.get() | WAKER_ID_TAG;
        self.next_waiter.set(self.next_waiter.get() + 1);
        self.waiters.borrow_mut().push(Waiter { id, kind });
        id
    }

    fn update_waker(&self, id: u64, waker: &Waker) {
        let mut waiters = self.waiters.borrow_mut();
        if let Some(w) = waiters.find_mut(id) {
            if let WaiterKind::Waker(old) = &mut w.kind {
                if !old.will_wake(waker) {
                    old.clone_from(waker);
                }
            }
        }
    }

    /// Removes waiter `id`; with `callbacks_only`, only a done callback.
    fn remove_waiter(&self, id: u64, callbacks_only: bool) -> usize {
        let removed = {
            let mut waiters = self.waiters.borrow_mut();
            let Some(removed) = waiters.remove_where(|w| {
                w.id == id
                    && (!callbacks_only
                        || matches!(w.kind, WaiterKind::Callback(..) | WaiterKind::Hook(..)))
            }) else {
                return 0;
            };
            removed
        };
        drop(removed);
        1
    }

    fn add_callback(
        self: &Rc<Self>,
        callback: DoneCallback<T>,
        site: &'static Location<'static>,
        handle: &Future<T>,
    ) -> CallbackId {
        let id = NEXT_CALLBACK_ID.fetch_add(1, Ordering::Relaxed) & !WAKER_ID_TAG;
        if matches!(*self.state.borrow(), State::Pending) {
            self.waiters.borrow_mut().push(Waiter {
                id,
                kind: WaiterKind::Callback(callback, site),
            });
        } else {
            self.schedule_callback(callback, site, handle.clone());
        }
        CallbackId(id)
    }

    /// Adds a hook run (through the loop) once the future is done.
    pub(crate) fn add_hook(&self, hook: Hook, site: &'static Location<'static>) -> CallbackId {
        let id = NEXT_CALLBACK_ID.fetch_add(1, Ordering::Relaxed) & !WAKER_ID_TAG;
        if matches!(*self.state.borrow(), State::Pending) {
            self.waiters.borrow_mut().push(Waiter {
                id,
                kind: WaiterKind::Hook(hook, site),
            });
        } else if self.ev.call_soon_boxed(site, hook).is_err() {
            tracing::debug!(target: "tulip", "loop closed: a done hook was dropped");
        }
        CallbackId(id)
    }

    fn schedule_callback(
        &self,
        callback: DoneCallback<T>,
        site: &'static Location<'static>,
        fut: Future<T>,
    ) {
        if self
            .ev
            .call_soon_with_site(site, move |_| callback(&fut))
            .is_err()
        {
            tracing::debug!(target: "tulip", "loop closed: a done callback was dropped");
        }
    }

    /// The outcome if done (marks an error as retrieved).
    fn try_take_result(&self) -> Option<Result<T, Error>>
    where
        T: Clone,
    {
        match &*self.state.borrow() {
            State::Pending => None,
            State::Done(v) => Some(Ok(v.clone())),
            State::Failed(e) => {
                self.unretrieved.set(false);
                Some(Err(e.clone()))
            }
            State::Cancelled(c) => Some(Err(Error::Cancelled(c.clone()))),
            State::Taken => Some(Err(InvalidStateError::new("Result was taken.").into())),
        }
    }

    pub(crate) fn complete(self: &Rc<Self>, new: State<T>) -> Result<(), InvalidStateError> {
        {
            let mut state = self.state.borrow_mut();
            if !matches!(*state, State::Pending) {
                let what = match *state {
                    State::Cancelled(_) => "CANCELLED",
                    _ => "FINISHED",
                };
                return Err(InvalidStateError::new(format!("invalid state: {what}")));
            }
            if matches!(new, State::Failed(_)) {
                self.unretrieved.set(true);
            }
            *state = new;
        }
        self.schedule_waiters();
        Ok(())
    }

    pub(crate) fn cancel_now(self: &Rc<Self>, msg: Option<&str>) -> bool {
        // asyncio's `cancel` clears `_log_traceback` first, also when the
        // future is already done: a cancelled-at failure is not reported.
        self.silence_unretrieved();
        self.complete(State::Cancelled(CancelledError::new(msg)))
            .is_ok()
    }

    fn schedule_waiters(self: &Rc<Self>) {
        let waiters = std::mem::take(&mut *self.waiters.borrow_mut());
        for waiter in waiters.into_ordered() {
            match waiter.kind {
                WaiterKind::Waker(waker) => waker.wake(),
                WaiterKind::Hook(hook, site) => {
                    if self.ev.call_soon_boxed(site, hook).is_err() {
                        tracing::debug!(target: "tulip", "loop closed: a done hook was dropped");
                    }
                }
                WaiterKind::Callback(callback, site) => {
                    let fut = Future {
                        inner: self.clone(),
                        waiter: None,
                    };
                    self.schedule_callback(callback, site, fut);
                }
            }
        }
    }
}

impl<T> FutureInner<T> {
    pub(crate) fn is_pending(&self) -> bool {
        matches!(*self.state.borrow(), State::Pending)
    }

    /// A stored error no longer counts as "never retrieved" (invariant 4).
    pub(crate) fn silence_unretrieved(&self) {
        self.unretrieved.set(false);
    }

    pub(crate) fn take_unretrieved_error(&self) -> Option<Error> {
        if !self.unretrieved.replace(false) {
            return None;
        }
        match &*self.state.borrow() {
            State::Failed(e) => Some(e.clone()),
            _ => None,
        }
    }

    /// Drops every waiter (loop closing: breaks reference cycles).
    pub(crate) fn clear_waiters(&self) {
        let waiters = std::mem::take(&mut *self.waiters.borrow_mut());
        drop(waiters);
    }
}

impl<T: 'static> AnyFuture for FutureInner<T> {
    fn cancel_any(self: Rc<Self>, msg: Option<&str>) -> bool {
        self.cancel_now(msg)
    }
}

impl<T> Drop for FutureInner<T> {
    fn drop(&mut self) {
        if self.silent.get() || !self.unretrieved.get() {
            return;
        }
        if let State::Failed(err) = self.state.get_mut() {
            let context = ExceptionContext::new("Future exception was never retrieved")
                .with_error(err.to_shared())
                .with_site(self.site);
            self.ev.call_exception_handler(context);
        }
    }
}

impl<T> Drop for Future<T> {
    fn drop(&mut self) {
        if let Some(id) = self.waiter.take() {
            let removed = {
                let mut waiters = self.inner.waiters.borrow_mut();
                waiters.remove_where(|w| w.id == id)
            };
            drop(removed);
        }
    }
}

impl<T> Clone for Future<T> {
    fn clone(&self) -> Self {
        Future {
            inner: self.inner.clone(),
            waiter: None,
        }
    }
}

impl<T: Clone + 'static> std::future::Future for Future<T> {
    type Output = Result<T, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.get_mut().poll_awaiter(cx, None)
    }
}

impl<T> fmt::Debug for Future<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &*self.inner.state.borrow() {
            State::Pending => "pending",
            State::Done(_) => "finished",
            State::Failed(_) => "finished (exception)",
            State::Cancelled(_) => "cancelled",
            State::Taken => "finished (taken)",
        };
        f.debug_struct("Future")
            .field("state", &state)
            .field("created_at", &format_args!("{}", self.inner.site))
            .finish()
    }
}

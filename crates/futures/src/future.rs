//! [`Future<T>`]: asyncio's Future — a result that callbacks set and
//! coroutines await.
//!
//! Invariants:
//! 1. State moves once: pending → done (result, error or cancelled); a
//!    second `set_*` or `cancel` fails or returns false without effect.
//! 2. Waiters (done callbacks and the wakers of awaiting tasks) form one
//!    list in registration order. On completion the list is taken whole and
//!    each entry is scheduled *through the loop*: callbacks with
//!    `call_soon`, wakers by waking (which enqueues the task's step). No
//!    user code runs inline, also for a callback added to an already-done
//!    future. The one inline entry is a [`DoneObserver`]: the runtime's own
//!    bookkeeping (gather's child counting), which runs no user code and
//!    spares a boxed callback and a loop round trip per child.
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
use std::num::NonZeroU64;
use std::panic::Location;
use std::pin::Pin;
use std::rc::{Rc, Weak};
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
    /// A done callback, boxed with its site and the future it gets a
    /// handle to (weak: the list must not keep its own future alive). Out
    /// of line so the common waker entry stays small.
    Callback(Box<CallbackEntry<T>>),
    /// A done hook that needs no future argument: handed to the loop as is
    /// (one allocation in all, for combinators' bookkeeping).
    Hook(Hook, &'static Location<'static>),
    Waker(Waker),
    /// The runtime's own bookkeeping (a gather counting its children),
    /// told inline with its index: it runs no user code.
    Observer(Rc<dyn DoneObserver>, usize),
}

/// Runtime bookkeeping that a future tells *inline* when it completes
/// (invariant 2's one exception). Implementations must run no user code:
/// they may only update their own state and complete other futures, whose
/// waiters go through the loop as usual.
pub(crate) trait DoneObserver {
    fn notify(&self, index: usize);
}

/// A user's done callback, as [`WaiterKind::Callback`] keeps it.
struct CallbackEntry<T> {
    callback: DoneCallback<T>,
    site: &'static Location<'static>,
    future: Weak<FutureInner<T>>,
}

/// A boxed loop callback run once a future is done.
pub(crate) type Hook = Box<dyn FnOnce(&EventLoop)>;

struct Waiter<T> {
    id: u64,
    kind: WaiterKind<T>,
}

/// Waiters in registration order. A single waiter (the usual lone
/// awaiter of a fresh future) is kept inline: no allocation.
#[derive(Default)]
enum WaiterList<T> {
    #[default]
    Empty,
    One(Waiter<T>),
    Many(Vec<Waiter<T>>),
}

impl<T> WaiterList<T> {
    fn is_empty(&self) -> bool {
        match self {
            WaiterList::Empty => true,
            WaiterList::One(_) => false,
            WaiterList::Many(v) => v.is_empty(),
        }
    }

    #[inline(always)]
    fn push(&mut self, waiter: Waiter<T>) {
        match self {
            WaiterList::Empty => *self = WaiterList::One(waiter),
            WaiterList::Many(all) => all.push(waiter),
            WaiterList::One(_) => {
                let WaiterList::One(first) = std::mem::take(self) else {
                    return;
                };
                *self = WaiterList::Many(vec![first, waiter]);
            }
        }
    }

    fn find_mut(&mut self, id: u64) -> Option<&mut Waiter<T>> {
        match self {
            WaiterList::Empty => None,
            WaiterList::One(w) => (w.id == id).then_some(w),
            WaiterList::Many(all) => all.iter_mut().find(|w| w.id == id),
        }
    }

    fn remove_where(&mut self, pred: impl Fn(&Waiter<T>) -> bool) -> Option<Waiter<T>> {
        match self {
            WaiterList::Empty => None,
            WaiterList::One(w) => {
                if !pred(w) {
                    return None;
                }
                match std::mem::take(self) {
                    WaiterList::One(w) => Some(w),
                    _ => None,
                }
            }
            WaiterList::Many(all) => {
                let pos = all.iter().position(pred)?;
                Some(all.remove(pos))
            }
        }
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

// A future's state is never pinned in place (no pin projection into `T`),
// so it may be moved whatever `T` is: handles pin their `Rc` with
// `Pin::new` where a task records what it is suspended on.
impl<T> Unpin for FutureInner<T> {}

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
    /// This handle's waker entry while it is being awaited (ids are never
    /// zero: they carry `WAKER_ID_TAG`), 8 bytes.
    waiter: Option<NonZeroU64>,
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
            inner: Rc::new(FutureInner::new(ev, site)),
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
        self.inner.complete_with(false, move || State::Done(value))
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
        self.inner.exception()
    }

    /// Adds `f`, to be called (through the loop, never inline) with the
    /// future once it is done; at once (next iteration) if it already is.
    /// Callbacks run in the order they were added.
    #[track_caller]
    pub fn add_done_callback<F>(&self, f: F) -> CallbackId
    where
        F: FnOnce(&Future<T>) + 'static,
    {
        self.inner.add_callback(Box::new(f), Location::caller())
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
        self.inner.add_callback(Box::new(f), site)
    }

    /// Removes the done callback `id`. Returns how many were removed (0 or 1).
    pub fn remove_done_callback(&self, id: CallbackId) -> usize {
        self.inner.remove_callback(id)
    }

    /// The loop the future is bound to.
    pub fn get_loop(&self) -> EventLoop {
        self.inner.ev.clone()
    }

    /// Where the future was created.
    pub fn site(&self) -> &'static Location<'static> {
        self.inner.site
    }

    /// Awaits this future so that dropping the await before the future
    /// completed cancels it (asyncio: cancelling the awaiting coroutine
    /// cancels the future it awaits). A plain handle dropped mid-await
    /// leaves the future alone, as other handles may await it.
    pub fn cancel_on_drop(self) -> crate::CancelOnDrop<T> {
        crate::CancelOnDrop::new(self)
    }

    /// True while this handle is being awaited: polled, pending, and not
    /// polled to completion yet.
    pub(crate) fn is_awaiting(&self) -> bool {
        self.waiter.is_some()
    }

    /// True if `self` and `other` are handles to the same future.
    pub fn same_future(&self, other: &Future<T>) -> bool {
        Rc::ptr_eq(&self.inner, &other.inner)
    }

    /// Polls as one awaiter; `as_waiter` is what a task suspended on it
    /// cancels (this future, or a combinator's core).
    #[inline(always)]
    pub(crate) fn poll_awaiter(
        &mut self,
        cx: &mut Context<'_>,
        as_waiter: Option<Pin<Rc<dyn AnyFuture>>>,
    ) -> Poll<Result<T, Error>>
    where
        T: Clone,
    {
        let inner = &self.inner;
        inner.poll_as(&mut self.waiter, cx, || {
            as_waiter
                .clone()
                .unwrap_or_else(|| Pin::new(inner.clone()) as Pin<Rc<dyn AnyFuture>>)
        })
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
        self.inner.result()
    }
}

/// Tags the ids of waker entries (per-future counter) so they never equal a
/// callback id (invariant 6).
const WAKER_ID_TAG: u64 = 1 << 63;

/// Callback ids are unique process-wide (invariant 6). Only
/// `add_done_callback` (which boxes anyway) pays for this atomic, never an
/// await.
static NEXT_CALLBACK_ID: AtomicU64 = AtomicU64::new(0);

impl<T> FutureInner<T> {
    /// Identifies this future (the self-await check, the task's record of
    /// what it is suspended on).
    pub(crate) fn id(&self) -> *const () {
        std::ptr::from_ref(self).cast()
    }
}

impl<T: 'static> FutureInner<T> {
    fn new(ev: &EventLoop, site: &'static Location<'static>) -> Self {
        FutureInner {
            ev: ev.clone(),
            state: RefCell::new(State::Pending),
            waiters: RefCell::new(WaiterList::default()),
            next_waiter: Cell::new(0),
            site,
            unretrieved: Cell::new(false),
            silent: Cell::new(false),
        }
    }

    /// A task's own future, stored inside the task's cell: silent (the task
    /// reports instead) and without done callbacks that take a handle (the
    /// task's callbacks are hooks).
    pub(crate) fn for_task(ev: &EventLoop, site: &'static Location<'static>) -> Self {
        let inner = Self::new(ev, site);
        inner.silent.set(true);
        inner
    }

    /// Polls as one awaiter whose waiter entry is `*waiter` (shared by
    /// `Future` and `Task` handles); `me` is what the awaiting task
    /// records as its `fut_waiter`.
    #[inline(always)]
    pub(crate) fn poll_as(
        &self,
        waiter: &mut Option<NonZeroU64>,
        cx: &mut Context<'_>,
        me: impl Fn() -> Pin<Rc<dyn AnyFuture>>,
    ) -> Poll<Result<T, Error>>
    where
        T: Clone,
    {
        let first_poll = waiter.is_none();
        let pending = self.is_pending();
        // The usual case in one look at the current task: no cancellation
        // pending, nothing to refuse; it also records what the task will be
        // suspended on. Anything else takes the general path below.
        let fast = task::await_fast(self.id(), &self.ev, first_poll, pending, &me);
        if !fast {
            if first_poll && pending {
                // A task cancelled while running cancels what it now
                // suspends on (task.rs, rule 2).
                task::cancel_on_suspend(self.id(), &self.ev, &me);
            }
            if let Some(err) = task::before_await(self.id(), &self.ev, first_poll) {
                return Poll::Ready(Err(err));
            }
        }
        if let Some(result) = self.try_take_result() {
            if let Some(id) = waiter.take() {
                self.remove_waiter(id.get(), false);
            }
            return Poll::Ready(result);
        }
        match *waiter {
            Some(id) => self.update_waker(id.get(), cx.waker()),
            None => *waiter = NonZeroU64::new(self.push_waker(cx.waker().clone())),
        }
        if !fast {
            task::set_fut_waiter(self.id(), me);
        }
        Poll::Pending
    }

    /// The exception the future holds; see [`Future::exception`].
    pub(crate) fn exception(&self) -> Result<Option<Error>, Error> {
        match &*self.state.borrow() {
            State::Pending => Err(InvalidStateError::new("Exception is not set.").into()),
            State::Cancelled(c) => Err(Error::Cancelled(c.clone())),
            State::Failed(e) => {
                self.unretrieved.set(false);
                Ok(Some(e.clone()))
            }
            State::Done(_) | State::Taken => Ok(None),
        }
    }

    /// Moves the outcome out (no `Clone` needed); the future then reads as
    /// done with its result taken. For a caller that is the only consumer.
    pub(crate) fn take_outcome(&self) -> Result<T, Error> {
        let mut state = self.state.borrow_mut();
        match std::mem::replace(&mut *state, State::Taken) {
            State::Pending => {
                *state = State::Pending;
                Err(InvalidStateError::new("Result is not set.").into())
            }
            State::Done(v) => Ok(v),
            State::Failed(e) => {
                self.unretrieved.set(false);
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

    /// [`push_waiter`](Self::push_waiter) of a waker. The waker travels in
    /// registers and the entry is built where it is stored: a `Waiter`
    /// built by one function and copied by another stalls the copy on
    /// store-to-load forwarding (docs/performance.md, section 12).
    #[inline(always)]
    fn push_waker(&self, waker: Waker) -> u64 {
        let id = self.new_waiter_id();
        self.waiters.borrow_mut().push(Waiter {
            id,
            kind: WaiterKind::Waker(waker),
        });
        id
    }

    fn push_waiter(&self, kind: WaiterKind<T>) -> u64 {
        let id = self.new_waiter_id();
        self.waiters.borrow_mut().push(Waiter { id, kind });
        id
    }

    /// The id of the next waiter entry (tagged: invariant 6).
    #[inline(always)]
    fn new_waiter_id(&self) -> u64 {
        let n = self.next_waiter.get();
        self.next_waiter.set(n + 1);
        n | WAKER_ID_TAG
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
    /// Removes the done callback or hook `id`; returns how many (0 or 1).
    pub(crate) fn remove_callback(&self, id: CallbackId) -> usize {
        self.remove_waiter(id.0, true)
    }

    /// True if the future ended with an error or was cancelled (reads
    /// nothing out: cheaper than [`exception`](Self::exception)).
    pub(crate) fn has_error(&self) -> bool {
        matches!(*self.state.borrow(), State::Failed(_) | State::Cancelled(_))
    }

    /// True if the future was cancelled.
    pub(crate) fn is_cancelled(&self) -> bool {
        matches!(*self.state.borrow(), State::Cancelled(_))
    }

    /// The result (`T: Clone`); see [`Future::result`].
    pub(crate) fn result(&self) -> Result<T, Error>
    where
        T: Clone,
    {
        self.try_take_result()
            .unwrap_or_else(|| Err(InvalidStateError::new("Result is not set.").into()))
    }

    fn add_callback(
        self: &Rc<Self>,
        callback: DoneCallback<T>,
        site: &'static Location<'static>,
    ) -> CallbackId {
        let id = NEXT_CALLBACK_ID.fetch_add(1, Ordering::Relaxed) & !WAKER_ID_TAG;
        if matches!(*self.state.borrow(), State::Pending) {
            self.waiters.borrow_mut().push(Waiter {
                id,
                kind: WaiterKind::Callback(Box::new(CallbackEntry {
                    callback,
                    site,
                    future: Rc::downgrade(self),
                })),
            });
        } else {
            self.schedule_callback(callback, site, self.clone());
        }
        CallbackId(id)
    }

    /// Adds an observer told (inline) once the future is done; at once if
    /// it already is.
    pub(crate) fn add_observer(&self, observer: Rc<dyn DoneObserver>, index: usize) {
        if matches!(*self.state.borrow(), State::Pending) {
            self.push_waiter(WaiterKind::Observer(observer, index));
        } else {
            observer.notify(index);
        }
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
        inner: Rc<FutureInner<T>>,
    ) {
        let fut = Future {
            inner,
            waiter: None,
        };
        if self
            .ev
            .call_soon_with_site(site, move |_| callback(&fut))
            .is_err()
        {
            tracing::debug!(target: "tulip", "loop closed: a done callback was dropped");
        }
    }

    /// The outcome if done (marks an error as retrieved).
    #[inline(always)]
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

    pub(crate) fn complete(&self, new: State<T>) -> Result<(), InvalidStateError> {
        let failed = matches!(new, State::Failed(_));
        self.complete_with(failed, move || new)
    }

    /// [`complete`](Self::complete) with the new state built in place
    /// (`failed`: it is a `State::Failed`). Inlined, so a small result
    /// goes from the caller's registers straight into the state: a `State`
    /// built by one function and copied by another stalls the copy on
    /// store-to-load forwarding (docs/performance.md, section 12).
    #[inline(always)]
    pub(crate) fn complete_with(
        &self,
        failed: bool,
        new: impl FnOnce() -> State<T>,
    ) -> Result<(), InvalidStateError> {
        {
            let mut state = self.state.borrow_mut();
            if !matches!(*state, State::Pending) {
                let what = match *state {
                    State::Cancelled(_) => "CANCELLED",
                    _ => "FINISHED",
                };
                return Err(InvalidStateError::new(format!("invalid state: {what}")));
            }
            if failed {
                self.unretrieved.set(true);
            }
            *state = new();
        }
        self.schedule_waiters();
        Ok(())
    }

    pub(crate) fn cancel_now(&self, msg: Option<&str>) -> bool {
        // asyncio's `cancel` clears `_log_traceback` first, also when the
        // future is already done: a cancelled-at failure is not reported.
        self.silence_unretrieved();
        self.complete(State::Cancelled(CancelledError::new(msg)))
            .is_ok()
    }

    fn schedule_waiters(&self) {
        let waiters = {
            let mut waiters = self.waiters.borrow_mut();
            if waiters.is_empty() {
                return;
            }
            std::mem::take(&mut *waiters)
        };
        match waiters {
            WaiterList::Empty => {}
            WaiterList::One(waiter) => self.schedule(waiter),
            WaiterList::Many(all) => all.into_iter().for_each(|w| self.schedule(w)),
        }
    }

    /// Hands one waiter to the loop (invariant 2).
    fn schedule(&self, waiter: Waiter<T>) {
        match waiter.kind {
            WaiterKind::Waker(waker) => waker.wake(),
            WaiterKind::Hook(hook, site) => {
                if self.ev.call_soon_boxed(site, hook).is_err() {
                    tracing::debug!(target: "tulip", "loop closed: a done hook was dropped");
                }
            }
            WaiterKind::Callback(entry) => match entry.future.upgrade() {
                Some(inner) => self.schedule_callback(entry.callback, entry.site, inner),
                // Completing a future needs a handle to it, so this cannot
                // happen; dropping the callback is the safe answer anyway.
                None => tracing::debug!(target: "tulip", "a done callback lost its future"),
            },
            WaiterKind::Observer(observer, index) => observer.notify(index),
        }
    }
}

impl<T> FutureInner<T> {
    /// The loop the future is bound to.
    pub(crate) fn event_loop(&self) -> &EventLoop {
        &self.ev
    }

    /// Where the future (or its task) was created.
    pub(crate) fn site(&self) -> &'static Location<'static> {
        self.site
    }

    /// Removes the waker entry of an awaiter that goes away before its
    /// await finished, and the current task's record of this future as
    /// what it awaits, unless another handle of it still wakes that task.
    pub(crate) fn drop_waiter(&self, id: u64) {
        self.remove_waiter(id, false);
        task::forget_fut_waiter(self.id(), |waker| self.has_waker(waker));
    }

    /// True if an awaiter's entry would wake `waker`'s task (another handle
    /// of this future that task still awaits).
    fn has_waker(&self, waker: &Waker) -> bool {
        let wakes = |w: &Waiter<T>| matches!(&w.kind, WaiterKind::Waker(k) if k.will_wake(waker));
        match &*self.waiters.borrow() {
            WaiterList::Empty => false,
            WaiterList::One(w) => wakes(w),
            WaiterList::Many(list) => list.iter().any(wakes),
        }
    }

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
    fn cancel_any(&self, msg: Option<&str>) -> bool {
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
            self.inner.drop_waiter(id.get());
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

    // Inlined into the awaiting coroutine: a result returned through
    // memory by a call is read back by a wider load than the one that
    // stored it, which stalls on store-to-load forwarding
    // (docs/performance.md, section 12).
    #[inline(always)]
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

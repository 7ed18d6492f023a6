//! [`timeout`] / [`timeout_at`]: deadline scopes (asyncio 3.11's
//! `asyncio.timeout`), and [`wait_for`] built on them (asyncio 3.12).
//!
//! A scope cancels the task running it when the deadline passes; when the
//! body then finishes with that cancellation, the scope turns it into
//! [`Error::Timeout`]. It tells its own cancellation from an outer one with
//! `cancelling()` / `uncancel()`, exactly as asyncio does, so nested scopes
//! and an explicit `cancel()` of the task compose:
//! 1. On entry the scope records `task.cancelling()`.
//! 2. On expiry it requests the task's cancellation for its own body
//!    (counted in `cancelling()` like `task.cancel()`, delivered as in 4)
//!    and becomes *expiring*.
//! 3. On exit, if expiring, it calls `task.uncancel()`; only if the count
//!    is back to the recorded value (no other cancel arrived) *and* the body
//!    failed with `Cancelled` does it return `Timeout`. A result that the
//!    body produced anyway is returned as is (never lost), and an outer
//!    cancellation is never swallowed.
//! 4. The expiry cancels the tulip future the body was last suspended on
//!    (kept from the body's last poll); if the body awaits none (or it is
//!    done already), the cancellation waits for the body's next poll and
//!    goes to the body's first tulip await (or yield) there. Never to what
//!    the task polled last: in a select, the other branch is left alone.
//! 5. A scope whose `run` is dropped before its body finished leaves too:
//!    its timer is disarmed, and a cancellation it requested that was not
//!    delivered is taken back, so it never cancels the task's later work.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::pin::Pin;
use std::rc::Rc;
use std::time::{Duration, Instant};

use loop_core::{EventLoop, Handle, TimerHandle, get_running_loop};

use crate::error::{Error, RuntimeError, TimeoutError};
use crate::sync_primitives::OnDrop;
use crate::task::{self, AnyFuture, AnyTask, current_task};

/// The scheduled expiry: a timer, or a `call_soon` for a deadline that has
/// already passed, so that (as in asyncio) the expiry runs before the
/// task's next step, also when the body only yields (`sleep(0)`).
enum Expiry {
    Soon(Handle),
    Timer(TimerHandle),
}

impl Expiry {
    fn cancel(&self) {
        match self {
            Expiry::Soon(handle) => handle.cancel(),
            Expiry::Timer(handle) => handle.cancel(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Created,
    Entered,
    Expiring,
    Expired,
    Exited,
}

struct Inner {
    state: Cell<State>,
    when: Cell<Option<Instant>>,
    handle: RefCell<Option<Expiry>>,
    task: RefCell<Option<AnyTask>>,
    /// The tulip future the body was last suspended on (what its poll
    /// recorded as the task's awaited future): the expiry cancels that
    /// one, also when another branch of a select was polled after it.
    body_waiter: RefCell<Option<Pin<Rc<dyn AnyFuture>>>>,
    /// The expiry's cancellation waits for the body's next poll (the body
    /// awaited no tulip future that could take it).
    deliver: Cell<bool>,
    cancelling: Cell<u32>,
    ev: RefCell<Option<EventLoop>>,
    /// A relative deadline, turned absolute on entry.
    pending_delay: Cell<Option<Duration>>,
}

/// A deadline scope; see the module docs. Clone it to reach the scope
/// (`reschedule`, `expired`) from inside its body.
#[derive(Clone)]
pub struct Timeout {
    inner: Rc<Inner>,
}

/// A scope whose deadline is `delay` from now (`None`: no deadline yet).
///
/// Equivalent of [`asyncio.timeout`](https://docs.python.org/3/library/asyncio-task.html#asyncio.timeout).
/// The deadline is computed when the scope is entered (`run`), on the
/// running loop's clock.
pub fn timeout(delay: Option<Duration>) -> Timeout {
    let timeout = Timeout::new(None);
    timeout.inner.pending_delay.set(delay);
    timeout
}

/// A scope with an absolute deadline on the loop's clock.
///
/// Equivalent of [`asyncio.timeout_at`](https://docs.python.org/3/library/asyncio-task.html#asyncio.timeout_at).
pub fn timeout_at(when: Option<Instant>) -> Timeout {
    Timeout::new(when)
}

impl Timeout {
    fn new(when: Option<Instant>) -> Timeout {
        Timeout {
            inner: Rc::new(Inner {
                state: Cell::new(State::Created),
                when: Cell::new(when),
                handle: RefCell::new(None),
                task: RefCell::new(None),
                body_waiter: RefCell::new(None),
                deliver: Cell::new(false),
                cancelling: Cell::new(0),
                ev: RefCell::new(None),
                pending_delay: Cell::new(None),
            }),
        }
    }

    /// The deadline, if any.
    pub fn when(&self) -> Option<Instant> {
        self.inner.when.get()
    }

    /// True once the deadline passed and the scope cancelled its task.
    pub fn expired(&self) -> bool {
        matches!(self.inner.state.get(), State::Expiring | State::Expired)
    }

    /// Moves the deadline (`None`: no deadline). A deadline in the past
    /// expires the scope in the next iteration.
    ///
    /// # Errors
    ///
    /// [`Error::Runtime`] unless the scope is running its body.
    pub fn reschedule(&self, when: Option<Instant>) -> Result<(), Error> {
        match self.inner.state.get() {
            State::Entered => {}
            State::Created => return Err(RuntimeError::new("Timeout has not been entered").into()),
            other => {
                // asyncio's state names: "expiring", "expired", "finished".
                let name = match other {
                    State::Exited => "finished".to_owned(),
                    other => format!("{other:?}").to_lowercase(),
                };
                return Err(
                    RuntimeError::new(format!("Cannot change state of {name} Timeout")).into(),
                );
            }
        }
        self.inner.when.set(when);
        let old = self.inner.handle.borrow_mut().take();
        if let Some(old) = old {
            old.cancel();
        }
        let Some(when) = when else { return Ok(()) };
        let ev = self
            .inner
            .ev
            .borrow()
            .clone()
            .ok_or_else(|| RuntimeError::new("no loop"))?;
        let weak = Rc::downgrade(&self.inner);
        let on_timeout = move |_: &EventLoop| {
            if let Some(inner) = weak.upgrade() {
                Timeout { inner }.on_timeout();
            }
        };
        let handle = if when <= ev.time() {
            Expiry::Soon(ev.call_soon(on_timeout)?)
        } else {
            Expiry::Timer(ev.call_at(when, on_timeout)?)
        };
        *self.inner.handle.borrow_mut() = Some(handle);
        Ok(())
    }

    fn on_timeout(&self) {
        if self.inner.state.get() != State::Entered {
            return;
        }
        let task = self.inner.task.borrow().clone();
        if let Some(task) = task {
            let target = self.inner.body_waiter.borrow().clone();
            if !task.cancel_scoped(None, target) {
                self.inner.deliver.set(true);
            }
        }
        self.inner.state.set(State::Expiring);
        self.inner.handle.borrow_mut().take();
    }

    /// Runs `body` under the deadline.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] if the deadline cancelled the body; the body's own
    /// error otherwise; [`Error::Runtime`] outside a task or if the scope
    /// was already used.
    pub async fn run<F, T, E>(&self, body: F) -> Result<T, Error>
    where
        F: std::future::Future<Output = Result<T, E>>,
        E: Into<Error>,
    {
        self.enter()?;
        // Dropped before the body finished (the losing branch of a select,
        // a combinator giving up): the scope leaves as it would have (its
        // timer disarmed, a cancellation it requested taken back).
        let left = OnDrop::new(|| drop(self.exit(Ok::<(), Error>(()))));
        let mut body = std::pin::pin!(body);
        let result = std::future::poll_fn(|cx| {
            // An expiry waiting for the body: its first tulip await (or
            // yield) takes it; left untaken, no other select branch gets it.
            let waiting = self.inner.deliver.get();
            let armed = waiting && task::arm_must_cancel();
            let before = task::fut_waiter_records();
            let poll = body.as_mut().poll(cx);
            if waiting {
                // Not armed: a request already pending (from outside, or
                // an enclosing scope's) stands for this one too (asyncio:
                // two cancels, one `CancelledError`); taken, so is ours.
                let untaken = if armed {
                    task::disarm_must_cancel()
                } else {
                    task::must_cancel_pending()
                };
                if !untaken {
                    self.inner.deliver.set(false);
                }
            }
            if poll.is_pending() {
                let waiter = task::fut_waiter_recorded_since(before);
                let old = self.inner.body_waiter.replace(waiter);
                drop(old);
            }
            poll
        })
        .await
        .map_err(Into::into);
        left.defuse();
        self.exit(result)
    }

    fn enter(&self) -> Result<(), Error> {
        let inner = &self.inner;
        if inner.state.get() != State::Created {
            return Err(RuntimeError::new("Timeout has already been entered").into());
        }
        let task = current_task()
            .ok_or_else(|| RuntimeError::new("Timeout should be used inside a task"))?;
        let ev = get_running_loop()?;
        inner.cancelling.set(task.cancelling());
        *inner.task.borrow_mut() = Some(task);
        if let Some(delay) = inner.pending_delay.take() {
            inner.when.set(Some(ev.time_after(delay)));
        }
        *inner.ev.borrow_mut() = Some(ev);
        inner.state.set(State::Entered);
        self.reschedule(inner.when.get())
    }

    fn exit<T>(&self, result: Result<T, Error>) -> Result<T, Error> {
        let inner = &self.inner;
        let waiter = inner.body_waiter.take();
        drop(waiter);
        if let Some(handle) = inner.handle.borrow_mut().take() {
            handle.cancel();
        }
        match inner.state.get() {
            State::Expiring => {
                inner.state.set(State::Expired);
                let task = inner.task.borrow().clone();
                let remaining = task.map_or(0, |t| t.uncancel());
                if remaining <= inner.cancelling.get() {
                    if let Err(Error::Cancelled(_)) = result {
                        return Err(TimeoutError.into());
                    }
                }
            }
            State::Entered => inner.state.set(State::Exited),
            _ => {}
        }
        result
    }
}

impl fmt::Debug for Timeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timeout")
            .field("state", &self.inner.state.get())
            .field("when", &self.inner.when.get())
            .finish()
    }
}

/// Awaits `fut` with a deadline: on timeout the awaitable is cancelled,
/// waited for until it finished cancelling, and [`Error::Timeout`] is
/// returned. `None` waits without a deadline.
///
/// Equivalent of [`asyncio.wait_for`](https://docs.python.org/3/library/asyncio-task.html#asyncio.wait_for)
/// (3.12 semantics, built on [`timeout`]): an explicit cancellation of the
/// waiting task is never swallowed, and a result that arrives while the
/// timeout is cancelling is returned, not lost.
///
/// # Errors
///
/// [`Error::Timeout`]; `fut`'s own error.
pub async fn wait_for<F, T, E>(fut: F, delay: Option<Duration>) -> Result<T, Error>
where
    F: std::future::Future<Output = Result<T, E>>,
    E: Into<Error>,
{
    match delay {
        None => fut.await.map_err(Into::into),
        Some(delay) => timeout(Some(delay)).run(fut).await,
    }
}

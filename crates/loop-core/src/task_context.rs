//! The ambient context callbacks run in: the seam for task-local values
//! (asyncio's `contextvars`, which every `Handle` captures).
//!
//! loop-core does not know what a context holds: it is an opaque
//! `Rc<dyn Any>` set by a higher layer (loop-futures' `ContextVar`).
//!
//! Invariants:
//! 1. `call_soon`, `call_later` and `call_at` capture the context current on
//!    this thread when they are called (an `Rc` clone: no allocation), and
//!    the loop makes it current while that callback runs, restoring the
//!    previous one afterwards (also when the callback panics).
//! 2. With no context set (`None`) capturing costs one read of a plain
//!    `Cell<bool>` thread-local (`SET`, kept equal to "`CURRENT` is
//!    `Some`" by [`replace`], the only writer), not a `RefCell` borrow.
//! 3. Callbacks sent from other threads through a [`Remote`](crate::Remote)
//!    run with no context: an `Rc` cannot cross threads.
//!    `EventLoop::call_soon_threadsafe` called on the loop's own thread
//!    captures the context like `call_soon`.
//! 4. A context the loop leaves (after a callback, a reader, a signal
//!    handler) is dropped under `catch_unwind`: a value's destructor that
//!    panics is reported to the exception handler, never unwinds out of
//!    the loop.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;

use crate::exception::ExceptionContext;

/// An opaque context value.
pub type Context = Rc<dyn Any>;

thread_local! {
    static CURRENT: RefCell<Option<Context>> = const { RefCell::new(None) };
    /// Whether `CURRENT` is `Some` (invariant 2).
    static SET: Cell<bool> = const { Cell::new(false) };
}

/// True if a context is current on this thread (a cheap check).
#[inline]
pub fn is_set() -> bool {
    SET.with(Cell::get)
}

/// The context current on this thread.
#[inline]
pub fn current() -> Option<Context> {
    if !is_set() {
        return None;
    }
    CURRENT.try_with(|c| c.borrow().clone()).ok().flatten()
}

/// Makes `context` current; returns the previous one.
#[inline]
pub fn replace(context: Option<Context>) -> Option<Context> {
    if context.is_none() && !is_set() {
        return None;
    }
    swap(context)
}

/// [`replace`] when there is something to swap (kept out of line so the
/// common check above inlines into every caller).
#[inline(never)]
fn swap(context: Option<Context>) -> Option<Context> {
    let set = context.is_some();
    let prev = CURRENT.try_with(|c| c.replace(context)).ok().flatten();
    SET.with(|s| s.set(set));
    prev
}

/// Restores the previous context when dropped (also on unwind).
pub(crate) struct Scope {
    prev: Option<Option<Context>>,
}

/// Makes `context` current until the returned scope drops.
#[inline]
pub(crate) fn enter(context: Option<Context>) -> Scope {
    Scope {
        prev: Some(replace(context)),
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        if let Some(prev) = self.prev.take() {
            let left = replace(prev);
            if left.is_some() {
                drop_reported(left);
            }
        }
    }
}

/// Drops the context a scope left (invariant 4): if that was its last
/// reference, the values in it are dropped here, and a destructor that
/// panics is reported to the running loop's exception handler instead of
/// unwinding out of the loop (Python reports an exception raised in
/// `__del__` as "ignored" and goes on). Also while the scope is left by a
/// panic: a panic caught inside a destructor does not abort.
#[cold]
#[inline(never)]
fn drop_reported(left: Option<Context>) {
    const MESSAGE: &str = "Exception ignored while dropping a task context";
    let outcome = panic::catch_unwind(AssertUnwindSafe(move || drop(left)));
    if let Err(payload) = outcome {
        match crate::context::get_running_loop() {
            Ok(ev) => ev.report_panic(MESSAGE, None, payload),
            Err(_) => crate::exception::default_exception_handler(
                &ExceptionContext::new(MESSAGE).with_panic(payload),
            ),
        }
    }
}

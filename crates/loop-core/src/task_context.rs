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

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::rc::Rc;

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
            let _ = replace(prev);
        }
    }
}

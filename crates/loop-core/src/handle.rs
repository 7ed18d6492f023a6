//! [`Handle`] and [`TimerHandle`]: what `call_soon` / `call_later` return,
//! and the callback slots they point at.
//!
//! Invariants:
//! 1. Every scheduled callback lives in one slot of the loop's callback
//!    slots (`SlotTable`) from `call_*` until the loop pops its queue entry
//!    (ready queue or timer heap). A queue entry therefore always names a
//!    live slot; only handles can be stale, so a handle carries the slot's
//!    `seq` (unique per scheduling) and acts only when the slot still has
//!    that `seq`.
//! 2. Cancelling drops the closure at once (asyncio sets `_callback = None`)
//!    but leaves the slot in place; the queue entry is skipped when popped.
//! 3. The timer queue tracks which slots hold a live timer (its `live`
//!    bitset); a cancel counts against the heap only for those.
//! 4. No user value (closure) is dropped while a `RefCell` of the loop is
//!    borrowed: a closure's destructor may call back into the loop.
//! 5. `call_soon` of a zero-sized closure allocates nothing: `Box` of a ZST
//!    does not allocate, the slab and queue reuse their capacity, and a handle
//!    is a weak pointer plus two integers.

use std::cell::Cell;
use std::fmt;
use std::panic::Location;
use std::rc::Weak;
use std::time::Instant;

use crate::event_loop::{EventLoop, Inner};

/// A callback the loop runs once.
pub(crate) type Callback = Box<dyn FnOnce(&EventLoop)>;

/// One scheduled callback.
pub(crate) struct Slot {
    pub(crate) seq: u64,
    pub(crate) callback: Option<Callback>,
    pub(crate) site: &'static Location<'static>,
    /// The task context captured at scheduling time (see `task_context`).
    pub(crate) context: Option<crate::task_context::Context>,
}

/// A callback scheduled with [`EventLoop::call_soon`].
///
/// Equivalent of [`asyncio.Handle`](https://docs.python.org/3/library/asyncio-eventloop.html#asyncio.Handle).
/// Dropping a handle does not cancel the callback.
pub struct Handle {
    pub(crate) inner: Weak<Inner>,
    pub(crate) key: u32,
    pub(crate) seq: u64,
    pub(crate) site: &'static Location<'static>,
    pub(crate) cancelled: Cell<bool>,
}

impl Handle {
    pub(crate) fn new(
        inner: Weak<Inner>,
        key: u32,
        seq: u64,
        site: &'static Location<'static>,
    ) -> Self {
        Handle {
            inner,
            key,
            seq,
            site,
            cancelled: Cell::new(false),
        }
    }

    /// Cancels the callback: if it has not run yet, it never will, and the
    /// closure is dropped now. Cancelling twice, or after the callback ran,
    /// does nothing.
    pub fn cancel(&self) {
        if self.cancelled.replace(true) {
            return;
        }
        if let Some(inner) = self.inner.upgrade() {
            inner.cancel_slot(self.key, self.seq);
        }
    }

    /// True once [`cancel`](Handle::cancel) was called on this handle.
    pub fn cancelled(&self) -> bool {
        self.cancelled.get()
    }

    /// Where the callback was scheduled (`#[track_caller]`).
    pub fn site(&self) -> &'static Location<'static> {
        self.site
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle")
            .field("created_at", &format_args!("{}", self.site))
            .field("cancelled", &self.cancelled.get())
            .finish()
    }
}

/// A callback scheduled with [`EventLoop::call_later`] or
/// [`EventLoop::call_at`].
///
/// Equivalent of [`asyncio.TimerHandle`](https://docs.python.org/3/library/asyncio-eventloop.html#asyncio.TimerHandle):
/// a [`Handle`] plus the time it is due.
pub struct TimerHandle {
    handle: Handle,
    when: Instant,
}

impl TimerHandle {
    pub(crate) fn new(handle: Handle, when: Instant) -> Self {
        TimerHandle { handle, when }
    }

    /// The time the callback is due, on the loop's clock
    /// ([`EventLoop::time`]).
    pub fn when(&self) -> Instant {
        self.when
    }

    /// Cancels the timer; see [`Handle::cancel`].
    pub fn cancel(&self) {
        self.handle.cancel();
    }

    /// True once [`cancel`](TimerHandle::cancel) was called.
    pub fn cancelled(&self) -> bool {
        self.handle.cancelled()
    }

    /// Where the timer was scheduled.
    pub fn site(&self) -> &'static Location<'static> {
        self.handle.site
    }
}

impl fmt::Debug for TimerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimerHandle")
            .field("when", &self.when)
            .field("created_at", &format_args!("{}", self.handle.site))
            .field("cancelled", &self.handle.cancelled.get())
            .finish()
    }
}

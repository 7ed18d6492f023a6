//! The cross-thread submission queue behind `call_soon_threadsafe` and
//! wakes from other threads (asyncio's thread-safe `_ready.append` plus
//! `_write_to_self`).
//!
//! Invariants (checked under loom, `tests/loom_remote.rs`):
//! 1. No lost item: an item pushed before `close` is either drained by the
//!    loop or handed back by `close` to be dropped; `push` after `close`
//!    returns the item to the caller as an error.
//! 2. No lost wake-up: a push into an empty queue notifies the poller while
//!    still holding the lock. Since `drain` empties the queue under the same
//!    lock, every item is followed by a notification the poller has not yet
//!    consumed, or is seen by the drain that follows the poll.
//! 3. At most one notification per drain cycle: a push into a non-empty
//!    queue does not notify (the earlier push did), so N threads × M calls
//!    cost far fewer than N × M syscalls when the loop is busy.
//! 4. `pending` mirrors "the queue is non-empty" (written under the lock),
//!    so the loop can skip a poll syscall when it only needs to know whether
//!    another thread sent something.
//! 5. `close` drops the notifier (the loop's eventfd) under the lock, so no
//!    thread can write to a closed fd.

// `pub` only so that `__loom` can re-export these to the loom models.
#![cfg_attr(not(loom), allow(unreachable_pub))]

use std::fmt;

use crate::sync::{AtomicBool, Mutex, Ordering};

/// Something that wakes the poller (`mio::Waker` in production).
pub trait Notify {
    /// Wakes the poller; called with the queue's lock held.
    fn notify(&self);
}

struct State<T, N> {
    items: Vec<T>,
    notifier: Option<N>,
}

/// A multi-producer queue drained by the loop thread.
pub struct RemoteQueue<T, N> {
    state: Mutex<State<T, N>>,
    /// True while items are queued: set by `push`, cleared by `drain_into`,
    /// both under the lock. Lets the loop check for work without the lock
    /// (and without a poll syscall, see `EventLoop::run_once`).
    pending: AtomicBool,
}

impl<T, N: Notify> RemoteQueue<T, N> {
    /// An open, empty queue that wakes the poller through `notifier`.
    pub fn new(notifier: N) -> Self {
        RemoteQueue {
            state: Mutex::new(State {
                items: Vec::new(),
                notifier: Some(notifier),
            }),
            pending: AtomicBool::new(false),
        }
    }

    /// True if items may be queued (a lock-free hint: a push that happens
    /// after this returns false is seen by the next call).
    #[inline]
    pub fn has_pending(&self) -> bool {
        self.pending.load(Ordering::Acquire)
    }

    /// Adds an item and wakes the poller if the queue was empty.
    /// Gives the item back if the queue is closed.
    pub fn push(&self, item: T) -> Result<(), T> {
        let mut state = self.state.lock();
        let Some(notifier) = state.notifier.as_ref() else {
            return Err(item);
        };
        let was_empty = state.items.is_empty();
        if was_empty {
            notifier.notify();
        }
        state.items.push(item);
        self.pending.store(true, Ordering::Release);
        Ok(())
    }

    /// Moves every queued item into `out` (whose capacity is reused).
    pub fn drain_into(&self, out: &mut Vec<T>) {
        let mut state = self.state.lock();
        if state.items.is_empty() {
            return;
        }
        self.pending.store(false, Ordering::Release);
        if out.is_empty() {
            std::mem::swap(&mut state.items, out);
        } else {
            out.append(&mut state.items);
        }
    }

    /// Closes the queue: later pushes fail. Returns what was still queued
    /// and the notifier, for the caller to drop outside the lock.
    pub fn close(&self) -> (Vec<T>, Option<N>) {
        let mut state = self.state.lock();
        let items = std::mem::take(&mut state.items);
        (items, state.notifier.take())
    }

    /// True once [`close`](RemoteQueue::close) ran.
    pub fn is_closed(&self) -> bool {
        self.state.lock().notifier.is_none()
    }
}

impl<T, N> fmt::Debug for RemoteQueue<T, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteQueue").finish_non_exhaustive()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::cell::Cell;

    struct Counter<'a>(&'a Cell<u32>);
    impl Notify for Counter<'_> {
        fn notify(&self) {
            self.0.set(self.0.get() + 1);
        }
    }

    #[test]
    fn notifies_once_per_drain_cycle_and_refuses_after_close() {
        let count = Cell::new(0);
        let queue = RemoteQueue::new(Counter(&count));
        queue.push(1).unwrap();
        queue.push(2).unwrap();
        assert_eq!(count.get(), 1);
        let mut out = Vec::new();
        queue.drain_into(&mut out);
        assert_eq!(out, vec![1, 2]);
        queue.push(3).unwrap();
        assert_eq!(count.get(), 2);
        let (left, notifier) = queue.close();
        assert_eq!(left, vec![3]);
        assert!(notifier.is_some());
        assert_eq!(queue.push(4), Err(4));
        assert!(queue.is_closed());
    }
}

//! The running loop of the current thread (asyncio's `_running_loop`).
//!
//! Invariants:
//! 1. At most one loop runs on a thread; `run_forever` sets the slot on entry
//!    and restores the previous value on exit, also when unwinding.
//! 2. The slot is how a waker called on the loop thread finds the ready
//!    queue without a lock or a syscall.

use std::cell::RefCell;

use crate::error::LoopError;
use crate::event_loop::EventLoop;
use crate::ready::Ready;
use crate::runnable::RunnableId;

thread_local! {
    static RUNNING: RefCell<Option<EventLoop>> = const { RefCell::new(None) };
}

/// The loop running on this thread.
///
/// Equivalent of [`asyncio.get_running_loop`](https://docs.python.org/3/library/asyncio-eventloop.html#asyncio.get_running_loop).
///
/// # Errors
///
/// [`LoopError::NoRunningLoop`] when no loop is running on this thread.
pub fn get_running_loop() -> Result<EventLoop, LoopError> {
    RUNNING
        .try_with(|slot| slot.borrow().clone())
        .ok()
        .flatten()
        .ok_or(LoopError::NoRunningLoop)
}

/// `Ok` when a loop is running on this thread: [`get_running_loop`]'s
/// check without cloning the handle (for hot paths that only need asyncio's
/// "no running event loop" error).
///
/// # Errors
///
/// [`LoopError::NoRunningLoop`] when no loop is running on this thread.
#[inline]
pub fn check_running_loop() -> Result<(), LoopError> {
    running_id().map(drop).ok_or(LoopError::NoRunningLoop)
}

/// Whether some loop is running on this thread, and whether it is `id`.
pub(crate) fn running_id() -> Option<u64> {
    RUNNING
        .try_with(|slot| slot.borrow().as_ref().map(|ev| ev.inner.id))
        .ok()
        .flatten()
}

/// Marks `ev` as this thread's running loop until the guard drops.
pub(crate) fn enter(ev: &EventLoop) -> Entered {
    let prev = RUNNING.with(|slot| slot.replace(Some(ev.clone())));
    Entered { prev }
}

pub(crate) struct Entered {
    prev: Option<EventLoop>,
}

impl Drop for Entered {
    fn drop(&mut self) {
        let prev = self.prev.take();
        let _ = RUNNING.try_with(|slot| slot.replace(prev));
    }
}

/// Pushes a runnable onto the ready queue of the loop `loop_id` if that loop
/// runs on this thread. Returns false otherwise.
#[inline]
pub(crate) fn schedule_local(loop_id: u64, id: RunnableId) -> bool {
    RUNNING
        .try_with(|slot| match &*slot.borrow() {
            Some(ev) if ev.inner.id == loop_id => {
                ev.inner.ready.borrow_mut().push(Ready::Runnable(id));
                true
            }
            _ => false,
        })
        .unwrap_or(false)
}

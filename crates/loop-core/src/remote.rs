//! [`Remote`]: the `Send + Sync` door into a loop from other threads.
//!
//! Invariants: see [`remote_queue`](crate::remote_queue). In addition:
//! 1. Items from one thread run in that thread's call order (the queue is
//!    FIFO and drained whole).
//! 2. Dropping the loop closes the queue; a `Remote` that outlives its loop
//!    only ever gets [`LoopError::Closed`].

use std::fmt;
use std::panic::Location;
use std::sync::Arc;

use crate::error::LoopError;
use crate::event_loop::EventLoop;
use crate::remote_queue::{Notify, RemoteQueue};
use crate::runnable::RunnableId;

/// A callback sent from another thread.
pub(crate) type RemoteCallback = Box<dyn FnOnce(&EventLoop) + Send>;

pub(crate) enum RemoteItem {
    Callback(RemoteCallback, &'static Location<'static>),
    Runnable(RunnableId),
}

impl Notify for mio::Waker {
    fn notify(&self) {
        if let Err(err) = self.wake() {
            tracing::error!(%err, "failed to wake the event loop");
        }
    }
}

pub(crate) struct RemoteShared {
    pub(crate) loop_id: u64,
    pub(crate) queue: RemoteQueue<RemoteItem, mio::Waker>,
}

/// A thread-safe handle to an [`EventLoop`]: schedule work on it from any
/// thread.
///
/// Get one with [`EventLoop::remote`]; clone it freely and send it to other
/// threads. Equivalent of asyncio's `loop.call_soon_threadsafe`.
///
/// # Examples
///
/// ```
/// use loop_core::EventLoop;
///
/// let ev = EventLoop::new().unwrap();
/// let remote = ev.remote();
/// std::thread::spawn(move || {
///     remote.call_soon_threadsafe(|ev| ev.stop()).unwrap();
/// });
/// ev.run_forever().unwrap(); // returns once the other thread's callback ran
/// ```
#[derive(Clone)]
pub struct Remote {
    pub(crate) shared: Arc<RemoteShared>,
}

impl Remote {
    /// Schedules `f` to run on the loop thread, in this thread's call order,
    /// and wakes the loop if it is blocked in its poller.
    ///
    /// Equivalent of [`loop.call_soon_threadsafe`](https://docs.python.org/3/library/asyncio-eventloop.html#asyncio.loop.call_soon_threadsafe).
    ///
    /// # Errors
    ///
    /// [`LoopError::Closed`] once the loop is closed or dropped; `f` is
    /// dropped.
    #[track_caller]
    pub fn call_soon_threadsafe<F>(&self, f: F) -> Result<(), LoopError>
    where
        F: FnOnce(&EventLoop) + Send + 'static,
    {
        let site = Location::caller();
        self.shared
            .queue
            .push(RemoteItem::Callback(Box::new(f), site))
            .map_err(|_| LoopError::Closed)
    }

    /// True once the loop was closed or dropped.
    pub fn is_closed(&self) -> bool {
        self.shared.queue.is_closed()
    }
}

impl fmt::Debug for Remote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Remote")
            .field("loop_id", &self.shared.loop_id)
            .field("closed", &self.is_closed())
            .finish()
    }
}

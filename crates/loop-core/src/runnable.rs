//! The seam tasks plug into: a ready-queue entry that runs a task step
//! without boxing a closure per wake, and a thread-safe `Waker` for it.
//!
//! Tasks are [`TaskCell`](crate::TaskCell)s (`task_cell.rs`), runnables
//! whose head type supplies the step; any other type can be a runnable too.
//!
//! Invariants:
//! 1. The loop owns every spawned runnable (a `Pin<Rc>` in a `Slab`) until
//!    [`EventLoop::remove_runnable`] or `close`; dropping the user's handles
//!    never loses a pending runnable.
//! 2. A runnable is in the ready queue at most once: [`RunnableWaker`]'s
//!    `notified` flag is set by the wake that enqueues it and cleared by the
//!    loop just before `run`. N wakes before the step schedule one step; a
//!    wake during `run` schedules the next one.
//! 3. Waking allocates nothing: the waker is one `Arc` created at spawn; a
//!    wake on the loop thread (while the loop runs) pushes a `Copy`
//!    [`RunnableId`] to the ready queue; from any other thread it goes through
//!    the remote queue and `mio::Waker`.
//! 4. Ids carry a generation, so a wake for a finished runnable whose slot was
//!    reused is ignored.
//! 5. Wakers are recycled: a removed runnable's waker `Arc` is reused for a
//!    later spawn only once it is unique (`Arc::get_mut`), i.e. when no
//!    `Waker` clone is left anywhere, so a stale wake can never reach the new
//!    runnable. Spawning in steady state allocates no waker.
//! 6. An emptied set restarts its free list in key order, so a batch of
//!    spawns takes ascending keys every time (the slab's LIFO free list
//!    would otherwise hand them out in descending order after every other
//!    batch, and run the next batch backwards through memory).
//! 7. New wakers are made in batches of `WAKER_BATCH` when the spares run
//!    out. Made one per spawn, each long-lived waker sat between two task
//!    cells in the heap, so freed cells could not merge with their
//!    neighbours and the allocator handed them back in an order that
//!    flipped every batch of tasks (measured: `create_task_run` alternated
//!    between 12 and 21 ms per 10^5 tasks; batched, 14–16 ms).

use std::any::Any;
use std::fmt;
use std::panic::Location;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::Wake;

use slab::Slab;

use crate::context;
use crate::event_loop::EventLoop;
use crate::remote::{RemoteItem, RemoteShared};
use crate::wake_flag::WakeFlag;

/// A unit of work the loop can run many times: a task.
///
/// Spawned with [`EventLoop::spawn_runnable`], run once per wake through
/// the ready queue, removed with [`EventLoop::remove_runnable`].
pub trait Runnable {
    /// Runs one step (polls the task's coroutine once).
    fn run(self: Pin<Rc<Self>>, ev: &EventLoop);

    /// Called by [`EventLoop::close`] for each runnable still registered,
    /// just before the loop drops its reference. Tasks use it to report
    /// "Task was destroyed but it is pending" and to drop their coroutine.
    fn on_loop_closed(self: Pin<Rc<Self>>, ev: &EventLoop) {
        let _ = ev;
    }

    /// Where the runnable was created, for diagnostics.
    fn site(&self) -> Option<&'static Location<'static>> {
        None
    }

    /// Offers the runnable to `sink` (see [`EventLoop::collect_runnables`]):
    /// a runnable that recognises the sink's type adds a handle to itself.
    /// The task layer lists its tasks this way (`all_tasks`) without a
    /// registry of its own.
    fn collect(self: Pin<Rc<Self>>, sink: &mut dyn Any) {
        let _ = sink;
    }
}

/// Identifies a spawned [`Runnable`] within its loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RunnableId {
    pub(crate) key: u32,
    pub(crate) generation: u32,
}

/// The `std::task::Wake` behind every runnable's `Waker`.
pub(crate) struct RunnableWaker {
    id: RunnableId,
    notified: WakeFlag,
    remote: Arc<RemoteShared>,
}

impl RunnableWaker {
    pub(crate) fn new(id: RunnableId, remote: Arc<RemoteShared>) -> Self {
        // Spawning enqueues the first step, so the flag starts set.
        RunnableWaker {
            id,
            notified: WakeFlag::new(true),
            remote,
        }
    }

    /// Clears the flag just before the step runs (invariant 2).
    #[inline]
    pub(crate) fn clear(&self) {
        self.notified.clear();
    }
}

impl Wake for RunnableWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    #[inline]
    fn wake_by_ref(self: &Arc<Self>) {
        if !self.notified.try_set() {
            return;
        }
        if context::schedule_local(self.remote.loop_id, self.id) {
            return;
        }
        if self
            .remote
            .queue
            .push(RemoteItem::Runnable(self.id))
            .is_err()
        {
            tracing::trace!("wake after the loop closed: dropped");
        }
    }
}

impl fmt::Debug for RunnableWaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunnableWaker")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

pub(crate) struct RunnableEntry {
    generation: u32,
    pub(crate) runnable: Pin<Rc<dyn Runnable>>,
    pub(crate) waker: Arc<RunnableWaker>,
}

/// Wakers made at once when the spares run out (invariant 7).
const WAKER_BATCH: usize = 32;

/// The loop's runnables.
#[derive(Default)]
pub(crate) struct RunnableSet {
    entries: Slab<RunnableEntry>,
    next_gen: u32,
    /// Wakers of removed runnables, reused by later spawns (invariant 5).
    spare: Vec<Arc<RunnableWaker>>,
}

impl RunnableSet {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn insert(
        &mut self,
        runnable: Pin<Rc<dyn Runnable>>,
        remote: &Arc<RemoteShared>,
    ) -> (RunnableId, Arc<RunnableWaker>) {
        let generation = self.next_gen;
        self.next_gen = self.next_gen.wrapping_add(1);
        let id = RunnableId {
            key: self.entries.vacant_key() as u32,
            generation,
        };
        let waker = match self.recycled_waker(id) {
            Some(waker) => waker,
            None => {
                // Out of spares: make a batch, so wakers sit together in
                // memory instead of between task cells (invariant 7).
                self.spare.extend(
                    (1..WAKER_BATCH).map(|_| Arc::new(RunnableWaker::new(id, remote.clone()))),
                );
                Arc::new(RunnableWaker::new(id, remote.clone()))
            }
        };
        self.entries.insert(RunnableEntry {
            generation,
            runnable,
            waker: waker.clone(),
        });
        (id, waker)
    }

    #[inline]
    pub(crate) fn get(&self, id: RunnableId) -> Option<&RunnableEntry> {
        self.entries
            .get(id.key as usize)
            .filter(|e| e.generation == id.generation)
    }

    /// A spare waker nobody else holds any more, re-labelled for `id`.
    fn recycled_waker(&mut self, id: RunnableId) -> Option<Arc<RunnableWaker>> {
        while let Some(mut waker) = self.spare.pop() {
            // Unique (no `Waker` clone anywhere): no stale wake can reach the
            // new runnable through it.
            if let Some(inner) = Arc::get_mut(&mut waker) {
                inner.id = id;
                inner.notified = WakeFlag::new(true);
                return Some(waker);
            }
        }
        None
    }

    /// Removes a runnable; its waker is kept for reuse. Returns the
    /// runnable for the caller to drop.
    pub(crate) fn remove(&mut self, id: RunnableId) -> Option<Pin<Rc<dyn Runnable>>> {
        self.get(id)?;
        let entry = self.entries.remove(id.key as usize);
        if self.spare.len() < self.entries.capacity() {
            self.spare.push(entry.waker);
        }
        if self.entries.is_empty() {
            // Restart the free list in key order (invariant 6).
            self.entries.clear();
        }
        Some(entry.runnable)
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &RunnableEntry> {
        self.entries.iter().map(|(_, e)| e)
    }

    pub(crate) fn take_all(&mut self) -> Vec<RunnableEntry> {
        self.entries.drain().collect()
    }
}

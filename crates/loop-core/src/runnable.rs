//! The seam tasks plug into: a ready-queue entry that runs a task step
//! without boxing a closure per wake, and a thread-safe `Waker` for it.
//!
//! Tasks are [`TaskCell`](crate::TaskCell)s (`task_cell.rs`), which are
//! runnables that own their waker ([`TaskWaker`]); any other type can be a
//! runnable too, with a waker the loop holds.
//!
//! Invariants:
//! 1. The loop owns every spawned runnable (a `Pin<Rc>` in a `Slab`) until
//!    [`EventLoop::remove_runnable`] or `close`; dropping the user's handles
//!    never loses a pending runnable.
//! 2. A runnable is in the ready queue at most once: [`RunnableWaker`]'s
//!    `notified` flag is set by the wake that enqueues it and cleared just
//!    before `run` (by the loop, or by a task cell's [`TaskWaker`]). N wakes before the step schedule one step; a
//!    wake during `run` schedules the next one.
//! 3. Waking allocates nothing: the waker is one `Arc` (made or reused at
//!    spawn); a
//!    wake on the loop thread (while the loop runs) pushes a `Copy`
//!    [`RunnableId`] to the ready queue; from any other thread it goes through
//!    the remote queue and `mio::Waker`.
//! 4. Ids carry a generation, so a wake for a finished runnable whose slot was
//!    reused is ignored.
//! 5. Wakers are recycled: a removed runnable's (a dropped task cell's)
//!    waker `Arc` is kept for a later spawn only if it is unique
//!    (`Arc::get_mut`), i.e. when no `Waker` clone is left anywhere, so a
//!    stale wake can never reach the new runnable. It is re-labelled with
//!    the new id before anyone can hold a clone of it (at spawn for a plain
//!    runnable, at the first step for a task cell). Spawning in steady state
//!    allocates no waker.
//! 6. An emptied set restarts its free list in key order, so a batch of
//!    spawns takes ascending keys every time (the slab's LIFO free list
//!    would otherwise hand them out in descending order after every other
//!    batch, and run the next batch backwards through memory).

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::panic::Location;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Wake;

use futures_task::{ArcWake, WakerRef};
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

impl RunnableId {
    fn pack(self) -> u64 {
        (u64::from(self.generation) << 32) | u64::from(self.key)
    }

    fn unpack(bits: u64) -> Self {
        RunnableId {
            key: bits as u32,
            generation: (bits >> 32) as u32,
        }
    }
}

/// The `std::task::Wake` behind every runnable's `Waker`.
pub(crate) struct RunnableWaker {
    /// The runnable's id, packed; re-labelled when a spare waker is reused
    /// (only while nobody else holds it: invariant 5).
    id: AtomicU64,
    notified: WakeFlag,
    remote: Arc<RemoteShared>,
}

impl RunnableWaker {
    pub(crate) fn new(id: RunnableId, remote: Arc<RemoteShared>) -> Self {
        // Spawning enqueues the first step, so the flag starts set.
        RunnableWaker {
            id: AtomicU64::new(id.pack()),
            notified: WakeFlag::new(true),
            remote,
        }
    }

    /// Clears the flag just before the step runs (invariant 2).
    #[inline]
    pub(crate) fn clear(&self) {
        self.notified.clear();
    }

    #[inline]
    fn wake_ref(&self) {
        if !self.notified.try_set() {
            return;
        }
        let id = RunnableId::unpack(self.id.load(Ordering::Relaxed));
        if context::schedule_local(self.remote.loop_id, id) {
            return;
        }
        if self.remote.queue.push(RemoteItem::Runnable(id)).is_err() {
            tracing::trace!("wake after the loop closed: dropped");
        }
    }
}

impl Wake for RunnableWaker {
    fn wake(self: Arc<Self>) {
        self.wake_ref();
    }

    #[inline]
    fn wake_by_ref(self: &Arc<Self>) {
        self.wake_ref();
    }
}

impl ArcWake for RunnableWaker {
    #[inline]
    fn wake_by_ref(arc_self: &Arc<Self>) {
        arc_self.wake_ref();
    }
}

impl fmt::Debug for RunnableWaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunnableWaker")
            .field("id", &RunnableId::unpack(self.id.load(Ordering::Relaxed)))
            .finish_non_exhaustive()
    }
}

/// Wakers of finished runnables, kept for reuse (invariant 5). Shared with
/// the [`TaskWaker`]s, which hand theirs back when their task goes.
#[derive(Default)]
pub(crate) struct SpareWakers {
    list: RefCell<Vec<Arc<RunnableWaker>>>,
    /// How many to keep at most: the runnable slab's capacity (its peak).
    cap: Cell<usize>,
}

impl SpareWakers {
    /// Keeps `waker` for reuse if nobody else holds it, with its flag set
    /// as a fresh spawn needs it.
    fn give_back(&self, mut waker: Arc<RunnableWaker>) {
        let Some(inner) = Arc::get_mut(&mut waker) else {
            return;
        };
        inner.notified = WakeFlag::new(true);
        if let Ok(mut list) = self.list.try_borrow_mut() {
            if list.len() < self.cap.get() {
                list.push(waker);
            }
        }
    }

    /// A spare waker (unique, flag set), or a new one for `id`.
    fn take(&self, id: RunnableId, remote: &Arc<RemoteShared>) -> (Arc<RunnableWaker>, bool) {
        match self.list.try_borrow_mut().ok().and_then(|mut l| l.pop()) {
            Some(waker) => (waker, true),
            None => (Arc::new(RunnableWaker::new(id, remote.clone())), false),
        }
    }
}

/// The waker of a task spawned as a [`TaskCell`](crate::TaskCell): owned
/// by the cell itself, not by the loop's slab, so spawning touches no
/// waker memory and creates no `Waker` clone.
///
/// Invariants:
/// 1. The cell polls with a borrowed `Waker` ([`TaskWaker::waker_ref`]):
///    no reference count changes per step; only a coroutine that keeps the
///    waker clones it.
/// 2. A reused (spare) waker still carries its previous id until the
///    task's first step re-labels it; until then nobody holds a clone of
///    it and its flag is set (the first step is queued), so no wake can use
///    the old id.
/// 3. When the cell goes, its waker goes back to the spares if nobody else
///    holds it.
pub(crate) struct TaskWaker {
    waker: Arc<RunnableWaker>,
    id: RunnableId,
    relabel: Cell<bool>,
    spare: Rc<SpareWakers>,
}

impl TaskWaker {
    /// Called at the start of every step (re-labels on the first one).
    #[inline]
    pub(crate) fn begin_step(&self) {
        if self.relabel.replace(false) {
            self.waker.id.store(self.id.pack(), Ordering::Relaxed);
        }
        self.waker.clear();
    }

    /// A `Waker` borrowing this one (no reference count change).
    #[inline]
    pub(crate) fn waker_ref(&self) -> WakerRef<'_> {
        futures_task::waker_ref(&self.waker)
    }

    /// Schedules a step unless one is already scheduled.
    pub(crate) fn wake(&self) {
        self.waker.wake_ref();
    }

    /// Hands the waker back for reuse (invariant 3).
    pub(crate) fn recycle(self) {
        let TaskWaker { waker, spare, .. } = self;
        spare.give_back(waker);
    }
}

impl fmt::Debug for TaskWaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskWaker")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

pub(crate) struct RunnableEntry {
    generation: u32,
    pub(crate) runnable: Pin<Rc<dyn Runnable>>,
    /// The loop-held waker of a plain runnable; `None` for a task cell,
    /// which holds its own ([`TaskWaker`]).
    pub(crate) waker: Option<Arc<RunnableWaker>>,
}

/// The loop's runnables.
#[derive(Default)]
pub(crate) struct RunnableSet {
    entries: Slab<RunnableEntry>,
    next_gen: u32,
    spare: Rc<SpareWakers>,
}

impl RunnableSet {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    fn next_id(&mut self) -> RunnableId {
        let generation = self.next_gen;
        self.next_gen = self.next_gen.wrapping_add(1);
        RunnableId {
            key: self.entries.vacant_key() as u32,
            generation,
        }
    }

    fn insert_entry(&mut self, entry: RunnableEntry) {
        self.entries.insert(entry);
        self.spare.cap.set(self.entries.capacity());
    }

    /// Adds a plain runnable; the loop holds its waker.
    pub(crate) fn insert(
        &mut self,
        runnable: Pin<Rc<dyn Runnable>>,
        remote: &Arc<RemoteShared>,
    ) -> (RunnableId, Arc<RunnableWaker>) {
        let id = self.next_id();
        let (waker, reused) = self.spare.take(id, remote);
        if reused {
            // A plain runnable's waker is handed out at once: re-label now.
            waker.id.store(id.pack(), Ordering::Relaxed);
        }
        self.insert_entry(RunnableEntry {
            generation: id.generation,
            runnable,
            waker: Some(waker.clone()),
        });
        (id, waker)
    }

    /// Adds a task cell; the cell holds its waker (returned).
    pub(crate) fn insert_task(
        &mut self,
        runnable: Pin<Rc<dyn Runnable>>,
        remote: &Arc<RemoteShared>,
    ) -> (RunnableId, TaskWaker) {
        let id = self.next_id();
        let (waker, reused) = self.spare.take(id, remote);
        self.insert_entry(RunnableEntry {
            generation: id.generation,
            runnable,
            waker: None,
        });
        let task_waker = TaskWaker {
            waker,
            id,
            relabel: Cell::new(reused),
            spare: self.spare.clone(),
        };
        (id, task_waker)
    }

    #[inline]
    pub(crate) fn get(&self, id: RunnableId) -> Option<&RunnableEntry> {
        self.entries
            .get(id.key as usize)
            .filter(|e| e.generation == id.generation)
    }

    /// Removes a runnable; a loop-held waker is kept for reuse. Returns
    /// the runnable for the caller to drop.
    pub(crate) fn remove(&mut self, id: RunnableId) -> Option<Pin<Rc<dyn Runnable>>> {
        self.get(id)?;
        let entry = self.entries.remove(id.key as usize);
        if let Some(waker) = entry.waker {
            self.spare.give_back(waker);
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

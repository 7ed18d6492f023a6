//! Synchronisation primitives for tasks on one loop (asyncio's
//! `locks.py`): [`Lock`], [`Event`], [`Condition`], [`Semaphore`],
//! [`BoundedSemaphore`], [`Barrier`].
//!
//! Invariants shared by all of them:
//! 1. Waiters are woken in FIFO order (a `VecDeque` of loop futures).
//! 2. Cancellation-safe: a waiter cancelled at the moment it is woken never
//!    swallows the wake-up — it hands it to the next waiter (a lock release,
//!    a semaphore permit, a condition notify), as CPython 3.12/3.13 do. For
//!    `Lock`, `Semaphore` and `Barrier` the same holds when the waiting
//!    coroutine is dropped mid-wait (`Task::abort`): the "leave without
//!    acquiring" path runs from a drop guard.
//! 3. No barging: a waiter woken but not yet run keeps its turn; `Lock` and
//!    `Semaphore` count it as queued, so a newcomer waits behind it.
//! 4. Not thread-safe (like asyncio's): handles are `!Send`.

mod barrier;
mod condition;
mod event;
mod lock;
mod semaphore;
mod waiters;

pub use barrier::{Barrier, BrokenBarrierError};
pub use condition::Condition;
pub use event::Event;
pub use lock::{Lock, LockGuard};
pub use semaphore::{BoundedSemaphore, Semaphore, SemaphoreGuard};
pub(crate) use waiters::OnDrop;

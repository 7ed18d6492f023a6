//! Synchronisation primitives for tasks on one loop (asyncio's
//! `locks.py`): [`Lock`], [`Event`], [`Condition`], [`Semaphore`],
//! [`BoundedSemaphore`], [`Barrier`].
//!
//! Invariants shared by all of them:
//! 1. Waiters are woken in FIFO order (a `VecDeque` of loop futures).
//! 2. Cancellation-safe: a waiter cancelled at the moment it is woken never
//!    swallows the wake-up — it hands it to the next waiter (a lock release,
//!    a semaphore permit), as CPython 3.12 does.
//! 3. Not thread-safe (like asyncio's): handles are `!Send`.

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

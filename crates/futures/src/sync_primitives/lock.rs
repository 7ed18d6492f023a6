//! [`Lock`]: asyncio's `asyncio.Lock`.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::rc::Rc;

use crate::error::{Error, RuntimeError};

use super::waiters::{OnDrop, Waiters};

#[derive(Default)]
struct Inner {
    locked: Cell<bool>,
    /// The number of the task holding the lock (0: acquired outside a
    /// task): a [`LockGuard`] releases only a lock its task holds.
    owner: Cell<u64>,
    waiters: RefCell<Waiters>,
}

impl Inner {
    fn take(&self) {
        self.locked.set(true);
        self.owner.set(crate::task::current_task_number());
    }
}

/// A mutual-exclusion lock for tasks (not threads).
///
/// Equivalent of [`asyncio.Lock`](https://docs.python.org/3/library/asyncio-sync.html#asyncio.Lock).
/// Cloning gives another handle to the same lock. Fair: waiters acquire
/// in FIFO order.
///
/// # Examples
///
/// ```
/// use loop_futures::{Error, Lock, run};
///
/// run(async {
///     let lock = Lock::new();
///     {
///         let _guard = lock.lock().await?;
///         assert!(lock.locked());
///     }
///     assert!(!lock.locked());
///     Ok::<_, Error>(())
/// })
/// .unwrap();
/// ```
#[derive(Clone, Default)]
pub struct Lock {
    inner: Rc<Inner>,
}

impl Lock {
    /// An unlocked lock.
    pub fn new() -> Self {
        Self::default()
    }

    /// True while held.
    pub fn locked(&self) -> bool {
        self.inner.locked.get()
    }

    /// Acquires the lock, waiting in FIFO order.
    ///
    /// # Errors
    ///
    /// The waiting task's cancellation (the lock is then not held, and a
    /// wake-up it received is passed on).
    pub async fn acquire(&self) -> Result<(), Error> {
        let inner = &self.inner;
        // A queued waiter that is not cancelled (also one already woken
        // but not yet run) has the next turn: no barging (asyncio 3.12).
        if !inner.locked.get() && !inner.waiters.borrow().any_not_cancelled() {
            inner.take();
            return Ok(());
        }
        let fut = inner.waiters.borrow_mut().push()?;
        // Leaving without the lock (cancelled, or dropped mid-wait): if the
        // lock is free, the head of the queue gets the turn this waiter may
        // have been handed.
        let leave = OnDrop::new(|| {
            inner.waiters.borrow_mut().remove(&fut);
            if !inner.locked.get() {
                inner.waiters.borrow_mut().wake_head();
            }
        });
        if let Err(err) = fut.clone().await {
            drop(leave);
            return Err(err);
        }
        leave.defuse();
        inner.waiters.borrow_mut().remove(&fut);
        inner.take();
        Ok(())
    }

    /// The number of the task holding the lock (see [`LockGuard`]).
    fn owner(&self) -> u64 {
        self.inner.owner.get()
    }

    /// Acquires the lock and returns a guard that releases it when dropped.
    ///
    /// # Errors
    ///
    /// As [`acquire`](Lock::acquire).
    pub async fn lock(&self) -> Result<LockGuard, Error> {
        self.acquire().await?;
        Ok(LockGuard {
            lock: self.clone(),
            owner: self.owner(),
        })
    }

    /// Releases the lock and wakes the first waiter.
    ///
    /// # Errors
    ///
    /// [`Error::Runtime`] ("Lock is not acquired.") if it is not held.
    pub fn release(&self) -> Result<(), Error> {
        if !self.inner.locked.get() {
            return Err(RuntimeError::new("Lock is not acquired.").into());
        }
        self.inner.locked.set(false);
        self.inner.waiters.borrow_mut().wake_head();
        Ok(())
    }
}

/// Releases its [`Lock`] when dropped, if the lock is held by the task
/// that made the guard (also after that task released and re-acquired it,
/// as `Condition::wait` does): once released some other way and taken by
/// another task (a `Condition::wait` dropped before it re-acquired), the
/// lock is that task's, and the guard leaves it alone.
#[must_use = "the lock is released when the guard is dropped"]
pub struct LockGuard {
    lock: Lock,
    /// The task that acquired it (its number; 0 outside a task).
    owner: u64,
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if self.lock.locked() && self.lock.owner() == self.owner {
            let _ = self.lock.release();
        }
    }
}

impl fmt::Debug for Lock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lock")
            .field("locked", &self.locked())
            .field("waiters", &self.inner.waiters.borrow().len())
            .finish()
    }
}

impl fmt::Debug for LockGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockGuard").finish_non_exhaustive()
    }
}

//! [`Lock`]: asyncio's `asyncio.Lock`.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::rc::Rc;

use crate::error::{Error, RuntimeError};

use super::waiters::{OnDrop, Waiters};

#[derive(Default)]
struct Inner {
    locked: Cell<bool>,
    /// Who holds the lock (see [`LockGuard`]).
    holder: Cell<Holder>,
    /// The last acquisition's token: tokens are never handed out twice.
    last_token: Cell<u64>,
    waiters: RefCell<Waiters>,
}

/// One acquisition: its token, and the number of the task that made it
/// (0 outside a task).
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Holder {
    token: u64,
    task: u64,
}

impl Inner {
    fn take(&self) {
        self.locked.set(true);
        let token = self.last_token.get() + 1;
        self.last_token.set(token);
        self.holder.set(Holder {
            token,
            task: crate::task::current_task_number(),
        });
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

    /// The current acquisition (see [`LockGuard`]).
    pub(crate) fn holder(&self) -> Holder {
        self.inner.holder.get()
    }

    /// Makes the current acquisition continue an earlier one:
    /// `Condition::wait` re-acquires for the guard its caller holds.
    pub(crate) fn continue_holder(&self, holder: Holder) {
        self.inner.holder.set(holder);
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
            made_by: self.holder(),
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

/// Releases its [`Lock`] when dropped, if the lock is still held by the
/// acquisition that made the guard (which a `Condition::wait` continues
/// when it re-acquires, in whatever task the guard now is) or was
/// re-acquired by the task that made it (asyncio's `async with lock:
/// lock.release(); await lock.acquire()` releases at the end). Once
/// released some other way and taken by another task (a
/// `Condition::wait` dropped before it re-acquired), the lock is that
/// task's, and the guard leaves it alone.
#[must_use = "the lock is released when the guard is dropped"]
pub struct LockGuard {
    lock: Lock,
    made_by: Holder,
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        let holder = self.lock.holder();
        if self.lock.locked()
            && (holder.token == self.made_by.token || holder.task == self.made_by.task)
        {
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

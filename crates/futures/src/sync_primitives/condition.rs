//! [`Condition`]: asyncio's `asyncio.Condition`.

use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;

use crate::error::{Error, RuntimeError};

use super::lock::Lock;
use super::waiters::{OnDrop, Waiters};

struct Inner {
    lock: Lock,
    waiters: RefCell<Waiters>,
}

/// A condition variable for tasks, over a [`Lock`].
///
/// Equivalent of [`asyncio.Condition`](https://docs.python.org/3/library/asyncio-sync.html#asyncio.Condition).
#[derive(Clone)]
pub struct Condition {
    inner: Rc<Inner>,
}

impl Default for Condition {
    fn default() -> Self {
        Self::new(None)
    }
}

impl Condition {
    /// A condition over `lock` (a new lock if `None`).
    pub fn new(lock: Option<Lock>) -> Self {
        Condition {
            inner: Rc::new(Inner {
                lock: lock.unwrap_or_default(),
                waiters: RefCell::default(),
            }),
        }
    }

    /// The underlying lock.
    pub fn lock(&self) -> &Lock {
        &self.inner.lock
    }

    /// True while the lock is held.
    pub fn locked(&self) -> bool {
        self.inner.lock.locked()
    }

    /// Acquires the underlying lock.
    ///
    /// # Errors
    ///
    /// As [`Lock::acquire`].
    pub async fn acquire(&self) -> Result<(), Error> {
        self.inner.lock.acquire().await
    }

    /// Releases the underlying lock.
    ///
    /// # Errors
    ///
    /// As [`Lock::release`].
    pub fn release(&self) -> Result<(), Error> {
        self.inner.lock.release()
    }

    /// Releases the lock, waits for a notify, and re-acquires the lock
    /// before returning — also when cancelled (asyncio's guarantee).
    ///
    /// # Errors
    ///
    /// [`Error::Runtime`] if the lock is not held; the cancellation.
    pub async fn wait(&self) -> Result<(), Error> {
        if !self.locked() {
            return Err(RuntimeError::new("cannot wait on un-acquired lock").into());
        }
        // The re-acquisition below continues this acquisition, so the
        // caller's `LockGuard` (in whatever task it now is) releases it; a
        // wait dropped before it re-acquired leaves that guard nothing to
        // release.
        let holder = self.inner.lock.holder();
        self.release()?;
        // Until this wait returns `Ok`, a notify it may have taken is passed
        // on to another waiter if it ends otherwise: an error, or dropped
        // mid-way (`Task::abort`). asyncio: `except BaseException:
        // self._notify(1)`; at worst a spurious wake-up, which the protocol
        // allows.
        let pass_on = OnDrop::new(|| {
            if let Ok(mut waiters) = self.inner.waiters.try_borrow_mut() {
                waiters.wake(1, false);
            }
        });
        let pushed = self.inner.waiters.borrow_mut().push();
        let outcome = match pushed {
            Ok(fut) => Waiters::wait_listed(&self.inner.waiters, fut)
                .await
                .map(|_| ()),
            Err(err) => Err(err),
        };
        // Re-acquire, even if cancelled meanwhile; the latest cancellation
        // is the one returned.
        let mut cancelled = None;
        loop {
            match self.inner.lock.acquire().await {
                Ok(()) => break,
                Err(err) => cancelled = Some(err),
            }
        }
        self.inner.lock.continue_holder(holder);
        let result = match (outcome, cancelled) {
            (_, Some(err)) | (Err(err), None) => Err(err),
            (Ok(()), None) => Ok(()),
        };
        if result.is_ok() {
            pass_on.defuse();
        }
        result
    }

    /// Waits until `predicate()` is true (checking it after each notify).
    ///
    /// # Errors
    ///
    /// As [`wait`](Condition::wait).
    pub async fn wait_for(&self, mut predicate: impl FnMut() -> bool) -> Result<(), Error> {
        while !predicate() {
            self.wait().await?;
        }
        Ok(())
    }

    /// Wakes up to `n` waiters.
    ///
    /// # Errors
    ///
    /// [`Error::Runtime`] if the lock is not held.
    pub fn notify(&self, n: usize) -> Result<(), Error> {
        if !self.locked() {
            return Err(RuntimeError::new("cannot notify on un-acquired lock").into());
        }
        self.inner.waiters.borrow_mut().wake(n, true);
        Ok(())
    }

    /// Wakes every waiter.
    ///
    /// # Errors
    ///
    /// [`Error::Runtime`] if the lock is not held.
    pub fn notify_all(&self) -> Result<(), Error> {
        self.notify(usize::MAX)
    }
}

impl fmt::Debug for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condition")
            .field("locked", &self.locked())
            .field("waiters", &self.inner.waiters.borrow().len())
            .finish()
    }
}

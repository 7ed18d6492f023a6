//! [`Semaphore`] and [`BoundedSemaphore`]: asyncio's semaphores.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::rc::Rc;

use crate::error::Error;

use super::waiters::{OnDrop, Waiters};

struct Inner {
    value: Cell<usize>,
    bound: Option<usize>,
    waiters: RefCell<Waiters>,
}

/// A counter of permits for tasks.
///
/// Equivalent of [`asyncio.Semaphore`](https://docs.python.org/3/library/asyncio-sync.html#asyncio.Semaphore).
#[derive(Clone)]
pub struct Semaphore {
    inner: Rc<Inner>,
}

impl Semaphore {
    /// A semaphore with `value` permits.
    pub fn new(value: usize) -> Self {
        Semaphore {
            inner: Rc::new(Inner {
                value: Cell::new(value),
                bound: None,
                waiters: RefCell::default(),
            }),
        }
    }

    /// True if `acquire` would wait: no permit, or a queued waiter that is
    /// not cancelled (also one woken but not yet run) goes first.
    pub fn locked(&self) -> bool {
        self.inner.value.get() == 0 || self.inner.waiters.borrow().any_not_cancelled()
    }

    /// The permits available now.
    pub fn value(&self) -> usize {
        self.inner.value.get()
    }

    /// Takes a permit, waiting in FIFO order.
    ///
    /// # Errors
    ///
    /// The waiting task's cancellation (a permit it was handed is given
    /// back and passed on).
    pub async fn acquire(&self) -> Result<(), Error> {
        let inner = &self.inner;
        if !self.locked() {
            inner.value.set(inner.value.get() - 1);
            return Ok(());
        }
        let fut = inner.waiters.borrow_mut().push()?;
        // Not acquiring after all (cancelled, or dropped mid-wait): a
        // permit this waiter was handed goes back and on to the next one,
        // as CPython 3.12 does.
        let leave = OnDrop::new(|| {
            inner.waiters.borrow_mut().remove(&fut);
            if fut.done() && !fut.cancelled() {
                inner.value.set(inner.value.get() + 1);
            }
            self.wake_waiters();
        });
        if let Err(err) = fut.clone().await {
            drop(leave);
            return Err(err);
        }
        leave.defuse();
        inner.waiters.borrow_mut().remove(&fut);
        // Newcomers may have queued behind this waiter (FIFO): wake as many
        // as there are permits.
        self.wake_waiters();
        Ok(())
    }

    /// Takes a permit and returns a guard that gives it back when dropped.
    ///
    /// # Errors
    ///
    /// As [`acquire`](Semaphore::acquire).
    pub async fn guard(&self) -> Result<SemaphoreGuard, Error> {
        self.acquire().await?;
        Ok(SemaphoreGuard { sem: self.clone() })
    }

    /// Wakes waiters while permits are left.
    fn wake_waiters(&self) {
        while self.inner.value.get() > 0 {
            if !self.wake_next() {
                break;
            }
        }
    }

    fn wake_next(&self) -> bool {
        if self.inner.waiters.borrow().is_empty() {
            return false;
        }
        let woke = self.inner.waiters.borrow_mut().wake_first();
        if woke {
            self.inner.value.set(self.inner.value.get() - 1);
        }
        woke
    }

    /// Gives a permit back and wakes the first waiter.
    ///
    /// # Errors
    ///
    /// For a [`BoundedSemaphore`], releasing past the initial value
    /// ("BoundedSemaphore released too many times").
    pub fn release(&self) -> Result<(), Error> {
        let inner = &self.inner;
        if let Some(bound) = inner.bound {
            if inner.value.get() >= bound {
                return Err(Error::msg("BoundedSemaphore released too many times"));
            }
        }
        inner.value.set(inner.value.get() + 1);
        self.wake_next();
        Ok(())
    }
}

/// A [`Semaphore`] whose `release` past the initial value is an error.
///
/// Equivalent of [`asyncio.BoundedSemaphore`](https://docs.python.org/3/library/asyncio-sync.html#asyncio.BoundedSemaphore).
#[derive(Clone)]
pub struct BoundedSemaphore {
    sem: Semaphore,
}

impl BoundedSemaphore {
    /// A bounded semaphore with `value` permits.
    pub fn new(value: usize) -> Self {
        BoundedSemaphore {
            sem: Semaphore {
                inner: Rc::new(Inner {
                    value: Cell::new(value),
                    bound: Some(value),
                    waiters: RefCell::default(),
                }),
            },
        }
    }
}

impl std::ops::Deref for BoundedSemaphore {
    type Target = Semaphore;

    fn deref(&self) -> &Semaphore {
        &self.sem
    }
}

/// Gives its permit back when dropped.
#[must_use = "the permit is released when the guard is dropped"]
pub struct SemaphoreGuard {
    sem: Semaphore,
}

impl Drop for SemaphoreGuard {
    fn drop(&mut self) {
        let _ = self.sem.release();
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore")
            .field("value", &self.value())
            .field("waiters", &self.inner.waiters.borrow().len())
            .finish()
    }
}

impl fmt::Debug for BoundedSemaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoundedSemaphore")
            .field("value", &self.value())
            .finish()
    }
}

impl fmt::Debug for SemaphoreGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemaphoreGuard").finish_non_exhaustive()
    }
}

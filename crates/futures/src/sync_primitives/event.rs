//! [`Event`]: asyncio's `asyncio.Event`.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::rc::Rc;

use crate::error::Error;

use super::waiters::Waiters;

#[derive(Default)]
struct Inner {
    set: Cell<bool>,
    waiters: RefCell<Waiters>,
}

/// A flag tasks can wait on.
///
/// Equivalent of [`asyncio.Event`](https://docs.python.org/3/library/asyncio-sync.html#asyncio.Event).
#[derive(Clone, Default)]
pub struct Event {
    inner: Rc<Inner>,
}

impl Event {
    /// An unset event.
    pub fn new() -> Self {
        Self::default()
    }

    /// True once set (until cleared).
    pub fn is_set(&self) -> bool {
        self.inner.set.get()
    }

    /// Sets the flag and wakes every waiter.
    pub fn set(&self) {
        if !self.inner.set.replace(true) {
            self.inner.waiters.borrow_mut().wake(usize::MAX, true);
        }
    }

    /// Clears the flag.
    pub fn clear(&self) {
        self.inner.set.set(false);
    }

    /// Waits until the flag is set (returns at once if it is).
    ///
    /// # Errors
    ///
    /// The waiting task's cancellation.
    pub async fn wait(&self) -> Result<(), Error> {
        if self.inner.set.get() {
            return Ok(());
        }
        let fut = self.inner.waiters.borrow_mut().push()?;
        Waiters::wait_listed(&self.inner.waiters, fut)
            .await
            .map(|_| ())
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("set", &self.is_set())
            .field("waiters", &self.inner.waiters.borrow().len())
            .finish()
    }
}

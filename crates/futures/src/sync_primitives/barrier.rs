//! [`Barrier`]: asyncio 3.11's `asyncio.Barrier`.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::rc::Rc;

use crate::error::Error;

use super::waiters::{OnDrop, Waiters};

/// The barrier was reset or aborted while a task waited
/// (asyncio's `BrokenBarrierError`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BrokenBarrierError;

impl fmt::Display for BrokenBarrierError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Barrier aborted")
    }
}

impl std::error::Error for BrokenBarrierError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Filling,
    Draining,
    Resetting,
    Broken,
}

struct Inner {
    parties: usize,
    count: Cell<usize>,
    state: Cell<State>,
    waiters: RefCell<Waiters>,
}

/// Lets `parties` tasks wait until all of them arrived.
///
/// Equivalent of [`asyncio.Barrier`](https://docs.python.org/3/library/asyncio-sync.html#asyncio.Barrier).
#[derive(Clone)]
pub struct Barrier {
    inner: Rc<Inner>,
}

fn broken() -> Error {
    Error::new(BrokenBarrierError)
}

impl Barrier {
    /// A barrier for `parties` tasks.
    ///
    /// # Errors
    ///
    /// `parties == 0` (asyncio's `ValueError`).
    pub fn new(parties: usize) -> Result<Self, Error> {
        if parties == 0 {
            return Err(Error::msg("parties must be > 0"));
        }
        Ok(Barrier {
            inner: Rc::new(Inner {
                parties,
                count: Cell::new(0),
                state: Cell::new(State::Filling),
                waiters: RefCell::default(),
            }),
        })
    }

    /// Waits until all parties arrived; returns this task's arrival index
    /// (`0..parties`).
    ///
    /// # Errors
    ///
    /// [`BrokenBarrierError`] if the barrier is broken, or reset or aborted
    /// meanwhile; the cancellation (the task leaves the barrier, which
    /// stays usable for the others, as asyncio's does).
    pub async fn wait(&self) -> Result<usize, Error> {
        let inner = &self.inner;
        // Wait for a previous cycle to drain or reset.
        while matches!(inner.state.get(), State::Draining | State::Resetting) {
            self.park().await?;
        }
        if inner.state.get() == State::Broken {
            return Err(broken());
        }
        let index = inner.count.get();
        inner.count.set(index + 1);
        // Leaving the barrier (also when cancelled or dropped mid-wait):
        // the last one out refills it and wakes the tasks blocked above.
        let leave = OnDrop::new(|| {
            inner.count.set(inner.count.get() - 1);
            if inner.count.get() == 0 {
                if matches!(inner.state.get(), State::Draining | State::Resetting) {
                    inner.state.set(State::Filling);
                }
                inner.waiters.borrow_mut().wake(usize::MAX, true);
            }
        });
        let outcome = if index + 1 == inner.parties {
            // The last party releases the others.
            inner.state.set(State::Draining);
            inner.waiters.borrow_mut().wake(usize::MAX, true);
            Ok(index)
        } else {
            self.wait_filled().await.map(|()| index)
        };
        drop(leave);
        outcome
    }

    /// Waits while the barrier fills; fails if it was reset or broken.
    async fn wait_filled(&self) -> Result<(), Error> {
        while self.inner.state.get() == State::Filling {
            self.park().await?;
        }
        if matches!(self.inner.state.get(), State::Broken | State::Resetting) {
            return Err(broken());
        }
        Ok(())
    }

    async fn park(&self) -> Result<(), Error> {
        let fut = self.inner.waiters.borrow_mut().push()?;
        Waiters::wait_listed(&self.inner.waiters, fut)
            .await
            .map(|_| ())
    }

    /// Returns the barrier to the empty state; tasks waiting get
    /// [`BrokenBarrierError`].
    pub fn reset(&self) {
        let inner = &self.inner;
        if inner.count.get() > 0 {
            if inner.state.get() != State::Resetting {
                inner.state.set(State::Resetting);
            }
        } else {
            inner.state.set(State::Filling);
        }
        inner.waiters.borrow_mut().wake(usize::MAX, true);
    }

    /// Breaks the barrier: current and future waits fail with
    /// [`BrokenBarrierError`] until `reset`.
    pub fn abort(&self) {
        self.inner.state.set(State::Broken);
        self.inner.waiters.borrow_mut().wake(usize::MAX, true);
    }

    /// The number of tasks required.
    pub fn parties(&self) -> usize {
        self.inner.parties
    }

    /// The number of tasks waiting while the barrier fills.
    pub fn n_waiting(&self) -> usize {
        if self.inner.state.get() == State::Filling {
            self.inner.count.get()
        } else {
            0
        }
    }

    /// True if the barrier is broken.
    pub fn broken(&self) -> bool {
        self.inner.state.get() == State::Broken
    }
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Barrier")
            .field("parties", &self.inner.parties)
            .field("waiting", &self.n_waiting())
            .field("queued", &self.inner.waiters.borrow().len())
            .field("state", &self.inner.state.get())
            .finish()
    }
}

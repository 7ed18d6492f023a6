//! A FIFO of waiter futures, shared by the primitives.

use std::cell::RefCell;
use std::collections::VecDeque;

use loop_core::get_running_loop;

use crate::error::Error;
use crate::future::Future;

#[derive(Default)]
pub(crate) struct Waiters {
    queue: VecDeque<Future<bool>>,
}

impl Waiters {
    /// A new waiter at the back of the queue.
    pub(crate) fn push(&mut self) -> Result<Future<bool>, Error> {
        let ev = get_running_loop()?;
        let fut = Future::new(&ev);
        self.queue.push_back(fut.clone());
        Ok(fut)
    }

    pub(crate) fn remove(&mut self, fut: &Future<bool>) {
        self.queue.retain(|w| !w.same_future(fut));
    }

    /// Awaits `fut`, a waiter pushed into `waiters`, which leaves the queue
    /// when the wait ends however it ends: woken, cancelled, or dropped
    /// mid-wait (`Task::abort`, a `select` that went the other way), so no
    /// dead waiter stays queued (a later wake would go to it).
    pub(crate) async fn wait_listed(
        waiters: &RefCell<Waiters>,
        fut: Future<bool>,
    ) -> Result<bool, Error> {
        let _leave = OnDrop::new(|| {
            if let Ok(mut waiters) = waiters.try_borrow_mut() {
                waiters.remove(&fut);
            }
        });
        fut.clone().await
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }

    /// True if some waiter is not cancelled: still waiting, or woken but
    /// not yet run (it owns the next turn, so a newcomer must queue).
    pub(crate) fn any_not_cancelled(&self) -> bool {
        self.queue.iter().any(|w| !w.cancelled())
    }

    /// Wakes the waiter at the head of the queue if it is still waiting
    /// (asyncio's `Lock._wake_up_first`): a head that is already woken
    /// keeps the turn, a cancelled head passes it on when it leaves.
    pub(crate) fn wake_head(&mut self) {
        if let Some(head) = self.queue.front() {
            if !head.done() {
                let _ = head.set_result(true);
            }
        }
    }

    /// Wakes the first waiter that is still waiting; false if none.
    pub(crate) fn wake_first(&mut self) -> bool {
        for waiter in &self.queue {
            if !waiter.done() {
                let _ = waiter.set_result(true);
                return true;
            }
        }
        false
    }

    /// Wakes up to `n` pending waiters; returns how many.
    pub(crate) fn wake(&mut self, n: usize, value: bool) -> usize {
        let mut woken = 0;
        for waiter in &self.queue {
            if woken == n {
                break;
            }
            if !waiter.done() {
                let _ = waiter.set_result(value);
                woken += 1;
            }
        }
        woken
    }
}

/// Runs its closure when dropped, unless [`defuse`](OnDrop::defuse)d: the
/// "leave without acquiring" path of a waiter, taken when it is cancelled
/// and also when its coroutine is dropped mid-wait (`Task::abort`), so a
/// wake-up it was handed is never stranded.
pub(crate) struct OnDrop<F: FnOnce()>(Option<F>);

impl<F: FnOnce()> OnDrop<F> {
    pub(crate) fn new(f: F) -> Self {
        OnDrop(Some(f))
    }

    /// Drops the closure without running it.
    pub(crate) fn defuse(mut self) {
        self.0 = None;
    }
}

impl<F: FnOnce()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f();
        }
    }
}

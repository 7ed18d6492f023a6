//! A FIFO of waiter futures, shared by the primitives.

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

    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }

    /// True if some waiter is still waiting (not cancelled, not woken).
    pub(crate) fn any_pending(&self) -> bool {
        self.queue.iter().any(|w| !w.done())
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

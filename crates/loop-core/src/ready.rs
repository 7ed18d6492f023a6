//! The ready queue: what runs in the current iteration.
//!
//! Invariants:
//! 1. FIFO: entries run in the order they were pushed.
//! 2. An iteration runs exactly the entries present when its run phase
//!    starts (asyncio's `ntodo`); what they push runs next iteration, after
//!    a poll.
//! 3. Entries are `Copy` and 16 bytes: pushing one never allocates once the
//!    queue has grown to its working size (uvloop's `cb_type` idea: internal
//!    work is never a boxed closure).

use std::collections::VecDeque;

use crate::constants::READY_CAPACITY;
use crate::runnable::RunnableId;

/// One unit of work in the ready queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ready {
    /// The callback in this callback-slab slot.
    Callback(u32),
    /// One step of a runnable (a task).
    Runnable(RunnableId),
    /// The reader (`write == false`) or writer of an I/O registration.
    Io {
        key: u32,
        generation: u32,
        write: bool,
    },
    /// An edge-triggered source with pending readiness.
    Source { key: u32, generation: u32 },
}

/// FIFO of [`Ready`] entries.
#[derive(Debug)]
pub(crate) struct ReadyQueue {
    queue: VecDeque<Ready>,
}

impl ReadyQueue {
    pub(crate) fn new() -> Self {
        ReadyQueue {
            queue: VecDeque::with_capacity(READY_CAPACITY),
        }
    }

    #[inline]
    pub(crate) fn push(&mut self, entry: Ready) {
        self.queue.push_back(entry);
    }

    #[inline]
    pub(crate) fn pop(&mut self) -> Option<Ready> {
        self.queue.pop_front()
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Takes every entry out (used by `close`).
    pub(crate) fn take_all(&mut self) -> VecDeque<Ready> {
        std::mem::take(&mut self.queue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_small_and_fifo() {
        assert!(
            std::mem::size_of::<Ready>() <= 16,
            "{}",
            std::mem::size_of::<Ready>()
        );
        let mut q = ReadyQueue::new();
        q.push(Ready::Callback(1));
        q.push(Ready::Callback(2));
        assert_eq!(q.len(), 2);
        assert_eq!(q.pop(), Some(Ready::Callback(1)));
        assert_eq!(q.pop(), Some(Ready::Callback(2)));
        assert!(q.is_empty());
    }
}

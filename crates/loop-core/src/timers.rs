//! The timer queue: a binary heap keyed by `(when, seq)`.
//!
//! Invariants:
//! 1. Timers become ready in `(when, seq)` order; `seq` grows with every
//!    scheduling, so equal deadlines keep insertion (FIFO) order.
//! 2. A timer is due when `when <= now`, never earlier: unlike asyncio (and
//!    uvloop) no clock-resolution slack is added, so a callback never observes
//!    `loop.time() < handle.when()`.
//! 3. Cancellation is lazy: the heap entry stays until it reaches the top or
//!    a compaction. `cancelled` counts cancelled entries still in the heap.
//! 4. Bounded memory: when the heap holds more than
//!    [`MIN_SCHEDULED_TIMER_HANDLES`] entries and more than half of them are
//!    cancelled, it is rebuilt with the live ones only (asyncio's rule), so
//!    the heap never exceeds `max(2 × live, 100) + 1` entries.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

use slab::Slab;

use crate::constants::{CANCELLED_TIMER_FRACTION_DENOMINATOR, MIN_SCHEDULED_TIMER_HANDLES};
use crate::handle::Slot;
use crate::ready::{Ready, ReadyQueue};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct TimerEntry {
    when: Instant,
    seq: u64,
    key: u32,
}

/// Pending timers, earliest first.
#[derive(Debug, Default)]
pub(crate) struct TimerQueue {
    heap: BinaryHeap<Reverse<TimerEntry>>,
    cancelled: usize,
}

impl TimerQueue {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Adds the timer in callback slot `key`.
    #[inline]
    pub(crate) fn push(&mut self, when: Instant, seq: u64, key: u32) {
        self.heap.push(Reverse(TimerEntry { when, seq, key }));
    }

    /// Records that one timer still in the heap was cancelled, and compacts
    /// the heap if the cancelled share has grown past the threshold.
    pub(crate) fn note_cancelled(&mut self, slots: &mut Slab<Slot>) {
        self.cancelled += 1;
        let len = self.heap.len();
        if len > MIN_SCHEDULED_TIMER_HANDLES
            && self.cancelled * CANCELLED_TIMER_FRACTION_DENOMINATOR > len
        {
            self.compact(slots);
        }
    }

    /// Rebuilds the heap without its cancelled entries, freeing their slots.
    fn compact(&mut self, slots: &mut Slab<Slot>) {
        self.heap.retain(|Reverse(entry)| {
            let live = slots[entry.key as usize].callback.is_some();
            if !live {
                // The slot holds no closure any more: removing it drops no user value.
                slots.remove(entry.key as usize);
            }
            live
        });
        self.cancelled = 0;
    }

    /// Number of entries in the heap, cancelled ones included.
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }

    /// Number of cancelled entries still in the heap.
    pub(crate) fn cancelled(&self) -> usize {
        self.cancelled
    }

    /// Pops cancelled entries off the top, then returns the earliest live
    /// deadline.
    pub(crate) fn next_deadline(&mut self, slots: &mut Slab<Slot>) -> Option<Instant> {
        while let Some(Reverse(top)) = self.heap.peek().copied() {
            if slots[top.key as usize].callback.is_some() {
                return Some(top.when);
            }
            self.heap.pop();
            slots.remove(top.key as usize);
            self.cancelled -= 1;
        }
        None
    }

    /// Moves every live timer with `when <= now` to `ready`, in
    /// `(when, seq)` order; drops cancelled ones met on the way.
    pub(crate) fn collect_due(
        &mut self,
        now: Instant,
        slots: &mut Slab<Slot>,
        ready: &mut ReadyQueue,
    ) {
        while let Some(Reverse(top)) = self.heap.peek().copied() {
            let slot = &mut slots[top.key as usize];
            if slot.callback.is_none() {
                self.heap.pop();
                slots.remove(top.key as usize);
                self.cancelled -= 1;
                continue;
            }
            if top.when > now {
                break;
            }
            self.heap.pop();
            slot.in_heap = false;
            ready.push(Ready::Callback(top.key));
        }
    }

    /// Empties the queue (used by `close`; the slots go with the slab).
    pub(crate) fn clear(&mut self) {
        self.heap.clear();
        self.cancelled = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::panic::Location;
    use std::time::Duration;

    fn slot(seq: u64, live: bool) -> Slot {
        let callback: Option<crate::handle::Callback> =
            if live { Some(Box::new(|_| {})) } else { None };
        Slot {
            seq,
            callback,
            site: Location::caller(),
            in_heap: true,
        }
    }

    #[test]
    fn equal_deadlines_keep_insertion_order() {
        let base = Instant::now();
        let mut slots = Slab::new();
        let mut timers = TimerQueue::new();
        let mut ready = ReadyQueue::new();
        let when = base + Duration::from_millis(5);
        for seq in 0..5u64 {
            let key = slots.insert(slot(seq, true)) as u32;
            timers.push(when, seq, key);
        }
        let early = slots.insert(slot(9, true)) as u32;
        timers.push(base, 9, early);
        timers.collect_due(when, &mut slots, &mut ready);
        let order: Vec<Ready> = std::iter::from_fn(|| ready.pop()).collect();
        let expected: Vec<Ready> = [early, 0, 1, 2, 3, 4]
            .iter()
            .map(|k| Ready::Callback(*k))
            .collect();
        assert_eq!(order, expected);
    }

    #[test]
    fn never_due_before_deadline() {
        let base = Instant::now();
        let mut slots = Slab::new();
        let mut timers = TimerQueue::new();
        let mut ready = ReadyQueue::new();
        let key = slots.insert(slot(0, true)) as u32;
        timers.push(base + Duration::from_nanos(1), 0, key);
        timers.collect_due(base, &mut slots, &mut ready);
        assert!(ready.is_empty(), "a timer 1 ns in the future became ready");
        timers.collect_due(base + Duration::from_nanos(1), &mut slots, &mut ready);
        assert_eq!(ready.pop(), Some(Ready::Callback(key)));
    }

    #[test]
    fn compaction_keeps_heap_bounded() {
        let base = Instant::now();
        let mut slots = Slab::new();
        let mut timers = TimerQueue::new();
        let mut keys = Vec::new();
        for seq in 0..1000u64 {
            let key = slots.insert(slot(seq, true)) as u32;
            timers.push(base + Duration::from_secs(seq), seq, key);
            keys.push(key);
        }
        for key in keys.iter().take(900) {
            slots[*key as usize].callback = None;
            timers.note_cancelled(&mut slots);
            let live = slots.iter().filter(|(_, s)| s.callback.is_some()).count();
            assert!(
                timers.len() <= (2 * live).max(MIN_SCHEDULED_TIMER_HANDLES) + 1,
                "heap {} live {}",
                timers.len(),
                live
            );
        }
        assert_eq!(
            timers.next_deadline(&mut slots),
            Some(base + Duration::from_secs(900))
        );
    }
}

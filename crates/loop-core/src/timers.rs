//! The timer queue: a 4-ary min-heap of 16-byte entries keyed by
//! `(when, seq)`, plus a dense bitset of which slots hold a live timer.
//!
//! Why 4-ary: popping is the hot operation (every timer is popped once,
//! cancelled or not). A node's four children are 64 contiguous bytes, so a
//! sift-down touches about half as many cache lines as a binary heap's
//! (measured: `BinaryHeap::pop` was half of the timers benchmark).
//!
//! Invariants:
//! 1. Timers become ready in `(when, seq)` order; `seq` counts timer
//!    schedulings, so equal deadlines keep insertion (FIFO) order. (`seq` is
//!    32 bits: two timers with the *same nanosecond deadline* scheduled more
//!    than 2^32 timers apart could swap; nothing else depends on it.)
//! 2. A timer is due when `when <= now`, never earlier: unlike asyncio (and
//!    uvloop) no clock-resolution slack is added, so a callback never observes
//!    `loop.time() < handle.when()`.
//! 3. `when` is stored as signed nanoseconds from the loop's epoch, so past
//!    deadlines (asyncio's negative delays) keep their order.
//! 4. Cancellation is lazy: the heap entry stays until it reaches the top or
//!    a compaction, and so does its callback slot (a heap entry always names
//!    an occupied slot). The `live` bit of a slot is set while its timer is in
//!    the heap and not cancelled; `cancelled` counts entries whose bit was
//!    cleared by a cancel. Checking liveness reads the bitset, not the slot:
//!    popping a live timer never touches the callback slots.
//! 5. Bounded memory: when the heap holds more than
//!    [`MIN_SCHEDULED_TIMER_HANDLES`] entries and more than half of them are
//!    cancelled, it is rebuilt with the live ones only (asyncio's rule), so
//!    the heap never exceeds `max(2 × live, 100) + 1` entries.

use std::time::{Duration, Instant};

use crate::constants::{CANCELLED_TIMER_FRACTION_DENOMINATOR, MIN_SCHEDULED_TIMER_HANDLES};
use crate::ready::{Ready, ReadyQueue};
use crate::slot_table::SlotTable;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct TimerEntry {
    when: i64,
    seq: u32,
    key: u32,
}

/// A 4-ary min-heap.
#[derive(Debug, Default)]
struct QuadHeap {
    v: Vec<TimerEntry>,
}

impl QuadHeap {
    #[inline]
    fn len(&self) -> usize {
        self.v.len()
    }

    #[inline]
    fn peek(&self) -> Option<TimerEntry> {
        self.v.first().copied()
    }

    #[inline]
    fn push(&mut self, entry: TimerEntry) {
        self.v.push(entry);
        self.sift_up(self.v.len() - 1);
    }

    #[inline]
    fn pop(&mut self) -> Option<TimerEntry> {
        let last = self.v.pop()?;
        if self.v.is_empty() {
            return Some(last);
        }
        let top = std::mem::replace(&mut self.v[0], last);
        self.sift_down_to_bottom();
        Some(top)
    }

    /// Pop's sift: moves the hole at the root down to a leaf along the
    /// smallest children without comparing against the moved element (the
    /// former last leaf, which almost always belongs near the bottom), then
    /// sifts that element up from the leaf. Fewer, more predictable
    /// comparisons than a plain sift-down (std's `BinaryHeap::pop` trick).
    fn sift_down_to_bottom(&mut self) {
        let len = self.v.len();
        let entry = self.v[0];
        let mut i = 0;
        loop {
            let first = 4 * i + 1;
            if first >= len {
                break;
            }
            let end = (first + 4).min(len);
            let mut min = first;
            for c in first + 1..end {
                if self.v[c] < self.v[min] {
                    min = c;
                }
            }
            self.v[i] = self.v[min];
            i = min;
        }
        self.v[i] = entry;
        self.sift_up(i);
    }

    fn sift_up(&mut self, mut i: usize) {
        let entry = self.v[i];
        while i > 0 {
            let parent = (i - 1) / 4;
            if entry >= self.v[parent] {
                break;
            }
            self.v[i] = self.v[parent];
            i = parent;
        }
        self.v[i] = entry;
    }

    fn sift_down(&mut self, mut i: usize) {
        let len = self.v.len();
        let entry = self.v[i];
        loop {
            let first = 4 * i + 1;
            if first >= len {
                break;
            }
            let end = (first + 4).min(len);
            let mut min = first;
            for c in first + 1..end {
                if self.v[c] < self.v[min] {
                    min = c;
                }
            }
            if self.v[min] >= entry {
                break;
            }
            self.v[i] = self.v[min];
            i = min;
        }
        self.v[i] = entry;
    }

    fn retain(&mut self, keep: impl FnMut(&TimerEntry) -> bool) {
        self.v.retain(keep);
        if self.v.len() > 1 {
            for i in (0..=(self.v.len() - 2) / 4).rev() {
                self.sift_down(i);
            }
        }
    }

    fn clear(&mut self) {
        self.v.clear();
    }
}

/// One bit per callback slot.
#[derive(Debug, Default)]
struct Bitset(Vec<u64>);

impl Bitset {
    #[inline]
    fn get(&self, key: u32) -> bool {
        let (word, bit) = (key as usize / 64, key % 64);
        self.0.get(word).is_some_and(|w| w & (1 << bit) != 0)
    }

    #[inline]
    fn set(&mut self, key: u32) {
        let (word, bit) = (key as usize / 64, key % 64);
        if word >= self.0.len() {
            self.0.resize(word + 1, 0);
        }
        self.0[word] |= 1 << bit;
    }

    /// Clears the bit; returns whether it was set.
    #[inline]
    fn clear(&mut self, key: u32) -> bool {
        let (word, bit) = (key as usize / 64, key % 64);
        match self.0.get_mut(word) {
            Some(w) if *w & (1 << bit) != 0 => {
                *w &= !(1 << bit);
                true
            }
            _ => false,
        }
    }
}

/// Pending timers, earliest first.
#[derive(Debug)]
pub(crate) struct TimerQueue {
    heap: QuadHeap,
    live: Bitset,
    cancelled: usize,
    epoch: Instant,
    next_seq: u32,
}

impl TimerQueue {
    pub(crate) fn new(epoch: Instant) -> Self {
        TimerQueue {
            heap: QuadHeap::default(),
            live: Bitset::default(),
            cancelled: 0,
            epoch,
            next_seq: 0,
        }
    }

    #[inline]
    fn offset(&self, when: Instant) -> i64 {
        match when.checked_duration_since(self.epoch) {
            Some(after) => after.as_nanos().min(i64::MAX as u128) as i64,
            None => {
                -(self
                    .epoch
                    .duration_since(when)
                    .as_nanos()
                    .min(i64::MAX as u128) as i64)
            }
        }
    }

    #[inline]
    fn instant(&self, offset: i64) -> Instant {
        if offset >= 0 {
            self.epoch + Duration::from_nanos(offset as u64)
        } else {
            self.epoch - Duration::from_nanos(offset.unsigned_abs())
        }
    }

    /// Adds the timer in callback slot `key`.
    #[inline]
    pub(crate) fn push(&mut self, when: Instant, key: u32) {
        let seq = self.next_seq;
        self.next_seq = seq.wrapping_add(1);
        let when = self.offset(when);
        self.heap.push(TimerEntry { when, seq, key });
        self.live.set(key);
    }

    /// Records that the callback in slot `key` was cancelled. If it is a
    /// timer still in the heap, counts it and compacts the heap when the
    /// cancelled share has grown past the threshold.
    pub(crate) fn cancel(&mut self, key: u32, slots: &mut SlotTable) {
        if !self.live.clear(key) {
            return;
        }
        self.cancelled += 1;
        let len = self.heap.len();
        if len > MIN_SCHEDULED_TIMER_HANDLES
            && self.cancelled * CANCELLED_TIMER_FRACTION_DENOMINATOR > len
        {
            self.compact(slots);
        }
    }

    /// Rebuilds the heap without its cancelled entries, freeing their slots.
    fn compact(&mut self, slots: &mut SlotTable) {
        let live = &self.live;
        self.heap.retain(|entry| {
            let keep = live.get(entry.key);
            if !keep {
                // A cancelled slot holds no closure and no context (both
                // left at `cancel_slot`): removing it drops no user value.
                slots.remove(entry.key as usize);
            }
            keep
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
    pub(crate) fn next_deadline(&mut self, slots: &mut SlotTable) -> Option<Instant> {
        while let Some(top) = self.heap.peek() {
            if self.live.get(top.key) {
                return Some(self.instant(top.when));
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
        slots: &mut SlotTable,
        ready: &mut ReadyQueue,
    ) {
        let now = self.offset(now);
        while let Some(top) = self.heap.peek() {
            if !self.live.get(top.key) {
                self.heap.pop();
                slots.remove(top.key as usize);
                self.cancelled -= 1;
                continue;
            }
            if top.when > now {
                break;
            }
            self.heap.pop();
            self.live.clear(top.key);
            ready.push(Ready::Callback(top.key));
        }
    }

    /// Empties the queue (used by `close`; the slots go with the slab).
    pub(crate) fn clear(&mut self) {
        self.heap.clear();
        self.live.0.clear();
        self.cancelled = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::panic::Location;

    /// Inserts a live callback slot with `seq`; returns its key.
    fn put(slots: &mut SlotTable, seq: u64) -> usize {
        slots.insert(seq, Some(Box::new(|_| {})), Location::caller(), None)
    }

    #[test]
    fn equal_deadlines_keep_insertion_order() {
        let base = Instant::now();
        let mut slots = SlotTable::default();
        let mut timers = TimerQueue::new(base);
        let mut ready = ReadyQueue::new();
        let when = base + Duration::from_millis(5);
        let mut keys = Vec::new();
        for seq in 0..5u64 {
            let key = put(&mut slots, seq) as u32;
            timers.push(when, key);
            keys.push(key);
        }
        let early = put(&mut slots, 9) as u32;
        timers.push(base, early);
        timers.collect_due(when, &mut slots, &mut ready);
        let order: Vec<Ready> = std::iter::from_fn(|| ready.pop()).collect();
        let mut expected = vec![Ready::Callback(early)];
        expected.extend(keys.iter().map(|k| Ready::Callback(*k)));
        assert_eq!(order, expected);
    }

    #[test]
    fn never_due_before_deadline_and_past_deadlines_keep_order() {
        let base = Instant::now();
        let mut slots = SlotTable::default();
        let mut timers = TimerQueue::new(base);
        let mut ready = ReadyQueue::new();
        let key = put(&mut slots, 0) as u32;
        timers.push(base + Duration::from_nanos(1), key);
        timers.collect_due(base, &mut slots, &mut ready);
        assert!(ready.is_empty(), "a timer 1 ns in the future became ready");
        timers.collect_due(base + Duration::from_nanos(1), &mut slots, &mut ready);
        assert_eq!(ready.pop(), Some(Ready::Callback(key)));
        // Deadlines before the epoch (negative delays) stay ordered.
        let a = put(&mut slots, 1) as u32;
        let b = put(&mut slots, 2) as u32;
        timers.push(base - Duration::from_millis(1), a);
        timers.push(base - Duration::from_millis(2), b);
        assert_eq!(
            timers.next_deadline(&mut slots),
            Some(base - Duration::from_millis(2))
        );
        timers.collect_due(base, &mut slots, &mut ready);
        assert_eq!(ready.pop(), Some(Ready::Callback(b)));
        assert_eq!(ready.pop(), Some(Ready::Callback(a)));
    }

    #[test]
    fn compaction_keeps_heap_bounded() {
        let base = Instant::now();
        let mut slots = SlotTable::default();
        let mut timers = TimerQueue::new(base);
        let mut keys = Vec::new();
        for seq in 0..1000u64 {
            let key = put(&mut slots, seq) as u32;
            timers.push(base + Duration::from_secs(seq), key);
            keys.push(key);
        }
        for key in keys.iter().take(900) {
            slots.get_mut(*key as usize).expect("live").callback = None;
            timers.cancel(*key, &mut slots);
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

    #[test]
    fn entries_are_sixteen_bytes() {
        assert_eq!(std::mem::size_of::<TimerEntry>(), 16);
    }

    #[test]
    fn quad_heap_pops_in_order_after_pushes_and_retain() {
        let mut heap = QuadHeap::default();
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut all = Vec::new();
        for seq in 0..2000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let e = TimerEntry {
                when: (x % 500) as i64,
                seq,
                key: seq,
            };
            heap.push(e);
            all.push(e);
        }
        heap.retain(|e| e.key % 3 != 0);
        all.retain(|e| e.key % 3 != 0);
        all.sort();
        let popped: Vec<TimerEntry> = std::iter::from_fn(|| heap.pop()).collect();
        assert_eq!(popped, all);
    }
}

//! [`SlotTable`]: the loop's callback slots, a slab (vacant entries chain
//! into a free list, keys are reused) whose insert is inlined into
//! `call_soon`.
//!
//! Why not the `slab` crate here (the loop uses it for everything else):
//! its `insert` copies the value through an out-of-line function. A `Slot`
//! built by `call_soon` with 8-byte stores and copied there with 16-byte
//! loads stalls on store-to-load forwarding, about 5 % of a
//! `future_round_trip` (docs/performance.md, section 12). Inlined, the
//! fields are stored straight into the table. It also restarts its keys
//! in O(1) when it empties (`slab` could only be cleared, after which
//! every insert appended again).
//!
//! Invariants:
//! 1. Entries below `top` are occupied or on the free list (`free`, chained
//!    through vacant entries' `next`); entries from `top` on are vacant and
//!    on no list. A key comes from the free list (the most recently freed
//!    first, as `slab` does), else it is `top` (and `top` moves up).
//! 2. A vacant entry owns nothing (no closure, no context), so filling it
//!    drops nothing and [`SlotTable::restart_if_empty`] may forget it.
//! 3. `len` counts the occupied entries.
//! 4. An entry is removed only by key, and a key that is vacant or out of
//!    range is refused (`None` / no-op), never a panic: the loop's queues
//!    hold keys, and a stale one must not corrupt the free list.

use std::panic::Location;

use crate::handle::{Callback, Slot};
use crate::task_context::Context;

/// `Entry::next` of an occupied entry.
const OCCUPIED: usize = usize::MAX;

/// `Entry::next` / `SlotTable::free`: the end of the free list.
const NONE: usize = usize::MAX - 1;

/// One entry. A vacant entry holds no closure and no context (its `slot`
/// fields are leftovers that own nothing), so filling it drops nothing.
struct Entry {
    /// [`OCCUPIED`], or the next key on the free list ([`NONE`] at its
    /// end; meaningless from `top` on).
    next: usize,
    slot: Slot,
}

/// The loop's callback slots (see the module docs).
pub(crate) struct SlotTable {
    entries: Vec<Entry>,
    /// The first key on the free list, or [`NONE`].
    free: usize,
    /// The first never-used key (invariant 1).
    top: usize,
    len: usize,
}

impl Default for SlotTable {
    fn default() -> Self {
        Self::with_capacity(0)
    }
}

impl SlotTable {
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        SlotTable {
            entries: Vec::with_capacity(capacity),
            free: NONE,
            top: 0,
            len: 0,
        }
    }

    /// Stores a slot made of these parts; returns its key. Each part is
    /// stored into the entry on its own: a `Slot` built first and copied
    /// in would be copied with wider loads than the stores that built it.
    #[inline(always)]
    pub(crate) fn insert(
        &mut self,
        seq: u64,
        callback: Option<Callback>,
        site: &'static Location<'static>,
        context: Option<Context>,
    ) -> usize {
        let key = if self.free != NONE {
            let key = self.free;
            self.free = self.entries[key].next;
            key
        } else {
            let key = self.top;
            if key == self.entries.len() {
                self.grow();
            }
            self.top = key + 1;
            key
        };
        let entry = &mut self.entries[key];
        debug_assert_ne!(entry.next, OCCUPIED, "a new key names a vacant entry");
        entry.next = OCCUPIED;
        entry.slot.seq = seq;
        entry.slot.callback = callback;
        entry.slot.site = site;
        entry.slot.context = context;
        self.len += 1;
        key
    }

    /// Appends one vacant entry (every entry is below `top`).
    #[cold]
    #[inline(never)]
    fn grow(&mut self) {
        self.entries.push(Entry {
            next: NONE,
            slot: Slot {
                seq: 0,
                callback: None,
                site: Location::caller(),
                context: None,
            },
        });
    }

    /// Removes and returns the slot at `key`; `None` if vacant or out of
    /// range (invariant 4).
    #[inline(always)]
    pub(crate) fn try_remove(&mut self, key: usize) -> Option<Slot> {
        let entry = self.entries.get_mut(key)?;
        if entry.next != OCCUPIED {
            return None;
        }
        entry.next = self.free;
        self.free = key;
        self.len -= 1;
        Some(Slot {
            seq: entry.slot.seq,
            callback: entry.slot.callback.take(),
            site: entry.slot.site,
            context: entry.slot.context.take(),
        })
    }

    /// Removes the slot at `key` (dropping it); a vacant key is a no-op.
    pub(crate) fn remove(&mut self, key: usize) {
        drop(self.try_remove(key));
    }

    pub(crate) fn get_mut(&mut self, key: usize) -> Option<&mut Slot> {
        self.entries
            .get_mut(key)
            .filter(|entry| entry.next == OCCUPIED)
            .map(|entry| &mut entry.slot)
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Removes every occupied slot and returns them, in key order, for the
    /// loop's close to drop one at a time.
    pub(crate) fn take_all(&mut self) -> Vec<Slot> {
        let slots = (0..self.top)
            .filter_map(|key| self.try_remove(key))
            .collect();
        *self = SlotTable::default();
        slots
    }

    /// If no slot is occupied, hands out keys from 0 upwards again, in
    /// order, keeping the entries' memory: O(1), as every entry is then
    /// vacant and owns nothing (invariant 2). After timers fired out of
    /// insertion order the free list would otherwise hand out keys at
    /// random (cache misses).
    #[inline]
    pub(crate) fn restart_if_empty(&mut self) {
        if self.len == 0 {
            self.free = NONE;
            self.top = 0;
        }
    }

    /// The occupied slots with their keys, in key order.
    #[cfg(test)]
    pub(crate) fn iter(&self) -> impl Iterator<Item = (usize, &Slot)> {
        self.entries
            .iter()
            .enumerate()
            .filter(|(_, entry)| entry.next == OCCUPIED)
            .map(|(key, entry)| (key, &entry.slot))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Inserts a slot that carries only `seq`.
    fn put(table: &mut SlotTable, seq: u64) -> usize {
        table.insert(seq, None, Location::caller(), None)
    }

    fn seq_at(table: &mut SlotTable, key: usize) -> Option<u64> {
        table.get_mut(key).map(|s| s.seq)
    }

    #[test]
    fn keys_are_dense_and_freed_keys_are_reused_most_recent_first() {
        let mut table = SlotTable::with_capacity(4);
        assert_eq!(
            (0..4).map(|i| put(&mut table, i)).collect::<Vec<_>>(),
            [0, 1, 2, 3]
        );
        assert_eq!(table.len(), 4);
        assert_eq!(table.try_remove(1).map(|s| s.seq), Some(1));
        assert_eq!(table.try_remove(3).map(|s| s.seq), Some(3));
        assert_eq!(table.len(), 2);
        assert_eq!(put(&mut table, 10), 3);
        assert_eq!(put(&mut table, 11), 1);
        assert_eq!(put(&mut table, 12), 4);
        assert_eq!(seq_at(&mut table, 1), Some(11));
        assert_eq!(seq_at(&mut table, 3), Some(10));
        assert_eq!(table.len(), 5);
    }

    #[test]
    fn removing_a_vacant_or_unknown_key_changes_nothing() {
        let mut table = SlotTable::default();
        let a = put(&mut table, 0);
        let b = put(&mut table, 1);
        assert!(table.try_remove(a).is_some());
        assert!(table.try_remove(a).is_none(), "already vacant");
        assert!(table.try_remove(99).is_none(), "out of range");
        table.remove(a);
        table.remove(99);
        assert_eq!(table.len(), 1);
        assert_eq!(seq_at(&mut table, b), Some(1));
        assert!(table.get_mut(a).is_none());
        // The free list is intact: the freed key comes back once.
        assert_eq!(put(&mut table, 2), a);
        assert_eq!(put(&mut table, 3), 2);
    }

    #[test]
    fn an_empty_table_restarts_its_keys_in_order() {
        let mut table = SlotTable::default();
        for i in 0..4 {
            put(&mut table, i);
        }
        for key in [2, 0, 3] {
            assert!(table.try_remove(key).is_some());
        }
        table.restart_if_empty();
        assert_eq!(put(&mut table, 10), 3, "not empty: the free list stands");
        assert!(table.try_remove(3).is_some());
        assert!(table.try_remove(1).is_some());
        table.restart_if_empty();
        assert_eq!(
            (20..25).map(|i| put(&mut table, i)).collect::<Vec<_>>(),
            [0, 1, 2, 3, 4]
        );
        assert_eq!(
            table.iter().map(|(k, s)| (k, s.seq)).collect::<Vec<_>>(),
            [(0, 20), (1, 21), (2, 22), (3, 23), (4, 24)]
        );
    }
}

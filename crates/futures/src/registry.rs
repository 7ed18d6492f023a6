//! Per-thread registry of live tasks, for [`all_tasks`](crate::all_tasks)
//! and task numbering.
//!
//! Invariants:
//! 1. A task is registered from creation until it finishes (or its loop
//!    closes); entries are weak, so the registry never keeps a task alive.
//! 2. Insert and remove are O(1) (a slab), so registration costs no
//!    allocation once the slab has grown.

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};

use slab::Slab;

use crate::task::TaskControl;

thread_local! {
    static TASKS: RefCell<Slab<(u64, Weak<dyn TaskControl>)>> = RefCell::new(Slab::new());
    static NEXT_NUMBER: Cell<u64> = const { Cell::new(1) };
}

pub(crate) fn next_task_number() -> u64 {
    NEXT_NUMBER.with(|n| {
        let v = n.get();
        n.set(v + 1);
        v
    })
}

pub(crate) fn insert(loop_id: u64, task: Weak<dyn TaskControl>) -> usize {
    TASKS.with(|t| t.borrow_mut().insert((loop_id, task)))
}

/// Removes entry `key`; `usize::MAX` (already removed) is ignored.
pub(crate) fn remove(key: usize) {
    if key == usize::MAX {
        return;
    }
    let removed = TASKS
        .try_with(|t| t.borrow_mut().try_remove(key))
        .ok()
        .flatten();
    drop(removed);
}

pub(crate) fn tasks_of(loop_id: u64) -> Vec<Rc<dyn TaskControl>> {
    TASKS.with(|t| {
        t.borrow()
            .iter()
            .filter(|(_, (id, _))| *id == loop_id)
            .filter_map(|(_, (_, task))| task.upgrade())
            .collect()
    })
}

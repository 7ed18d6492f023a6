//! Task numbering: the `N` of the default name `Task-N`.
//!
//! Invariant: numbers are handed out per thread, in creation order,
//! starting at 1, and never reused (as asyncio's `_task_name_counter`).
//! The live tasks themselves are listed from the loop's runnables
//! ([`all_tasks`](crate::all_tasks)); there is no registry to keep.

use std::cell::Cell;

thread_local! {
    static NEXT_NUMBER: Cell<u64> = const { Cell::new(1) };
}

/// The next task number.
pub(crate) fn next_task_number() -> u64 {
    NEXT_NUMBER.with(|n| {
        let v = n.get();
        n.set(v + 1);
        v
    })
}

//! The wake-dedup flag of a runnable's waker (runnable invariant 2).
//!
//! Invariants (checked under loom, `tests/loom_remote.rs`):
//! 1. Between two [`clear`](WakeFlag::clear)s, exactly one
//!    [`try_set`](WakeFlag::try_set) returns true, however many threads race:
//!    N wakes before a step enqueue one step.
//! 2. Whatever a thread wrote before a `try_set` that returned false (its wake
//!    was folded into an already queued step) is visible after the `clear`
//!    that precedes that step: `clear` reads the flag (acquire), so a folded
//!    wake still happens-before the step that answers it.

#![cfg_attr(not(loom), allow(unreachable_pub))]

use crate::sync::{AtomicBool, Ordering};

/// "A step is queued": set by the wake that enqueues the step, cleared by the
/// loop just before the step runs.
#[derive(Debug)]
pub struct WakeFlag(AtomicBool);

impl WakeFlag {
    /// A flag that starts `set` (a spawned runnable's first step is queued at
    /// once, so its flag starts set).
    pub fn new(set: bool) -> Self {
        WakeFlag(AtomicBool::new(set))
    }

    /// Sets the flag. True if it was clear: the caller must enqueue a step.
    /// False if a step is already queued: the wake is folded into it.
    #[inline]
    pub fn try_set(&self) -> bool {
        !self.0.swap(true, Ordering::AcqRel)
    }

    /// Clears the flag just before the step runs, so that a wake from now on
    /// enqueues the next step. A swap rather than a store: reading the flag
    /// with acquire makes every folded wake happen-before the step
    /// (invariant 2).
    #[inline]
    pub fn clear(&self) {
        self.0.swap(false, Ordering::AcqRel);
    }
}

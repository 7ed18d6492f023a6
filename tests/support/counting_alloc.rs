//! A counting global allocator for the allocation tests of every crate
//! (`crates/*/tests/alloc_free.rs`, `streams_write_owned.rs`), included by
//! path: it becomes the test binary's `#[global_allocator]`.
//!
//! It counts the allocations (`alloc`, `alloc_zeroed`, `realloc`) made by
//! one thread while that thread has counting on; other threads (the test
//! harness, helper threads, a client thread) are never counted. The
//! including file allows `unsafe_code` at its root for the
//! `unsafe impl GlobalAlloc` below.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::{Mutex, MutexGuard};

thread_local! {
    /// Whether this thread's allocations are being counted.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    /// Allocations counted on this thread.
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

/// `System`, counting this thread's allocations while `COUNTING` is on.
struct CountingAlloc;

impl CountingAlloc {
    fn note_allocation() {
        // `try_with`: the slots may already be gone while a thread exits.
        // Both are const-initialised `Cell`s without destructors, so
        // touching them never allocates (no recursion into the allocator).
        if COUNTING.try_with(Cell::get).unwrap_or(false) {
            let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        }
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged, so `System`'s guarantees (and the caller's obligations) carry
// over as they are; the bookkeeping touches only thread-local `Cell`s and
// never allocates.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        Self::note_allocation();
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract
        // (non-zero size), which is `System.alloc`'s.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        Self::note_allocation();
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator, i.e. from `System`, with
        // this `layout` (the caller's contract).
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        Self::note_allocation();
        // SAFETY: `ptr` came from `System` with `layout`, and the caller
        // guarantees `new_size` is valid for it (the caller's contract).
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// This thread's allocations from now on are counted, until
/// [`stop_counting`]; returns the count so far, for `stop_counting`.
pub(crate) fn start_counting() -> u64 {
    COUNTING.with(|c| c.set(true));
    ALLOCATIONS.with(Cell::get)
}

/// Ends counting on this thread and returns how many allocations it made
/// since the [`start_counting`] that returned `before`.
pub(crate) fn stop_counting(before: u64) -> u64 {
    COUNTING.with(|c| c.set(false));
    ALLOCATIONS.with(Cell::get) - before
}

/// Runs `f` and returns how many allocations this thread made inside it.
#[allow(dead_code)] // not every including test uses it
pub(crate) fn allocations_in(f: impl FnOnce()) -> u64 {
    let before = start_counting();
    f();
    stop_counting(before)
}

/// One measurement at a time in the including test binary.
pub(crate) fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

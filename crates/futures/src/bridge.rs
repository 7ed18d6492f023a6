//! The loop-side half of the thread bridges (`wrap_future`,
//! `run_coroutine_threadsafe`, executors).
//!
//! A loop future is `!Send`, so a completion that happens on another
//! thread cannot carry it. Instead the loop keeps the `!Send` half here,
//! under a key; the other thread sends only the key (through
//! `call_soon_threadsafe`) and the loop thread runs the stored action.
//!
//! Invariants:
//! 1. Each entry runs at most once (it is removed when taken).
//! 2. Entries live in the loop's extension map, so `close` drops every
//!    pending one; a completion arriving after that finds the remote closed
//!    (or no entry) and is dropped safely.
//! 3. Keys are never reused: a key sent back late (a cancel racing a
//!    completion, a `forget` after the entry ran) finds nothing, never
//!    another bridge's entry that took its place.
//! 4. A closed loop stores nothing: an entry made after `close` (whose
//!    extensions are gone) would hold its future, and the future the loop,
//!    for ever.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use loop_core::EventLoop;

type Action = Box<dyn FnOnce(&EventLoop)>;

/// A bridge entry's key: a counter, unique for the loop's life.
pub(crate) type BridgeKey = u64;

#[derive(Default)]
pub(crate) struct Bridges {
    entries: RefCell<HashMap<BridgeKey, Action>>,
    next: Cell<BridgeKey>,
}

fn bridges(ev: &EventLoop) -> Rc<Bridges> {
    ev.extension_or_insert_with(Bridges::default)
}

/// A key no entry ever has: what `insert` returns on a closed loop.
const NO_ENTRY: BridgeKey = BridgeKey::MAX;

/// Stores `action`; returns the key another thread sends back. On a closed
/// loop nothing is stored (invariant 4) and `action` is dropped.
pub(crate) fn insert(ev: &EventLoop, action: impl FnOnce(&EventLoop) + 'static) -> BridgeKey {
    if ev.is_closed() {
        drop(action);
        return NO_ENTRY;
    }
    let bridges = bridges(ev);
    let key = bridges.next.get();
    bridges.next.set(key + 1);
    bridges.entries.borrow_mut().insert(key, Box::new(action));
    key
}

/// Runs (and removes) the action under `key`, if it is still there.
pub(crate) fn run(ev: &EventLoop, key: BridgeKey) {
    let action = ev
        .extension::<Bridges>()
        .and_then(|b| b.entries.borrow_mut().remove(&key));
    if let Some(action) = action {
        action(ev);
    }
}

/// Drops the action under `key` without running it.
pub(crate) fn forget(ev: &EventLoop, key: BridgeKey) {
    let action = ev
        .extension::<Bridges>()
        .and_then(|b| b.entries.borrow_mut().remove(&key));
    drop(action);
}

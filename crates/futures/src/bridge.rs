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

use std::cell::RefCell;
use std::rc::Rc;

use loop_core::EventLoop;
use slab::Slab;

type Action = Box<dyn FnOnce(&EventLoop)>;

#[derive(Default)]
pub(crate) struct Bridges {
    entries: RefCell<Slab<Action>>,
}

fn bridges(ev: &EventLoop) -> Rc<Bridges> {
    ev.extension_or_insert_with(Bridges::default)
}

/// Stores `action`; returns the key another thread sends back.
pub(crate) fn insert(ev: &EventLoop, action: impl FnOnce(&EventLoop) + 'static) -> usize {
    bridges(ev).entries.borrow_mut().insert(Box::new(action))
}

/// Runs (and removes) the action under `key`, if it is still there.
pub(crate) fn run(ev: &EventLoop, key: usize) {
    let action = ev
        .extension::<Bridges>()
        .and_then(|b| b.entries.borrow_mut().try_remove(key));
    if let Some(action) = action {
        action(ev);
    }
}

/// Drops the action under `key` without running it.
pub(crate) fn forget(ev: &EventLoop, key: usize) {
    let action = ev
        .extension::<Bridges>()
        .and_then(|b| b.entries.borrow_mut().try_remove(key));
    drop(action);
}

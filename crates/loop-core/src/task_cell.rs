//! [`TaskCell`]: one allocation holding a task's state *and* its coroutine,
//! pinned in place, so spawning a task costs one `Rc` instead of an `Rc`
//! plus a `Box` for the coroutine.
//!
//! This is loop-core's one `unsafe` seam for tasks (the benchmark that
//! shows the need is `create_task_run` in `docs/performance.md`): safe Rust
//! can poll a `!Unpin` future only through a `Box::pin` of its own, because
//! pinning a field of a shared allocation needs a promise the compiler
//! cannot check. The promise is kept here, once, so the layers above
//! (`loop-futures` forbids `unsafe`) never make it.
//!
//! Invariants (what makes [`TaskCell::poll_body`] sound):
//! 1. A `TaskCell` exists only inside the `Pin<Rc<_>>` that
//!    [`TaskCell::new`] returns. It is `!Unpin` (`PhantomPinned`), so safe
//!    code can never move it out of that `Rc` again (`Pin::into_inner`
//!    needs `Unpin`; no `&mut TaskCell` is ever handed out).
//! 2. The body is *structurally pinned*: no method moves it or gives out
//!    `&mut F` or `F`. It leaves the cell only by being dropped in place
//!    ([`TaskCell::drop_body`] or the cell's own drop), which the pinning
//!    contract allows.
//! 3. The body is polled under a `RefCell` borrow, so a poll cannot
//!    re-enter itself and [`TaskCell::drop_body`] cannot drop it while it is
//!    being polled (it reports `false` instead).

use std::any::Any;
use std::cell::RefCell;
use std::future::Future;
use std::marker::PhantomPinned;
use std::panic::Location;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use crate::event_loop::EventLoop;
use crate::runnable::Runnable;

/// What a [`TaskCell`] does when the loop runs it: the task layer's side of
/// the seam, implemented for the cell's head type.
///
/// Every `TaskCell<H, F>` whose head implements `TaskHooks<F>` is a
/// [`Runnable`]; each `Runnable` method forwards to the hook of the same
/// name.
pub trait TaskHooks<F>: Sized + 'static {
    /// One step: see [`Runnable::run`].
    fn run(cell: Pin<Rc<TaskCell<Self, F>>>, ev: &EventLoop);

    /// See [`Runnable::on_loop_closed`].
    fn on_loop_closed(cell: Pin<Rc<TaskCell<Self, F>>>, ev: &EventLoop) {
        let _ = (cell, ev);
    }

    /// See [`Runnable::site`].
    fn site(cell: &TaskCell<Self, F>) -> Option<&'static Location<'static>> {
        let _ = cell;
        None
    }

    /// See [`Runnable::collect`].
    fn collect(cell: Pin<Rc<TaskCell<Self, F>>>, sink: &mut dyn Any) {
        let _ = (cell, sink);
    }
}

/// A task's state (`head`) and its coroutine (`body`) in one pinned
/// allocation. See the module docs for the guarantees.
pub struct TaskCell<H, F> {
    // Declared first: the coroutine is dropped before the state it may
    // have been using.
    body: RefCell<Option<F>>,
    head: H,
    _pinned: PhantomPinned,
}

impl<H, F> TaskCell<H, F> {
    /// Allocates a cell; the only way to make one (invariant 1).
    pub fn new(head: H, body: F) -> Pin<Rc<Self>> {
        Rc::pin(TaskCell {
            body: RefCell::new(Some(body)),
            head,
            _pinned: PhantomPinned,
        })
    }

    /// The task's state.
    #[inline]
    pub fn head(&self) -> &H {
        &self.head
    }

    /// True while the body has not been dropped.
    pub fn has_body(&self) -> bool {
        self.body.try_borrow().map_or(true, |b| b.is_some())
    }

    /// True while the body is being polled.
    pub fn is_polling(&self) -> bool {
        self.body.try_borrow_mut().is_err()
    }

    /// Drops the body in place. Returns false (and drops nothing) if it is
    /// being polled right now (invariant 3).
    pub fn drop_body(&self) -> bool {
        let Ok(mut body) = self.body.try_borrow_mut() else {
            return false;
        };
        // Assigning drops the old value *in place* (invariant 2); `take()`
        // would move a pinned coroutine out first. The borrow stays held
        // meanwhile, so user code run by the coroutine's drop sees the
        // cell as busy (`is_polling`), never a half-dropped body.
        *body = None;
        true
    }

    /// Polls the body once. `None` if there is no body any more or it is
    /// already being polled (a re-entrant poll). When the body finishes,
    /// its output is put in `output` and the step reads `Poll::Ready(())`.
    ///
    /// The output goes through `output` rather than the return value so a
    /// step that stays pending returns one small value in registers: a
    /// `Poll<F::Output>` returned through memory, over a `catch_unwind`,
    /// is written with narrow stores and read back with wide loads, which
    /// stalls on store-to-load forwarding every step (docs/performance.md,
    /// section 12).
    #[allow(unsafe_code)]
    #[inline(always)]
    pub fn poll_body(
        self: Pin<&Self>,
        cx: &mut Context<'_>,
        output: &mut Option<F::Output>,
    ) -> Option<Poll<()>>
    where
        F: Future,
    {
        let mut slot = self.get_ref().body.try_borrow_mut().ok()?;
        let body = slot.as_mut()?;
        // SAFETY: `self` is pinned, and the body is structurally pinned
        // (module invariants 1 and 2): it lives inside this pinned cell and
        // is never moved until it is dropped in place, so pinning it here
        // keeps `Pin`'s contract.
        let body = unsafe { Pin::new_unchecked(body) };
        match body.poll(cx) {
            Poll::Pending => Some(Poll::Pending),
            Poll::Ready(value) => {
                *output = Some(value);
                Some(Poll::Ready(()))
            }
        }
    }
}

impl<H, F> std::fmt::Debug for TaskCell<H, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskCell")
            .field("has_body", &self.has_body())
            .finish_non_exhaustive()
    }
}

impl<H: TaskHooks<F>, F: 'static> Runnable for TaskCell<H, F> {
    fn run(self: Pin<Rc<Self>>, ev: &EventLoop) {
        H::run(self, ev);
    }

    fn on_loop_closed(self: Pin<Rc<Self>>, ev: &EventLoop) {
        H::on_loop_closed(self, ev);
    }

    fn site(&self) -> Option<&'static Location<'static>> {
        H::site(self)
    }

    fn collect(self: Pin<Rc<Self>>, sink: &mut dyn Any) {
        H::collect(self, sink);
    }
}

//! [`shield`]: protect an awaitable from cancellation (asyncio's
//! `asyncio.shield`).
//!
//! Invariants:
//! 1. Cancelling the returned outer future (or the task awaiting it) leaves
//!    the inner task or future running.
//! 2. The outer future mirrors the inner one's outcome unless it was
//!    cancelled first; an inner error nobody will see is marked retrieved
//!    only when the outer was cancelled (asyncio's behaviour).

use std::panic::Location;

use crate::error::Error;
use crate::future::Future;
use crate::task::Task;

/// What [`shield`] accepts: a [`Task`] or a [`Future`].
pub trait Shieldable<T>: sealed::Sealed {
    #[doc(hidden)]
    fn __outcome(&self) -> Option<Result<T, Error>>;
    #[doc(hidden)]
    fn __on_done(&self, f: Box<dyn FnOnce()>) -> crate::CallbackId;
    #[doc(hidden)]
    fn __remove(&self, id: crate::CallbackId);
    #[doc(hidden)]
    fn __loop(&self) -> loop_core::EventLoop;
}

mod sealed {
    pub trait Sealed {}
    impl<T> Sealed for crate::Task<T> {}
    impl<T> Sealed for crate::Future<T> {}
}

impl<T: Clone + 'static> Shieldable<T> for Task<T> {
    fn __outcome(&self) -> Option<Result<T, Error>> {
        self.done().then(|| self.result())
    }
    fn __on_done(&self, f: Box<dyn FnOnce()>) -> crate::CallbackId {
        self.add_done_callback(move |_| f())
    }
    fn __remove(&self, id: crate::CallbackId) {
        self.remove_done_callback(id);
    }
    fn __loop(&self) -> loop_core::EventLoop {
        self.get_loop()
    }
}

impl<T: Clone + 'static> Shieldable<T> for Future<T> {
    fn __outcome(&self) -> Option<Result<T, Error>> {
        self.done().then(|| self.result())
    }
    fn __on_done(&self, f: Box<dyn FnOnce()>) -> crate::CallbackId {
        self.add_done_callback(move |_| f())
    }
    fn __remove(&self, id: crate::CallbackId) {
        self.remove_done_callback(id);
    }
    fn __loop(&self) -> loop_core::EventLoop {
        self.get_loop()
    }
}

/// Returns a future that mirrors `inner` but whose cancellation does not
/// cancel `inner`.
///
/// Equivalent of [`asyncio.shield`](https://docs.python.org/3/library/asyncio-task.html#asyncio.shield).
/// Wrap a coroutine in a task first (`create_task`) to shield it.
///
/// # Examples
///
/// ```
/// use loop_core::EventLoop;
/// use loop_futures::{Error, EventLoopExt, shield};
///
/// let ev = EventLoop::new().unwrap();
/// let inner = ev.create_task(async { Ok::<_, Error>(5) }).unwrap();
/// let outer = shield(&inner);
/// outer.cancel(None);
/// assert_eq!(ev.run_until_complete(inner).unwrap(), 5);
/// ```
#[track_caller]
pub fn shield<T, S>(inner: &S) -> Future<T>
where
    T: Clone + 'static,
    S: Shieldable<T> + Clone + 'static,
{
    let outer: Future<T> = Future::with_site(&inner.__loop(), Location::caller());
    if let Some(outcome) = inner.__outcome() {
        let _ = match outcome {
            Ok(value) => outer.set_result(value),
            Err(Error::Cancelled(c)) => {
                outer.cancel(c.message());
                Ok(())
            }
            Err(err) => outer.set_exception(err),
        };
        return outer;
    }
    let out = outer.clone();
    let source = inner.clone();
    let id = inner.__on_done(Box::new(move || {
        let outcome = source.__outcome();
        if out.cancelled() {
            return;
        }
        let _ = match outcome {
            Some(Ok(value)) => out.set_result(value),
            Some(Err(Error::Cancelled(_))) => {
                out.cancel(None);
                Ok(())
            }
            Some(Err(err)) => out.set_exception(err),
            None => Ok(()),
        };
    }));
    let source = inner.clone();
    outer.add_done_callback(move |outer| {
        if outer.cancelled() {
            source.__remove(id);
        }
    });
    outer
}

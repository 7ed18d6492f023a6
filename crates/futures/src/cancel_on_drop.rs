//! [`CancelOnDrop`]: awaiting a [`Future`] so that giving up on the await
//! cancels it.
//!
//! A tulip [`Future`] handle dropped mid-await leaves the future alone
//! (other handles may await it too). An `async fn` that made a future only
//! to await it (`to_thread`, `getaddrinfo`) wants asyncio's behaviour
//! instead: when the awaiting coroutine is cancelled, so is the future it
//! awaits (for an executor job, one not started yet then never runs).
//!
//! Invariant: dropped before its future completed, it cancels the future,
//! polled or not; once its await returned, dropping it does nothing.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use crate::error::Error;
use crate::future::Future;

/// Awaits a [`Future`]; dropped before the future completed, it cancels
/// it. Made by [`Future::cancel_on_drop`].
#[must_use = "futures do nothing unless awaited"]
#[derive(Debug)]
pub struct CancelOnDrop<T: 'static> {
    fut: Future<T>,
    finished: bool,
}

impl<T: 'static> CancelOnDrop<T> {
    pub(crate) fn new(fut: Future<T>) -> Self {
        CancelOnDrop {
            fut,
            finished: false,
        }
    }
}

impl<T: Clone + 'static> std::future::Future for CancelOnDrop<T> {
    type Output = Result<T, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let outcome = ready!(Pin::new(&mut self.fut).poll(cx));
        self.finished = true;
        Poll::Ready(outcome)
    }
}

impl<T: 'static> Drop for CancelOnDrop<T> {
    fn drop(&mut self) {
        if !self.finished && !self.fut.done() {
            self.fut.cancel(None);
        }
    }
}

//! [`yield_now`]: give the other ready callbacks a turn (asyncio's
//! `await asyncio.sleep(0)`).

use std::pin::Pin;
use std::task::{Context, Poll};

use crate::checkpoint::checkpoint_if_cancelled;
use crate::error::Error;

/// Suspends the current task for exactly one loop iteration: it runs
/// again after the callbacks that were already ready.
///
/// Equivalent of `await asyncio.sleep(0)`. Like every tulip await point it
/// delivers a pending cancellation: it returns `Err(Error::Cancelled)` if
/// the task was cancelled.
pub fn yield_now() -> YieldNow {
    YieldNow { yielded: false }
}

/// The future returned by [`yield_now`].
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct YieldNow {
    yielded: bool,
}

impl std::future::Future for YieldNow {
    type Output = Result<(), Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        checkpoint_if_cancelled()?;
        if self.yielded {
            return Poll::Ready(Ok(()));
        }
        self.yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

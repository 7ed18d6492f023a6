//! [`checkpoint_if_cancelled`]: delivers a pending cancellation at an await
//! point written by hand.
//!
//! A task suspended on a tulip future is cancelled through that future. A
//! task suspended on anything else (a future that parks the task's `Waker`
//! somewhere) is instead marked `must_cancel` and woken (see the task
//! module's "Cancellation"); such a future calls this at the start of each
//! poll so that the wake turns into `Err(Error::Cancelled)`, as every tulip
//! await point does.

use crate::error::Error;
use crate::task;

/// Returns `Err(Error::Cancelled)` if the current task has a cancellation
/// request that no await has delivered yet, and marks it delivered;
/// `Ok(())` otherwise, and outside a task.
///
/// For futures written by hand that suspend the task on its `Waker`
/// instead of on a tulip [`Future`](crate::Future): call it first in
/// `poll`, and the task's [`cancel`](crate::Task::cancel) reaches the
/// coroutine there. The name is trio's, whose
/// `checkpoint_if_cancelled` does the same.
#[inline]
pub fn checkpoint_if_cancelled() -> Result<(), Error> {
    match task::take_must_cancel() {
        Some(err) => Err(err),
        None => Ok(()),
    }
}

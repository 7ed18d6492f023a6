//! [`sleep`] and [`sleep_until`]: suspend the current task on a timer
//! (asyncio's `asyncio.sleep`).
//!
//! Invariants:
//! 1. A sleep is a loop [`Future`] resolved by a `call_at` timer, so a
//!    task's `cancel()` cancels that future (delivering `Err(Cancelled)`),
//!    and the timer is cancelled as soon as the sleep is dropped or done.
//! 2. `sleep(Duration::ZERO)` is [`yield_now`](crate::yield_now): exactly
//!    one loop iteration, no timer.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use loop_core::{EventLoop, TimerHandle, get_running_loop};

use crate::error::Error;
use crate::future::Future;
use crate::yield_now::{YieldNow, yield_now};

/// Suspends the current task for `delay` on the loop's clock.
///
/// Equivalent of [`asyncio.sleep`](https://docs.python.org/3/library/asyncio-task.html#asyncio.sleep).
/// Resolves to `Err(Error::Cancelled)` if the task is cancelled meanwhile,
/// or an error if no loop is running.
#[track_caller]
pub fn sleep(delay: Duration) -> Sleep {
    if delay.is_zero() {
        return Sleep {
            state: SleepState::Yield(yield_now()),
        };
    }
    match get_running_loop() {
        Ok(ev) => {
            let when = ev.time_after(delay);
            Sleep::at(&ev, when)
        }
        Err(err) => Sleep {
            state: SleepState::Failed(Some(err.into())),
        },
    }
}

/// Suspends the current task until `when` on the loop's clock.
///
/// # Errors
///
/// As [`sleep`].
#[track_caller]
pub fn sleep_until(when: Instant) -> Sleep {
    match get_running_loop() {
        Ok(ev) => Sleep::at(&ev, when),
        Err(err) => Sleep {
            state: SleepState::Failed(Some(err.into())),
        },
    }
}

/// The future returned by [`sleep`] and [`sleep_until`].
#[must_use = "futures do nothing unless awaited"]
#[derive(Debug)]
pub struct Sleep {
    state: SleepState,
}

#[derive(Debug)]
enum SleepState {
    Timer {
        future: Future<()>,
        timer: TimerHandle,
    },
    Yield(YieldNow),
    Failed(Option<Error>),
}

impl Sleep {
    #[track_caller]
    fn at(ev: &EventLoop, when: Instant) -> Sleep {
        let future = Future::new(ev);
        let setter = future.clone();
        match ev.call_at(when, move |_| {
            if !setter.done() {
                let _ = setter.set_result(());
            }
        }) {
            Ok(timer) => Sleep {
                state: SleepState::Timer { future, timer },
            },
            Err(err) => Sleep {
                state: SleepState::Failed(Some(err.into())),
            },
        }
    }

    /// When the sleep ends, on the loop's clock (`None` for a zero sleep).
    pub fn deadline(&self) -> Option<Instant> {
        match &self.state {
            SleepState::Timer { timer, .. } => Some(timer.when()),
            _ => None,
        }
    }
}

impl std::future::Future for Sleep {
    type Output = Result<(), Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.get_mut().state {
            SleepState::Timer { future, timer } => {
                let result = std::task::ready!(Pin::new(future).poll(cx));
                timer.cancel();
                Poll::Ready(result)
            }
            SleepState::Yield(y) => Pin::new(y).poll(cx),
            SleepState::Failed(err) => Poll::Ready(Err(err.take().unwrap_or_else(|| {
                crate::error::InvalidStateError::new("polled after completion").into()
            }))),
        }
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let SleepState::Timer { timer, .. } = &self.state {
            timer.cancel();
        }
    }
}

//! The poller: mio's `Poll`, its event buffer, and a precise timer.
//!
//! Invariants:
//! 1. Reserved tokens have bit 63 set (see [`io`](crate::io)): the waker,
//!    the precise timer and one token per signal.
//! 2. A poll never returns before the earliest timer's deadline unless an
//!    event arrived; and it wakes no later than the timer resolution after
//!    it. mio turns a timeout into whole milliseconds *rounded up*, so on
//!    its own it may fire up to 1 ms late; on Linux a `timerfd` armed with
//!    the exact remaining nanoseconds wakes the poll instead (sub-millisecond
//!    precision; re-armed only when the earliest deadline changes).
//! 3. `EINTR` is never surfaced: an interrupted poll counts as a poll that
//!    returned no events, and the loop simply goes round again.
//! 4. One `Events` buffer is reused for every poll (no allocation per poll).

use std::io;
use std::time::{Duration, Instant};

use mio::{Events, Poll, Registry, Token};

use crate::constants::MAXIMUM_SELECT_TIMEOUT;

/// The token of the cross-thread waker.
pub(crate) const WAKER_TOKEN: Token = Token(usize::MAX);
/// The token of the precise timer.
pub(crate) const TIMER_TOKEN: Token = Token(usize::MAX - 1);
const SIGNAL_TOKEN_BASE: usize = usize::MAX - 2;

/// The token of signal `sig`'s self-pipe.
pub(crate) fn signal_token(sig: i32) -> Token {
    Token(SIGNAL_TOKEN_BASE - sig as usize)
}

/// The signal whose self-pipe has this token.
pub(crate) fn token_signal(token: Token) -> Option<i32> {
    let distance = SIGNAL_TOKEN_BASE.checked_sub(token.0)?;
    if distance < 1024 {
        Some(distance as i32)
    } else {
        None
    }
}

pub(crate) struct Poller {
    poll: Poll,
    pub(crate) events: Events,
    #[cfg(target_os = "linux")]
    precise: precise::PreciseTimer,
}

impl Poller {
    /// A poller and the waker registered with it.
    pub(crate) fn new(capacity: usize) -> io::Result<(Poller, mio::Waker)> {
        let poll = Poll::new()?;
        let waker = mio::Waker::new(poll.registry(), WAKER_TOKEN)?;
        #[cfg(target_os = "linux")]
        let precise = precise::PreciseTimer::new(poll.registry())?;
        let poller = Poller {
            poll,
            events: Events::with_capacity(capacity),
            #[cfg(target_os = "linux")]
            precise,
        };
        Ok((poller, waker))
    }

    pub(crate) fn registry(&self) -> &Registry {
        self.poll.registry()
    }

    /// Polls for events. `deadline` is the earliest timer on the monotonic
    /// clock (`None`: block until an event), `now` the time it was computed
    /// against; `zero` asks for a non-blocking poll.
    pub(crate) fn poll(
        &mut self,
        zero: bool,
        deadline: Option<Instant>,
        now: Instant,
    ) -> io::Result<()> {
        let timeout = if zero {
            Some(Duration::ZERO)
        } else if let Some(deadline) = deadline {
            let remaining = deadline.saturating_duration_since(now);
            #[cfg(target_os = "linux")]
            if !remaining.is_zero() {
                self.precise.arm(deadline, remaining)?;
            }
            Some(remaining.min(MAXIMUM_SELECT_TIMEOUT))
        } else {
            None
        };
        interrupted_is_empty(self.poll.poll(&mut self.events, timeout))
    }

    /// The precise timer fired: it is disarmed now.
    pub(crate) fn timer_fired(&mut self) {
        #[cfg(target_os = "linux")]
        self.precise.fired();
    }
}

/// Invariant 3: `EINTR` becomes an empty poll.
fn interrupted_is_empty(result: io::Result<()>) -> io::Result<()> {
    match result {
        Err(err) if err.kind() == io::ErrorKind::Interrupted => Ok(()),
        other => other,
    }
}

#[cfg(target_os = "linux")]
mod precise {
    use std::io;
    use std::os::fd::{AsRawFd, OwnedFd};
    use std::time::{Duration, Instant};

    use mio::unix::SourceFd;
    use mio::{Interest, Registry};
    use rustix::time::{
        Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags, Timespec, timerfd_create,
        timerfd_settime,
    };

    use super::TIMER_TOKEN;

    /// A `timerfd` on `CLOCK_MONOTONIC` (the clock `Instant` reads).
    pub(super) struct PreciseTimer {
        fd: OwnedFd,
        armed: Option<Instant>,
    }

    impl PreciseTimer {
        pub(super) fn new(registry: &Registry) -> io::Result<Self> {
            let fd = timerfd_create(
                TimerfdClockId::Monotonic,
                TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
            )?;
            registry.register(
                &mut SourceFd(&fd.as_raw_fd()),
                TIMER_TOKEN,
                Interest::READABLE,
            )?;
            Ok(PreciseTimer { fd, armed: None })
        }

        /// Arms the timer to fire `remaining` from now, unless it is already
        /// armed for `deadline`. Arming relative to a `now` read before this
        /// call can only make it fire later than `deadline`, never earlier.
        pub(super) fn arm(&mut self, deadline: Instant, remaining: Duration) -> io::Result<()> {
            if self.armed == Some(deadline) {
                return Ok(());
            }
            let zero = Timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            let value = Timespec {
                tv_sec: remaining.as_secs().min(i64::MAX as u64) as i64,
                tv_nsec: remaining.subsec_nanos().into(),
            };
            timerfd_settime(
                &self.fd,
                TimerfdTimerFlags::empty(),
                &Itimerspec {
                    it_interval: zero,
                    it_value: value,
                },
            )?;
            self.armed = Some(deadline);
            Ok(())
        }

        pub(super) fn fired(&mut self) {
            self.armed = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eintr_is_an_empty_poll_and_other_errors_pass() {
        assert!(interrupted_is_empty(Err(io::ErrorKind::Interrupted.into())).is_ok());
        let err = interrupted_is_empty(Err(io::ErrorKind::PermissionDenied.into())).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied);
    }

    #[test]
    fn signal_tokens_round_trip_and_are_reserved() {
        for sig in [1, 2, 15, 64] {
            let token = signal_token(sig);
            assert_eq!(token_signal(token), Some(sig));
            assert!(crate::io::unpack_token(token).is_none());
            assert_ne!(token, WAKER_TOKEN);
            assert_ne!(token, TIMER_TOKEN);
        }
        assert_eq!(token_signal(WAKER_TOKEN), None);
        assert_eq!(token_signal(Token(0)), None);
    }
}

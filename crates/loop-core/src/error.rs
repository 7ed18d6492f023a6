//! [`LoopError`]: what the loop's own operations can fail with.
//!
//! Invariants:
//! 1. Each variant's `Display` text is CPython's message for the same
//!    situation where one exists, so ported tests can compare strings.
//! 2. OS failures are carried unchanged as [`std::io::Error`]; they are never
//!    re-wrapped to add text.

use std::fmt;
use std::io;

/// The error type of [`EventLoop`](crate::EventLoop) operations.
///
/// asyncio raises `RuntimeError` or `ValueError` for these; tulip returns
/// them as values. Matching on the variant is the Rust form of asyncio's
/// "check the message" idiom.
#[derive(Debug)]
#[non_exhaustive]
pub enum LoopError {
    /// The loop was closed: nothing can be scheduled or run on it any more.
    /// (asyncio: `RuntimeError('Event loop is closed')`.)
    Closed,
    /// `run_forever` was called on a loop that is already running.
    /// (asyncio: `RuntimeError('This event loop is already running')`.)
    AlreadyRunning,
    /// `run_forever` was called while another loop runs on this thread.
    /// (asyncio: `RuntimeError('Cannot run the event loop while another loop is running')`.)
    AnotherLoopRunning,
    /// `close` was called on a running loop.
    /// (asyncio: `RuntimeError('Cannot close a running event loop')`.)
    CloseRunning,
    /// An operation that needs a running loop found none on this thread.
    /// (asyncio: `RuntimeError('no running event loop')`.)
    NoRunningLoop,
    /// A signal number outside `1..NSIG`. (asyncio: `ValueError('sig N out of range')`.)
    SignalOutOfRange(i32),
    /// A signal that cannot be caught (`SIGKILL`, `SIGSTOP`, and the ones the
    /// process must not intercept). (asyncio: `RuntimeError('sig N cannot be caught')`.)
    SignalCannotBeCaught(i32),
    /// The operating system refused the operation.
    Io(io::Error),
}

impl LoopError {
    /// True for [`LoopError::Closed`].
    pub fn is_closed(&self) -> bool {
        matches!(self, LoopError::Closed)
    }
}

impl fmt::Display for LoopError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoopError::Closed => f.write_str("Event loop is closed"),
            LoopError::AlreadyRunning => f.write_str("This event loop is already running"),
            LoopError::AnotherLoopRunning => {
                f.write_str("Cannot run the event loop while another loop is running")
            }
            LoopError::CloseRunning => f.write_str("Cannot close a running event loop"),
            LoopError::NoRunningLoop => f.write_str("no running event loop"),
            LoopError::SignalOutOfRange(sig) => write!(f, "sig {sig} out of range"),
            LoopError::SignalCannotBeCaught(sig) => write!(f, "sig {sig} cannot be caught"),
            LoopError::Io(err) => fmt::Display::fmt(err, f),
        }
    }
}

impl std::error::Error for LoopError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LoopError::Io(err) => Some(err),
            _ => None,
        }
    }
}

impl From<io::Error> for LoopError {
    fn from(err: io::Error) -> Self {
        LoopError::Io(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_match_cpython() {
        assert_eq!(LoopError::Closed.to_string(), "Event loop is closed");
        assert_eq!(
            LoopError::AlreadyRunning.to_string(),
            "This event loop is already running"
        );
        assert_eq!(
            LoopError::SignalOutOfRange(0).to_string(),
            "sig 0 out of range"
        );
        assert_eq!(
            LoopError::SignalCannotBeCaught(9).to_string(),
            "sig 9 cannot be caught"
        );
        let io = LoopError::from(io::Error::from_raw_os_error(9));
        assert!(std::error::Error::source(&io).is_some());
    }
}

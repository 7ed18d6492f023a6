//! The errors a future can hold or return, named after asyncio's exceptions.
//!
//! Invariants:
//! 1. [`Error`] is cheap to clone (`Arc`s inside): a future hands the same
//!    error to every awaiter and to every `result()` call, as asyncio
//!    re-raises the same exception object.
//! 2. [`Error`] is `Send + Sync`, so a result can cross threads through a
//!    [`ConcurrentFuture`](crate::ConcurrentFuture).
//! 3. `Display` texts follow CPython's messages where they exist.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use loop_core::{LoopError, SharedError};
use parking_lot::Mutex;

/// The operation was cancelled (asyncio's `CancelledError`), with the
/// message given to `cancel(msg)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CancelledError {
    message: Option<Arc<str>>,
}

impl CancelledError {
    /// A cancellation with an optional message.
    pub fn new(message: Option<&str>) -> Self {
        CancelledError {
            message: message.map(Arc::from),
        }
    }

    /// The message passed to `cancel`, if any.
    pub fn message(&self) -> Option<&str> {
        self.message.as_deref()
    }
}

impl fmt::Display for CancelledError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.message {
            Some(msg) => f.write_str(msg),
            None => f.write_str("cancelled"),
        }
    }
}

impl std::error::Error for CancelledError {}

/// An operation is not allowed in the future's current state (asyncio's
/// `InvalidStateError`): reading a result that is not set, setting one
/// twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidStateError {
    message: Arc<str>,
}

impl InvalidStateError {
    /// An error with `message`.
    pub fn new(message: impl AsRef<str>) -> Self {
        InvalidStateError {
            message: Arc::from(message.as_ref()),
        }
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for InvalidStateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for InvalidStateError {}

/// A deadline passed (asyncio's `TimeoutError`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeoutError;

impl fmt::Display for TimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("timed out")
    }
}

impl std::error::Error for TimeoutError {}

/// A misuse asyncio reports as `RuntimeError`: a task awaiting itself, a
/// future of another loop, a loop stopped before its future completed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeError {
    message: Arc<str>,
}

impl RuntimeError {
    /// An error with `message`.
    pub fn new(message: impl AsRef<str>) -> Self {
        RuntimeError {
            message: Arc::from(message.as_ref()),
        }
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for RuntimeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for RuntimeError {}

/// A task's coroutine (or an executor job) panicked.
///
/// One pointer wide, so it does not widen [`Error`] (every future's state
/// holds one).
#[derive(Clone)]
pub struct PanicError {
    inner: Arc<PanicInner>,
}

struct PanicInner {
    message: Box<str>,
    payload: Mutex<Option<Box<dyn Any + Send>>>,
}

impl PanicError {
    /// Wraps a payload caught by `catch_unwind`.
    pub fn new(payload: Box<dyn Any + Send>) -> Self {
        let message: Box<str> = if let Some(s) = payload.downcast_ref::<&'static str>() {
            Box::from(*s)
        } else if let Some(s) = payload.downcast_ref::<String>() {
            Box::from(s.as_str())
        } else {
            Box::from("<non-string panic payload>")
        };
        PanicError {
            inner: Arc::new(PanicInner {
                message,
                payload: Mutex::new(Some(payload)),
            }),
        }
    }

    /// The panic message.
    pub fn message(&self) -> &str {
        &self.inner.message
    }

    /// Takes the original payload (once; later calls get `None`), e.g. to
    /// `std::panic::resume_unwind` it.
    pub fn take_payload(&self) -> Option<Box<dyn Any + Send>> {
        self.inner.payload.lock().take()
    }
}

impl fmt::Debug for PanicError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PanicError")
            .field("message", &self.message())
            .finish()
    }
}

impl fmt::Display for PanicError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "panicked: {}", self.message())
    }
}

impl std::error::Error for PanicError {}

/// Several errors at once (asyncio's `ExceptionGroup`): what a
/// [`TaskGroup`](crate::TaskGroup) raises when children failed.
///
/// One pointer wide, like [`PanicError`].
#[derive(Debug, Clone)]
pub struct ExceptionGroup {
    inner: Arc<GroupInner>,
}

#[derive(Debug)]
struct GroupInner {
    message: Box<str>,
    exceptions: Box<[Error]>,
}

impl ExceptionGroup {
    /// A group of `exceptions` with `message`.
    pub fn new(message: impl AsRef<str>, exceptions: Vec<Error>) -> Self {
        ExceptionGroup {
            inner: Arc::new(GroupInner {
                message: Box::from(message.as_ref()),
                exceptions: exceptions.into_boxed_slice(),
            }),
        }
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.inner.message
    }

    /// Each error, in the order they happened.
    pub fn exceptions(&self) -> &[Error] {
        &self.inner.exceptions
    }
}

impl fmt::Display for ExceptionGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.exceptions().len();
        write!(
            f,
            "{} ({n} sub-exception{})",
            self.message(),
            if n == 1 { "" } else { "s" }
        )
    }
}

impl std::error::Error for ExceptionGroup {}

/// What a future holds when it did not produce a value, and what its
/// methods return on misuse.
///
/// Awaiting a `Future<T>` yields `Result<T, Error>`; coroutines propagate
/// it with `?` (that is how a cancellation travels, see
/// [`Task::cancel`](crate::Task::cancel)).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Error {
    /// asyncio `CancelledError`.
    Cancelled(CancelledError),
    /// asyncio `InvalidStateError`.
    InvalidState(InvalidStateError),
    /// asyncio `TimeoutError`.
    Timeout(TimeoutError),
    /// asyncio `RuntimeError` raised by the runtime itself.
    Runtime(RuntimeError),
    /// The coroutine or job panicked.
    Panic(PanicError),
    /// Any other error: what `set_exception` stored or a coroutine returned.
    Exception(SharedError),
    /// Several errors (asyncio `ExceptionGroup`), from a task group.
    Group(ExceptionGroup),
}

impl Error {
    /// Wraps any error as an exception.
    pub fn new<E>(err: E) -> Self
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        Error::Exception(Arc::new(err))
    }

    /// An exception carrying just a message.
    pub fn msg(message: impl Into<String>) -> Self {
        Error::Exception(Arc::new(Message(message.into())))
    }

    /// A cancellation with an optional message.
    pub fn cancelled(message: Option<&str>) -> Self {
        Error::Cancelled(CancelledError::new(message))
    }

    /// True for [`Error::Cancelled`].
    pub fn is_cancelled(&self) -> bool {
        matches!(self, Error::Cancelled(_))
    }

    /// True for [`Error::Timeout`].
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout(_))
    }

    /// True for [`Error::InvalidState`].
    pub fn is_invalid_state(&self) -> bool {
        matches!(self, Error::InvalidState(_))
    }

    /// The group, if this is an [`Error::Group`].
    pub fn as_group(&self) -> Option<&ExceptionGroup> {
        match self {
            Error::Group(g) => Some(g),
            _ => None,
        }
    }

    /// True for [`Error::Panic`].
    pub fn is_panic(&self) -> bool {
        matches!(self, Error::Panic(_))
    }

    /// The cancellation, if this is one.
    pub fn as_cancelled(&self) -> Option<&CancelledError> {
        match self {
            Error::Cancelled(c) => Some(c),
            _ => None,
        }
    }

    /// The wrapped exception downcast to `E`, if it is one.
    pub fn downcast_ref<E: std::error::Error + 'static>(&self) -> Option<&E> {
        match self {
            Error::Exception(err) => err.downcast_ref::<E>(),
            _ => None,
        }
    }

    /// This error as a [`SharedError`] (for the loop's exception handler).
    pub fn to_shared(&self) -> SharedError {
        match self {
            Error::Exception(err) => err.clone(),
            other => Arc::new(other.clone()),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Cancelled(e) => write!(f, "CancelledError: {e}"),
            Error::InvalidState(e) => write!(f, "InvalidStateError: {e}"),
            Error::Timeout(e) => write!(f, "TimeoutError: {e}"),
            Error::Runtime(e) => write!(f, "RuntimeError: {e}"),
            Error::Panic(e) => fmt::Display::fmt(e, f),
            Error::Exception(e) => fmt::Display::fmt(e, f),
            Error::Group(e) => fmt::Display::fmt(e, f),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Exception(e) => Some(&**e),
            _ => None,
        }
    }
}

#[derive(Debug)]
struct Message(String);

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Message {}

macro_rules! from_variant {
    ($ty:ty => $variant:ident) => {
        impl From<$ty> for Error {
            fn from(err: $ty) -> Self {
                Error::$variant(err)
            }
        }
    };
}

from_variant!(CancelledError => Cancelled);
from_variant!(InvalidStateError => InvalidState);
from_variant!(TimeoutError => Timeout);
from_variant!(RuntimeError => Runtime);
from_variant!(PanicError => Panic);
from_variant!(ExceptionGroup => Group);
from_variant!(SharedError => Exception);

impl From<std::io::Error> for Error {
    fn from(err: std::io::Error) -> Self {
        Error::new(err)
    }
}

impl From<LoopError> for Error {
    fn from(err: LoopError) -> Self {
        match err {
            LoopError::Io(io) => Error::new(io),
            other => Error::Runtime(RuntimeError::new(other.to_string())),
        }
    }
}

impl From<Box<dyn std::error::Error + Send + Sync>> for Error {
    fn from(err: Box<dyn std::error::Error + Send + Sync>) -> Self {
        Error::Exception(Arc::from(err))
    }
}

impl From<std::convert::Infallible> for Error {
    fn from(err: std::convert::Infallible) -> Self {
        match err {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_send_sync_and_clone() {
        fn assert_send_sync<T: Send + Sync + Clone>() {}
        assert_send_sync::<Error>();
    }

    #[test]
    fn cancelled_carries_message_and_panic_payload_is_taken_once() {
        let err = Error::cancelled(Some("bye"));
        assert_eq!(
            err.as_cancelled().and_then(CancelledError::message),
            Some("bye")
        );
        assert!(err.is_cancelled());
        let panic = PanicError::new(Box::new("boom"));
        assert_eq!(panic.message(), "boom");
        assert!(panic.take_payload().is_some());
        assert!(panic.take_payload().is_none());
        let io: Error = std::io::Error::other("disk").into();
        assert!(io.downcast_ref::<std::io::Error>().is_some());
        assert_eq!(
            Error::from(LoopError::Closed).to_string(),
            "RuntimeError: Event loop is closed"
        );
    }
}

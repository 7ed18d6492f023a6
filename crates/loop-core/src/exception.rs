//! The exception handler: where errors and panics that no caller can
//! receive are reported (asyncio's `call_exception_handler`).
//!
//! Invariants:
//! 1. A panic in a callback is caught at the loop boundary (one
//!    `catch_unwind` per run step) and becomes an [`ExceptionContext`]; the
//!    loop goes on with the next callback.
//! 2. A panic inside a custom handler is caught too and logged through the
//!    default handler ("Unhandled error in exception handler"), as asyncio
//!    does; it never escapes the loop.
//! 3. The default handler logs with `tracing::error!` and never prints.

use std::any::Any;
use std::borrow::Cow;
use std::error::Error;
use std::fmt;
use std::panic::Location;
use std::rc::Rc;
use std::sync::Arc;

use crate::event_loop::EventLoop;

/// A shared error value: cheap to clone, can cross threads.
pub type SharedError = Arc<dyn Error + Send + Sync>;

/// A custom exception handler (see [`EventLoop::set_exception_handler`]).
pub type ExceptionHandler = Rc<dyn Fn(&EventLoop, ExceptionContext)>;

/// What went wrong, for the exception handler.
///
/// Equivalent of asyncio's exception-handler `context` dict: `message`,
/// `exception`, and where the failing callback was created (asyncio's
/// `handle` / `source_traceback`). Panics keep their payload.
pub struct ExceptionContext {
    message: Cow<'static, str>,
    error: Option<SharedError>,
    panic: Option<Box<dyn Any + Send>>,
    site: Option<&'static Location<'static>>,
    extra: Vec<(&'static str, String)>,
}

impl ExceptionContext {
    /// A context with just a message.
    pub fn new(message: impl Into<Cow<'static, str>>) -> Self {
        ExceptionContext {
            message: message.into(),
            error: None,
            panic: None,
            site: None,
            extra: Vec::new(),
        }
    }

    /// Adds the error (asyncio's `exception` key).
    pub fn with_error(mut self, error: SharedError) -> Self {
        self.error = Some(error);
        self
    }

    /// Adds a caught panic's payload.
    pub fn with_panic(mut self, payload: Box<dyn Any + Send>) -> Self {
        self.panic = Some(payload);
        self
    }

    /// Adds where the failing callback, future or task was created.
    pub fn with_site(mut self, site: &'static Location<'static>) -> Self {
        self.site = Some(site);
        self
    }

    /// Adds a named detail (asyncio's other context keys: `future`, `task`,
    /// `transport`, `protocol`, …).
    pub fn with_extra(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.extra.push((key, value.into()));
        self
    }

    /// The message (asyncio's `message` key).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The error, if one was attached.
    pub fn error(&self) -> Option<&SharedError> {
        self.error.as_ref()
    }

    /// The panic payload, if this reports a panic.
    pub fn panic_payload(&self) -> Option<&(dyn Any + Send)> {
        self.panic.as_deref()
    }

    /// Takes the panic payload (to `resume_unwind` it, say).
    pub fn take_panic(&mut self) -> Option<Box<dyn Any + Send>> {
        self.panic.take()
    }

    /// The panic message when the payload is a string (as `panic!` makes).
    pub fn panic_message(&self) -> Option<&str> {
        let payload = self.panic.as_deref()?;
        payload
            .downcast_ref::<&'static str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
    }

    /// Where the failing callback was created.
    pub fn site(&self) -> Option<&'static Location<'static>> {
        self.site
    }

    /// The value of a named detail.
    pub fn extra(&self, key: &str) -> Option<&str> {
        self.extra
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
    }
}

impl fmt::Debug for ExceptionContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExceptionContext")
            .field("message", &self.message)
            .field("error", &self.error.as_ref().map(|e| e.to_string()))
            .field("panic", &self.panic_message())
            .field("site", &self.site.map(|s| s.to_string()))
            .field("extra", &self.extra)
            .finish()
    }
}

impl fmt::Display for ExceptionContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(err) = &self.error {
            write!(f, "\nexception: {err}")?;
        }
        if self.panic.is_some() {
            write!(
                f,
                "\npanic: {}",
                self.panic_message().unwrap_or("<non-string payload>")
            )?;
        }
        if let Some(site) = self.site {
            write!(f, "\ncreated at: {site}")?;
        }
        for (key, value) in &self.extra {
            write!(f, "\n{key}: {value}")?;
        }
        Ok(())
    }
}

/// The handler used when none is set: logs the context with
/// `tracing::error!`.
///
/// Equivalent of [`loop.default_exception_handler`](https://docs.python.org/3/library/asyncio-eventloop.html#asyncio.loop.default_exception_handler).
pub fn default_exception_handler(context: &ExceptionContext) {
    tracing::error!(target: "tulip", "{context}");
}

//! [`IntoTaskResult`]: what a task's coroutine may return.

use crate::error::Error;

/// The output of a coroutine that can run as a [`Task`](crate::Task).
///
/// asyncio coroutines either return a value or raise. In Rust a coroutine
/// returns `Result<T, E>` (an `Err` becomes the task's exception, an
/// `Err(Error::Cancelled(_))` makes the task cancelled) or `()`.
#[diagnostic::on_unimplemented(
    message = "a task's coroutine must return `()` or `Result<T, E>` with `E: Into<loop_futures::Error>`, not `{Self}`",
    note = "return `Ok::<_, loop_futures::Error>(value)` to run a value-returning coroutine as a task"
)]
pub trait IntoTaskResult: 'static {
    /// The task's result type.
    type Ok: 'static;

    /// Splits the output into the task's result or exception.
    ///
    /// # Errors
    ///
    /// The coroutine's error, converted.
    fn into_task_result(self) -> Result<Self::Ok, Error>;
}

impl IntoTaskResult for () {
    type Ok = ();

    fn into_task_result(self) -> Result<(), Error> {
        Ok(())
    }
}

impl<T: 'static, E: Into<Error> + 'static> IntoTaskResult for Result<T, E> {
    type Ok = T;

    fn into_task_result(self) -> Result<T, Error> {
        self.map_err(Into::into)
    }
}

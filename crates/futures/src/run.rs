//! [`run`]: asyncio's `asyncio.run` — the usual entry point of a program.

use loop_core::get_running_loop;

use crate::error::{Error, RuntimeError};
use crate::runner::Runner;
use crate::task_result::IntoTaskResult;

/// Runs `main` on a fresh loop and tears everything down afterwards: the
/// tasks still pending are cancelled and waited for, the default executor
/// is shut down, and the loop is closed.
///
/// Equivalent of [`asyncio.run`](https://docs.python.org/3/library/asyncio-runner.html#asyncio.run).
///
/// # Errors
///
/// `main`'s own error; [`Error::Runtime`] when called from a running loop.
///
/// # Examples
///
/// ```
/// use loop_futures::{Error, create_task};
///
/// let answer = loop_futures::run(async {
///     let child = create_task(async { Ok::<_, Error>(21) })?;
///     Ok::<_, Error>(child.await? * 2)
/// })
/// .unwrap();
/// assert_eq!(answer, 42);
/// ```
#[track_caller]
pub fn run<F, R>(main: F) -> Result<R::Ok, Error>
where
    F: std::future::Future<Output = R> + 'static,
    R: IntoTaskResult,
{
    if get_running_loop().is_ok() {
        return Err(RuntimeError::new("run() cannot be called from a running event loop").into());
    }
    let mut runner = Runner::new();
    let result = runner.run(main);
    let teardown = runner.close();
    let value = result?;
    teardown?;
    Ok(value)
}

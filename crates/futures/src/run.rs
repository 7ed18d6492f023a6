//! [`run`]: asyncio's `asyncio.run` — the usual entry point of a program.

use loop_core::{EventLoop, get_running_loop};

use crate::error::{Error, RuntimeError};
use crate::ext::EventLoopExt;
use crate::task::all_tasks;
use crate::task_result::IntoTaskResult;
use crate::wrap::shutdown_default_executor;

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
    let ev = EventLoop::new().map_err(Error::from)?;
    let result = ev.run_until_complete(main);
    let teardown =
        cancel_all_tasks(&ev).and_then(|()| ev.run_until_complete(shutdown_default_executor(&ev)));
    ev.close()?;
    let value = result?;
    teardown?;
    Ok(value)
}

/// Cancels every pending task of `ev` and runs the loop until they are all
/// done (asyncio's `_cancel_all_tasks`).
fn cancel_all_tasks(ev: &EventLoop) -> Result<(), Error> {
    let tasks = all_tasks(ev);
    if tasks.is_empty() {
        return Ok(());
    }
    for task in &tasks {
        task.cancel(None);
    }
    while tasks.iter().any(|t| !t.done()) {
        ev.run_once()?;
    }
    Ok(())
}

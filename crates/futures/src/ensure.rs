//! [`isfuture!`](crate::isfuture!), [`ensure_future!`](crate::ensure_future!) and the [`FutureLike`] trait: asyncio's
//! duck typing (`_asyncio_future_blocking`), decided at compile time.
//!
//! asyncio asks at run time "does this object look like a Future?". In
//! Rust the answer is a trait: a type is future-like when it implements
//! [`FutureLike`]. The macros pick their behaviour from the *static* type of
//! the expression (autoref specialisation), so `isfuture!(x)` is `true` for
//! `Future<T>`, `Task<T>`, `AnyTask` and any user type implementing
//! `FutureLike`, and `false` for everything else; `ensure_future!` returns a
//! future-like value as is and wraps any other awaitable in a task. A value
//! that is neither is a compile error, where asyncio raises `TypeError`.

use loop_core::EventLoop;

use crate::future::Future;
use crate::task::{AnyTask, Task};

/// A Future-like object: the Rust form of asyncio's
/// `_asyncio_future_blocking` attribute. Implement it for your own future
/// types to make [`isfuture!`](crate::isfuture!) and [`ensure_future!`](crate::ensure_future!) treat them as
/// futures.
pub trait FutureLike {
    /// The loop the future is bound to.
    fn get_loop(&self) -> EventLoop;
    /// True once done.
    fn done(&self) -> bool;
    /// True if cancelled.
    fn cancelled(&self) -> bool;
    /// Requests cancellation; false if already done.
    fn cancel(&self, msg: Option<&str>) -> bool;
}

impl<T: 'static> FutureLike for Future<T> {
    fn get_loop(&self) -> EventLoop {
        Future::get_loop(self)
    }
    fn done(&self) -> bool {
        Future::done(self)
    }
    fn cancelled(&self) -> bool {
        Future::cancelled(self)
    }
    fn cancel(&self, msg: Option<&str>) -> bool {
        Future::cancel(self, msg)
    }
}

impl<T: 'static> FutureLike for Task<T> {
    fn get_loop(&self) -> EventLoop {
        Task::get_loop(self)
    }
    fn done(&self) -> bool {
        Task::done(self)
    }
    fn cancelled(&self) -> bool {
        Task::cancelled(self)
    }
    fn cancel(&self, msg: Option<&str>) -> bool {
        Task::cancel(self, msg)
    }
}

impl FutureLike for AnyTask {
    fn get_loop(&self) -> EventLoop {
        AnyTask::get_loop(self)
    }
    fn done(&self) -> bool {
        AnyTask::done(self)
    }
    fn cancelled(&self) -> bool {
        AnyTask::cancelled(self)
    }
    fn cancel(&self, msg: Option<&str>) -> bool {
        AnyTask::cancel(self, msg)
    }
}

/// True if the expression's type is future-like ([`FutureLike`]).
///
/// Equivalent of [`asyncio.isfuture`](https://docs.python.org/3/library/asyncio-future.html#asyncio.isfuture),
/// decided from the static type.
///
/// # Examples
///
/// ```
/// use loop_core::EventLoop;
/// use loop_futures::{EventLoopExt, isfuture};
///
/// let ev = EventLoop::new().unwrap();
/// let fut = ev.create_future::<u8>();
/// assert!(isfuture!(fut));
/// assert!(!isfuture!(42));
/// assert!(!isfuture!(async {}));
/// ```
#[macro_export]
macro_rules! isfuture {
    ($value:expr) => {{
        #[allow(unused_imports)]
        use $crate::__private::{IsFutureFallback as _, IsFutureLike as _};
        (&$crate::__private::Probe(&$value)).__isfuture()
    }};
}

/// Returns a future-like value as is, or wraps any other awaitable in a
/// task on `ev`.
///
/// Equivalent of [`asyncio.ensure_future`](https://docs.python.org/3/library/asyncio-future.html#asyncio.ensure_future).
/// Evaluates to `Result<X, Error>` where `X` is the value's own type for
/// future-likes and `Task<T>` for coroutines. A future-like bound to
/// another loop is an error, as in asyncio.
///
/// # Examples
///
/// ```
/// use loop_core::EventLoop;
/// use loop_futures::{EventLoopExt, Error, ensure_future};
///
/// let ev = EventLoop::new().unwrap();
/// let fut = ev.create_future::<u8>();
/// let same = ensure_future!(&ev, fut.clone()).unwrap();
/// assert!(same.same_future(&fut));
/// let task = ensure_future!(&ev, async { Ok::<_, Error>(1) }).unwrap();
/// assert_eq!(ev.run_until_complete(task).unwrap(), 1);
/// ```
#[macro_export]
macro_rules! ensure_future {
    ($ev:expr, $value:expr) => {{
        #[allow(unused_imports)]
        use $crate::__private::{EnsureAwaitable as _, EnsureFutureLike as _};
        (&$crate::__private::Slot::new($value)).__ensure_future($ev)
    }};
}

/// Support for the macros; not public API.
#[doc(hidden)]
pub mod __private {
    use std::cell::Cell;
    use std::panic::Location;

    use loop_core::EventLoop;

    use super::FutureLike;
    use crate::error::{Error, RuntimeError};
    use crate::task::Task;
    use crate::task_result::IntoTaskResult;

    #[derive(Debug)]
    pub struct Probe<'a, T>(pub &'a T);

    pub trait IsFutureLike {
        fn __isfuture(&self) -> bool;
    }
    impl<T: FutureLike> IsFutureLike for Probe<'_, T> {
        fn __isfuture(&self) -> bool {
            true
        }
    }

    pub trait IsFutureFallback {
        fn __isfuture(&self) -> bool;
    }
    impl<T> IsFutureFallback for &Probe<'_, T> {
        fn __isfuture(&self) -> bool {
            false
        }
    }

    pub struct Slot<T>(Cell<Option<T>>);

    impl<T> std::fmt::Debug for Slot<T> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("Slot")
        }
    }

    impl<T> Slot<T> {
        pub fn new(value: T) -> Self {
            Slot(Cell::new(Some(value)))
        }

        fn take(&self) -> T {
            // Each macro expansion calls `__ensure_future` exactly once.
            match self.0.take() {
                Some(value) => value,
                None => unreachable!("ensure_future! slot read twice"),
            }
        }
    }

    pub trait EnsureFutureLike<T> {
        fn __ensure_future(&self, ev: &EventLoop) -> Result<T, Error>;
    }
    impl<T: FutureLike> EnsureFutureLike<T> for Slot<T> {
        fn __ensure_future(&self, ev: &EventLoop) -> Result<T, Error> {
            let value = self.take();
            if !value.get_loop().same_loop(ev) {
                return Err(RuntimeError::new(
                    "The future belongs to a different loop than the one specified as the loop argument",
                )
                .into());
            }
            Ok(value)
        }
    }

    pub trait EnsureAwaitable<T> {
        #[track_caller]
        fn __ensure_future(&self, ev: &EventLoop) -> Result<T, Error>;
    }
    impl<F, R> EnsureAwaitable<Task<R::Ok>> for &Slot<F>
    where
        F: std::future::Future<Output = R> + 'static,
        R: IntoTaskResult,
    {
        #[track_caller]
        fn __ensure_future(&self, ev: &EventLoop) -> Result<Task<R::Ok>, Error> {
            Ok(Task::spawn(ev, self.take(), Location::caller())?)
        }
    }
}

//! Helpers shared by the CPython ports of `test_futures.py` and
//! `test_futures2.py`, `test_locks.py` and `test_queues.py`: CPython's
//! `test_utils` (a test loop on virtual time, `run_briefly`), a capturing
//! exception handler, and `run_test` (CPython's `IsolatedAsyncioTestCase`).

// Each test crate that includes this module uses only part of it.
#![allow(dead_code)]

use std::cell::RefCell;
use std::fmt;
use std::future::Future as StdFuture;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use loop_core::{EventLoop, ExceptionContext, ManualClock};
use loop_futures::{Error, EventLoopExt};

/// CPython's `new_test_loop`: a loop on a fresh manual clock, debug off
/// whatever the environment says.
pub(crate) fn test_loop() -> EventLoop {
    EventLoop::builder()
        .manual_clock(ManualClock::new())
        .debug(false)
        .build()
        .expect("create loop")
}

/// CPython's `test_utils.run_briefly`: runs exactly one loop iteration —
/// what is ready now (including what other threads already sent) — and
/// returns without blocking.
pub(crate) fn run_briefly(ev: &EventLoop) {
    ev.call_soon(|ev| ev.stop()).expect("loop open");
    ev.run_forever().expect("run one iteration");
}

/// Runs iterations until `done()` holds, at most `max` of them; returns
/// whether it held. Blocks in the poller only when nothing is ready (then a
/// thread's completion wakes it), so the bound is on iterations, not time.
pub(crate) fn run_until(ev: &EventLoop, max: usize, mut done: impl FnMut() -> bool) -> bool {
    for _ in 0..max {
        if done() {
            return true;
        }
        ev.run_once().expect("run one iteration");
    }
    done()
}

/// What the loop's exception handler received, in order.
#[derive(Clone, Default)]
pub(crate) struct Reports(Rc<RefCell<Vec<ExceptionContext>>>);

impl Reports {
    /// Installs a handler on `ev` that records every context.
    pub(crate) fn capture(ev: &EventLoop) -> Reports {
        let reports = Reports::default();
        let sink = reports.clone();
        ev.set_exception_handler(Some(move |_: &EventLoop, ctx: ExceptionContext| {
            sink.0.borrow_mut().push(ctx);
        }));
        reports
    }

    pub(crate) fn len(&self) -> usize {
        self.0.borrow().len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.borrow().is_empty()
    }

    pub(crate) fn messages(&self) -> Vec<String> {
        self.0
            .borrow()
            .iter()
            .map(|c| c.message().to_string())
            .collect()
    }

    /// Runs `f` on the report at `index`.
    pub(crate) fn with<R>(&self, index: usize, f: impl FnOnce(&ExceptionContext) -> R) -> R {
        f(&self.0.borrow()[index])
    }
}

impl fmt::Debug for Reports {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.borrow().iter()).finish()
    }
}

/// A plain error value (CPython's `RuntimeError('boom')`, `TypeError(42)`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Boom(pub(crate) &'static str);

impl fmt::Display for Boom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for Boom {}

/// Polls `fut` once with a waker that does nothing (stepping a generator
/// by hand, as CPython's `next(g)`).
pub(crate) fn poll_once<F: StdFuture + Unpin>(fut: &mut F) -> Poll<F::Output> {
    let mut cx = Context::from_waker(Waker::noop());
    Pin::new(fut).poll(&mut cx)
}

/// CPython's `IsolatedAsyncioTestCase`: runs `body` as a task on a fresh
/// loop, with a far watchdog timer so that a hang fails instead of
/// blocking (on the manual clock an idle loop jumps straight to it). The
/// loop's exception handler must not have been called: an unretrieved
/// task failure (a panicking assertion in a child task) fails the test.
#[track_caller]
pub(crate) fn run_test<F>(body: F)
where
    F: StdFuture<Output = Result<(), Error>> + 'static,
{
    let ev = test_loop();
    let reports: Rc<RefCell<Vec<String>>> = Rc::default();
    let sink = reports.clone();
    ev.set_exception_handler(Some(move |_: &EventLoop, ctx: ExceptionContext| {
        sink.borrow_mut().push(format!("{ctx:?}"));
    }));
    let watchdog = ev
        .call_later(Duration::from_secs(1_000_000), |ev| ev.stop())
        .expect("loop open");
    let result = ev.run_until_complete(body);
    watchdog.cancel();
    ev.close().expect("close loop");
    if let Err(err) = result {
        panic!("test body failed: {err}");
    }
    assert!(
        reports.borrow().is_empty(),
        "exception handler called: {:?}",
        reports.borrow()
    );
}

/// `n` milliseconds.
pub(crate) fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

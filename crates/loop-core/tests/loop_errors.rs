//! Every `LoopError` path of the loop's own operations, the running-loop
//! slot (`get_running_loop`), and the exception handler (panicking
//! callbacks, panicking handlers, restoring the default).

use std::cell::{Cell, RefCell};
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use loop_core::{
    EventLoop, ExceptionContext, LoopError, ManualClock, Runnable, SharedError, check_running_loop,
    get_running_loop,
};

fn manual_loop() -> (EventLoop, ManualClock) {
    let clock = ManualClock::new();
    let ev = EventLoop::builder()
        .manual_clock(clock.clone())
        .build()
        .unwrap();
    (ev, clock)
}

/// An `io::Write` into a shared buffer.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Runs `f` with this thread's `tracing` output captured; returns the text.
fn capture_logs(f: impl FnOnce()) -> String {
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_max_level(tracing::Level::TRACE)
        .finish();
    tracing::subscriber::with_default(subscriber, f);
    String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap()
}

/// A runnable that counts its runs.
struct Counter(Cell<usize>);

impl Runnable for Counter {
    fn run(self: Pin<Rc<Self>>, _ev: &EventLoop) {
        self.0.set(self.0.get() + 1);
    }
}

#[test]
fn a_closed_loop_cannot_run() {
    let (ev, _clock) = manual_loop();
    assert!(!ev.is_closed());
    ev.close().unwrap();
    assert!(ev.is_closed());
    let err = ev.run_forever().unwrap_err();
    assert!(matches!(err, LoopError::Closed), "{err:?}");
    assert!(err.is_closed());
    assert_eq!(err.to_string(), "Event loop is closed");
    assert!(matches!(ev.run_once(), Err(LoopError::Closed)));
    ev.close().expect("closing twice is fine");
    assert!(!ev.is_running());
}

#[test]
fn nothing_can_be_scheduled_after_close() {
    let (ev, _clock) = manual_loop();
    let remote = ev.remote();
    let (a, _b) = UnixStream::pair().unwrap();
    ev.close().unwrap();

    assert!(matches!(ev.call_soon(|_| {}), Err(LoopError::Closed)));
    assert!(matches!(
        ev.call_later(Duration::from_secs(1), |_| {}),
        Err(LoopError::Closed)
    ));
    assert!(matches!(
        ev.call_at(ev.time(), |_| {}),
        Err(LoopError::Closed)
    ));
    assert!(matches!(ev.add_reader(&a, |_| {}), Err(LoopError::Closed)));
    assert!(matches!(ev.add_writer(&a, |_| {}), Err(LoopError::Closed)));
    assert!(matches!(
        ev.add_signal_handler(signal_hook::consts::SIGUSR1, |_| {}),
        Err(LoopError::Closed)
    ));
    assert!(matches!(
        ev.call_soon_threadsafe(|_| {}),
        Err(LoopError::Closed)
    ));
    assert!(matches!(
        remote.call_soon_threadsafe(|_| {}),
        Err(LoopError::Closed)
    ));

    let runnable = Rc::new(Counter(Cell::new(0)));
    let result = ev.spawn_runnable(Pin::new(runnable.clone()) as Pin<Rc<dyn Runnable>>);
    assert!(matches!(result, Err(LoopError::Closed)));
    assert_eq!(Rc::strong_count(&runnable), 1, "the loop kept no reference");
    assert_eq!(runnable.0.get(), 0);

    let stats = ev.stats();
    assert_eq!(
        (
            stats.ready,
            stats.timers,
            stats.callbacks,
            stats.io_registrations
        ),
        (0, 0, 0, 0)
    );
    assert_eq!((stats.runnables, stats.signals), (0, 0));
}

#[test]
fn running_a_running_loop_again_is_already_running() {
    let (ev, _clock) = manual_loop();
    let results = Rc::new(RefCell::new(Vec::new()));
    let r = results.clone();
    ev.call_soon(move |ev| {
        r.borrow_mut().push(ev.run_forever());
        r.borrow_mut().push(ev.run_once());
        ev.stop();
    })
    .unwrap();
    ev.run_forever().unwrap();
    let results = results.borrow();
    assert_eq!(results.len(), 2);
    for result in results.iter() {
        assert!(
            matches!(result, Err(LoopError::AlreadyRunning)),
            "{result:?}"
        );
    }
    assert_eq!(
        LoopError::AlreadyRunning.to_string(),
        "This event loop is already running"
    );
    assert!(!ev.is_running());
    ev.close().unwrap();
}

#[test]
fn another_loop_cannot_run_on_the_same_thread() {
    let (outer, _c1) = manual_loop();
    let (inner, _c2) = manual_loop();
    let inner_ran = Rc::new(Cell::new(false));
    let ir = inner_ran.clone();
    inner
        .call_soon(move |ev| {
            ir.set(true);
            ev.stop();
        })
        .unwrap();
    let results = Rc::new(RefCell::new(Vec::new()));
    let r = results.clone();
    let inner2 = inner.clone();
    let slot_kept = Rc::new(Cell::new(false));
    let slot = slot_kept.clone();
    outer
        .call_soon(move |ev| {
            r.borrow_mut().push(inner2.run_forever());
            r.borrow_mut().push(inner2.run_once());
            // The failed attempts must not disturb the running-loop slot.
            slot.set(get_running_loop().is_ok_and(|running| running.same_loop(ev)));
            ev.stop();
        })
        .unwrap();
    outer.run_forever().unwrap();
    for result in results.borrow().iter() {
        assert!(
            matches!(result, Err(LoopError::AnotherLoopRunning)),
            "{result:?}"
        );
    }
    assert_eq!(results.borrow().len(), 2);
    assert!(
        slot_kept.get(),
        "get_running_loop changed after the failed runs"
    );
    assert!(!inner_ran.get());

    // Once the outer loop returned, the inner one runs normally.
    inner.run_forever().unwrap();
    assert!(inner_ran.get());
    outer.close().unwrap();
    inner.close().unwrap();
}

#[test]
fn close_while_running_fails_and_the_loop_keeps_working() {
    let (ev, _clock) = manual_loop();
    let log = Rc::new(RefCell::new(Vec::new()));
    let l = log.clone();
    ev.call_soon(move |ev| {
        let result = ev.close();
        l.borrow_mut()
            .push(format!("{result:?} closed={}", ev.is_closed()));
        let l = l.clone();
        ev.call_soon(move |ev| {
            l.borrow_mut().push("next".into());
            ev.stop();
        })
        .unwrap();
    })
    .unwrap();
    ev.run_forever().unwrap();
    assert_eq!(*log.borrow(), ["Err(CloseRunning) closed=false", "next"]);
    assert_eq!(
        LoopError::CloseRunning.to_string(),
        "Cannot close a running event loop"
    );
    assert!(!ev.is_closed());

    let l = log.clone();
    ev.call_later(Duration::from_secs(1), move |ev| {
        l.borrow_mut().push("timer".into());
        ev.stop();
    })
    .unwrap();
    ev.run_forever().unwrap();
    assert_eq!(log.borrow().last().map(String::as_str), Some("timer"));
    ev.close().unwrap();
    assert!(ev.is_closed());
}

#[test]
fn check_running_loop_agrees_with_get_running_loop() {
    let err = check_running_loop().unwrap_err();
    assert!(matches!(err, LoopError::NoRunningLoop), "{err:?}");
    let (ev, _clock) = manual_loop();
    let seen = Rc::new(RefCell::new(None));
    let s = seen.clone();
    ev.call_soon(move |ev| {
        *s.borrow_mut() = Some(check_running_loop().is_ok());
        ev.stop();
    })
    .unwrap();
    ev.run_forever().unwrap();
    assert_eq!(*seen.borrow(), Some(true));
    assert!(matches!(
        check_running_loop(),
        Err(LoopError::NoRunningLoop)
    ));
}

#[test]
fn get_running_loop_outside_and_inside_a_loop() {
    let err = get_running_loop().unwrap_err();
    assert!(matches!(err, LoopError::NoRunningLoop), "{err:?}");
    assert_eq!(err.to_string(), "no running event loop");

    let (ev, _clock) = manual_loop();
    let seen = Rc::new(RefCell::new(Vec::new()));
    let s = seen.clone();
    ev.call_soon(move |_| s.borrow_mut().push(get_running_loop().ok()))
        .unwrap();
    let s = seen.clone();
    ev.call_later(Duration::from_secs(1), move |ev| {
        s.borrow_mut().push(get_running_loop().ok());
        ev.stop();
    })
    .unwrap();
    ev.run_forever().unwrap();
    let seen = seen.borrow();
    assert_eq!(seen.len(), 2);
    for running in seen.iter() {
        assert_eq!(running.as_ref(), Some(&ev));
    }
    assert!(matches!(get_running_loop(), Err(LoopError::NoRunningLoop)));

    // Another thread has no running loop even while this one runs.
    let other = Rc::new(RefCell::new(None));
    let o = other.clone();
    ev.call_soon(move |ev| {
        let result = std::thread::spawn(|| get_running_loop().map(|_| ()))
            .join()
            .unwrap();
        *o.borrow_mut() = Some(result);
        ev.stop();
    })
    .unwrap();
    ev.run_forever().unwrap();
    assert!(matches!(
        other.borrow_mut().take(),
        Some(Err(LoopError::NoRunningLoop))
    ));
    ev.close().unwrap();
}

type Report = (String, Option<String>, Option<String>, Option<u32>);

fn recording_handler(ev: &EventLoop) -> Rc<RefCell<Vec<Report>>> {
    let reports = Rc::new(RefCell::new(Vec::new()));
    let r = reports.clone();
    ev.set_exception_handler(Some(move |_: &EventLoop, ctx: ExceptionContext| {
        r.borrow_mut().push((
            ctx.message().to_owned(),
            ctx.panic_message().map(str::to_owned),
            ctx.site().map(|s| s.file().to_owned()),
            ctx.site().map(|s| s.line()),
        ));
    }));
    reports
}

#[test]
fn a_panicking_callback_is_reported_and_the_rest_still_run() {
    let (ev, _clock) = manual_loop();
    let reports = recording_handler(&ev);
    let log = Rc::new(RefCell::new(Vec::new()));
    let l = log.clone();
    ev.call_soon(move |_| l.borrow_mut().push("before"))
        .unwrap();
    let panic_line = line!() + 1;
    let failing = ev.call_soon(|_| panic!("callback boom")).unwrap();
    let l = log.clone();
    ev.call_soon(move |ev| {
        l.borrow_mut().push("after");
        let l = l.clone();
        ev.call_soon(move |ev| {
            l.borrow_mut().push("next iteration");
            ev.stop();
        })
        .unwrap();
    })
    .unwrap();
    ev.run_forever().unwrap();

    assert_eq!(*log.borrow(), ["before", "after", "next iteration"]);
    let reports = reports.borrow();
    assert_eq!(reports.len(), 1);
    let (message, panic, file, line) = &reports[0];
    assert_eq!(message, "Exception in callback");
    assert_eq!(panic.as_deref(), Some("callback boom"));
    assert!(
        file.as_deref().unwrap().ends_with("loop_errors.rs"),
        "{file:?}"
    );
    assert_eq!(*line, Some(panic_line));
    assert_eq!(failing.site().line(), panic_line);
    assert_eq!(ev.stats().callbacks, 0);
    ev.close().unwrap();
}

#[test]
fn panicking_timers_and_formatted_or_non_string_payloads_are_reported() {
    let (ev, _clock) = manual_loop();
    let payloads = Rc::new(RefCell::new(Vec::new()));
    let p = payloads.clone();
    ev.set_exception_handler(Some(move |_: &EventLoop, mut ctx: ExceptionContext| {
        let message = ctx.panic_message().map(str::to_owned);
        let payload = ctx.take_panic().expect("a panic payload");
        p.borrow_mut()
            .push((message, payload.downcast_ref::<i32>().copied()));
    }));
    let n = 7;
    ev.call_later(Duration::from_secs(1), move |_| panic!("timer boom {n}"))
        .unwrap();
    ev.call_later(Duration::from_secs(2), |_| std::panic::panic_any(42i32))
        .unwrap();
    ev.call_later(Duration::from_secs(3), |ev| ev.stop())
        .unwrap();
    ev.run_forever().unwrap();
    assert_eq!(
        *payloads.borrow(),
        [(Some("timer boom 7".to_owned()), None), (None, Some(42))]
    );
    ev.close().unwrap();
}

#[test]
fn a_panicking_exception_handler_does_not_escape() {
    let (ev, _clock) = manual_loop();
    let handler_calls = Rc::new(Cell::new(0usize));
    let h = handler_calls.clone();
    ev.set_exception_handler(Some(move |_: &EventLoop, _: ExceptionContext| {
        h.set(h.get() + 1);
        panic!("handler boom");
    }));
    let ran_after = Rc::new(Cell::new(false));
    let logs = capture_logs(|| {
        ev.call_soon(|_| panic!("callback boom")).unwrap();
        let r = ran_after.clone();
        ev.call_soon(move |ev| {
            r.set(true);
            ev.stop();
        })
        .unwrap();
        ev.run_forever()
            .expect("the handler's panic does not escape");
    });
    assert_eq!(handler_calls.get(), 1);
    assert!(ran_after.get(), "following callbacks still run");
    assert!(
        logs.contains("Unhandled error in exception handler"),
        "{logs}"
    );
    assert!(logs.contains("handler boom"), "{logs}");
    assert!(logs.contains("callback boom"), "{logs}");

    // Called directly, too.
    let logs = capture_logs(|| ev.call_exception_handler(ExceptionContext::new("direct")));
    assert_eq!(handler_calls.get(), 2);
    assert!(
        logs.contains("Unhandled error in exception handler"),
        "{logs}"
    );
    ev.close().unwrap();
}

#[test]
fn set_exception_handler_none_restores_the_default() {
    let (ev, _clock) = manual_loop();
    assert!(ev.get_exception_handler().is_none());
    let reports = recording_handler(&ev);
    assert!(ev.get_exception_handler().is_some());

    let error: SharedError = Arc::new(std::io::Error::other("custom failure"));
    ev.call_exception_handler(
        ExceptionContext::new("reported directly")
            .with_error(error)
            .with_extra("transport", "t1"),
    );
    assert_eq!(reports.borrow().len(), 1);
    assert_eq!(reports.borrow()[0].0, "reported directly");

    ev.set_exception_handler(None::<fn(&EventLoop, ExceptionContext)>);
    assert!(ev.get_exception_handler().is_none());
    let logs = capture_logs(|| {
        ev.call_soon(|_| panic!("after reset")).unwrap();
        ev.call_soon(|ev| ev.stop()).unwrap();
        ev.run_forever().unwrap();
    });
    assert_eq!(reports.borrow().len(), 1, "the old handler is not called");
    assert!(logs.contains("ERROR"), "{logs}");
    assert!(logs.contains("Exception in callback"), "{logs}");
    assert!(logs.contains("after reset"), "{logs}");
    assert!(
        logs.contains("loop_errors.rs"),
        "creation site logged: {logs}"
    );
    ev.close().unwrap();
}

#[test]
fn stop_before_run_forever_runs_one_iteration_then_returns() {
    let (ev, _clock) = manual_loop();
    let start = ev.time();
    let log = Rc::new(RefCell::new(Vec::new()));
    let l = log.clone();
    ev.call_soon(move |ev| {
        l.borrow_mut().push("first");
        let l = l.clone();
        ev.call_soon(move |_| l.borrow_mut().push("second"))
            .unwrap();
    })
    .unwrap();
    let l = log.clone();
    ev.call_later(Duration::from_secs(60), move |_| {
        l.borrow_mut().push("timer")
    })
    .unwrap();

    ev.stop();
    ev.run_forever().unwrap();
    assert_eq!(*log.borrow(), ["first"], "exactly one iteration ran");
    assert_eq!(ev.time(), start, "a stopping loop does not wait for timers");
    assert!(!ev.is_running());

    // The stop was consumed: the next run goes on until stopped again.
    ev.call_later(Duration::from_secs(120), |ev| ev.stop())
        .unwrap();
    ev.run_forever().unwrap();
    assert_eq!(*log.borrow(), ["first", "second", "timer"]);
    ev.close().unwrap();
}

#[test]
fn stop_inside_a_callback_finishes_the_current_iteration() {
    let (ev, _clock) = manual_loop();
    let log = Rc::new(RefCell::new(Vec::new()));
    let l = log.clone();
    ev.call_soon(move |ev| {
        ev.stop();
        let l2 = l.clone();
        ev.call_soon(move |_| l2.borrow_mut().push("scheduled by the first"))
            .unwrap();
        l.borrow_mut().push("first");
    })
    .unwrap();
    let l = log.clone();
    ev.call_soon(move |_| l.borrow_mut().push("second"))
        .unwrap();
    ev.run_forever().unwrap();
    assert_eq!(*log.borrow(), ["first", "second"]);
    ev.stop();
    ev.run_forever().unwrap();
    assert_eq!(*log.borrow(), ["first", "second", "scheduled by the first"]);
    ev.close().unwrap();
}

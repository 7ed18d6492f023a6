//! Unix signal handlers (`add_signal_handler` / `remove_signal_handler`).
//!
//! Tests in this binary run in parallel and signal dispositions are
//! process-wide, so each test uses its own signals, and a signal is raised
//! only while a handler for it is installed (its default action would kill
//! the test process).

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use loop_core::{EventLoop, LoopError, get_running_loop};
use signal_hook::consts::{
    SIGALRM, SIGKILL, SIGPROF, SIGSTOP, SIGUSR1, SIGUSR2, SIGVTALRM, SIGWINCH, SIGXCPU,
};
use signal_hook::low_level::raise;

/// Counts drops of the value it guards.
struct DropCount(Rc<Cell<usize>>);

impl Drop for DropCount {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

/// Runs `ev` until a callback stops it; fails if a 10 s fallback timer had
/// to stop it instead.
fn run_bounded(ev: &EventLoop) {
    let timed_out = Rc::new(Cell::new(false));
    let t = timed_out.clone();
    let watchdog = ev
        .call_later(Duration::from_secs(10), move |ev| {
            t.set(true);
            ev.stop();
        })
        .unwrap();
    ev.run_forever().unwrap();
    watchdog.cancel();
    assert!(!timed_out.get(), "the signal callback never ran");
}

#[test]
fn a_raised_signal_runs_its_callback_on_the_loop_thread() {
    let ev = EventLoop::new().unwrap();
    let calls = Rc::new(RefCell::new(Vec::new()));
    let c = calls.clone();
    let main_thread = std::thread::current().id();
    ev.add_signal_handler(SIGUSR1, move |ev| {
        let running = get_running_loop().expect("runs inside the loop");
        c.borrow_mut().push((
            std::thread::current().id(),
            running.same_loop(ev),
            ev.is_running(),
        ));
        ev.stop();
    })
    .unwrap();
    assert_eq!(ev.stats().signals, 1);

    raise(SIGUSR1).unwrap();
    assert!(
        calls.borrow().is_empty(),
        "the callback runs from the loop, not in the signal handler"
    );
    run_bounded(&ev);
    assert_eq!(*calls.borrow(), [(main_thread, true, true)]);

    // A second delivery runs it again.
    raise(SIGUSR1).unwrap();
    run_bounded(&ev);
    assert_eq!(calls.borrow().len(), 2);

    assert!(ev.remove_signal_handler(SIGUSR1).unwrap());
    ev.close().unwrap();
}

#[test]
fn deliveries_before_the_loop_runs_coalesce() {
    let ev = EventLoop::new().unwrap();
    let calls = Rc::new(Cell::new(0usize));
    let c = calls.clone();
    ev.add_signal_handler(SIGVTALRM, move |_| c.set(c.get() + 1))
        .unwrap();
    for _ in 0..3 {
        raise(SIGVTALRM).unwrap();
    }
    // Stop after the iteration that picks the signal up, and one more.
    let after_first = Rc::new(Cell::new(None));
    let (c, a) = (calls.clone(), after_first.clone());
    ev.call_soon(move |ev| {
        ev.call_soon(move |ev| {
            a.set(Some(c.get()));
            ev.stop();
        })
        .unwrap();
    })
    .unwrap();
    run_bounded(&ev);
    assert_eq!(after_first.get(), Some(1), "the first poll saw the signal");
    assert_eq!(calls.get(), 1, "three deliveries, one call");
    assert!(ev.remove_signal_handler(SIGVTALRM).unwrap());
    ev.close().unwrap();
}

#[test]
fn replacing_a_handler_drops_the_old_callback() {
    let ev = EventLoop::new().unwrap();
    let old_dropped = Rc::new(Cell::new(0usize));
    let log = Rc::new(RefCell::new(Vec::new()));
    let guard = DropCount(old_dropped.clone());
    let l = log.clone();
    ev.add_signal_handler(SIGUSR2, move |ev| {
        let _keep = &guard;
        l.borrow_mut().push("old");
        ev.stop();
    })
    .unwrap();
    let l = log.clone();
    ev.add_signal_handler(SIGUSR2, move |ev| {
        l.borrow_mut().push("new");
        ev.stop();
    })
    .unwrap();
    assert_eq!(old_dropped.get(), 1);
    assert_eq!(ev.stats().signals, 1);

    raise(SIGUSR2).unwrap();
    run_bounded(&ev);
    assert_eq!(*log.borrow(), ["new"]);
    assert!(ev.remove_signal_handler(SIGUSR2).unwrap());
    ev.close().unwrap();
}

#[test]
fn remove_returns_whether_a_handler_was_installed() {
    let ev = EventLoop::new().unwrap();
    assert!(!ev.remove_signal_handler(SIGWINCH).unwrap());
    let dropped = Rc::new(Cell::new(0usize));
    let guard = DropCount(dropped.clone());
    ev.add_signal_handler(SIGWINCH, move |_| {
        let _keep = &guard;
    })
    .unwrap();
    assert_eq!(ev.stats().signals, 1);
    assert!(ev.remove_signal_handler(SIGWINCH).unwrap());
    assert_eq!(dropped.get(), 1);
    assert_eq!(ev.stats().signals, 0);
    assert!(!ev.remove_signal_handler(SIGWINCH).unwrap());
    ev.close().unwrap();
}

#[test]
fn bad_signal_numbers_are_errors_and_the_loop_stays_usable() {
    let ev = EventLoop::new().unwrap();
    for sig in [0, -1, 65, 1000] {
        assert!(
            matches!(
                ev.add_signal_handler(sig, |_| {}),
                Err(LoopError::SignalOutOfRange(s)) if s == sig
            ),
            "add {sig}"
        );
        assert!(
            matches!(
                ev.remove_signal_handler(sig),
                Err(LoopError::SignalOutOfRange(s)) if s == sig
            ),
            "remove {sig}"
        );
    }
    for sig in [SIGKILL, SIGSTOP] {
        assert!(
            matches!(
                ev.add_signal_handler(sig, |_| {}),
                Err(LoopError::SignalCannotBeCaught(s)) if s == sig
            ),
            "add {sig}"
        );
        assert!(
            matches!(
                ev.remove_signal_handler(sig),
                Err(LoopError::SignalCannotBeCaught(s)) if s == sig
            ),
            "remove {sig}"
        );
    }
    assert_eq!(
        LoopError::SignalOutOfRange(1000).to_string(),
        "sig 1000 out of range"
    );
    assert_eq!(ev.stats().signals, 0);

    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    ev.call_soon(move |ev| {
        r.set(true);
        ev.stop();
    })
    .unwrap();
    run_bounded(&ev);
    assert!(ran.get());
    ev.close().unwrap();
}

#[test]
fn close_removes_every_handler() {
    let ev = EventLoop::new().unwrap();
    let dropped = Rc::new(Cell::new(0usize));
    for sig in [SIGALRM, SIGPROF, SIGXCPU] {
        let guard = DropCount(dropped.clone());
        ev.add_signal_handler(sig, move |_| {
            let _keep = &guard;
        })
        .unwrap();
    }
    assert_eq!(ev.stats().signals, 3);
    ev.close().unwrap();
    assert_eq!(ev.stats().signals, 0);
    assert_eq!(dropped.get(), 3, "every handler callback dropped");
    assert!(!ev.remove_signal_handler(SIGALRM).unwrap());
    assert!(matches!(
        ev.add_signal_handler(SIGALRM, |_| {}),
        Err(LoopError::Closed)
    ));
}

#[test]
fn a_panicking_signal_callback_goes_to_the_exception_handler() {
    let ev = EventLoop::new().unwrap();
    let reports = Rc::new(RefCell::new(Vec::new()));
    let r = reports.clone();
    ev.set_exception_handler(Some(
        move |ev: &EventLoop, ctx: loop_core::ExceptionContext| {
            r.borrow_mut().push((
                ctx.panic_message().map(str::to_owned),
                ctx.site().map(|s| s.file().to_owned()),
            ));
            ev.stop();
        },
    ));
    // SIGURG's default action is to ignore it, should the handler be gone.
    let sig = signal_hook::consts::SIGURG;
    ev.add_signal_handler(sig, |_| panic!("signal boom"))
        .unwrap();
    raise(sig).unwrap();
    run_bounded(&ev);
    let reports = reports.borrow();
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].0.as_deref(), Some("signal boom"));
    assert!(
        reports[0]
            .1
            .as_deref()
            .unwrap()
            .ends_with("loop_signals.rs"),
        "{:?}",
        reports[0]
    );
    assert!(ev.remove_signal_handler(sig).unwrap());
    ev.close().unwrap();
}

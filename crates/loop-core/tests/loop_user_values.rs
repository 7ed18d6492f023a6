//! User values the loop holds (closures, task contexts) are dropped outside
//! the loop's borrows, so their destructors may use the loop; and every
//! callback runs in the task context captured when it was scheduled or
//! registered, readers, writers and signal handlers included (asyncio's
//! `Handle` copies the context when it is made).

use std::cell::Cell;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::time::Duration;

use loop_core::{EventLoop, LoopError, ManualClock, task_context};
use signal_hook::consts::SIGUSR2;
use signal_hook::low_level::raise;

fn manual_loop() -> EventLoop {
    EventLoop::builder()
        .manual_clock(ManualClock::new())
        .build()
        .expect("loop")
}

/// A task context value whose destructor schedules a callback on the loop
/// (a `RefCell` already borrowed there would panic) and records the drop.
struct UsesTheLoop {
    ev: EventLoop,
    dropped: Rc<Cell<bool>>,
}

impl Drop for UsesTheLoop {
    fn drop(&mut self) {
        self.ev
            .call_soon(|_| {})
            .expect("call_soon from a destructor");
        self.dropped.set(true);
    }
}

#[test]
fn a_cancelled_timers_context_is_dropped_outside_the_loops_borrows() {
    let ev = manual_loop();
    let dropped = Rc::new(Cell::new(false));
    let value: task_context::Context = Rc::new(UsesTheLoop {
        ev: ev.clone(),
        dropped: dropped.clone(),
    });
    // Scheduled inside the context: the timer's slot holds the only other
    // reference once the context is left.
    let prev = task_context::replace(Some(value));
    let far = ev.call_later(Duration::from_secs(30), |_| {}).unwrap();
    // Enough cancelled timers to make the heap compact, too.
    let many: Vec<_> = (0..300)
        .map(|i| ev.call_later(Duration::from_secs(40 + i), |_| {}).unwrap())
        .collect();
    drop(task_context::replace(prev));
    assert!(!dropped.get());
    far.cancel();
    for handle in &many {
        handle.cancel();
    }
    assert!(dropped.get(), "the context went with the last cancel");
    // The loop pops and compacts the cancelled timers without dropping
    // user values under its borrows (this used to panic in run_forever).
    ev.call_later(Duration::from_secs(60), |ev| ev.stop())
        .unwrap();
    ev.run_forever().expect("run");
    assert_eq!(ev.stats().cancelled_timers, 0, "{:?}", ev.stats());
}

/// A guard whose destructor uses the loop's reader table.
struct RemovesReader {
    ev: EventLoop,
    fd: i32,
    dropped: Rc<Cell<bool>>,
}

impl Drop for RemovesReader {
    fn drop(&mut self) {
        let _ = self.ev.remove_reader(self.fd);
        self.dropped.set(true);
    }
}

#[test]
fn add_reader_on_a_bad_fd_is_an_error_and_drops_the_closure_outside_the_borrow() {
    let ev = manual_loop();
    let dropped = Rc::new(Cell::new(false));
    let guard = RemovesReader {
        ev: ev.clone(),
        fd: 987_654,
        dropped: dropped.clone(),
    };
    let err = ev
        .add_reader(987_654, move |_| {
            let _ = &guard;
        })
        .unwrap_err();
    assert!(matches!(err, LoopError::Io(_)), "{err:?}");
    assert!(dropped.get());
    // A regular file cannot be watched either (EPERM from epoll).
    let file = std::fs::File::open("/proc/self/stat").expect("a regular file");
    let dropped = Rc::new(Cell::new(false));
    let guard = RemovesReader {
        ev: ev.clone(),
        fd: file.as_raw_fd(),
        dropped: dropped.clone(),
    };
    let err = ev
        .add_writer(&file, move |_| {
            let _ = &guard;
        })
        .unwrap_err();
    assert!(matches!(err, LoopError::Io(_)), "{err:?}");
    assert!(dropped.get());
    // The loop goes on.
    ev.call_soon(|ev| ev.stop()).unwrap();
    ev.run_forever().unwrap();
}

/// A context marker: the value a callback checks it runs under.
struct Marker(u32);

fn current_marker() -> Option<u32> {
    task_context::current().and_then(|c| c.downcast_ref::<Marker>().map(|m| m.0))
}

#[test]
fn a_reader_runs_in_the_context_it_was_added_in() {
    let ev = manual_loop();
    let (a, mut b) = UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    let seen = Rc::new(Cell::new(None));
    let s = seen.clone();
    let prev = task_context::replace(Some(Rc::new(Marker(7))));
    let fd = a.as_raw_fd();
    ev.add_reader(fd, move |ev| {
        s.set(Some(current_marker()));
        ev.remove_reader(fd);
        ev.stop();
    })
    .unwrap();
    drop(task_context::replace(prev));
    assert_eq!(current_marker(), None);
    std::io::Write::write_all(&mut b, b"x").unwrap();
    ev.run_forever().unwrap();
    assert_eq!(seen.get(), Some(Some(7)));
    assert_eq!(
        current_marker(),
        None,
        "the context is left after the callback"
    );
}

#[test]
fn a_signal_handler_runs_in_the_context_it_was_added_in() {
    let ev = manual_loop();
    let seen = Rc::new(Cell::new(None));
    let s = seen.clone();
    let prev = task_context::replace(Some(Rc::new(Marker(9))));
    ev.add_signal_handler(SIGUSR2, move |ev| {
        s.set(Some(current_marker()));
        ev.stop();
    })
    .unwrap();
    drop(task_context::replace(prev));
    raise(SIGUSR2).unwrap();
    let watchdog = ev
        .call_later(Duration::from_secs(3600), |ev| ev.stop())
        .unwrap();
    ev.run_forever().unwrap();
    watchdog.cancel();
    assert!(ev.remove_signal_handler(SIGUSR2).unwrap());
    assert_eq!(seen.get(), Some(Some(9)));
}

/// Schedules a callback that stops the loop; the flag says it ran.
fn ran_then_stop(ev: &EventLoop) -> Rc<Cell<bool>> {
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    ev.call_soon(move |ev| {
        r.set(true);
        ev.stop();
    })
    .unwrap();
    ran
}

/// A task context value whose destructor panics.
struct PanicsOnDrop(&'static str);

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        panic!("{}", self.0);
    }
}

/// Records the messages and panic texts the exception handler receives.
fn record_exceptions(ev: &EventLoop) -> Rc<std::cell::RefCell<Vec<(String, String)>>> {
    let seen = Rc::new(std::cell::RefCell::new(Vec::new()));
    let s = seen.clone();
    ev.set_exception_handler(Some(
        move |_: &EventLoop, context: loop_core::ExceptionContext| {
            s.borrow_mut().push((
                context.message().to_string(),
                context.panic_message().unwrap_or_default().to_string(),
            ));
        },
    ));
    seen
}

#[test]
fn a_context_value_whose_destructor_panics_is_reported_and_the_loop_goes_on() {
    let ev = manual_loop();
    let seen = record_exceptions(&ev);
    let prev = task_context::replace(Some(Rc::new(PanicsOnDrop("context drop"))));
    ev.call_soon(|_| {}).unwrap();
    // The callback's slot now holds the context's only reference: it goes
    // when the loop leaves the context after the callback.
    drop(task_context::replace(prev));
    let after = ran_then_stop(&ev);
    ev.run_forever()
        .expect("the panic does not unwind out of run_forever");
    assert!(after.get(), "the next callback ran");
    assert_eq!(
        *seen.borrow(),
        vec![(
            "Exception ignored while dropping a task context".to_string(),
            "context drop".to_string()
        )]
    );
    assert!(task_context::current().is_none());
}

#[test]
fn a_panicking_reader_that_set_a_context_whose_destructor_panics_is_reported_twice() {
    let ev = manual_loop();
    let seen = record_exceptions(&ev);
    let (a, mut b) = UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    let fd = a.as_raw_fd();
    let prev = task_context::replace(Some(Rc::new(Marker(3))));
    ev.add_reader(fd, move |ev| {
        ev.remove_reader(fd);
        ev.stop();
        // The loop leaves this new context while the panic unwinds; its
        // destructor's panic is caught there, not a double panic (abort).
        drop(task_context::replace(Some(Rc::new(PanicsOnDrop(
            "in unwind",
        )))));
        panic!("reader failed");
    })
    .unwrap();
    drop(task_context::replace(prev));
    std::io::Write::write_all(&mut b, b"x").unwrap();
    ev.run_forever().expect("run");
    let seen = seen.borrow();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(
        seen[0],
        (
            "Exception ignored while dropping a task context".to_string(),
            "in unwind".to_string()
        )
    );
    assert_eq!(seen[1].1, "reader failed");
    assert!(task_context::current().is_none());
    drop(a);
}

/// A value whose destructor panics unless already unwinding.
struct Bomb;

impl Drop for Bomb {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("bomb");
        }
    }
}

/// A source handler whose destructor uses the loop.
struct StatsOnDrop {
    ev: EventLoop,
    dropped: Rc<Cell<bool>>,
}

impl loop_core::SourceHandler for StatsOnDrop {
    fn on_ready(self: Rc<Self>, _ev: &EventLoop, _readiness: loop_core::Readiness) {}
}

impl Drop for StatsOnDrop {
    fn drop(&mut self) {
        let _ = self.ev.stats();
        self.dropped.set(true);
    }
}

#[test]
fn register_source_on_a_bad_fd_is_an_error_and_drops_the_handler_outside_the_borrow() {
    let ev = manual_loop();
    let dropped = Rc::new(Cell::new(false));
    let handler: Rc<dyn loop_core::SourceHandler> = Rc::new(StatsOnDrop {
        ev: ev.clone(),
        dropped: dropped.clone(),
    });
    let err = ev
        .register_source(987_654, loop_core::Interest::READABLE, handler)
        .expect_err("a bad fd is refused");
    assert!(matches!(err, LoopError::Io(_)), "{err:?}");
    assert!(dropped.get());
    // The loop goes on.
    let ran = ran_then_stop(&ev);
    ev.run_forever().unwrap();
    assert!(ran.get());
}

#[test]
fn a_reader_that_removes_itself_and_whose_closure_panics_on_drop_is_reported() {
    let ev = manual_loop();
    let seen = record_exceptions(&ev);
    let (a, mut b) = UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    std::io::Write::write_all(&mut b, b"x").unwrap();
    let fd = a.as_raw_fd();
    let bomb = Bomb;
    ev.add_reader(fd, move |ev| {
        let _keep = &bomb;
        ev.remove_reader(fd);
    })
    .unwrap();
    let after = Rc::new(Cell::new(false));
    let a2 = after.clone();
    ev.call_later(Duration::from_secs(1), move |ev| {
        a2.set(true);
        ev.stop();
    })
    .unwrap();
    ev.run_forever()
        .expect("the panic does not unwind out of run_forever");
    assert!(after.get(), "the loop went on");
    assert_eq!(
        *seen.borrow(),
        vec![("Exception in callback".to_string(), "bomb".to_string())]
    );
}

#[test]
fn a_panic_payload_whose_destructor_panics_does_not_escape_the_loop() {
    // With the default handler (which logs the context, then drops it) and
    // with one of the user's (which gets the context and drops it itself).
    for custom in [false, true] {
        let ev = manual_loop();
        let handled = Rc::new(Cell::new(0));
        if custom {
            let h = handled.clone();
            ev.set_exception_handler(Some(
                move |_: &EventLoop, _: loop_core::ExceptionContext| h.set(h.get() + 1),
            ));
        }
        ev.call_soon(|_| std::panic::panic_any(Bomb)).unwrap();
        let after = ran_then_stop(&ev);
        ev.run_forever().expect("run");
        assert!(
            after.get(),
            "the next callback ran (custom handler: {custom})"
        );
        // The user's handler is called once; its drop of the payload
        // panicking is the handler's own panic, caught and logged.
        assert_eq!(handled.get(), usize::from(custom));
    }
}

/// A runnable that records `on_loop_closed`.
struct Told(Rc<Cell<bool>>);

impl loop_core::Runnable for Told {
    fn run(self: std::pin::Pin<Rc<Self>>, _ev: &EventLoop) {}

    fn on_loop_closed(self: std::pin::Pin<Rc<Self>>, _ev: &EventLoop) {
        self.0.set(true);
    }
}

#[test]
fn close_reports_panicking_destructors_and_finishes_the_teardown() {
    let ev = manual_loop();
    let seen = record_exceptions(&ev);
    let told = Rc::new(Cell::new(false));
    ev.spawn_runnable(Rc::pin(Told(told.clone()))).unwrap();
    let (first, second) = (Bomb, Bomb);
    ev.call_soon(move |_| drop(first)).unwrap();
    ev.call_later(Duration::from_secs(5), move |_| drop(second))
        .unwrap();
    let (a, _b) = UnixStream::pair().unwrap();
    let fd = a.as_raw_fd();
    let bomb = Bomb;
    ev.add_reader(fd, move |_| {
        let _keep = &bomb;
    })
    .unwrap();
    ev.close().expect("close does not unwind");
    assert!(ev.is_closed());
    assert!(told.get(), "the runnable was told the loop closed");
    let stats = ev.stats();
    assert_eq!(
        (stats.callbacks, stats.io_registrations, stats.runnables),
        (0, 0, 0),
        "{stats:?}"
    );
    let seen = seen.borrow();
    assert_eq!(seen.len(), 3, "{seen:?}");
    for (message, panic) in seen.iter() {
        assert_eq!(
            (message.as_str(), panic.as_str()),
            ("Exception in closing the event loop", "bomb")
        );
    }
}

//! Readers and writers (`add_reader` / `add_writer`): asyncio's
//! level-triggered readiness callbacks on raw fds.
//!
//! Iterations are driven one at a time with `run_once`; each step first
//! schedules a `call_soon` no-op so the poll never blocks (a `run_once` with
//! nothing ready would wait for I/O).

use std::cell::{Cell, RefCell};
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::time::Duration;

use loop_core::{EventLoop, ExceptionContext, LoopError, ManualClock};

/// A loop whose callbacks must not panic: assertions inside callbacks
/// would otherwise only reach the exception handler. Checked on drop.
struct TestLoop {
    ev: EventLoop,
    errors: Rc<RefCell<Vec<String>>>,
}

impl std::ops::Deref for TestLoop {
    type Target = EventLoop;

    fn deref(&self) -> &EventLoop {
        &self.ev
    }
}

impl Drop for TestLoop {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            assert!(
                self.errors.borrow().is_empty(),
                "a callback failed: {:?}",
                self.errors.borrow()
            );
        }
    }
}

fn checked(ev: EventLoop) -> TestLoop {
    let errors = Rc::new(RefCell::new(Vec::new()));
    let e = errors.clone();
    ev.set_exception_handler(Some(move |_: &EventLoop, ctx: ExceptionContext| {
        e.borrow_mut().push(ctx.to_string());
    }));
    TestLoop { ev, errors }
}

fn manual_loop() -> TestLoop {
    checked(
        EventLoop::builder()
            .manual_clock(ManualClock::new())
            .build()
            .unwrap(),
    )
}

/// Runs one loop iteration without ever blocking.
fn step(ev: &EventLoop) {
    ev.call_soon(|_| {}).unwrap();
    ev.run_once().unwrap();
}

/// A non-blocking connected Unix socket pair.
fn socket_pair() -> (UnixStream, UnixStream) {
    let (a, b) = UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    b.set_nonblocking(true).unwrap();
    (a, b)
}

/// Counts how many times the value it guards was dropped.
struct DropCount(Rc<Cell<usize>>);

impl Drop for DropCount {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

/// Registers a reader on `rx` that consumes one byte per call, feeds it
/// `data` through `tx`, and checks it is called on exactly `data.len()`
/// consecutive iterations (one byte each), then never again once drained.
fn check_level_triggered_reader<R, W>(rx: R, mut tx: W, data: &[u8])
where
    R: std::os::fd::AsFd + 'static,
    for<'a> &'a R: Read,
    W: Write,
{
    let ev = manual_loop();
    // (iteration, byte read or None) for every call.
    let calls = Rc::new(RefCell::new(Vec::<(usize, Option<u8>)>::new()));
    let iteration = Rc::new(Cell::new(0usize));
    let rx = Rc::new(rx);
    {
        let calls = calls.clone();
        let iteration = iteration.clone();
        let reader = rx.clone();
        ev.add_reader(&*rx, move |_| {
            let mut byte = [0u8; 1];
            let got = match (&*reader).read(&mut byte) {
                Ok(1) => Some(byte[0]),
                _ => None,
            };
            calls.borrow_mut().push((iteration.get(), got));
        })
        .unwrap();
    }
    tx.write_all(data).unwrap();
    tx.flush().unwrap();

    let extra = 10;
    for i in 0..data.len() + extra {
        iteration.set(i);
        step(&ev);
    }
    let expected: Vec<(usize, Option<u8>)> = data
        .iter()
        .enumerate()
        .map(|(i, b)| (i, Some(*b)))
        .collect();
    assert_eq!(
        *calls.borrow(),
        expected,
        "one call with one byte per iteration, none once drained"
    );

    // New data makes it readable again: called again, once per byte.
    tx.write_all(&data[..2]).unwrap();
    tx.flush().unwrap();
    let before = calls.borrow().len();
    for i in 0..5 {
        iteration.set(1000 + i);
        step(&ev);
    }
    let after: Vec<_> = calls.borrow()[before..].to_vec();
    assert_eq!(after, [(1000, Some(data[0])), (1001, Some(data[1]))]);

    assert!(ev.remove_reader(&*rx));
    assert_eq!(ev.stats().io_registrations, 0);
    ev.close().unwrap();
}

#[test]
fn reader_is_level_triggered_on_a_unix_socket() {
    let (rx, tx) = socket_pair();
    check_level_triggered_reader(rx, tx, b"0123456789");
}

#[test]
fn reader_is_level_triggered_on_a_pipe() {
    let (tx, rx) = mio::unix::pipe::new().unwrap();
    check_level_triggered_reader(rx, tx, b"abcdefghij");
}

#[test]
fn reader_is_level_triggered_on_tcp() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let tx = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (rx, _) = listener.accept().unwrap();
    rx.set_nonblocking(true).unwrap();
    tx.set_nodelay(true).unwrap();
    // Loopback TCP delivers synchronously, so the bytes are readable before
    // the first poll; `check_level_triggered_reader` writes then steps.
    check_level_triggered_reader(rx, tx, b"ABCDEFGHIJ");
}

#[test]
fn writer_fires_every_iteration_while_writable_and_stops_after_remove() {
    let ev = manual_loop();
    let (a, _b) = socket_pair();
    let calls = Rc::new(Cell::new(0usize));
    let c = calls.clone();
    ev.add_writer(&a, move |_| c.set(c.get() + 1)).unwrap();
    for i in 1..=5 {
        step(&ev);
        assert_eq!(calls.get(), i, "called once per iteration while writable");
    }
    assert!(ev.remove_writer(&a));
    assert!(!ev.has_io_callback(&a, true));
    for _ in 0..5 {
        step(&ev);
    }
    assert_eq!(calls.get(), 5, "no call after remove_writer");
    assert!(!ev.remove_writer(&a), "nothing left to remove");
    assert_eq!(ev.stats().io_registrations, 0);
    ev.close().unwrap();
}

#[test]
fn writer_stops_while_the_socket_is_full_and_resumes_when_drained() {
    let ev = manual_loop();
    let (a, b) = socket_pair();
    let calls = Rc::new(Cell::new(0usize));
    let c = calls.clone();
    let writer = a.try_clone().unwrap();
    ev.add_writer(&a, move |_| {
        c.set(c.get() + 1);
        // Fill the socket buffer completely.
        let chunk = [0u8; 4096];
        loop {
            match (&writer).write(&chunk) {
                Ok(_) => {}
                Err(err) if err.kind() == ErrorKind::WouldBlock => break,
                Err(err) => panic!("write failed: {err}"),
            }
        }
    })
    .unwrap();
    step(&ev);
    assert_eq!(calls.get(), 1);
    for _ in 0..5 {
        step(&ev);
    }
    assert_eq!(calls.get(), 1, "a full socket is not writable");

    // Drain the peer: the socket becomes writable again.
    let mut buf = vec![0u8; 1 << 16];
    let mut drained = 0usize;
    loop {
        match (&b).read(&mut buf) {
            Ok(0) => break,
            Ok(n) => drained += n,
            Err(err) if err.kind() == ErrorKind::WouldBlock => break,
            Err(err) => panic!("read failed: {err}"),
        }
    }
    assert!(drained > 0);
    step(&ev);
    assert_eq!(calls.get(), 2, "writable again after the peer drained it");
    assert!(ev.remove_writer(&a));
    ev.close().unwrap();
}

#[test]
fn remove_returns_whether_something_was_registered() {
    let ev = manual_loop();
    let (a, b) = socket_pair();
    assert!(!ev.remove_reader(&a));
    assert!(!ev.remove_writer(&a));

    let reads = Rc::new(Cell::new(0usize));
    let writes = Rc::new(Cell::new(0usize));
    let r = reads.clone();
    let reader = a.try_clone().unwrap();
    ev.add_reader(&a, move |_| {
        let _ = (&reader).read(&mut [0u8; 64]);
        r.set(r.get() + 1);
    })
    .unwrap();
    let w = writes.clone();
    ev.add_writer(&a, move |_| w.set(w.get() + 1)).unwrap();
    assert!(ev.has_io_callback(&a, false));
    assert!(ev.has_io_callback(&a, true));
    assert_eq!(ev.stats().io_registrations, 1, "one entry per fd");

    (&b).write_all(b"x").unwrap();
    step(&ev);
    assert_eq!((reads.get(), writes.get()), (1, 1));

    // Removing the reader keeps the writer.
    assert!(ev.remove_reader(&a));
    assert!(!ev.remove_reader(&a));
    assert!(ev.has_io_callback(&a, true));
    (&b).write_all(b"y").unwrap();
    step(&ev);
    assert_eq!((reads.get(), writes.get()), (1, 2));

    assert!(ev.remove_writer(&a));
    assert!(!ev.remove_writer(&a));
    assert_eq!(ev.stats().io_registrations, 0);
    step(&ev);
    assert_eq!((reads.get(), writes.get()), (1, 2));
    ev.close().unwrap();
}

#[test]
fn re_adding_replaces_the_callback_and_drops_the_old_one() {
    let ev = manual_loop();
    let (a, b) = socket_pair();
    let old_dropped = Rc::new(Cell::new(0usize));
    let old_calls = Rc::new(Cell::new(0usize));
    let new_calls = Rc::new(Cell::new(0usize));

    let guard = DropCount(old_dropped.clone());
    let calls = old_calls.clone();
    ev.add_reader(&a, move |_| {
        let _keep = &guard;
        calls.set(calls.get() + 1);
    })
    .unwrap();
    assert_eq!(old_dropped.get(), 0);

    let calls = new_calls.clone();
    let reader = a.try_clone().unwrap();
    ev.add_reader(&a, move |_| {
        let _ = (&reader).read(&mut [0u8; 64]);
        calls.set(calls.get() + 1);
    })
    .unwrap();
    assert_eq!(
        old_dropped.get(),
        1,
        "the replaced reader is dropped at once"
    );
    assert_eq!(ev.stats().io_registrations, 1);

    (&b).write_all(b"data").unwrap();
    step(&ev);
    assert_eq!(old_calls.get(), 0);
    assert_eq!(new_calls.get(), 1);
    assert!(ev.remove_reader(&a));
    ev.close().unwrap();
}

#[test]
fn a_callback_can_remove_itself() {
    let ev = manual_loop();
    let (a, b) = socket_pair();
    let calls = Rc::new(Cell::new(0usize));
    let dropped = Rc::new(Cell::new(0usize));
    let removed = Rc::new(Cell::new(None));
    let guard = DropCount(dropped.clone());
    let (c, r) = (calls.clone(), removed.clone());
    let fd = a.as_raw_fd();
    ev.add_reader(&a, move |ev| {
        let _keep = &guard;
        c.set(c.get() + 1);
        // Reads nothing: the fd stays readable.
        r.set(Some(ev.remove_reader(fd)));
    })
    .unwrap();
    (&b).write_all(b"still here").unwrap();
    step(&ev);
    assert_eq!(calls.get(), 1);
    assert_eq!(removed.get(), Some(true));
    assert_eq!(
        dropped.get(),
        1,
        "the removed callback is dropped after it ran"
    );
    assert!(!ev.has_io_callback(&a, false));
    assert_eq!(ev.stats().io_registrations, 0);
    for _ in 0..5 {
        step(&ev);
    }
    assert_eq!(calls.get(), 1, "never called again though still readable");
    ev.close().unwrap();
}

#[test]
fn a_callback_can_replace_itself() {
    let ev = manual_loop();
    let (a, b) = socket_pair();
    let log = Rc::new(RefCell::new(Vec::new()));
    let l = log.clone();
    let reader = Rc::new(a.try_clone().unwrap());
    let fd = a.as_raw_fd();
    let dropped = Rc::new(Cell::new(0usize));
    let guard = DropCount(dropped.clone());
    ev.add_reader(fd, move |ev| {
        let _keep = &guard;
        // Reads nothing: the fd stays readable for the replacement.
        l.borrow_mut().push("first");
        let l = l.clone();
        let reader = reader.clone();
        ev.add_reader(fd, move |_| {
            let _ = (&*reader).read(&mut [0u8; 64]);
            l.borrow_mut().push("second");
        })
        .unwrap();
    })
    .unwrap();
    (&b).write_all(b"z").unwrap();
    for _ in 0..4 {
        step(&ev);
    }
    assert_eq!(*log.borrow(), ["first", "second"]);
    assert_eq!(
        dropped.get(),
        1,
        "the replaced callback is dropped after it ran"
    );
    assert_eq!(ev.stats().io_registrations, 1);
    assert!(ev.remove_reader(&a));
    ev.close().unwrap();
}

#[test]
fn stale_event_never_reaches_the_fd_that_reused_the_slot() {
    let ev = manual_loop();
    let (a, a_peer) = socket_pair();
    let a_fd = a.as_raw_fd();
    let a_calls = Rc::new(Cell::new(0usize));
    let c = a_calls.clone();
    ev.add_reader(&a, move |_| c.set(c.get() + 1)).unwrap();
    // A is readable: the next poll queues A's reader entry.
    (&a_peer).write_all(b"for A").unwrap();

    let b_calls = Rc::new(Cell::new(0usize));
    let b_socket = Rc::new(RefCell::new(None::<(UnixStream, UnixStream)>));
    let a_holder = Rc::new(RefCell::new(Some((a, a_peer))));
    {
        let (b_calls, b_socket, a_holder) = (b_calls.clone(), b_socket.clone(), a_holder.clone());
        // Queued before the poll, so it runs first in the same batch as A's
        // ready entry.
        ev.call_soon(move |ev| {
            assert!(ev.remove_reader(a_fd));
            drop(a_holder.borrow_mut().take()); // closes A
            let (b, b_peer) = socket_pair();
            // B is readable too, so a misrouted stale event would find data.
            (&b_peer).write_all(b"for B").unwrap();
            let reader = b.try_clone().unwrap();
            let calls = b_calls.clone();
            // The only registration: it takes A's freed slot.
            ev.add_reader(&b, move |_| {
                let _ = (&reader).read(&mut [0u8; 64]);
                calls.set(calls.get() + 1);
            })
            .unwrap();
            *b_socket.borrow_mut() = Some((b, b_peer));
        })
        .unwrap();
    }

    ev.run_once().unwrap();
    assert_eq!(
        ev.stats().ready,
        0,
        "the batch ran A's entry and the closer"
    );
    assert_eq!(a_calls.get(), 0, "A was removed before its entry ran");
    assert_eq!(
        b_calls.get(),
        0,
        "A's stale event ran B's callback in the batch that registered B"
    );
    assert_eq!(ev.stats().io_registrations, 1);

    // B's own readiness is reported by the next poll.
    step(&ev);
    assert_eq!(b_calls.get(), 1);
    for _ in 0..3 {
        step(&ev);
    }
    assert_eq!(b_calls.get(), 1, "B was drained");
    let (b, _b_peer) = b_socket.borrow_mut().take().unwrap();
    assert!(ev.remove_reader(&b));
    ev.close().unwrap();
}

fn assert_io_error(result: Result<(), LoopError>, errno: i32) {
    match result {
        Err(LoopError::Io(err)) => assert_eq!(err.raw_os_error(), Some(errno), "{err}"),
        other => panic!("expected LoopError::Io (errno {errno}), got {other:?}"),
    }
}

/// The loop still schedules and polls after a failed registration.
fn assert_usable(ev: &EventLoop) {
    assert_eq!(ev.stats().io_registrations, 0);
    let (a, b) = socket_pair();
    let calls = Rc::new(Cell::new(0usize));
    let c = calls.clone();
    let reader = a.try_clone().unwrap();
    ev.add_reader(&a, move |_| {
        let _ = (&reader).read(&mut [0u8; 64]);
        c.set(c.get() + 1);
    })
    .unwrap();
    (&b).write_all(b"ok").unwrap();
    step(ev);
    assert_eq!(calls.get(), 1);
    assert!(ev.remove_reader(&a));
}

const EBADF: i32 = 9;
const EPERM: i32 = 1;

#[test]
fn invalid_fds_are_io_errors_and_the_loop_stays_usable() {
    let ev = manual_loop();
    assert_io_error(ev.add_reader(-1, |_| {}), EBADF);
    assert_io_error(ev.add_writer(-1, |_| {}), EBADF);
    // Far above any fd limit: never open.
    assert_io_error(ev.add_reader(i32::MAX, |_| {}), EBADF);
    assert!(!ev.has_io_callback(-1, false));
    assert!(!ev.remove_reader(-1));
    assert_usable(&ev);

    // A closed fd. Other tests in this binary open fds concurrently and may
    // reuse the number at once, so try a few times: at least one attempt
    // must see the closed fd, and none may fail any other way.
    let mut saw_closed = false;
    for _ in 0..20 {
        let (a, _b) = socket_pair();
        let fd = a.as_raw_fd();
        drop(a);
        match ev.add_reader(fd, |_| {}) {
            Err(LoopError::Io(err)) => {
                assert_eq!(err.raw_os_error(), Some(EBADF), "{err}");
                saw_closed = true;
                break;
            }
            Err(other) => panic!("unexpected error {other:?}"),
            // The number was reused by another test meanwhile.
            Ok(()) => assert!(ev.remove_reader(fd)),
        }
    }
    assert!(saw_closed);
    assert_usable(&ev);
    ev.close().unwrap();
}

#[test]
fn regular_files_cannot_be_polled() {
    let ev = manual_loop();
    let path = std::env::temp_dir().join(format!(
        "tulip-io-readers-{}-regular-file",
        std::process::id()
    ));
    let file = std::fs::File::create(&path).unwrap();
    let reader = ev.add_reader(&file, |_| {});
    let writer = ev.add_writer(&file, |_| {});
    drop(file);
    std::fs::remove_file(&path).unwrap();
    assert_io_error(reader, EPERM);
    assert_io_error(writer, EPERM);
    assert_usable(&ev);
    ev.close().unwrap();
}

#[test]
fn readers_on_tcp_accept_and_read_until_eof() {
    let ev = checked(EventLoop::new().unwrap());
    let listener = Rc::new(TcpListener::bind("127.0.0.1:0").unwrap());
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let accepts = Rc::new(Cell::new(0usize));
    let received = Rc::new(RefCell::new(Vec::new()));
    let eof = Rc::new(Cell::new(false));
    let timed_out = Rc::new(Cell::new(false));

    {
        let (accepts, received, eof) = (accepts.clone(), received.clone(), eof.clone());
        let l = listener.clone();
        ev.add_reader(&*listener, move |ev| {
            let (stream, _) = match l.accept() {
                Ok(pair) => pair,
                Err(err) if err.kind() == ErrorKind::WouldBlock => return,
                Err(err) => panic!("accept failed: {err}"),
            };
            accepts.set(accepts.get() + 1);
            stream.set_nonblocking(true).unwrap();
            let fd = stream.as_raw_fd();
            let (received, eof) = (received.clone(), eof.clone());
            ev.add_reader(fd, move |ev| {
                let mut buf = [0u8; 3];
                match (&stream).read(&mut buf) {
                    Ok(0) => {
                        // Remove before the closure (and the stream) is dropped.
                        assert!(ev.remove_reader(fd));
                        eof.set(true);
                        ev.stop();
                    }
                    Ok(n) => received.borrow_mut().extend_from_slice(&buf[..n]),
                    Err(err) if err.kind() == ErrorKind::WouldBlock => {}
                    Err(err) => panic!("read failed: {err}"),
                }
            })
            .unwrap();
        })
        .unwrap();
    }
    let t = timed_out.clone();
    // Failure fallback only.
    let watchdog = ev
        .call_later(Duration::from_secs(10), move |ev| {
            t.set(true);
            ev.stop();
        })
        .unwrap();

    let mut client = TcpStream::connect(addr).unwrap();
    client.write_all(b"hello, tulip").unwrap();
    drop(client);

    ev.run_forever().unwrap();
    watchdog.cancel();
    assert!(!timed_out.get(), "the reader never saw EOF");
    assert!(eof.get());
    assert_eq!(accepts.get(), 1);
    assert_eq!(&*received.borrow(), b"hello, tulip");
    assert_eq!(ev.stats().io_registrations, 1, "only the listener is left");
    assert!(ev.remove_reader(&*listener));
    ev.close().unwrap();
}

#[test]
fn a_panicking_reader_is_reported_and_stays_registered() {
    let ev = manual_loop();
    let (a, b) = socket_pair();
    let reports = Rc::new(RefCell::new(Vec::new()));
    let r = reports.clone();
    ev.set_exception_handler(Some(move |_: &EventLoop, ctx: ExceptionContext| {
        r.borrow_mut().push((
            ctx.panic_message().map(str::to_owned),
            ctx.site().map(|s| s.file().to_owned()),
        ));
    }));
    let calls = Rc::new(Cell::new(0usize));
    let c = calls.clone();
    let reader = a.try_clone().unwrap();
    ev.add_reader(&a, move |_| {
        c.set(c.get() + 1);
        let _ = (&reader).read(&mut [0u8; 1]);
        if c.get() == 1 {
            panic!("reader boom");
        }
    })
    .unwrap();
    (&b).write_all(b"12").unwrap();
    for _ in 0..4 {
        step(&ev);
    }
    assert_eq!(
        calls.get(),
        2,
        "called again after panicking, until drained"
    );
    let reports = reports.borrow();
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].0.as_deref(), Some("reader boom"));
    assert!(
        reports[0].1.as_deref().unwrap().ends_with("io_readers.rs"),
        "{:?}",
        reports[0]
    );
    assert!(ev.remove_reader(&a));
    ev.close().unwrap();
}

#[test]
fn close_releases_registrations_and_drops_callbacks() {
    let ev = manual_loop();
    let (a, a_peer) = socket_pair();
    let (b, _b_peer) = socket_pair();
    let (tx, rx) = mio::unix::pipe::new().unwrap();
    let dropped = Rc::new(Cell::new(0usize));
    let calls = Rc::new(Cell::new(0usize));
    let mut registered = 0;
    let mut register = |result: Result<(), LoopError>| {
        result.unwrap();
        registered += 1;
    };
    let callback = |dropped: &Rc<Cell<usize>>, calls: &Rc<Cell<usize>>| {
        let guard = DropCount(dropped.clone());
        let calls = calls.clone();
        move |_: &EventLoop| {
            let _keep = &guard;
            calls.set(calls.get() + 1);
        }
    };
    register(ev.add_reader(&a, callback(&dropped, &calls)));
    register(ev.add_writer(&a, callback(&dropped, &calls)));
    register(ev.add_reader(&b, callback(&dropped, &calls)));
    register(ev.add_reader(&rx, callback(&dropped, &calls)));
    register(ev.add_writer(&tx, callback(&dropped, &calls)));
    assert_eq!(ev.stats().io_registrations, 4);
    assert_eq!(dropped.get(), 0);

    ev.close().unwrap();
    assert_eq!(ev.stats().io_registrations, 0);
    assert_eq!(dropped.get(), registered, "every reader and writer dropped");
    assert_eq!(calls.get(), 0);
    assert!(!ev.has_io_callback(&a, false));
    assert!(!ev.remove_reader(&a));
    assert!(!ev.remove_writer(&tx));
    assert!(matches!(ev.add_reader(&a, |_| {}), Err(LoopError::Closed)));
    assert!(matches!(ev.add_writer(&a, |_| {}), Err(LoopError::Closed)));

    // The loop never owned the fds: they still work.
    (&a_peer).write_all(b"x").unwrap();
    let mut byte = [0u8; 1];
    assert_eq!((&a).read(&mut byte).unwrap(), 1);
    (&tx).write_all(b"y").unwrap();
    assert_eq!((&rx).read(&mut byte).unwrap(), 1);
    assert_eq!(&byte, b"y");
}

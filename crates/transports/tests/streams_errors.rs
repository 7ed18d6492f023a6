//! How errors and ends reach a stream, where asyncio's order of events
//! decides the outcome:
//! * bytes fed before `set_exception` reach the read they woke (asyncio's
//!   waiter had its result by then); the next read raises;
//! * a read woken by data, still short of what it needs when the exception
//!   comes, fails instead of waiting again (asyncio would wait on);
//! * a huge `limit` (`usize::MAX`, "unlimited") works;
//! * `write` after `write_eof` is asyncio's `RuntimeError`;
//! * a drain waiting when the connection is aborted fails (where asyncio
//!   returns: a divergence kept, see `docs/asyncio-mapping.md`); one
//!   cancelled leaves no waiter behind (asyncio's `_drain_helper`);
//! * the connection's error reaches the reader, the drainers and
//!   `wait_closed` as the OS error it was.
//!
//! Reader-only cases run on a manual-clock loop with a watchdog (a stuck
//! read fails the run); network cases use 127.0.0.1 and the shared
//! [`support::Harness`].

mod support;

use std::io;
use std::time::Duration;

use loop_futures::{Error, EventLoopExt};
use loop_transports::{
    BaseProtocol, StreamOptions, StreamReader, StreamReaderProtocol, StreamWriter, open_connection,
};
use support::{Harness, Parked, capture_logs, iterations, manual_loop, run_bounded, run_briefly};

const WATCHDOG: Duration = Duration::from_secs(3600);

fn reset() -> Error {
    Error::new(io::Error::from(io::ErrorKind::ConnectionReset))
}

fn io_kind(err: &Error) -> Option<io::ErrorKind> {
    err.downcast_ref::<io::Error>().map(io::Error::kind)
}

/// Which comes first while a read waits, before it runs again.
#[derive(Clone, Copy)]
enum First {
    /// `feed_data`, then `set_exception`: the data woke the read.
    Data,
    /// `set_exception`, then `feed_data`: the exception woke it.
    Exception,
}

/// Starts `read` on a fresh reader, lets it wait, feeds `data` and sets an
/// exception in the `first` order before the read runs again, and returns
/// what the read got and the reader.
fn wake_then_run<T, F, Fut>(first: First, data: &[u8], read: F) -> (Result<T, Error>, StreamReader)
where
    T: Clone + 'static,
    F: FnOnce(StreamReader) -> Fut,
    Fut: std::future::Future<Output = Result<T, Error>> + 'static,
{
    let ev = manual_loop();
    let stream = StreamReader::default();
    let task = ev.create_task(read(stream.clone())).unwrap();
    run_briefly(&ev);
    assert!(!task.done(), "the read waits for data");
    match first {
        First::Data => {
            stream.feed_data(data);
            stream.set_exception(reset());
        }
        First::Exception => {
            stream.set_exception(reset());
            stream.feed_data(data);
        }
    }
    (run_bounded(&ev, WATCHDOG, task), stream)
}

/// Data, then the exception, before the woken read runs.
fn data_then_exception<T, F, Fut>(data: &[u8], read: F) -> (Result<T, Error>, StreamReader)
where
    T: Clone + 'static,
    F: FnOnce(StreamReader) -> Fut,
    Fut: std::future::Future<Output = Result<T, Error>> + 'static,
{
    wake_then_run(First::Data, data, read)
}

/// After the woken read, the exception is for every later read.
fn assert_next_read_fails(stream: &StreamReader) {
    let ev = manual_loop();
    let s = stream.clone();
    let err = run_bounded(&ev, WATCHDOG, async move { s.read(10).await }).unwrap_err();
    assert_eq!(
        io_kind(&err),
        Some(io::ErrorKind::ConnectionReset),
        "{err:?}"
    );
}

#[test]
fn data_fed_before_set_exception_reaches_the_waiting_read() {
    let (got, stream) = data_then_exception(b"last bytes", |s| async move { s.read(100).await });
    assert_eq!(got.unwrap(), b"last bytes");
    assert_next_read_fails(&stream);
}

#[test]
fn data_fed_before_set_exception_reaches_the_waiting_readexactly() {
    let (got, stream) = data_then_exception(b"abcdef", |s| async move { s.readexactly(4).await });
    assert_eq!(got.unwrap(), b"abcd");
    // asyncio: the exception is checked first, the two bytes left stay.
    assert_next_read_fails(&stream);
    assert_eq!(stream.buffered(), 2);
}

#[test]
fn data_fed_before_set_exception_reaches_the_waiting_readline() {
    let (got, stream) = data_then_exception(b"line\n", |s| async move { s.readline().await });
    assert_eq!(got.unwrap(), b"line\n");
    assert_next_read_fails(&stream);
}

#[test]
fn data_fed_before_set_exception_reaches_the_waiting_readuntil_any() {
    let (got, stream) = data_then_exception(b"ab\r\ncd", |s| async move {
        s.readuntil_any(&[b"\r\n", b"\n"]).await
    });
    assert_eq!(got.unwrap(), b"ab\r\n");
    assert_next_read_fails(&stream);
}

#[test]
fn data_fed_before_set_exception_reaches_a_read_until_eof_block() {
    // read(-1) gathers blocks: the woken pass takes its block, the next
    // pass fails, and the gathered bytes go with the error (asyncio's
    // read(-1) is a loop of reads, each checking the exception first).
    let (got, stream) = data_then_exception(b"abc", |s| async move { s.read(-1).await });
    assert_eq!(
        io_kind(&got.unwrap_err()),
        Some(io::ErrorKind::ConnectionReset)
    );
    assert_eq!(stream.buffered(), 0, "the woken pass took the block");
}

#[test]
fn a_woken_read_short_of_its_bytes_fails_instead_of_waiting_again() {
    // Four bytes wake readexactly(10), the exception comes before it runs:
    // it fails (asyncio would wait for more that never comes), the four
    // bytes stay buffered.
    let (got, stream) = data_then_exception(b"abcd", |s| async move { s.readexactly(10).await });
    assert_eq!(
        io_kind(&got.unwrap_err()),
        Some(io::ErrorKind::ConnectionReset)
    );
    assert_eq!(stream.buffered(), 4);

    let (got, stream) = data_then_exception(b"no newline", |s| async move { s.readline().await });
    assert_eq!(
        io_kind(&got.unwrap_err()),
        Some(io::ErrorKind::ConnectionReset)
    );
    assert_eq!(stream.buffered(), 10);
}

#[test]
fn set_exception_then_data_fails_the_waiting_readexactly_and_readline() {
    // asyncio: set_exception put the exception on the waiter; the bytes
    // fed after it stay buffered.
    let (got, stream) = wake_then_run(First::Exception, b"abcd", |s| async move {
        s.readexactly(4).await
    });
    assert_eq!(
        io_kind(&got.unwrap_err()),
        Some(io::ErrorKind::ConnectionReset)
    );
    assert_eq!(stream.buffered(), 4);
    let (got, stream) = wake_then_run(
        First::Exception,
        b"ab\n",
        |s| async move { s.readline().await },
    );
    assert_eq!(
        io_kind(&got.unwrap_err()),
        Some(io::ErrorKind::ConnectionReset)
    );
    assert_eq!(stream.buffered(), 3);
}

#[test]
fn the_waiting_read_fails_with_the_first_of_two_exceptions() {
    // asyncio's waiter keeps the exception that woke it; the reader keeps
    // the last one set, for every later read.
    for readexactly in [false, true] {
        let ev = manual_loop();
        let stream = StreamReader::default();
        let s = stream.clone();
        let task = ev
            .create_task(async move {
                if readexactly {
                    s.readexactly(4).await
                } else {
                    s.read(4).await
                }
            })
            .unwrap();
        run_briefly(&ev);
        stream.set_exception(reset());
        stream.set_exception(Error::new(io::Error::from(io::ErrorKind::BrokenPipe)));
        let err = run_bounded(&ev, WATCHDOG, task).unwrap_err();
        assert_eq!(
            io_kind(&err),
            Some(io::ErrorKind::ConnectionReset),
            "{err:?}"
        );
        let s = stream.clone();
        let err = run_bounded(&ev, WATCHDOG, async move { s.read(4).await }).unwrap_err();
        assert_eq!(io_kind(&err), Some(io::ErrorKind::BrokenPipe), "{err:?}");
    }
}

#[test]
fn set_exception_then_data_fails_the_waiting_read() {
    // The exception woke the read: it fails, whatever arrives after.
    let (got, stream) = wake_then_run(
        First::Exception,
        b"late",
        |s| async move { s.read(100).await },
    );
    assert_eq!(
        io_kind(&got.unwrap_err()),
        Some(io::ErrorKind::ConnectionReset)
    );
    assert_eq!(stream.buffered(), 4);
}

#[test]
fn a_limit_of_usize_max_does_not_overflow() {
    // "Unlimited": 2 × limit saturates instead of overflowing (a panic in
    // debug builds, a pause after every receive in release ones).
    let ev = manual_loop();
    let stream = StreamReader::new(usize::MAX);
    stream.feed_data(b"x\n");
    assert_eq!(stream.buffered(), 2);
    let s = stream.clone();
    let line = run_bounded(&ev, WATCHDOG, async move { s.readline().await }).unwrap();
    assert_eq!(line, b"x\n");

    // Over TCP, with a limit whose double does not fit: six bytes do not
    // pause the transport's reading.
    for limit in [usize::MAX, usize::MAX / 2 + 1] {
        let h = Harness::new();
        let got = h.run(move |ev| async move {
            let parked = Parked::start(&ev, Some(limit)).await?;
            let ((_reader, writer), (server_reader, server_writer)) = parked.connect(&ev).await?;
            writer.write(b"hello\n")?;
            let r = server_reader.clone();
            support::wait_until("the bytes buffered", move || r.buffered() == 6).await?;
            assert!(server_writer.transport().is_reading(), "limit {limit}");
            let line = server_reader.readline().await?;
            writer.close();
            server_writer.close();
            parked.server.close();
            parked.server.wait_closed().await?;
            Ok(line)
        });
        assert_eq!(got, b"hello\n");
    }
}

#[test]
fn a_limit_of_zero_is_refused() {
    let h = Harness::new();
    h.run(|ev| async move {
        let options = StreamOptions {
            limit: Some(0),
            ..StreamOptions::default()
        };
        let err = open_connection(&ev, "127.0.0.1", 1, options)
            .await
            .unwrap_err();
        assert_eq!(io_kind(&err), Some(io::ErrorKind::InvalidInput), "{err:?}");
        assert_eq!(err.to_string(), "Limit cannot be <= 0");
        let options = StreamOptions {
            limit: Some(0),
            ..StreamOptions::default()
        };
        let err = loop_transports::start_server_with(&ev, |_, _| {}, &["127.0.0.1"], 0, options)
            .await
            .unwrap_err();
        assert_eq!(io_kind(&err), Some(io::ErrorKind::InvalidInput), "{err:?}");
        Ok(())
    });
}

#[test]
fn write_after_write_eof_is_a_runtime_error() {
    let h = Harness::new();
    h.run(|ev| async move {
        let parked = Parked::start(&ev, None).await?;
        let ((_reader, writer), (server_reader, server_writer)) = parked.connect(&ev).await?;
        writer.write(b"a")?;
        writer.write_eof();
        for (err, method) in [
            (writer.write(b"b").unwrap_err(), "write"),
            (writer.write(b"c".to_vec()).unwrap_err(), "write"),
            (writer.writelines(&[b"d", b"e"]).unwrap_err(), "writelines"),
        ] {
            assert!(matches!(err, Error::Runtime(_)), "{err:?}");
            assert_eq!(
                err.to_string(),
                format!("RuntimeError: Cannot call {method}() after write_eof()")
            );
        }
        // The transport's own write has no error to return: it warns.
        let logs = capture_logs(|logs| {
            writer.transport().write(b"f");
            writer.transport().writelines(&[b"g"]);
            logs.text()
        });
        assert!(
            logs.contains("Cannot call write() after write_eof()"),
            "{logs}"
        );
        assert!(
            logs.contains("Cannot call writelines() after write_eof()"),
            "{logs}"
        );
        // The peer got the bytes before the EOF, and only those.
        assert_eq!(server_reader.read(-1).await?, b"a");
        writer.close();
        server_writer.close();
        parked.server.close();
        parked.server.wait_closed().await?;
        Ok(())
    });
}

/// Pauses writing by hand, as asyncio's tests do (`pause_writing` on the
/// protocol), so drains wait without filling a socket.
fn pause(writer: &StreamWriter) -> std::rc::Rc<std::cell::RefCell<StreamReaderProtocol>> {
    let protocol = writer
        .transport()
        .get_protocol::<StreamReaderProtocol>()
        .expect("StreamReaderProtocol");
    protocol.borrow_mut().pause_writing();
    protocol
}

#[test]
fn a_drain_waiting_at_an_abort_fails_with_connection_lost() {
    let h = Harness::new();
    h.run(|ev| async move {
        let parked = Parked::start(&ev, None).await?;
        let ((_reader, writer), (_server_reader, server_writer)) = parked.connect(&ev).await?;
        let _protocol = pause(&writer);
        let w = writer.clone();
        let drain = ev.create_task(async move { w.drain().await })?;
        iterations(3).await?;
        assert!(!drain.done(), "drain waits while paused");
        writer.transport().abort();
        // asyncio's FlowControlMixin returns (set_result(None) for exc
        // None); here the buffered bytes were not sent, so it fails.
        let err = drain.await.unwrap_err();
        assert_eq!(
            io_kind(&err),
            Some(io::ErrorKind::ConnectionReset),
            "{err:?}"
        );
        assert_eq!(err.to_string(), "Connection lost");
        // A drain from now on fails too: the connection is gone.
        let err = writer.drain().await.unwrap_err();
        assert_eq!(
            io_kind(&err),
            Some(io::ErrorKind::ConnectionReset),
            "{err:?}"
        );
        assert_eq!(err.to_string(), "Connection lost");
        writer.wait_closed().await?;
        server_writer.close();
        parked.server.close();
        parked.server.wait_closed().await?;
        Ok(())
    });
}

#[test]
fn cancelled_drains_leave_no_waiter_behind() {
    let h = Harness::new();
    h.run(|ev| async move {
        let parked = Parked::start(&ev, None).await?;
        let ((_reader, writer), (_server_reader, server_writer)) = parked.connect(&ev).await?;
        let protocol = pause(&writer);
        // A drain retried under a timeout while the peer stalls, 100 times.
        for _ in 0..100 {
            let w = writer.clone();
            let drain = ev.create_task(async move { w.drain().await })?;
            iterations(1).await?;
            assert!(!drain.done());
            drain.cancel(None);
            iterations(1).await?;
            assert!(drain.cancelled());
        }
        // And one dropped mid-wait by `wait_for`.
        let err = loop_futures::wait_for(writer.drain(), Some(Duration::from_millis(1)))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Timeout(_)), "{err:?}");
        let shown = format!("{:?}", protocol.borrow());
        assert!(shown.contains("drain_waiters: 0"), "{shown}");

        // The waiting drain is listed, and returns on resume.
        let w = writer.clone();
        let drain = ev.create_task(async move { w.drain().await })?;
        iterations(1).await?;
        let shown = format!("{:?}", protocol.borrow());
        assert!(shown.contains("drain_waiters: 1"), "{shown}");
        protocol.borrow_mut().resume_writing();
        drain.await?;
        let shown = format!("{:?}", protocol.borrow());
        assert!(shown.contains("drain_waiters: 0"), "{shown}");
        writer.close();
        server_writer.close();
        parked.server.close();
        parked.server.wait_closed().await?;
        Ok(())
    });
}

#[test]
fn the_connection_error_reaches_reader_drain_and_wait_closed_as_the_os_error() {
    let h = Harness::new();
    h.run(|ev| async move {
        let parked = Parked::start(&ev, None).await?;
        let ((reader, writer), (_server_reader, server_writer)) = parked.connect(&ev).await?;
        let _protocol = pause(&writer);
        let w = writer.clone();
        let drain = ev.create_task(async move { w.drain().await })?;
        let r = reader.clone();
        let read = ev.create_task(async move { r.read(100).await })?;
        iterations(3).await?;
        assert!(!drain.done() && !read.done());

        // The server side resets the connection.
        server_writer.transport().with_socket(|s| {
            s.expect("socket open")
                .set_linger(Some(Duration::ZERO))
                .expect("SO_LINGER")
        });
        server_writer.transport().abort();

        let read_err = read.await.unwrap_err();
        let os = read_err
            .downcast_ref::<io::Error>()
            .unwrap_or_else(|| panic!("expected an io::Error, got {read_err:?}"));
        assert_eq!(os.kind(), io::ErrorKind::ConnectionReset);
        assert!(os.raw_os_error().is_some(), "the OS error is kept: {os:?}");
        let drain_err = drain.await.unwrap_err();
        let closed_err = writer.wait_closed().await.unwrap_err();
        // One error, shared: asyncio hands the same exception object out.
        let shared = read_err.to_shared();
        assert!(std::sync::Arc::ptr_eq(&shared, &drain_err.to_shared()));
        assert!(std::sync::Arc::ptr_eq(&shared, &closed_err.to_shared()));
        assert!(std::sync::Arc::ptr_eq(
            &shared,
            &reader
                .exception()
                .expect("the reader's exception")
                .to_shared()
        ));
        parked.server.close();
        parked.server.wait_closed().await?;
        Ok(())
    });
}

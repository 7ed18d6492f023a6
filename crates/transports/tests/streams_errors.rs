//! How errors and ends reach a stream, where asyncio's order of events
//! decides the outcome:
//! * bytes fed before `set_exception` reach the read they woke (asyncio's
//!   waiter had its result by then); the next read raises;
//! * a read woken by data, still short of what it needs when the exception
//!   comes, fails instead of waiting again (asyncio would wait on);
//! * a huge `limit` (`usize::MAX`, "unlimited") works, 0 is refused.
//!
//! Reader-only cases run on a manual-clock loop with a watchdog (a stuck
//! read fails the run); network cases use 127.0.0.1 and the shared
//! [`support::Harness`].

mod support;

use std::io;
use std::time::Duration;

use loop_futures::{Error, EventLoopExt};
use loop_transports::{StreamOptions, StreamReader, open_connection};
use support::{Harness, Parked, manual_loop, run_bounded, run_briefly};

const WATCHDOG: Duration = Duration::from_secs(3600);

fn reset() -> Error {
    Error::new(io::Error::from(io::ErrorKind::ConnectionReset))
}

fn io_kind(err: &Error) -> Option<io::ErrorKind> {
    err.downcast_ref::<io::Error>().map(io::Error::kind)
}

/// Starts `read` on a fresh reader, lets it wait, feeds `data`, sets an
/// exception before the read runs again, and returns what the read got
/// and the reader.
fn data_then_exception<T, F, Fut>(data: &[u8], read: F) -> (Result<T, Error>, StreamReader)
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
    stream.feed_data(data);
    stream.set_exception(reset());
    (run_bounded(&ev, WATCHDOG, task), stream)
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
    // read(-1) gathers blocks: the woken block is kept, the next pass fails
    // (asyncio's read(-1) is a loop of reads, each checking first).
    let (got, _) = data_then_exception(b"abc", |s| async move { s.read(-1).await });
    assert_eq!(
        io_kind(&got.unwrap_err()),
        Some(io::ErrorKind::ConnectionReset)
    );
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
fn set_exception_then_data_fails_the_waiting_read() {
    // The exception woke the read: it fails, whatever arrives after.
    let ev = manual_loop();
    let stream = StreamReader::default();
    let s = stream.clone();
    let task = ev.create_task(async move { s.read(100).await }).unwrap();
    run_briefly(&ev);
    stream.set_exception(reset());
    stream.feed_data(b"late");
    let err = run_bounded(&ev, WATCHDOG, task).unwrap_err();
    assert_eq!(io_kind(&err), Some(io::ErrorKind::ConnectionReset));
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

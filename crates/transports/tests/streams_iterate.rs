//! `StreamReader::lines` and `StreamReader::chunks`: the stream read in a
//! `while let` loop (asyncio's `async for line in reader`, and the same by
//! chunks of at most `n` bytes).
//!
//! Reader-only cases run on a manual-clock loop with a watchdog (a stuck
//! read fails the run); the network case uses 127.0.0.1 and the shared
//! [`support::Harness`].

mod support;

use std::io;
use std::time::Duration;

use loop_core::EventLoop;
use loop_futures::{Error, EventLoopExt};
use loop_transports::{StreamOptions, StreamReader, open_connection, start_server};
use support::{Harness, manual_loop, pattern, run_bounded};

const WATCHDOG: Duration = Duration::from_secs(3600);

/// Feeds `parts` one per loop iteration (from `call_soon` callbacks), then
/// EOF, while the reads wait.
fn feed_later(ev: &EventLoop, reader: &StreamReader, parts: &[&[u8]]) {
    let parts: Vec<Vec<u8>> = parts.iter().map(|p| p.to_vec()).collect();
    let r = reader.clone();
    ev.call_soon(move |ev| feed_next(ev, r, parts, 0))
        .expect("schedule the feed");
}

fn feed_next(ev: &EventLoop, reader: StreamReader, parts: Vec<Vec<u8>>, i: usize) {
    match parts.get(i) {
        Some(part) => {
            reader.feed_data(part);
            ev.call_soon(move |ev| feed_next(ev, reader, parts, i + 1))
                .expect("schedule the next part");
        }
        None => reader.feed_eof(),
    }
}

/// Every item of `lines` or `chunks` until `None`, with one more `next`
/// after it (which must be `None` too).
macro_rules! collect_all {
    ($iter:expr) => {{
        let mut items = Vec::new();
        for _ in 0..10_000 {
            match $iter.next().await {
                Some(item) => items.push(item?),
                None => break,
            }
        }
        assert!($iter.next().await.is_none(), "None again after the end");
        items
    }};
}

#[test]
fn lines_of_buffered_data_then_none() {
    let ev = manual_loop();
    let reader = StreamReader::default();
    reader.feed_data(b"a\nbb\n\nccc");
    reader.feed_eof();
    let r = reader.clone();
    let lines = run_bounded(&ev, WATCHDOG, async move {
        let mut lines = r.lines();
        Ok::<_, Error>(collect_all!(lines))
    })
    .unwrap();
    let want: Vec<&[u8]> = vec![b"a\n", b"bb\n", b"\n", b"ccc"];
    assert_eq!(lines, want);
}

#[test]
fn lines_wait_for_data_split_anywhere() {
    let ev = manual_loop();
    let reader = StreamReader::default();
    feed_later(&ev, &reader, &[b"he", b"llo\nwor", b"ld", b"\n\nlast"]);
    let r = reader.clone();
    let lines = run_bounded(&ev, WATCHDOG, async move {
        let mut lines = r.lines();
        Ok::<_, Error>(collect_all!(lines))
    })
    .unwrap();
    let want: Vec<&[u8]> = vec![b"hello\n", b"world\n", b"\n", b"last"];
    assert_eq!(lines, want);
}

#[test]
fn lines_return_the_exception_each_time() {
    let ev = manual_loop();
    let reader = StreamReader::default();
    reader.feed_data(b"one\n");
    let r = reader.clone();
    let got = run_bounded(&ev, WATCHDOG, async move {
        let mut lines = r.lines();
        let first = lines.next().await.expect("a line")?;
        r.set_exception(Error::new(io::Error::from(io::ErrorKind::ConnectionReset)));
        let second = lines.next().await.expect("the error");
        let third = lines.next().await.expect("the error again");
        Ok::<_, Error>((first, second, third))
    })
    .unwrap();
    assert_eq!(got.0, b"one\n");
    for err in [got.1.unwrap_err(), got.2.unwrap_err()] {
        let kind = err.downcast_ref::<io::Error>().map(io::Error::kind);
        assert_eq!(kind, Some(io::ErrorKind::ConnectionReset), "{err:?}");
    }
}

#[test]
fn chunks_of_buffered_data_are_at_most_n_bytes() {
    let ev = manual_loop();
    let reader = StreamReader::default();
    reader.feed_data(b"abcdefghij");
    reader.feed_eof();
    let r = reader.clone();
    let chunks = run_bounded(&ev, WATCHDOG, async move {
        let mut chunks = r.chunks(4);
        Ok::<_, Error>(collect_all!(chunks))
    })
    .unwrap();
    let want: Vec<&[u8]> = vec![b"abcd", b"efgh", b"ij"];
    assert_eq!(chunks, want);
}

#[test]
fn chunks_come_as_the_data_arrives() {
    // As read(n): as soon as there are bytes, up to n of them.
    let ev = manual_loop();
    let reader = StreamReader::default();
    feed_later(&ev, &reader, &[b"ab", b"cdefg", b"h"]);
    let r = reader.clone();
    let chunks = run_bounded(&ev, WATCHDOG, async move {
        let mut chunks = r.chunks(3);
        Ok::<_, Error>(collect_all!(chunks))
    })
    .unwrap();
    let want: Vec<&[u8]> = vec![b"ab", b"cde", b"fg", b"h"];
    assert_eq!(chunks, want);
    assert!(reader.at_eof());
}

#[test]
fn chunks_of_zero_bytes_are_refused_then_none() {
    let ev = manual_loop();
    let reader = StreamReader::default();
    reader.feed_data(b"kept");
    let r = reader.clone();
    let (first, second) = run_bounded(&ev, WATCHDOG, async move {
        let mut chunks = r.chunks(0);
        let first = chunks.next().await;
        let second = chunks.next().await;
        Ok::<_, Error>((first, second))
    })
    .unwrap();
    let err = first.expect("an error").unwrap_err();
    let kind = err.downcast_ref::<io::Error>().map(io::Error::kind);
    assert_eq!(kind, Some(io::ErrorKind::InvalidInput), "{err:?}");
    assert_eq!(err.to_string(), "chunk size must be at least 1");
    assert!(second.is_none());
    assert_eq!(reader.buffered(), 4, "nothing was read");
}

#[test]
fn chunks_of_usize_max_take_everything_buffered() {
    let ev = manual_loop();
    let reader = StreamReader::default();
    reader.feed_data(b"all of ");
    reader.feed_data(b"it");
    reader.feed_eof();
    let r = reader.clone();
    let chunks = run_bounded(&ev, WATCHDOG, async move {
        let mut chunks = r.chunks(usize::MAX);
        Ok::<_, Error>(collect_all!(chunks))
    })
    .unwrap();
    assert_eq!(chunks.concat(), b"all of it");
}

#[test]
fn a_chunks_echo_over_loopback_is_byte_exact() {
    const TOTAL: usize = 2 * 1024 * 1024;
    let h = Harness::new();
    let echoed = h.run(|ev| async move {
        let server = start_server(
            &ev,
            |reader: StreamReader, writer| async move {
                let mut chunks = reader.chunks(64 * 1024);
                while let Some(chunk) = chunks.next().await {
                    writer.write(chunk?)?;
                    writer.drain().await?;
                }
                writer.close();
                Ok::<_, Error>(())
            },
            &["127.0.0.1"],
            0,
            StreamOptions::default(),
        )
        .await?;
        let port = server.sockets()[0].port();
        let (reader, writer) =
            open_connection(&ev, "127.0.0.1", port, StreamOptions::default()).await?;
        let data = pattern(TOTAL);
        let w = writer.clone();
        let sender = ev.create_task(async move {
            for part in data.chunks(100_000) {
                w.write(part)?;
                w.drain().await?;
            }
            w.write_eof();
            Ok::<_, Error>(())
        })?;
        let mut echoed = Vec::with_capacity(TOTAL);
        let mut chunks = reader.chunks(32 * 1024);
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk?;
            assert!(!chunk.is_empty() && chunk.len() <= 32 * 1024);
            echoed.extend_from_slice(&chunk);
        }
        sender.await?;
        writer.close();
        server.close();
        server.wait_closed().await?;
        Ok(echoed)
    });
    assert!(echoed == pattern(TOTAL), "{} bytes echoed", echoed.len());
}

//! Streams over real 127.0.0.1 connections: bulk echo (borrowed and owned
//! writes, the latter partly buffered), `drain` against a
//! peer that stops reading (waits without spinning), connection errors
//! reaching the reader and the writer, the writer's buffer cap, and a
//! failing `start_server` handler.
//!
//! Every run is bounded by the shared harness's watchdog; every loop in a
//! test has an iteration cap.

mod support;

use std::cell::Cell;
use std::future::Future as StdFuture;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use loop_futures::{Error, EventLoopExt, sleep, yield_now};
use loop_transports::{
    BufferCapExceeded, DEFAULT_HIGH_WATER, IncompleteReadError, StreamOptions, StreamReader,
    StreamWriter, open_connection, start_server,
};
use support::{Harness, Parked, iterations, pattern};

const CHUNK: usize = 64 * 1024;

/// Counts how many times the wrapped future is polled.
struct Counted<F: StdFuture> {
    inner: Pin<Box<F>>,
    polls: Rc<Cell<usize>>,
}

impl<F: StdFuture> StdFuture for Counted<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.polls.set(self.polls.get() + 1);
        self.inner.as_mut().poll(cx)
    }
}

fn io_kind(err: &Error) -> Option<io::ErrorKind> {
    err.downcast_ref::<io::Error>().map(io::Error::kind)
}

/// Writes `CHUNK`-sized pieces of `data` (from `*sent` on) without
/// draining until the writer's transport buffers more than the high-water
/// mark, i.e. the protocol is paused and `drain` has to wait. Bounded.
async fn fill_until_paused(
    writer: &StreamWriter,
    data: &[u8],
    sent: &mut usize,
) -> Result<(), Error> {
    for _ in 0..2_000 {
        if writer.transport().get_write_buffer_size() > DEFAULT_HIGH_WATER {
            return Ok(());
        }
        assert!(
            *sent < data.len(),
            "the peer absorbed all {} bytes",
            data.len()
        );
        let end = (*sent + CHUNK).min(data.len());
        writer.write(&data[*sent..end])?;
        *sent = end;
        // Let the transport flush what the kernel takes.
        iterations(2).await?;
    }
    Err(Error::msg(
        "the write buffer never passed the high-water mark",
    ))
}

/// How the echo server writes back what it reads.
#[derive(Clone, Copy)]
enum EchoWrite {
    /// `writer.write(&chunk)`.
    Borrowed,
    /// `writer.write(chunk)`, the vector going back to the reader as its
    /// next receive room, from a server with a small kernel send buffer,
    /// so its writes are often partly sent and the rest buffered first.
    OwnedPartial,
}

/// Echoes `total` bytes of a pattern through a stream echo server,
/// sent in pieces of `sizes` (round robin) by one task while the client
/// reads until EOF; returns (bytes the client got back, bytes the server
/// saw), after checking the echo byte for byte.
fn echo_byte_exact(total: usize, sizes: &'static [usize], how: EchoWrite) -> (usize, usize) {
    let h = Harness::new();
    h.run(move |ev| async move {
        let served = Rc::new(Cell::new(0usize));
        let s = served.clone();
        let server = start_server(
            &ev,
            move |reader: StreamReader, writer: StreamWriter| {
                let s = s.clone();
                async move {
                    if let EchoWrite::OwnedPartial = how {
                        support::small_send_buffer(writer.transport());
                    }
                    loop {
                        let chunk = reader.read(CHUNK as isize).await?;
                        if chunk.is_empty() {
                            break;
                        }
                        s.set(s.get() + chunk.len());
                        match how {
                            EchoWrite::Borrowed => writer.write(&chunk)?,
                            EchoWrite::OwnedPartial => writer.write(chunk)?,
                        }
                        writer.drain().await?;
                    }
                    writer.close();
                    writer.wait_closed().await
                }
            },
            &["127.0.0.1"],
            0,
            StreamOptions::default(),
        )
        .await?;
        let port = server.sockets()[0].port();
        let (reader, writer) =
            open_connection(&ev, "127.0.0.1", port, StreamOptions::default()).await?;
        let data = Rc::new(pattern(total));
        let d = data.clone();
        let w = writer.clone();
        let sender = ev.create_task(async move {
            let mut sent = 0;
            for size in sizes.iter().cycle().take(total) {
                if sent == d.len() {
                    break;
                }
                let end = (sent + size).min(d.len());
                match how {
                    EchoWrite::Borrowed => w.write(&d[sent..end])?,
                    // Owned on this side too: the client's reader gets
                    // these vectors back.
                    EchoWrite::OwnedPartial => w.write(d[sent..end].to_vec())?,
                }
                w.drain().await?;
                sent = end;
            }
            w.write_eof();
            Ok::<_, Error>(())
        })?;
        let got = reader.read(-1).await?;
        sender.await?;
        assert!(reader.at_eof());
        writer.close();
        writer.wait_closed().await?;
        server.close();
        server.wait_closed().await?;
        assert!(got == *data, "echo differs (got {} bytes)", got.len());
        Ok((got.len(), served.get()))
    })
}

#[test]
fn echo_16_mib_byte_exact() {
    const TOTAL: usize = 16 * 1024 * 1024;
    let (got, served) = echo_byte_exact(TOTAL, &[CHUNK], EchoWrite::Borrowed);
    assert_eq!(got, TOTAL);
    assert_eq!(served, TOTAL);
}

#[test]
fn owned_echo_with_partial_writes_is_byte_exact() {
    // The reuse of a written vector as the next receive room must never
    // show in the bytes, also when the write was partly buffered; pieces
    // of many sizes keep the reader in and out of small-message mode.
    const TOTAL: usize = 4 * 1024 * 1024;
    let sizes = &[1, 700, 1500, 9000, 100, 40_000, 3, 70_000];
    let (got, served) = echo_byte_exact(TOTAL, sizes, EchoWrite::OwnedPartial);
    assert_eq!(got, TOTAL);
    assert_eq!(served, TOTAL);
}

#[test]
fn drain_waits_without_spinning_until_the_peer_reads() {
    let h = Harness::new();
    h.run(|ev| async move {
        // A small server-side limit: the server pauses reading early.
        let parked = Parked::start(&ev, Some(1024)).await?;
        let ((reader, writer), (server_reader, server_writer)) = parked.connect(&ev).await?;
        let data = Rc::new(pattern(64 * 1024 * 1024));
        let mut sent = 0;
        fill_until_paused(&writer, &data, &mut sent).await?;

        let polls = Rc::new(Cell::new(0));
        let drained = Rc::new(Cell::new(false));
        let (w, d) = (writer.clone(), drained.clone());
        let drain = Counted {
            inner: Box::pin(async move {
                w.drain().await?;
                d.set(true);
                Ok::<_, Error>(())
            }),
            polls: polls.clone(),
        };
        let drain_task = ev.create_task(drain)?;

        // Sample for a while (50 timer ticks) with the peer not reading:
        // drain stays pending and is not polled again and again.
        for _ in 0..50 {
            sleep(Duration::from_millis(2)).await?;
        }
        assert!(!drained.get(), "drain returned while the peer did not read");
        assert!(
            writer.transport().get_write_buffer_size() > 0,
            "the write buffer is still full"
        );
        let waiting_polls = polls.get();
        assert!(
            (1..=2).contains(&waiting_polls),
            "drain polled {waiting_polls} times while waiting (spinning?)"
        );

        // The peer reads again: drain returns.
        let total = sent;
        let peer = ev.create_task(async move { server_reader.read(-1).await })?;
        drain_task.await?;
        assert!(drained.get());
        assert!(
            polls.get() <= waiting_polls + 3,
            "drain polled {} times in all",
            polls.get()
        );
        writer.write_eof();
        let received = peer.await?;
        assert_eq!(received.len(), total);
        assert!(received[..] == data[..total], "bytes differ");

        server_writer.close();
        assert_eq!(reader.read(-1).await?, b"");
        writer.close();
        writer.wait_closed().await?;
        parked.server.close();
        parked.server.wait_closed().await?;
        Ok(())
    });
}

#[test]
fn peer_reset_reaches_reader_and_writer() {
    let h = Harness::new();
    h.run(|ev| async move {
        let parked = Parked::start(&ev, None).await?;
        let ((reader, writer), (_server_reader, server_writer)) = parked.connect(&ev).await?;
        let r = reader.clone();
        let pending_read = ev.create_task(async move { r.readexactly(100).await })?;
        iterations(2).await?;
        assert!(!pending_read.done());

        // SO_LINGER 0 + close: the peer sends RST.
        server_writer.transport().with_socket(|s| {
            s.expect("socket open")
                .set_linger(Some(Duration::ZERO))
                .expect("SO_LINGER")
        });
        server_writer.transport().abort();

        let err = pending_read.await.unwrap_err();
        assert_eq!(
            io_kind(&err),
            Some(io::ErrorKind::ConnectionReset),
            "{err:?}"
        );
        // Later reads fail the same way at once.
        let err = reader.readline().await.unwrap_err();
        assert_eq!(
            io_kind(&err),
            Some(io::ErrorKind::ConnectionReset),
            "{err:?}"
        );
        // The writer: drain reports the error; wait_closed too.
        writer.write(b"after reset")?;
        let err = writer.drain().await.unwrap_err();
        assert_eq!(
            io_kind(&err),
            Some(io::ErrorKind::ConnectionReset),
            "{err:?}"
        );
        assert!(writer.is_closing());
        let err = writer.wait_closed().await.unwrap_err();
        assert_eq!(
            io_kind(&err),
            Some(io::ErrorKind::ConnectionReset),
            "{err:?}"
        );

        parked.server.close();
        parked.server.wait_closed().await?;
        Ok(())
    });
}

#[test]
fn peer_reset_wakes_a_waiting_drain() {
    let h = Harness::new();
    h.run(|ev| async move {
        let parked = Parked::start(&ev, Some(1024)).await?;
        let ((_reader, writer), (_server_reader, server_writer)) = parked.connect(&ev).await?;
        let data = pattern(64 * 1024 * 1024);
        let mut sent = 0;
        fill_until_paused(&writer, &data, &mut sent).await?;
        let w = writer.clone();
        let drain = ev.create_task(async move { w.drain().await })?;
        iterations(3).await?;
        assert!(!drain.done(), "drain waits while paused");

        server_writer.transport().with_socket(|s| {
            s.expect("socket open")
                .set_linger(Some(Duration::ZERO))
                .expect("SO_LINGER")
        });
        server_writer.transport().abort();

        let err = drain.await.unwrap_err();
        let kind = io_kind(&err);
        assert!(
            matches!(
                kind,
                Some(io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe)
            ),
            "{err:?}"
        );
        let _ = writer.wait_closed().await;
        parked.server.close();
        parked.server.wait_closed().await?;
        Ok(())
    });
}

#[test]
fn eof_mid_readexactly_is_incomplete_read() {
    let h = Harness::new();
    h.run(|ev| async move {
        let parked = Parked::start(&ev, None).await?;
        let ((reader, writer), (server_reader, server_writer)) = parked.connect(&ev).await?;
        let r = reader.clone();
        let pending = ev.create_task(async move { r.readexactly(10).await })?;
        server_writer.write(b"12345")?;
        server_writer.write_eof();

        let err = pending.await.unwrap_err();
        let e = err
            .downcast_ref::<IncompleteReadError>()
            .unwrap_or_else(|| panic!("expected IncompleteReadError, got {err:?}"));
        assert_eq!(e.partial, b"12345");
        assert_eq!(e.expected, Some(10));
        assert!(reader.at_eof());
        assert_eq!(reader.read(-1).await?, b"");
        assert_eq!(reader.readline().await?, b"");

        // Half-closed: the client can still write, the server still reads.
        writer.write(b"still open\n")?;
        writer.drain().await?;
        assert_eq!(server_reader.readline().await?, b"still open\n");
        writer.close();
        writer.wait_closed().await?;
        assert_eq!(server_reader.read(-1).await?, b"");
        server_writer.close();
        server_writer.wait_closed().await?;
        parked.server.close();
        parked.server.wait_closed().await?;
        Ok(())
    });
}

#[test]
fn buffer_cap_refuses_writes() {
    const CAP: usize = 256 * 1024;
    let h = Harness::new();
    h.run(|ev| async move {
        let parked = Parked::start(&ev, Some(1024)).await?;
        let ((_reader, writer), (server_reader, server_writer)) = parked.connect(&ev).await?;
        writer.set_buffer_cap(Some(CAP));

        // One write larger than the cap: refused whole, nothing sent.
        let big = vec![b'!'; CAP + 1];
        let err = writer.write(&big).unwrap_err();
        let refused = *err
            .downcast_ref::<BufferCapExceeded>()
            .unwrap_or_else(|| panic!("expected BufferCapExceeded, got {err:?}"));
        assert_eq!(
            refused,
            BufferCapExceeded {
                buffered: 0,
                requested: CAP + 1,
                cap: CAP
            }
        );
        assert!(refused.to_string().contains("refused"), "{refused}");
        let parts: [&[u8]; 2] = [&big[..CAP / 2], &big[CAP / 2..]];
        let err = writer.writelines(&parts).unwrap_err();
        assert!(err.downcast_ref::<BufferCapExceeded>().is_some(), "{err:?}");

        // With the peer not reading, the buffer grows until a write is
        // refused; the buffer never passes the cap.
        let data = pattern(64 * 1024 * 1024);
        let mut accepted = 0;
        let mut refusal = None;
        for _ in 0..5_000 {
            let end = accepted + 16 * 1024;
            match writer.write(&data[accepted..end]) {
                Ok(()) => accepted = end,
                Err(err) => {
                    refusal = Some(err);
                    break;
                }
            }
            assert!(writer.transport().get_write_buffer_size() <= CAP);
            iterations(1).await?;
        }
        let err = refusal.expect("a write was refused");
        let refused = *err.downcast_ref::<BufferCapExceeded>().expect("cap error");
        assert_eq!(refused.cap, CAP);
        assert_eq!(refused.requested, 16 * 1024);
        assert!(refused.buffered + refused.requested > CAP);
        assert!(refused.buffered <= CAP);

        // Without the cap the write goes through; the stream is intact.
        writer.set_buffer_cap(None);
        writer.write(&data[accepted..accepted + 100])?;
        accepted += 100;
        let reader_task = ev.create_task(async move { server_reader.read(-1).await })?;
        writer.drain().await?;
        writer.write_eof();
        let received = reader_task.await?;
        assert_eq!(received.len(), accepted);
        assert!(received[..] == data[..accepted], "bytes differ");

        server_writer.close();
        writer.close();
        writer.wait_closed().await?;
        parked.server.close();
        parked.server.wait_closed().await?;
        Ok(())
    });
}

#[test]
fn failing_handler_is_reported_and_closes_only_its_connection() {
    let h = Harness::new();
    h.run(|ev| async move {
        let server = start_server(
            &ev,
            |reader: StreamReader, writer: StreamWriter| async move {
                loop {
                    let line = reader.readline().await?;
                    if line.is_empty() {
                        break;
                    }
                    if line == b"fail\n" {
                        return Err(Error::msg("handler failed on purpose"));
                    }
                    writer.write(&line)?;
                    writer.drain().await?;
                }
                writer.close();
                Ok(())
            },
            &["127.0.0.1"],
            0,
            StreamOptions::default(),
        )
        .await?;
        let port = server.sockets()[0].port();
        let (good_r, good_w) =
            open_connection(&ev, "127.0.0.1", port, StreamOptions::default()).await?;
        let (bad_r, bad_w) =
            open_connection(&ev, "127.0.0.1", port, StreamOptions::default()).await?;
        good_w.write(b"one\n")?;
        assert_eq!(good_r.readline().await?, b"one\n");

        bad_w.write(b"fail\n")?;
        // Its connection is closed by the server: EOF.
        assert_eq!(bad_r.read(-1).await?, b"");
        assert!(bad_r.at_eof());

        // The other connection is unaffected.
        good_w.write(b"two\n")?;
        assert_eq!(good_r.readline().await?, b"two\n");
        // Only the failed handler's connection is gone on the server.
        assert_eq!(server.active_connections(), 1);

        bad_w.close();
        bad_w.wait_closed().await?;
        good_w.close();
        assert_eq!(good_r.read(-1).await?, b"");
        good_w.wait_closed().await?;
        server.close();
        server.wait_closed().await?;
        yield_now().await?;
        Ok(())
    });
    let reports = h.take_reports();
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert!(
        reports[0].starts_with("Unhandled exception in client_connected_cb"),
        "{reports:?}"
    );
    assert!(
        reports[0].contains("handler failed on purpose"),
        "{reports:?}"
    );
}

#[test]
fn panicking_handler_is_reported_and_loop_keeps_serving() {
    let h = Harness::new();
    h.run(|ev| async move {
        let count = Rc::new(Cell::new(0));
        let c = count.clone();
        let server = start_server(
            &ev,
            move |reader: StreamReader, writer: StreamWriter| {
                let c = c.clone();
                async move {
                    c.set(c.get() + 1);
                    let line = reader.readline().await?;
                    assert!(line != b"panic\n", "handler panics on purpose");
                    writer.write(&line)?;
                    writer.close();
                    Ok::<_, Error>(())
                }
            },
            &["127.0.0.1"],
            0,
            StreamOptions::default(),
        )
        .await?;
        let port = server.sockets()[0].port();
        let (r1, w1) = open_connection(&ev, "127.0.0.1", port, StreamOptions::default()).await?;
        w1.write(b"panic\n")?;
        assert_eq!(r1.read(-1).await?, b"");
        w1.close();

        let (r2, w2) = open_connection(&ev, "127.0.0.1", port, StreamOptions::default()).await?;
        w2.write(b"fine\n")?;
        assert_eq!(r2.read(-1).await?, b"fine\n");
        w2.close();
        w1.wait_closed().await?;
        w2.wait_closed().await?;
        assert_eq!(count.get(), 2);
        server.close();
        server.wait_closed().await?;
        Ok(())
    });
    let reports = h.take_reports();
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert!(
        reports[0].starts_with("Unhandled exception in client_connected_cb"),
        "{reports:?}"
    );
    assert!(reports[0].contains("panics on purpose"), "{reports:?}");
}

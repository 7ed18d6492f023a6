//! The streams receive path: a connection whose protocol is a
//! `StreamReaderProtocol` receives straight into its reader's buffer
//! (however the protocol was attached: `start_server`, `open_connection`,
//! `create_connection`, `set_protocol`). Over real 127.0.0.1 connections:
//! bulk data through a small limit (reading pauses past `2 × limit` and
//! resumes, nothing lost or reordered), a separator split across
//! receives, `get_protocol`, and bytes arriving after the protocol gave
//! its reader up.
//!
//! Every run is bounded by the shared harness's watchdog; every loop in a
//! test has an iteration cap.

mod support;

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use loop_futures::{Error, EventLoopExt};
use loop_transports::{
    BaseProtocol, ConnectOptions, IncompleteReadError, MAX_READ_SIZE, StreamOptions, StreamReader,
    StreamReaderProtocol, StreamWriter, create_connection, open_connection,
};
use support::{
    Harness, Hooks, Parked, Recorder, TestServer, connect, iterations, pattern, wait_until,
};

/// asyncio's two thresholds, to the byte: reading pauses once more than
/// `2 × limit` bytes are buffered (exactly `2 × limit` does not pause) and
/// resumes once a read leaves `limit` or fewer (`limit + 1` does not).
#[test]
fn reading_pauses_past_twice_the_limit_and_resumes_at_the_limit() {
    const L: usize = 8;
    let h = Harness::new();
    h.run(|ev| async move {
        let parked = Parked::start(&ev, Some(L)).await?;
        let ((_client_r, client_w), (reader, writer)) = parked.connect(&ev).await?;
        let transport = writer.transport().clone();
        client_w.write(&[b'x'; 2 * L])?;
        let r = reader.clone();
        wait_until("2 × limit buffered", move || r.buffered() == 2 * L).await?;
        assert!(transport.is_reading(), "exactly 2 × limit does not pause");
        client_w.write(b"y")?;
        let t = transport.clone();
        wait_until("reading paused", move || !t.is_reading()).await?;
        assert_eq!(reader.buffered(), 2 * L + 1);
        assert_eq!(reader.readexactly(L).await?, [b'x'; L]);
        assert_eq!(reader.buffered(), L + 1);
        assert!(!transport.is_reading(), "limit + 1 left: still paused");
        assert_eq!(reader.readexactly(1).await?, b"x");
        assert_eq!(reader.buffered(), L);
        assert!(transport.is_reading(), "limit left: resumed");
        writer.close();
        client_w.close();
        parked.server.close();
        parked.server.wait_closed().await?;
        Ok(())
    });
}

#[test]
fn bulk_data_through_a_small_limit_pauses_resumes_and_arrives_intact() {
    const TOTAL: usize = 2 * 1024 * 1024;
    const LIMIT: usize = 4096;
    let h = Harness::new();
    let (got, pauses, peak) = h.run(|ev| async move {
        let parked = Parked::start(&ev, Some(LIMIT)).await?;
        let (client_r, client_w) =
            open_connection(&ev, "127.0.0.1", parked.port, StreamOptions::default()).await?;
        let data = Rc::new(pattern(TOTAL));
        let d = data.clone();
        let w = client_w.clone();
        let sender = ev.create_task(async move {
            for piece in d.chunks(100_000) {
                w.write(piece)?;
                w.drain().await?;
            }
            w.write_eof();
            Ok::<_, Error>(())
        })?;
        let (reader, writer) = parked.client(0).await?;
        let transport = writer.transport().clone();
        // Nobody reads yet: the server stops reading past 2 × limit.
        let t = transport.clone();
        wait_until("reading paused", move || !t.is_reading()).await?;
        let mut peak = reader.buffered();
        assert!(peak > 2 * LIMIT, "paused at {peak} bytes");
        // Now read it all, in odd sizes, watching pause/resume go by.
        let mut got = Vec::with_capacity(TOTAL);
        let mut pauses = 1;
        let mut was_reading = false;
        let sizes = [1, 777, 4096, 10_000, 65_536, 3];
        for i in 0..1_000_000 {
            peak = peak.max(reader.buffered());
            let reading = transport.is_reading();
            if was_reading && !reading {
                pauses += 1;
            }
            was_reading = reading;
            match reader.readexactly(sizes[i % sizes.len()]).await {
                Ok(chunk) => got.extend_from_slice(&chunk),
                Err(err) => {
                    let incomplete = err
                        .downcast_ref::<IncompleteReadError>()
                        .expect("only EOF ends the reads");
                    got.extend_from_slice(&incomplete.partial);
                    break;
                }
            }
        }
        assert!(reader.at_eof());
        assert!(transport.is_reading(), "reading resumed for the EOF");
        sender.await?;
        assert!(got == *data, "bytes differ (got {} bytes)", got.len());
        writer.close();
        client_w.close();
        assert_eq!(client_r.read(-1).await?, b"");
        parked.server.close();
        Ok((got.len(), pauses, peak))
    });
    assert_eq!(got, TOTAL);
    assert!(pauses >= 2, "reading paused {pauses} time(s)");
    // One receive may go past the threshold, never more.
    assert!(peak <= 2 * LIMIT + MAX_READ_SIZE, "buffered up to {peak}");
}

#[test]
fn readuntil_finds_a_separator_split_across_receives() {
    let h = Harness::new();
    let (line, rest) = h.run(|ev| async move {
        let parked = Parked::start(&ev, Some(64 * 1024)).await?;
        let ((_client_r, client_w), (reader, _writer)) = parked.connect(&ev).await?;
        let head = vec![b'x'; 20_000];
        client_w.write(&head)?;
        client_w.write(b"\r")?;
        let r = reader.clone();
        let pending = ev.create_task(async move { r.readuntil(b"\r\n").await })?;
        // The first part is in the reader's buffer before the rest is sent.
        let r = reader.clone();
        wait_until("the first part", move || r.buffered() == 20_001).await?;
        assert!(!pending.done());
        client_w.write(b"\nrest")?;
        client_w.write_eof();
        let line = pending.await?;
        let rest = reader.read(-1).await?;
        client_w.close();
        parked.server.close();
        Ok((line, rest))
    });
    assert_eq!(line.len(), 20_002);
    assert!(line[..20_000].iter().all(|&b| b == b'x'));
    assert_eq!(&line[20_000..], b"\r\n");
    assert_eq!(rest, b"rest");
}

/// asyncio's pattern of building streams by hand:
/// `loop.create_connection(lambda: StreamReaderProtocol(reader), ...)`.
#[test]
fn create_connection_with_a_stream_reader_protocol() {
    let h = Harness::new();
    let echoed = h.run(|ev| async move {
        let server = TestServer::start(&ev, Hooks::echo).await?;
        let reader = StreamReader::new(1024);
        let r = reader.clone();
        let (transport, protocol) = create_connection(
            &ev,
            move || StreamReaderProtocol::new(r),
            Some("127.0.0.1"),
            Some(server.port),
            ConnectOptions::default(),
        )
        .await?;
        let found = transport
            .get_protocol::<StreamReaderProtocol>()
            .expect("get_protocol finds the StreamReaderProtocol");
        assert!(Rc::ptr_eq(&found, &protocol));
        assert!(transport.get_protocol::<Recorder>().is_none());
        let data = pattern(300_000);
        transport.write(&data);
        let echoed = reader.readexactly(data.len()).await?;
        assert!(echoed == data);
        transport.close();
        server.server.close();
        Ok(echoed.len())
    });
    assert_eq!(echoed, 300_000);
}

#[test]
fn set_protocol_to_a_stream_reader_protocol_feeds_its_reader() {
    let h = Harness::new();
    let got = h.run(|ev| async move {
        let server = TestServer::start(&ev, Hooks::new).await?;
        let (client, _rec) = connect(&ev, server.port, Hooks::new()).await?;
        let served = server.wait_accepted(0).await?;
        let reader = StreamReader::default();
        let protocol = Rc::new(RefCell::new(StreamReaderProtocol::new(reader.clone())));
        served.transport().set_protocol(protocol.clone());
        let found = served
            .transport()
            .get_protocol::<StreamReaderProtocol>()
            .expect("the new protocol");
        assert!(Rc::ptr_eq(&found, &protocol));
        client.write(b"after the switch\n");
        let line = reader.readline().await?;
        client.close();
        served.transport().close();
        server.server.close();
        Ok(line)
    });
    assert_eq!(got, b"after the switch\n");
}

/// A protocol told `connection_lost` by its user (as CPython's
/// test_open_connection_error does) gives its reader up while the
/// transport still runs: later bytes are read and dropped, as
/// `data_received` without a reader drops them, so the peer is never
/// stalled, and no error is reported.
#[test]
fn bytes_after_the_protocol_gave_its_reader_up_are_dropped() {
    let h = Harness::new();
    let (sent, leftover) = h.run(|ev| async move {
        let parked = Parked::start(&ev, Some(64 * 1024)).await?;
        let ((_client_r, client_w), (reader, writer)) = parked.connect(&ev).await?;
        let protocol = writer
            .transport()
            .get_protocol::<StreamReaderProtocol>()
            .expect("a StreamReaderProtocol");
        protocol.borrow_mut().connection_lost(None);
        assert_eq!(reader.read(-1).await?, b"", "the reader saw EOF");
        // Far more than the socket buffers hold: this only completes if
        // the server keeps reading.
        let data = pattern(8 * 1024 * 1024);
        let mut sent = 0;
        for piece in data.chunks(256 * 1024) {
            client_w.write(piece)?;
            client_w.drain().await?;
            sent += piece.len();
        }
        iterations(10).await?;
        let leftover = reader.buffered();
        client_w.close();
        writer.close();
        parked.server.close();
        Ok((sent, leftover))
    });
    assert_eq!(sent, 8 * 1024 * 1024);
    assert_eq!(leftover, 0, "nothing reached the dropped reader");
}

/// Cancelling the task of a waiting read at any point after bytes were
/// sent to it (before they arrive, between its wake and its step, after it
/// ran) loses nothing: the cancelled read either returned them or left
/// them buffered for the next read.
#[test]
fn cancelling_a_woken_read_at_any_step_loses_no_bytes() {
    let h = Harness::new();
    let outcomes = h.run(|ev| async move {
        let parked = Parked::start(&ev, None).await?;
        let mut outcomes = Vec::new();
        for steps in 0..6 {
            let ((_client_r, client_w), (reader, writer)) = parked.connect(&ev).await?;
            let r = reader.clone();
            let pending = ev.create_task(async move { r.read(100).await })?;
            iterations(2).await?;
            assert!(!pending.done(), "nothing was sent yet");
            client_w.write(b"abc")?;
            iterations(steps).await?;
            pending.cancel(None);
            let mut got = match pending.await {
                Ok(data) => data,
                Err(err) if err.is_cancelled() => Vec::new(),
                Err(err) => return Err(err),
            };
            let cancelled_empty = got.is_empty();
            if cancelled_empty {
                got = reader.read(100).await?;
            }
            assert_eq!(got, b"abc", "after {steps} steps");
            outcomes.push(cancelled_empty);
            client_w.close();
            writer.close();
        }
        parked.server.close();
        Ok(outcomes)
    });
    // The early cancels hit the waiting read; the later ones came after it
    // had its bytes.
    assert_hit_both_sides(&outcomes);
}

/// Of stops at increasing steps (`true`: the stopped read returned
/// nothing), some came before the read had its bytes and some after:
/// both paths were exercised.
fn assert_hit_both_sides(outcomes: &[bool]) {
    assert!(outcomes.iter().any(|&c| c), "{outcomes:?}");
    assert!(outcomes.iter().any(|&c| !c), "{outcomes:?}");
}

/// The size of the message that takes a reader out of small-message mode.
const WARM: usize = 256 * 1024;

/// Sends and reads a [`WARM`]-byte message: the reader's receives are big
/// from now on (the transport defers them to a waiting read).
async fn leave_small_message_mode(
    client_w: &StreamWriter,
    reader: &StreamReader,
) -> Result<(), Error> {
    client_w.write(pattern(WARM))?;
    assert_eq!(reader.readexactly(WARM).await?, pattern(WARM));
    Ok(())
}

/// With big receives (64 KiB and more) the transport leaves the receive to the woken
/// read (it only wakes it); a read cancelled or aborted between that wake
/// and its receive must not strand the bytes in the socket (no new
/// readiness edge would come): the transport receives them next iteration.
/// At every step, for `cancel` and `abort`, all the bytes arrive, in order.
#[test]
fn stopping_a_woken_big_read_at_any_step_loses_no_bytes() {
    const PAYLOAD: usize = 48 * 1024;
    let h = Harness::new();
    let outcomes = h.run(|ev| async move {
        let parked = Parked::start(&ev, None).await?;
        let mut outcomes = Vec::new();
        for steps in 0..8 {
            for abort in [false, true] {
                let ((_client_r, client_w), (reader, writer)) = parked.connect(&ev).await?;
                leave_small_message_mode(&client_w, &reader).await?;
                let r = reader.clone();
                let pending = ev.create_task(async move { r.read(1 << 20).await })?;
                iterations(2).await?;
                assert!(!pending.done(), "nothing was sent yet");
                let payload: Vec<u8> = pattern(PAYLOAD + steps).split_off(steps);
                client_w.write(&payload)?;
                iterations(steps).await?;
                if abort {
                    pending.abort();
                } else {
                    pending.cancel(None);
                }
                let mut got = match pending.await {
                    Ok(data) => data,
                    Err(err) if err.is_cancelled() => Vec::new(),
                    Err(err) => return Err(err),
                };
                outcomes.push(got.is_empty());
                for _ in 0..64 {
                    if got.len() >= payload.len() {
                        break;
                    }
                    let more = reader.read(1 << 20).await?;
                    assert!(!more.is_empty(), "EOF before the payload");
                    got.extend_from_slice(&more);
                }
                assert!(
                    got == payload,
                    "after {steps} steps (abort: {abort}): {} of {} bytes",
                    got.len(),
                    payload.len()
                );
                client_w.close();
                writer.close();
            }
        }
        parked.server.close();
        Ok(outcomes)
    });
    // Some stops hit the woken read before its receive, some came after.
    assert_hit_both_sides(&outcomes);
}

/// A big message and the peer's close seen through the read's own receive:
/// the bytes, then EOF (`b""`), then `at_eof`.
#[test]
fn a_big_message_then_eof_through_the_woken_reads_receive() {
    const LAST: usize = 100 * 1024;
    let h = Harness::new();
    h.run(|ev| async move {
        let parked = Parked::start(&ev, None).await?;
        let ((_client_r, client_w), (reader, _writer)) = parked.connect(&ev).await?;
        leave_small_message_mode(&client_w, &reader).await?;
        let r = reader.clone();
        let all = ev.create_task(async move {
            let mut all = Vec::new();
            for _ in 0..256 {
                let chunk = r.read(1 << 20).await?;
                if chunk.is_empty() {
                    return Ok(all);
                }
                all.extend_from_slice(&chunk);
            }
            Err(Error::msg("no EOF after 256 reads"))
        })?;
        iterations(2).await?;
        client_w.write(pattern(LAST))?;
        client_w.close();
        assert!(all.await? == pattern(LAST));
        assert!(reader.at_eof());
        parked.server.close();
        Ok(())
    });
}

/// Polls a future with a waker that first raises `flag`: a test can see
/// that a wake happened before the woken task runs.
struct FlagWake<F> {
    inner: Pin<Box<F>>,
    flag: Arc<AtomicBool>,
}

struct Flagging {
    flag: Arc<AtomicBool>,
    inner: Waker,
}

impl Wake for Flagging {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.flag.store(true, Ordering::SeqCst);
        self.inner.wake_by_ref();
    }
}

impl<F: Future> Future for FlagWake<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let waker = Waker::from(Arc::new(Flagging {
            flag: self.flag.clone(),
            inner: cx.waker().clone(),
        }));
        self.inner.as_mut().poll(&mut Context::from_waker(&waker))
    }
}

/// Every iteration (at most `left` more), until `flag` is up: then runs
/// `act` once. Scheduled before a readable event's callback, it runs in
/// the next iteration before the task that callback woke.
fn when_flagged(
    ev: &loop_core::EventLoop,
    flag: Arc<AtomicBool>,
    left: usize,
    act: Box<dyn FnOnce()>,
) -> Result<(), Error> {
    ev.call_soon(move |ev| {
        if flag.load(Ordering::SeqCst) {
            act();
        } else if left > 0 {
            let _ = when_flagged(ev, flag, left - 1, act);
        }
    })?;
    Ok(())
}

/// What happens between a deferred receive's wake and the woken read.
#[derive(Clone, Copy, Debug)]
enum Between {
    /// The transport is closed.
    Close,
    /// The transport's reading is paused.
    Pause,
    /// The reading task is cancelled and the transport closed.
    CancelAndClose,
}

/// A big read woken to make its own receive, whose transport is closed, or
/// whose reading is paused, or which is cancelled and its transport closed,
/// after the readable event and before the read runs: the bytes asyncio's
/// callback had buffered before that are not lost (the woken read returns
/// them, or a later read does).
#[test]
fn a_deferred_receive_survives_a_close_pause_or_cancel_before_the_read_runs() {
    const PAYLOAD: usize = 48 * 1024;
    for between in [Between::Close, Between::Pause, Between::CancelAndClose] {
        let h = Harness::new();
        h.run(|ev| async move {
            let parked = Parked::start(&ev, None).await?;
            let ((_client_r, client_w), (reader, writer)) = parked.connect(&ev).await?;
            leave_small_message_mode(&client_w, &reader).await?;
            let woken = Arc::new(AtomicBool::new(false));
            let r = reader.clone();
            let pending = ev.create_task(FlagWake {
                inner: Box::pin(async move { r.read(1 << 20).await }),
                flag: woken.clone(),
            })?;
            iterations(2).await?;
            assert!(!pending.done(), "nothing was sent yet");
            let acted = Rc::new(Cell::new(false));
            let (a, transport) = (acted.clone(), writer.transport().clone());
            let (server_reader, task) = (reader.clone(), pending.clone());
            when_flagged(
                &ev,
                woken,
                100_000,
                Box::new(move || {
                    assert_eq!(server_reader.buffered(), 0, "the receive was deferred");
                    match between {
                        Between::Close => transport.close(),
                        Between::Pause => transport.pause_reading(),
                        Between::CancelAndClose => {
                            task.cancel(None);
                            transport.close();
                        }
                    }
                    a.set(true);
                }),
            )?;
            let payload = pattern(PAYLOAD);
            client_w.write(&payload)?;
            let got = match pending.await {
                Ok(got) => got,
                Err(err) if err.is_cancelled() => reader.read(1 << 20).await?,
                Err(err) => return Err(err),
            };
            assert!(acted.get(), "{between:?} came between wake and read");
            assert!(
                !got.is_empty() && payload.starts_with(&got),
                "{between:?}: got {} bytes",
                got.len()
            );
            if let Between::Pause = between {
                // Paused, not closed: once resumed, the rest arrives and
                // nothing is lost or repeated.
                writer.transport().resume_reading();
                let mut all = got.clone();
                for _ in 0..1024 {
                    if all.len() >= PAYLOAD {
                        break;
                    }
                    all.extend_from_slice(&reader.read(1 << 20).await?);
                }
                assert!(all == payload, "paused: {} of {PAYLOAD} bytes", all.len());
                writer.close();
            }
            parked.server.close();
            Ok(())
        });
    }
}

/// A reader fed by a `StreamReaderProtocol` attached with `set_protocol`
/// (no `connection_made`, so no transport of its own) reads a bulk
/// transfer whole: its big receives are never deferred to a transport it
/// does not have.
#[test]
fn a_reader_attached_by_set_protocol_reads_a_bulk_transfer() {
    const TOTAL: usize = 1024 * 1024;
    let h = Harness::new();
    let got = h.run(|ev| async move {
        let parked = Parked::start(&ev, None).await?;
        let ((_client_r, client_w), (_reader, writer)) = parked.connect(&ev).await?;
        let reader = StreamReader::default();
        let protocol = Rc::new(RefCell::new(StreamReaderProtocol::new(reader.clone())));
        writer.transport().set_protocol(protocol);
        let r = reader.clone();
        let all = ev.create_task(async move {
            let mut all = Vec::new();
            for _ in 0..4096 {
                if all.len() >= TOTAL {
                    break;
                }
                let chunk = r.read(1 << 20).await?;
                if chunk.is_empty() {
                    break;
                }
                all.extend_from_slice(&chunk);
            }
            Ok::<_, Error>(all)
        })?;
        for piece in pattern(TOTAL).chunks(64 * 1024) {
            client_w.write(piece)?;
            client_w.drain().await?;
        }
        let all = all.await?;
        client_w.close();
        writer.close();
        parked.server.close();
        Ok(all)
    });
    assert!(got == pattern(TOTAL), "{} of {TOTAL} bytes", got.len());
}

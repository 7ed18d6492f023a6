//! `StreamWriter::write` of an owned vector: the chunk a read returned,
//! written back, becomes the reader's next receive room, so a stream echo
//! allocates nothing per message (the hot-path rule); a write the buffer
//! cap refuses consumes the vector and leaves the connection working.
//! (That the reuse never shows in the bytes, also with partly buffered
//! writes, is `streams_loopback.rs`'s owned echo.)
//!
//! A counting global allocator counts the allocations made by the loop's
//! thread while the echo task has counting on; the client runs on its own
//! thread (not counted) with blocking std sockets and timeouts. Everything
//! is on 127.0.0.1; every loop is bounded.

// The counting allocator needs `unsafe impl GlobalAlloc`; this file only.
#![allow(unsafe_code)]

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use loop_futures::{Error, EventLoopExt};
use loop_transports::{
    BufferCapExceeded, StreamOptions, StreamReader, StreamWriter, open_connection, start_server,
};
use support::{Harness, pattern};

#[path = "../../../tests/support/counting_alloc.rs"]
mod counting_alloc;

use counting_alloc::{serial, start_counting, stop_counting};

/// Messages echoed before counting (the reader leaves its first, exact-size
/// chunks behind and settles on its receive room).
const WARM_UP: usize = 32;
/// Messages echoed while counting.
const ROUNDS: usize = 500;
/// The message size: a small message, well under the reader's limit.
const MSG: usize = 1000;

/// Echoes `WARM_UP + ROUNDS` messages of `MSG` bytes through a stream echo
/// server whose task writes each chunk back `owned` (`writer.write(chunk)`)
/// or borrowed (`writer.write(&chunk)`), with a blocking client on another
/// thread that sends one message at a time and checks every reply. Returns
/// the allocations the loop's thread made during the counted rounds.
fn echo_allocations(owned: bool) -> u64 {
    let _serial = serial();
    let h = Harness::new();
    h.run(|ev| async move {
        let done = ev.create_future::<u64>();
        let finish = done.clone();
        let server = start_server(
            &ev,
            move |reader: StreamReader, writer: StreamWriter| {
                let finish = finish.clone();
                async move {
                    let echo = async {
                        // Bytes echoed: the client sends a message only
                        // once it has the last one back, so every message
                        // boundary is seen here, however a message was split.
                        let mut echoed = 0usize;
                        let mut before = 0u64;
                        loop {
                            if echoed == WARM_UP * MSG {
                                before = start_counting();
                            }
                            let chunk = reader.read(4096).await?;
                            if chunk.is_empty() {
                                break;
                            }
                            echoed += chunk.len();
                            if owned {
                                writer.write(chunk)?;
                            } else {
                                writer.write(&chunk)?;
                            }
                            writer.drain().await?;
                            if echoed == (WARM_UP + ROUNDS) * MSG {
                                let counted = stop_counting(before);
                                let _ = finish.set_result(counted);
                            }
                        }
                        writer.close();
                        Ok::<_, Error>(())
                    };
                    let outcome = echo.await;
                    // Counting off, however the echo ended (the count
                    // itself is not needed here).
                    let _ = stop_counting(0);
                    // Whatever ended the echo before the counted rounds
                    // did, the scenario sees it (instead of a watchdog).
                    let _ = finish.set_exception(match &outcome {
                        Err(err) => err.clone(),
                        Ok(()) => Error::msg("the echo ended before the counted rounds"),
                    });
                    outcome
                }
            },
            &["127.0.0.1"],
            0,
            StreamOptions::default(),
        )
        .await?;
        let port = server.sockets()[0].port();
        let client = std::thread::spawn(move || -> std::io::Result<()> {
            let mut sock = TcpStream::connect(("127.0.0.1", port))?;
            sock.set_read_timeout(Some(Duration::from_secs(10)))?;
            sock.set_write_timeout(Some(Duration::from_secs(10)))?;
            sock.set_nodelay(true)?;
            let data = pattern((WARM_UP + ROUNDS + 1) * MSG);
            let mut reply = vec![0u8; MSG];
            for i in 0..WARM_UP + ROUNDS {
                let msg = &data[i * MSG..(i + 1) * MSG];
                sock.write_all(msg)?;
                sock.read_exact(&mut reply)?;
                assert!(reply == msg, "reply {i} differs");
            }
            Ok(())
        });
        let counted = done.await;
        let joined = client.join();
        match joined {
            Ok(Ok(())) => {}
            Ok(Err(err)) => return Err(Error::msg(format!("client: {err}"))),
            Err(panic) => std::panic::resume_unwind(panic),
        }
        let counted = counted?;
        // The client's close ends the echo task; the server's connections
        // are gone once it has closed its writer.
        server.close();
        server.wait_closed().await?;
        Ok(counted)
    })
}

#[test]
fn owned_writes_make_a_stream_echo_allocation_free() {
    let n = echo_allocations(true);
    assert_eq!(n, 0, "{n} allocations for {ROUNDS} echoed messages");
}

#[test]
fn borrowed_writes_allocate_one_replacement_per_message() {
    // The meter sees the allocation the owned write spares: each read
    // hands its chunk over, and the reader makes a new room when it waits.
    let n = echo_allocations(false);
    assert!(
        n >= ROUNDS as u64,
        "{n} allocations for {ROUNDS} messages: the replacement was not counted"
    );
}

#[test]
fn owned_write_refused_by_the_cap_is_an_error_and_the_connection_goes_on() {
    let _serial = serial();
    let h = Harness::new();
    let (refused, line) = h.run(|ev| async move {
        let refusal = ev.create_future::<BufferCapExceeded>();
        let r = refusal.clone();
        let server = start_server(
            &ev,
            move |_reader: StreamReader, writer: StreamWriter| {
                let r = r.clone();
                async move {
                    writer.set_buffer_cap(Some(100));
                    let err = writer
                        .write(vec![b'x'; 101])
                        .expect_err("past the cap: refused");
                    let cap = *err
                        .downcast_ref::<BufferCapExceeded>()
                        .expect("a BufferCapExceeded");
                    let _ = r.set_result(cap);
                    writer.write(b"ok\n".to_vec())?;
                    writer.drain().await?;
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
        let line = reader.readline().await?;
        let tail = reader.read(-1).await?;
        assert!(tail.is_empty(), "only the accepted write arrived");
        writer.close();
        server.close();
        server.wait_closed().await?;
        Ok((refusal.await?, line))
    });
    assert_eq!(
        refused,
        BufferCapExceeded {
            buffered: 0,
            requested: 101,
            cap: 100
        }
    );
    assert_eq!(line, b"ok\n");
}

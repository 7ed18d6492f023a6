//! Faults on 127.0.0.1: a peer that resets the connection (reading and
//! writing side, no `SIGPIPE`), a peer that half-closes, a slow reader of
//! 4 MiB, refused connects (no fd leak), a local bind that fails, and an
//! unreachable destination.
//!
//! Every test takes [`serial`]: one of them counts the process's open fds,
//! which the others' sockets would disturb.

mod support;

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, mpsc};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use loop_core::EventLoop;
use loop_futures::{Error, sleep};
use loop_transports::{ConnectError, ConnectOptions, DEFAULT_HIGH_WATER, create_connection};
use socket2::{Domain, SockRef, Socket, Type};
use support::{
    Event, Harness, Hooks, Rec, Recorder, TestServer, connect, iterations, small_send_buffer,
    wait_until,
};

/// How long a peer thread blocks at most (a test fails instead of hanging).
const PEER_TIMEOUT: Duration = Duration::from_secs(10);

/// Serialises the tests of this binary (see the module docs).
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Set by a `SIGPIPE` handler installed once for this process.
///
/// Rust programs start with `SIGPIPE` ignored, so "the process did not
/// die" would prove nothing. A handler is not `SIG_IGN`: a send without
/// `MSG_NOSIGNAL` to a reset peer now raises a `SIGPIPE` that sets this
/// flag (checked by a control in the test that uses it).
fn sigpipe_flag() -> Arc<AtomicBool> {
    static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();
    FLAG.get_or_init(|| {
        let flag = Arc::new(AtomicBool::new(false));
        signal_hook::flag::register(signal_hook::consts::SIGPIPE, flag.clone())
            .expect("install a SIGPIPE handler");
        flag
    })
    .clone()
}

/// Waits for a peer thread to finish (the loop keeps running meanwhile)
/// and returns its result.
async fn join<T: Send + 'static>(
    what: &str,
    thread: JoinHandle<io::Result<T>>,
) -> Result<T, Error> {
    let mut thread = Some(thread);
    wait_until(what, || {
        thread.as_ref().is_some_and(JoinHandle::is_finished)
    })
    .await?;
    let thread = thread.take().expect("joined once");
    let result = thread
        .join()
        .map_err(|_| Error::msg(format!("{what} panicked")))?;
    Ok(result?)
}

/// A peer that accepts one connection, waits to be told, then resets it
/// (`SO_LINGER` 0, then close: an RST instead of a FIN).
struct ResettingPeer {
    port: u16,
    go: mpsc::Sender<()>,
    thread: JoinHandle<io::Result<()>>,
}

impl ResettingPeer {
    fn start() -> io::Result<ResettingPeer> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let (go, wait) = mpsc::channel::<()>();
        let thread = thread::spawn(move || {
            let (conn, _) = listener.accept()?;
            wait.recv_timeout(PEER_TIMEOUT)
                .map_err(|_| io::Error::other("never told to reset"))?;
            SockRef::from(&conn).set_linger(Some(Duration::ZERO))?;
            drop(conn);
            Ok(())
        });
        Ok(ResettingPeer { port, go, thread })
    }

    /// Resets the connection and waits until the RST has been sent.
    async fn reset(self) -> Result<(), Error> {
        self.go
            .send(())
            .map_err(|_| Error::msg("the peer thread is gone"))?;
        join("the resetting peer", self.thread).await
    }
}

#[test]
fn a_peer_reset_reaches_the_reading_side_as_connection_reset() {
    let _serial = serial();
    let h = Harness::new();
    h.run(|ev| async move {
        let peer = ResettingPeer::start()?;
        let (t, rec) = connect(&ev, peer.port, Hooks::new()).await?;
        peer.reset().await?;

        wait_until("connection_lost", || rec.is_lost()).await?;
        assert_eq!(
            rec.lost(),
            Some(Some(io::ErrorKind::ConnectionReset)),
            "the read error is handed to connection_lost: {:?}",
            rec.events()
        );
        assert_eq!(
            rec.shape(),
            vec![Event::Made, Event::Lost(rec.lost().unwrap())]
        );
        assert!(t.is_closing());
        // Writes after the loss are dropped, not sent to a dead socket.
        t.write(b"after the reset");
        assert_eq!(t.get_write_buffer_size(), 0);
        rec.assert_complete();
        Ok(())
    });
    // A reset is the peer's doing: no exception report (the harness checks
    // on drop), as asyncio only logs it in debug mode.
}

#[test]
fn writing_to_a_reset_peer_ends_in_connection_lost_with_the_error_and_no_sigpipe() {
    let _serial = serial();
    let sigpipe = sigpipe_flag();
    let h = Harness::new();
    h.run(|ev| async move {
        let peer = ResettingPeer::start()?;
        let (t, rec) = connect(&ev, peer.port, Hooks::new()).await?;
        // Not reading: the reset can only be found by the write path.
        t.pause_reading();
        peer.reset().await?;

        // The transport sends with MSG_NOSIGNAL (tcp.rs, invariant 3): the
        // write fails with an error value and the transport closes.
        let chunk = vec![0x5a_u8; 1024];
        let mut writes = 0;
        while !t.is_closing() && writes < 1000 {
            t.write(&chunk);
            writes += 1;
            sleep(Duration::from_millis(1)).await?;
        }
        assert!(
            t.is_closing(),
            "still open after {writes} writes to a reset peer"
        );
        wait_until("connection_lost", || rec.is_lost()).await?;
        let kind = rec
            .lost()
            .unwrap()
            .expect("connection_lost got the write error");
        assert!(
            matches!(
                kind,
                io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
            ),
            "{kind:?}"
        );
        assert_eq!(rec.shape(), vec![Event::Made, Event::Lost(Some(kind))]);
        assert!(
            !sigpipe.load(Ordering::SeqCst),
            "the transport raised SIGPIPE"
        );

        // Control: a plain write(2) (a File over the socket) to a reset
        // peer does raise SIGPIPE, so the flag would have seen one.
        let peer = ResettingPeer::start()?;
        let client = TcpStream::connect(("127.0.0.1", peer.port))?;
        peer.reset().await?;
        let mut file = std::fs::File::from(std::os::fd::OwnedFd::from(client));
        let mut broken_pipe = false;
        for _ in 0..100 {
            match file.write(b"x") {
                Err(err) if err.kind() == io::ErrorKind::BrokenPipe => {
                    broken_pipe = true;
                    break;
                }
                // The first error after an RST is ECONNRESET (no signal);
                // a write may also still be accepted before the RST lands.
                Ok(_) | Err(_) => sleep(Duration::from_millis(1)).await?,
            }
        }
        assert!(
            broken_pipe,
            "write(2) to a reset peer never failed with EPIPE"
        );
        assert!(
            sigpipe.load(Ordering::SeqCst),
            "control: write(2) without MSG_NOSIGNAL raised SIGPIPE"
        );
        Ok(())
    });
}

/// A raw client on a thread: connects, sends `request`, shuts down its
/// write side, and reads to EOF.
fn half_closing_client(port: u16, request: &'static [u8]) -> JoinHandle<io::Result<Vec<u8>>> {
    thread::spawn(move || {
        let mut conn = TcpStream::connect(("127.0.0.1", port))?;
        conn.set_read_timeout(Some(PEER_TIMEOUT))?;
        conn.write_all(request)?;
        conn.shutdown(Shutdown::Write)?;
        let mut reply = Vec::new();
        conn.read_to_end(&mut reply)?;
        Ok(reply)
    })
}

#[test]
fn peer_half_close_with_eof_received_true_keeps_the_transport_writable() {
    let _serial = serial();
    let h = Harness::new();
    h.run(|ev| async move {
        let server = TestServer::start(&ev, || Hooks::new().on_eof(|_, _| true)).await?;
        let client = half_closing_client(server.port, b"request");
        let served = server.wait_accepted(0).await?;
        let s = served.clone();
        wait_until("eof_received", || s.got_eof()).await?;
        // A few iterations later the transport is still open.
        iterations(5).await?;
        let t = served.transport();
        assert!(!t.is_closing(), "eof_received returned true: stays open");
        assert!(!served.is_lost());

        t.write(b"reply written after EOF");
        t.close();
        let reply = join("the half-closing client", client).await?;
        assert_eq!(reply, b"reply written after EOF");
        wait_until("connection_lost", || s.is_lost()).await?;
        assert_eq!(served.data(), b"request");
        assert_eq!(
            served.shape(),
            vec![
                Event::Made,
                Event::Data(Vec::new()),
                Event::Eof,
                Event::Lost(None)
            ]
        );
        server.server.close();
        Ok(())
    });
}

#[test]
fn peer_half_close_with_eof_received_false_closes_the_transport() {
    let _serial = serial();
    let h = Harness::new();
    h.run(|ev| async move {
        let server = TestServer::start(&ev, Hooks::new).await?;
        let client = half_closing_client(server.port, b"request");
        let served = server.wait_accepted(0).await?;
        let s = served.clone();
        wait_until("connection_lost", || s.is_lost()).await?;
        assert_eq!(
            served.shape(),
            vec![
                Event::Made,
                Event::Data(Vec::new()),
                Event::Eof,
                Event::Lost(None)
            ],
            "eof_received false: closed, connection_lost(None)"
        );
        let t = served.transport();
        assert!(t.is_closing());
        t.write(b"too late");
        let reply = join("the half-closing client", client).await?;
        assert!(reply.is_empty(), "nothing after the close: {reply:?}");
        served.assert_complete();
        server.server.close();
        Ok(())
    });
}

/// 4-byte little-endian counter `i` at offset `4 * i`.
fn counter_pattern(len: usize) -> Vec<u8> {
    (0..len.div_ceil(4))
        .flat_map(|i| (i as u32).to_le_bytes())
        .take(len)
        .collect()
}

#[test]
fn a_slow_reader_gets_four_mebibytes_in_order_with_one_pause_and_one_resume() {
    const TOTAL: usize = 4 * 1024 * 1024;
    const CHUNK: usize = 64 * 1024;
    let _serial = serial();
    let h = Harness::new();
    h.run(|ev| async move {
        // Buffer sizes seen by pause_writing / resume_writing.
        let at_pause: Rc<std::cell::Cell<Option<usize>>> = Rc::default();
        let at_resume: Rc<std::cell::Cell<Option<usize>>> = Rc::default();
        let (p, r) = (at_pause.clone(), at_resume.clone());
        let server = TestServer::start(&ev, move || {
            let (p, r) = (p.clone(), r.clone());
            Hooks::new()
                .on_made(|_, t| {
                    // Small kernel buffers: the transport's buffer does the
                    // holding, whatever the machine's TCP autotuning.
                    small_send_buffer(t);
                    let payload = counter_pattern(TOTAL);
                    for part in payload.chunks(CHUNK) {
                        t.write(part);
                    }
                })
                .on_pause(move |_, t| p.set(Some(t.get_write_buffer_size())))
                .on_resume(move |_, t| r.set(Some(t.get_write_buffer_size())))
        })
        .await?;

        let port = server.port;
        let reader = thread::spawn(move || -> io::Result<Vec<u8>> {
            let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
            socket.set_recv_buffer_size(16 * 1024)?;
            let addr: SocketAddr = ([127, 0, 0, 1], port).into();
            socket.connect_timeout(&addr.into(), PEER_TIMEOUT)?;
            let mut conn: TcpStream = socket.into();
            conn.set_read_timeout(Some(PEER_TIMEOUT))?;
            let mut all = Vec::with_capacity(TOTAL);
            let mut buf = [0u8; 4096];
            // Bounded: every read but the last returns at least one byte,
            // and more than TOTAL bytes is an error.
            for _ in 0..=TOTAL {
                let n = conn.read(&mut buf)?;
                if n == 0 {
                    return Ok(all);
                }
                all.extend_from_slice(&buf[..n]);
                if all.len() > TOTAL {
                    return Err(io::Error::other("more bytes than were written"));
                }
                thread::sleep(Duration::from_micros(100));
            }
            Err(io::Error::other("no EOF"))
        });

        let served = server.wait_accepted(0).await?;
        let t = served.transport();
        let s = served.clone();
        wait_until("resume_writing", || s.count(&Event::Resume) == 1).await?;
        let t2 = t.clone();
        wait_until("the buffer drained", || t2.get_write_buffer_size() == 0).await?;
        t.close();
        let received = join("the slow reader", reader).await?;
        wait_until("connection_lost", || s.is_lost()).await?;

        assert_eq!(received.len(), TOTAL);
        let expected = counter_pattern(TOTAL);
        if let Some(at) = (0..TOTAL).find(|&i| received[i] != expected[i]) {
            panic!("byte {at} is wrong: out of order, lost or duplicated data");
        }
        assert_eq!(served.count(&Event::Pause), 1, "pause_writing once");
        assert_eq!(served.count(&Event::Resume), 1, "resume_writing once");
        let paused = at_pause.get().expect("pause_writing ran");
        assert!(
            paused > DEFAULT_HIGH_WATER,
            "paused with {paused} bytes buffered"
        );
        let resumed = at_resume.get().expect("resume_writing ran");
        assert!(
            resumed <= t.get_write_buffer_limits().0,
            "resumed with {resumed} bytes buffered, above the low-water mark"
        );
        assert_eq!(
            served.shape(),
            vec![Event::Made, Event::Pause, Event::Resume, Event::Lost(None)]
        );
        server.server.close();
        Ok(())
    });
}

/// A 127.0.0.1 port with nothing listening (bound, then released).
fn closed_port() -> io::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// Entries of /proc/self/fd: the process's open descriptors.
fn open_fds() -> io::Result<usize> {
    Ok(std::fs::read_dir("/proc/self/fd")?.count())
}

async fn connect_to(ev: &EventLoop, port: u16, options: ConnectOptions) -> Result<Rec, Error> {
    let rec = Rec::default();
    let r = rec.clone();
    create_connection(
        ev,
        move || Recorder::new(r, Hooks::new()),
        Some("127.0.0.1"),
        Some(port),
        options,
    )
    .await?;
    Ok(rec)
}

fn io_kind(err: &Error) -> Option<io::ErrorKind> {
    err.downcast_ref::<io::Error>().map(io::Error::kind)
}

/// After an error path: a regular connection on the same loop still works.
async fn loop_still_connects(ev: &EventLoop) -> Result<(), Error> {
    let server = TestServer::start(ev, Hooks::echo).await?;
    let (t, rec) = connect(ev, server.port, Hooks::new()).await?;
    t.write(b"still usable");
    let r = rec.clone();
    wait_until("the echo", || r.data() == b"still usable").await?;
    t.close();
    wait_until("connection_lost", || r.is_lost()).await?;
    server.server.close();
    Ok(())
}

#[test]
fn a_refused_connect_fails_with_connection_refused_and_leaks_no_fd() {
    const ROUNDS: usize = 20;
    let _serial = serial();
    let h = Harness::new();
    h.run(|ev| async move {
        let port = closed_port()?;
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        // Warm-up: whatever the first connect sets up once (executor,
        // shared buffers) is not a leak.
        let _ = connect_to(&ev, port, ConnectOptions::default()).await;

        let before = open_fds()?;
        for round in 0..ROUNDS {
            let err = connect_to(&ev, port, ConnectOptions::default())
                .await
                .err()
                .unwrap_or_else(|| panic!("round {round}: connected to a closed port"));
            assert_eq!(
                io_kind(&err),
                Some(io::ErrorKind::ConnectionRefused),
                "round {round}: {err}"
            );

            // all_errors: a ConnectError with the one address tried.
            let options = ConnectOptions {
                all_errors: true,
                ..ConnectOptions::default()
            };
            let err = connect_to(&ev, port, options).await.err().expect("refused");
            let all = err
                .downcast_ref::<ConnectError>()
                .unwrap_or_else(|| panic!("all_errors gives a ConnectError: {err}"));
            assert_eq!(all.errors.len(), 1, "{all}");
            assert_eq!(all.errors[0].0, addr);
            assert_eq!(all.errors[0].1.kind(), io::ErrorKind::ConnectionRefused);

            // Happy Eyeballs on, one address: the plain error.
            let options = ConnectOptions {
                happy_eyeballs_delay: Some(Duration::from_millis(250)),
                ..ConnectOptions::default()
            };
            let err = connect_to(&ev, port, options).await.err().expect("refused");
            assert_eq!(
                io_kind(&err),
                Some(io::ErrorKind::ConnectionRefused),
                "{err}"
            );
        }
        let after = open_fds()?;
        assert_eq!(
            before,
            after,
            "{} refused connects changed the open fd count",
            3 * ROUNDS
        );
        assert_eq!(
            ev.stats().io_registrations,
            0,
            "no registration left behind"
        );

        loop_still_connects(&ev).await
    });
}

#[test]
fn a_local_address_that_cannot_be_bound_fails_the_connect_and_leaks_no_fd() {
    const ROUNDS: usize = 20;
    let _serial = serial();
    let h = Harness::new();
    h.run(|ev| async move {
        let target = TestServer::start(&ev, Hooks::echo).await?;
        // Held by a listener without SO_REUSEADDR on our side: EADDRINUSE.
        let taken = TcpListener::bind("127.0.0.1:0")?;
        let options = || ConnectOptions {
            local_addr: Some(taken.local_addr().expect("local address")),
            ..ConnectOptions::default()
        };
        let _ = connect_to(&ev, target.port, options()).await;

        let before = open_fds()?;
        for round in 0..ROUNDS {
            let err = connect_to(&ev, target.port, options())
                .await
                .err()
                .unwrap_or_else(|| panic!("round {round}: bound an address in use"));
            assert_eq!(
                io_kind(&err),
                Some(io::ErrorKind::AddrInUse),
                "round {round}: {err}"
            );
        }
        assert_eq!(
            before,
            open_fds()?,
            "failed binds changed the open fd count"
        );
        assert!(
            target.accepted().is_empty(),
            "no connection reached the server"
        );
        target.server.close();

        loop_still_connects(&ev).await
    });
}

#[test]
#[ignore = "an unreachable destination cannot be produced with 127.0.0.0/8 only (the loopback \
            route reaches every address in it); this names a TEST-NET-1 address (192.0.2.1) \
            from a socket bound to 127.0.0.1, which the kernel refuses to route (EINVAL, or \
            ENETUNREACH without a route): no packet leaves the host, but it is not loopback-only"]
fn an_unreachable_destination_fails_at_once_and_leaks_no_fd() {
    let _serial = serial();
    let h = Harness::new();
    h.run(|ev| async move {
        let options = || ConnectOptions {
            local_addr: Some(([127, 0, 0, 1], 0).into()),
            ..ConnectOptions::default()
        };
        let before = open_fds()?;
        for _ in 0..5 {
            let rec = Rec::default();
            let r = rec.clone();
            let err = create_connection(
                &ev,
                move || Recorder::new(r, Hooks::new()),
                Some("192.0.2.1"),
                Some(9),
                options(),
            )
            .await
            .err()
            .expect("connected to TEST-NET-1 from 127.0.0.1");
            let kind = io_kind(&err);
            assert!(
                matches!(
                    kind,
                    Some(
                        io::ErrorKind::InvalidInput
                            | io::ErrorKind::NetworkUnreachable
                            | io::ErrorKind::HostUnreachable
                    )
                ),
                "{kind:?}: {err}"
            );
            assert!(!rec.made());
        }
        assert_eq!(before, open_fds()?);
        Ok(())
    });
}

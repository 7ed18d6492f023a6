//! Flow control and data paths: write-buffer water marks, pause/resume
//! reading (edge-triggered), writes after the loss, `writelines`,
//! `BufferedProtocol`, half-close.

mod support;

use std::cell::{Cell, RefCell};
use std::io::Read;
use std::mem::MaybeUninit;
use std::net::{SocketAddr, TcpListener};
use std::rc::Rc;
use std::sync::mpsc;
use std::time::Duration;

use loop_futures::Error;
use loop_transports::{
    BaseProtocol, BufferedProtocol, ConnectOptions, DEFAULT_HIGH_WATER, InvalidWriteLimits,
    ServerOptions, Transport, create_connection, create_connection_buffered,
    create_server_buffered,
};
use socket2::{Domain, Socket, Type};
use support::{
    Event, Harness, Hooks, Rec, Recorder, TestServer, capture_logs, connect, iterations, pair,
    pattern, small_send_buffer, wait_until,
};

#[test]
fn write_buffer_limits_follow_asyncio_rules() {
    let h = Harness::new();
    h.run(|ev| async move {
        let p = pair(&ev, Hooks::echo, Hooks::new()).await?;
        let t = &p.client_t;
        assert_eq!(DEFAULT_HIGH_WATER, 64 * 1024);
        assert_eq!(
            t.get_write_buffer_limits(),
            (16 * 1024, 64 * 1024),
            "(low, high)"
        );
        assert_eq!(t.get_write_buffer_size(), 0);

        t.set_write_buffer_limits(Some(1000), None)
            .map_err(Error::new)?;
        assert_eq!(t.get_write_buffer_limits(), (250, 1000), "low = high / 4");
        t.set_write_buffer_limits(None, Some(10))
            .map_err(Error::new)?;
        assert_eq!(t.get_write_buffer_limits(), (10, 40), "high = 4 * low");
        t.set_write_buffer_limits(Some(0), Some(0))
            .map_err(Error::new)?;
        assert_eq!(t.get_write_buffer_limits(), (0, 0));
        t.set_write_buffer_limits(Some(7), Some(7))
            .map_err(Error::new)?;
        assert_eq!(t.get_write_buffer_limits(), (7, 7));
        t.set_write_buffer_limits(None, None).map_err(Error::new)?;
        assert_eq!(t.get_write_buffer_limits(), (16 * 1024, 64 * 1024));

        // high < low: an error, the limits unchanged.
        let err = t.set_write_buffer_limits(Some(1), Some(2)).unwrap_err();
        assert_eq!(err, InvalidWriteLimits { high: 1, low: 2 });
        assert!(err.to_string().contains("must be >="), "{err}");
        assert_eq!(t.get_write_buffer_limits(), (16 * 1024, 64 * 1024));
        // A low that makes the derived high overflow saturates, no panic.
        t.set_write_buffer_limits(None, Some(usize::MAX))
            .map_err(Error::new)?;
        assert_eq!(t.get_write_buffer_limits(), (usize::MAX, usize::MAX));
        // 0 high with a positive low: derived high is given, so high < low.
        let err = t.set_write_buffer_limits(Some(0), Some(1)).unwrap_err();
        assert_eq!(err, InvalidWriteLimits { high: 0, low: 1 });

        // The connection is still usable.
        t.set_write_buffer_limits(None, None).map_err(Error::new)?;
        t.write(b"still works");
        let c = p.client.clone();
        wait_until("echo", || c.data() == b"still works").await?;
        assert_eq!(p.client.count(&Event::Pause), 0);
        t.close();
        wait_until("client lost", || c.is_lost()).await?;
        p.server.server.close();
        Ok(())
    });
}

#[test]
fn lowering_the_high_water_mark_below_the_buffer_pauses_at_once() {
    let h = Harness::new();
    h.run(|ev| async move {
        // The server does not read, so the client's buffer stays put.
        let p = pair(
            &ev,
            || Hooks::new().on_made(|_, t| t.pause_reading()),
            Hooks::new(),
        )
        .await?;
        let t = &p.client_t;
        small_send_buffer(t);
        t.set_write_buffer_limits(Some(8 << 20), None)
            .map_err(Error::new)?;
        t.write(&pattern(1 << 20));
        let buffered = t.get_write_buffer_size();
        assert!(buffered > 1024, "{buffered} bytes buffered");
        assert_eq!(p.client.count(&Event::Pause), 0, "below the 8 MiB mark");

        t.set_write_buffer_limits(Some(1024), None)
            .map_err(Error::new)?;
        assert_eq!(
            p.client.events(),
            vec![Event::Made, Event::Pause],
            "pause_writing from set_write_buffer_limits itself"
        );
        // Raising it again does not resume: only a drain does.
        t.set_write_buffer_limits(Some(8 << 20), None)
            .map_err(Error::new)?;
        assert_eq!(p.client.count(&Event::Resume), 0);

        p.server_t.resume_reading();
        let c = p.client.clone();
        wait_until("resume_writing", || c.count(&Event::Resume) == 1).await?;
        let s = p.served.clone();
        wait_until("all data", || s.data_len() == 1 << 20).await?;
        assert!(p.served.data() == pattern(1 << 20));
        p.client.assert_grammar();
        t.close();
        wait_until("both lost", || c.is_lost() && s.is_lost()).await?;
        p.server.server.close();
        Ok(())
    });
}

/// A blocking peer on another thread: accepts one connection (with a tiny
/// receive buffer), reads nothing until told, then reads to EOF.
struct SlowPeer {
    addr: SocketAddr,
    go: mpsc::Sender<()>,
    thread: std::thread::JoinHandle<std::io::Result<Vec<u8>>>,
}

impl SlowPeer {
    fn start() -> std::io::Result<SlowPeer> {
        let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
        socket.set_recv_buffer_size(4096)?;
        let addr: SocketAddr = "127.0.0.1:0".parse().expect("address");
        socket.bind(&addr.into())?;
        socket.listen(1)?;
        let listener: TcpListener = socket.into();
        let addr = listener.local_addr()?;
        let (go, wait) = mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept()?;
            // Bounded: the test fails instead of hanging.
            wait.recv_timeout(Duration::from_secs(10))
                .map_err(|_| std::io::Error::other("never told to drain"))?;
            conn.set_read_timeout(Some(Duration::from_secs(10)))?;
            let mut all = Vec::new();
            conn.read_to_end(&mut all)?;
            Ok(all)
        });
        Ok(SlowPeer { addr, go, thread })
    }
}

#[test]
fn write_buffer_grows_while_the_peer_does_not_read_then_drains() {
    let h = Harness::new();
    h.run(|ev| async move {
        let peer = SlowPeer::start()?;
        let rec = Rec::default();
        let r = rec.clone();
        let (t, _) = create_connection(
            &ev,
            move || Recorder::new(r, Hooks::new()),
            Some("127.0.0.1"),
            Some(peer.addr.port()),
            ConnectOptions::default(),
        )
        .await?;
        small_send_buffer(&t);
        let chunk = 64 * 1024;
        let chunks = 16;
        let payload = pattern(chunk * chunks);
        let mut sizes = Vec::new();
        for part in payload.chunks(chunk) {
            t.write(part);
            sizes.push(t.get_write_buffer_size());
        }
        assert!(sizes[0] > 0, "the kernel cannot take 64 KiB: {sizes:?}");
        for (i, size) in sizes.iter().enumerate() {
            // Once something is buffered, every write is appended whole.
            assert_eq!(*size, sizes[0] + i * chunk, "sizes: {sizes:?}");
        }
        assert_eq!(rec.count(&Event::Pause), 1, "crossed 64 KiB once");
        iterations(5).await?;
        assert!(
            t.get_write_buffer_size() > DEFAULT_HIGH_WATER,
            "a peer that reads nothing does not drain the buffer"
        );
        assert_eq!(rec.count(&Event::Resume), 0);

        peer.go
            .send(())
            .map_err(|_| Error::msg("peer thread gone"))?;
        let t2 = t.clone();
        wait_until("the buffer drained", || t2.get_write_buffer_size() == 0).await?;
        assert_eq!(rec.count(&Event::Resume), 1);
        t.close();
        wait_until("lost", || rec.is_lost()).await?;
        assert_eq!(rec.lost(), Some(None));
        let thread = peer.thread;
        wait_until("the peer thread", || thread.is_finished()).await?;
        let received = thread.join().expect("peer thread panicked")?;
        assert_eq!(received.len(), payload.len());
        assert!(received == payload, "byte-exact");
        rec.assert_complete();
        Ok(())
    });
}

/// Bytes waiting in the kernel receive buffer of `t`'s socket (MSG_PEEK).
fn pending(t: &Transport) -> usize {
    t.with_socket(|s| {
        let mut buf = [MaybeUninit::<u8>::uninit(); 64];
        s.expect("socket open").peek(&mut buf).unwrap_or(0)
    })
}

#[test]
fn data_arriving_while_reading_is_paused_is_delivered_after_resume() {
    let h = Harness::new();
    h.run(|ev| async move {
        let p = pair(&ev, Hooks::new, Hooks::new()).await?;
        let t = &p.client_t;
        assert!(t.is_reading());
        t.pause_reading();
        t.pause_reading(); // idempotent
        assert!(!t.is_reading());

        p.server_t.write(b"abc");
        p.server_t.write_eof();
        let t2 = t.clone();
        wait_until("bytes in the client's socket", || pending(&t2) == 3).await?;
        iterations(5).await?;
        assert_eq!(p.client.events(), vec![Event::Made], "nothing while paused");

        // Edge-triggered: no new event will come for those bytes; resume
        // must read them anyway.
        t.resume_reading();
        t.resume_reading(); // idempotent
        assert!(t.is_reading());
        let c = p.client.clone();
        wait_until("client lost", || c.is_lost()).await?;
        assert_eq!(p.client.data(), b"abc");
        assert_eq!(
            p.client.shape(),
            vec![
                Event::Made,
                Event::Data(vec![]),
                Event::Eof,
                Event::Lost(None)
            ]
        );
        assert!(!t.is_reading(), "not reading once closed");
        let s = p.served.clone();
        wait_until("server lost", || s.is_lost()).await?;
        p.server.server.close();
        Ok(())
    });
}

#[test]
fn resume_without_pause_and_pause_inside_data_received() {
    let h = Harness::new();
    h.run(|ev| async move {
        let p = pair(
            &ev,
            Hooks::echo,
            Hooks::new().on_data(|rec, t, _| {
                t.pause_reading();
                rec.mark("paused");
            }),
        )
        .await?;
        let t = &p.client_t;
        t.resume_reading(); // not paused: no effect
        assert!(t.is_reading());
        t.write(b"one");
        let c = p.client.clone();
        wait_until("first echo", || c.data_len() == 3).await?;
        assert!(!t.is_reading());
        t.write(b"two");
        let t2 = t.clone();
        wait_until("second echo pending", || pending(&t2) == 3).await?;
        iterations(3).await?;
        assert_eq!(p.client.data(), b"one", "paused from inside data_received");
        t.resume_reading();
        wait_until("second echo", || c.data() == b"onetwo").await?;
        t.close();
        wait_until("lost", || c.is_lost()).await?;
        p.client.assert_complete();
        p.server.server.close();
        Ok(())
    });
}

#[test]
fn writes_after_the_connection_is_lost_are_dropped_and_warned_from_the_fifth() {
    capture_logs(|logs| {
        let logs = logs.clone();
        let h = Harness::new();
        h.run(move |ev| async move {
            let p = pair(&ev, Hooks::new, Hooks::new()).await?;
            p.client_t.close();
            let (c, s) = (p.client.clone(), p.served.clone());
            wait_until("both lost", || c.is_lost() && s.is_lost()).await?;
            let warning = "socket.send() raised exception.";
            for _ in 0..4 {
                p.client_t.write(b"dropped");
            }
            assert_eq!(logs.count(warning), 0, "quiet for the first four");
            p.client_t.write(b"dropped");
            assert_eq!(logs.count(warning), 1, "the fifth warns");
            p.client_t.writelines(&[b"drop", b"ped"]);
            assert_eq!(logs.count(warning), 2, "and every later one");
            p.client_t.write(b"");
            assert_eq!(logs.count(warning), 3, "even empty ones");
            assert_eq!(p.client_t.get_write_buffer_size(), 0);
            assert_eq!(p.served.data(), b"");
            p.server.server.close();
            Ok(())
        });
    });
}

#[test]
fn write_after_write_eof_is_dropped_with_a_warning() {
    capture_logs(|logs| {
        let logs = logs.clone();
        let h = Harness::new();
        h.run(move |ev| async move {
            let p = pair(&ev, || Hooks::new().on_eof(|_, _| true), Hooks::new()).await?;
            p.client_t.write(b"before");
            p.client_t.write_eof();
            p.client_t.write_eof(); // idempotent
            p.client_t.write(b"after");
            assert_eq!(logs.count("after write_eof()"), 1, "{}", logs.text());
            let s = p.served.clone();
            wait_until("server EOF", || s.got_eof()).await?;
            iterations(3).await?;
            assert_eq!(p.served.data(), b"before");
            p.server_t.close();
            let c = p.client.clone();
            wait_until("both lost", || c.is_lost() && s.is_lost()).await?;
            p.server.server.close();
            Ok(())
        });
    });
}

#[test]
fn writelines_sends_all_parts_in_order() {
    let h = Harness::new();
    h.run(|ev| async move {
        let p = pair(&ev, Hooks::new, Hooks::new()).await?;
        let t = &p.client_t;
        small_send_buffer(t);
        let big = pattern(300 * 1024);
        let mut expected = Vec::new();

        // Nothing buffered: sent at once, the rest buffered.
        t.writelines(&[b"ab", b"", b"cd", &big]);
        expected.extend_from_slice(b"abcd");
        expected.extend_from_slice(&big);
        assert!(t.get_write_buffer_size() > 0);
        // Something buffered: appended after it.
        t.writelines(&[b"ef", b"gh"]);
        expected.extend_from_slice(b"efgh");
        t.writelines(&[]);
        t.writelines(&[b"", b""]);
        // Many small parts (more than one vectored send takes).
        let parts: Vec<Vec<u8>> = (0..300u32).map(|i| i.to_be_bytes().to_vec()).collect();
        let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        t.writelines(&refs);
        for part in &parts {
            expected.extend_from_slice(part);
        }
        t.write(b"end");
        expected.extend_from_slice(b"end");
        t.close();

        let s = p.served.clone();
        wait_until("server lost", || s.is_lost()).await?;
        assert_eq!(p.served.data_len(), expected.len());
        assert!(p.served.data() == expected, "every part, in order");
        p.server.server.close();
        Ok(())
    });
}

#[test]
fn writelines_with_many_parts_and_nothing_buffered() {
    let h = Harness::new();
    h.run(|ev| async move {
        let p = pair(&ev, Hooks::new, Hooks::new()).await?;
        let parts: Vec<Vec<u8>> = (0..2000u32).map(|i| i.to_le_bytes().to_vec()).collect();
        let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        p.client_t.writelines(&refs);
        p.client_t.close();
        let s = p.served.clone();
        wait_until("server lost", || s.is_lost()).await?;
        let expected = parts.concat();
        assert_eq!(p.served.data_len(), expected.len());
        assert!(p.served.data() == expected, "every part, in order");
        p.server.server.close();
        Ok(())
    });
}

/// A `BufferedProtocol` that reads into its own small buffer and logs
/// into a [`Rec`].
struct Chunked {
    rec: Rec,
    buf: Vec<u8>,
    hints: Rc<Cell<usize>>,
}

impl Chunked {
    fn new(rec: Rec, size: usize, hints: Rc<Cell<usize>>) -> Chunked {
        Chunked {
            rec,
            buf: vec![0; size],
            hints,
        }
    }
}

impl BaseProtocol for Chunked {
    fn connection_made(&mut self, _transport: Transport) {
        self.rec.push(Event::Made);
    }

    fn connection_lost(&mut self, exc: Option<std::io::Error>) {
        self.rec.push(Event::Lost(exc.map(|e| e.kind())));
    }
}

impl BufferedProtocol for Chunked {
    fn get_buffer(&mut self, size_hint: usize) -> &mut [u8] {
        self.hints.set(size_hint);
        &mut self.buf
    }

    fn buffer_updated(&mut self, nbytes: usize) {
        self.rec.push(Event::Data(self.buf[..nbytes].to_vec()));
    }

    fn eof_received(&mut self) -> bool {
        self.rec.push(Event::Eof);
        false
    }
}

#[test]
fn buffered_protocol_server_receives_a_mebibyte_byte_exact() {
    let h = Harness::new();
    h.run(|ev| async move {
        let accepted: Rc<RefCell<Vec<Rec>>> = Rc::default();
        let list = accepted.clone();
        let hints = Rc::new(Cell::new(0));
        let hints2 = hints.clone();
        let server = create_server_buffered(
            &ev,
            move || {
                let rec = Rec::default();
                list.borrow_mut().push(rec.clone());
                // An odd size: partial fills and many reads per wakeup.
                Chunked::new(rec, 1000, hints2.clone())
            },
            &["127.0.0.1"],
            0,
            ServerOptions::default(),
        )
        .await?;
        let port = server.sockets()[0].port();
        let (t, client) = connect(&ev, port, Hooks::new()).await?;
        let payload = pattern(1 << 20);
        t.write(&payload);
        t.write_eof();
        let a = accepted.clone();
        wait_until("server side lost", || {
            a.borrow().first().is_some_and(Rec::is_lost)
        })
        .await?;
        let served = accepted.borrow()[0].clone();
        assert_eq!(served.data_len(), payload.len());
        assert!(served.data() == payload, "byte-exact");
        assert!(
            served
                .events()
                .iter()
                .all(|e| !matches!(e, Event::Data(d) if d.len() > 1000))
        );
        assert!(hints.get() > 0, "a positive size hint");
        assert_eq!(
            served.shape(),
            vec![
                Event::Made,
                Event::Data(vec![]),
                Event::Eof,
                Event::Lost(None)
            ]
        );
        wait_until("client lost", || client.is_lost()).await?;
        assert_eq!(
            client.shape(),
            vec![Event::Made, Event::Eof, Event::Lost(None)]
        );
        server.close();
        Ok(())
    });
}

#[test]
fn buffered_protocol_client_receives_a_mebibyte_echo_byte_exact() {
    let h = Harness::new();
    h.run(|ev| async move {
        let server = TestServer::start(&ev, || {
            Hooks::echo().on_eof(|_, t| {
                t.close();
                true
            })
        })
        .await?;
        let rec = Rec::default();
        let r = rec.clone();
        let (t, protocol) = create_connection_buffered(
            &ev,
            move || Chunked::new(r, 64 * 1024, Rc::default()),
            Some("127.0.0.1"),
            Some(server.port),
            ConnectOptions::default(),
        )
        .await?;
        assert!(Rc::ptr_eq(&protocol.borrow().rec.log, &rec.log));
        let got = t.get_buffered_protocol::<Chunked>().expect("a Chunked");
        assert!(Rc::ptr_eq(&got, &protocol));
        assert!(t.get_protocol::<Recorder>().is_none());

        let payload = pattern(1 << 20);
        t.write(&payload);
        t.write_eof();
        wait_until("client lost", || rec.is_lost()).await?;
        assert!(rec.data() == payload, "echo byte-exact");
        assert_eq!(
            rec.shape(),
            vec![
                Event::Made,
                Event::Data(vec![]),
                Event::Eof,
                Event::Lost(None)
            ]
        );
        server.server.close();
        Ok(())
    });
}

/// A buffered protocol whose `get_buffer` returns nothing.
struct NoRoom(Rec);

impl BaseProtocol for NoRoom {
    fn connection_made(&mut self, _transport: Transport) {
        self.0.push(Event::Made);
    }

    fn connection_lost(&mut self, exc: Option<std::io::Error>) {
        self.0.push(Event::Lost(exc.map(|e| e.kind())));
    }
}

impl BufferedProtocol for NoRoom {
    fn get_buffer(&mut self, _size_hint: usize) -> &mut [u8] {
        &mut []
    }

    fn buffer_updated(&mut self, _nbytes: usize) {
        self.0.push(Event::Mark("buffer_updated"));
    }
}

#[test]
fn an_empty_buffer_from_get_buffer_closes_the_connection_with_an_error() {
    let h = Harness::new();
    h.run(|ev| async move {
        let server = TestServer::start(&ev, Hooks::new).await?;
        let rec = Rec::default();
        let r = rec.clone();
        let (_t, _) = create_connection_buffered(
            &ev,
            move || NoRoom(r),
            Some("127.0.0.1"),
            Some(server.port),
            ConnectOptions::default(),
        )
        .await?;
        let served = server.wait_accepted(0).await?;
        served.transport().write(b"data");
        wait_until("client lost", || rec.is_lost()).await?;
        assert_eq!(
            rec.events(),
            vec![Event::Made, Event::Lost(Some(std::io::ErrorKind::Other))]
        );
        wait_until("server side lost", || served.is_lost()).await?;
        server.server.close();
        Ok(())
    });
    let reports = h.take_reports();
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert!(reports[0].contains("empty buffer"), "{reports:?}");
}

#[test]
fn write_eof_lets_the_peer_still_reply() {
    let h = Harness::new();
    h.run(|ev| async move {
        let p = pair(
            &ev,
            || {
                Hooks::new().on_eof(|rec, t| {
                    let mut reply = b"re: ".to_vec();
                    reply.extend_from_slice(&rec.data());
                    t.write(&reply);
                    t.close();
                    true
                })
            },
            Hooks::new(),
        )
        .await?;
        p.client_t.write(b"question");
        p.client_t.write_eof();
        assert!(!p.client_t.is_closing());
        let c = p.client.clone();
        wait_until("client lost", || c.is_lost()).await?;
        assert_eq!(p.client.data(), b"re: question");
        assert_eq!(
            p.client.shape(),
            vec![
                Event::Made,
                Event::Data(vec![]),
                Event::Eof,
                Event::Lost(None)
            ]
        );
        let s = p.served.clone();
        wait_until("server lost", || s.is_lost()).await?;
        assert_eq!(
            p.served.shape(),
            vec![
                Event::Made,
                Event::Data(vec![]),
                Event::Eof,
                Event::Lost(None)
            ]
        );
        p.server.server.close();
        Ok(())
    });
}

#[test]
fn eof_received_true_keeps_the_write_side_open() {
    let h = Harness::new();
    h.run(|ev| async move {
        let p = pair(&ev, || Hooks::new().on_eof(|_, _| true), Hooks::new()).await?;
        p.client_t.write_eof();
        let s = p.served.clone();
        wait_until("server EOF", || s.got_eof()).await?;
        iterations(5).await?;
        assert!(!p.served.is_lost(), "kept open");
        assert!(!p.server_t.is_closing());
        p.server_t.write(b"still here");
        let c = p.client.clone();
        wait_until("late reply", || c.data() == b"still here").await?;
        p.server_t.close();
        wait_until("both lost", || c.is_lost() && s.is_lost()).await?;
        assert_eq!(
            p.client.shape(),
            vec![
                Event::Made,
                Event::Data(vec![]),
                Event::Eof,
                Event::Lost(None)
            ]
        );
        assert_eq!(
            p.served.shape(),
            vec![Event::Made, Event::Eof, Event::Lost(None)]
        );
        p.server.server.close();
        Ok(())
    });
}

#[test]
fn eof_received_false_closes_the_transport() {
    let h = Harness::new();
    h.run(|ev| async move {
        let closing_in_eof = Rc::new(Cell::new(false));
        let seen = closing_in_eof.clone();
        let p = pair(
            &ev,
            Hooks::new,
            Hooks::new().on_eof(move |_, t| {
                seen.set(t.is_closing());
                false
            }),
        )
        .await?;
        p.server_t.write_eof();
        let c = p.client.clone();
        wait_until("client lost", || c.is_lost()).await?;
        assert!(!closing_in_eof.get(), "not closing inside eof_received");
        assert!(p.client_t.is_closing(), "closed after it returned false");
        assert_eq!(
            p.client.shape(),
            vec![Event::Made, Event::Eof, Event::Lost(None)]
        );
        let s = p.served.clone();
        wait_until("server lost", || s.is_lost()).await?;
        p.server.server.close();
        Ok(())
    });
}

/// A write that crosses the high-water mark while the protocol is borrowed
/// by the code that wrote (a task calling its own protocol's `send`, not a
/// protocol callback) still gets `pause_writing`, in the next iteration,
/// and `resume_writing` once the peer reads: the flow callbacks do not wait
/// for the peer to send something.
#[test]
fn pause_writing_reaches_a_protocol_borrowed_by_the_writer() {
    let h = Harness::new();
    h.run(|ev| async move {
        let server = TestServer::start(&ev, Hooks::new).await?;
        let rec = Rec::default();
        let r = rec.clone();
        let (t, protocol) = create_connection(
            &ev,
            move || Recorder::new(r, Hooks::new()),
            Some("127.0.0.1"),
            Some(server.port),
            ConnectOptions::default(),
        )
        .await?;
        let served = server.wait_accepted(0).await?;
        served.transport().pause_reading();
        small_send_buffer(&t);
        {
            // The writer holds its protocol while it writes.
            let _held = protocol.borrow_mut();
            t.write(&pattern(4 << 20));
        }
        assert!(t.get_write_buffer_size() > DEFAULT_HIGH_WATER);
        let r = rec.clone();
        wait_until("pause_writing", move || r.count(&Event::Pause) == 1).await?;
        served.transport().resume_reading();
        let r = rec.clone();
        wait_until("resume_writing", move || r.count(&Event::Resume) == 1).await?;
        assert_eq!(rec.count(&Event::Pause), 1);
        t.close();
        server.server.close();
        Ok(())
    });
}

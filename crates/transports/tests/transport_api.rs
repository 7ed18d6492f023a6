//! The rest of the public surface: extra info and the socket, protocol
//! switching, `Server` (sockets, serving, closing, `serve_forever`),
//! argument and bind errors, name resolution.

mod support;

use std::cell::RefCell;
use std::io::ErrorKind;
use std::mem::MaybeUninit;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::rc::Rc;

use loop_futures::{Error, EventLoopExt};
use loop_transports::{
    BaseProtocol, ConnectError, ConnectOptions, ExtraInfo, NameInfoFlags, Protocol, ServerOptions,
    Transport, create_connection, create_server, getaddrinfo, getnameinfo,
};
use support::{
    Event, Harness, Hooks, Rec, Recorder, TestServer, connect, iterations, pair, pattern,
    wait_until,
};

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// The io::Error kind inside `err`.
fn io_kind(err: &Error) -> ErrorKind {
    err.downcast_ref::<std::io::Error>()
        .unwrap_or_else(|| panic!("not an io::Error: {err:?}"))
        .kind()
}

#[test]
fn extra_info_names_both_ends_and_the_socket() {
    let h = Harness::new();
    h.run(|ev| async move {
        let p = pair(&ev, Hooks::new, Hooks::new()).await?;
        let server_addr = SocketAddr::new(LOCALHOST, p.server.port);
        let client_addr = p.client_t.sockname().expect("sockname");
        assert_eq!(client_addr.ip(), LOCALHOST);
        assert_ne!(client_addr.port(), 0);

        assert_eq!(p.client_t.peername(), Some(server_addr));
        assert_eq!(
            p.client_t.get_extra_info("peername"),
            Some(ExtraInfo::Addr(server_addr))
        );
        assert_eq!(
            p.client_t.get_extra_info("sockname"),
            Some(ExtraInfo::Addr(client_addr))
        );
        // The other end sees the mirror image.
        assert_eq!(p.server_t.peername(), Some(client_addr));
        assert_eq!(p.server_t.sockname(), Some(server_addr));

        let Some(ExtraInfo::Fd(fd)) = p.client_t.get_extra_info("socket") else {
            panic!("socket extra info is an fd");
        };
        assert!(fd >= 0);
        let via_socket = p.client_t.with_socket(|s| {
            use std::os::fd::AsRawFd;
            s.expect("open").as_raw_fd()
        });
        assert_eq!(fd, via_socket);
        assert_eq!(p.client_t.get_extra_info("compression"), None);
        assert_eq!(p.client_t.get_extra_info(""), None);
        assert!(p.client_t.get_loop().same_loop(&ev));
        assert!(p.client_t.same_transport(&p.client.transport()));
        assert!(!p.client_t.same_transport(&p.server_t));
        assert!(format!("{:?}", p.client_t).contains("Transport"));

        p.client_t.close();
        let c = p.client.clone();
        wait_until("lost", || c.is_lost()).await?;
        assert_eq!(p.client_t.get_extra_info("socket"), None, "socket released");
        assert!(p.client_t.with_socket(|s| s.is_none()));
        assert_eq!(
            p.client_t.peername(),
            Some(server_addr),
            "addresses outlive the socket"
        );
        p.server.server.close();
        Ok(())
    });
}

#[test]
fn with_socket_sets_options_through_sockref() {
    let h = Harness::new();
    h.run(|ev| async move {
        let p = pair(&ev, Hooks::echo, Hooks::new()).await?;
        // asyncio turns TCP_NODELAY on for both ends.
        assert!(
            p.client_t
                .with_socket(|s| s.unwrap().tcp_nodelay().unwrap())
        );
        assert!(
            p.server_t
                .with_socket(|s| s.unwrap().tcp_nodelay().unwrap())
        );
        p.client_t.with_socket(|s| {
            let s = s.unwrap();
            s.set_tcp_nodelay(false).unwrap();
            s.set_keepalive(true).unwrap();
        });
        assert!(
            !p.client_t
                .with_socket(|s| s.unwrap().tcp_nodelay().unwrap())
        );
        assert!(p.client_t.with_socket(|s| s.unwrap().keepalive().unwrap()));
        // Still a working connection.
        p.client_t.write(b"opt");
        let c = p.client.clone();
        wait_until("echo", || c.data() == b"opt").await?;
        p.client_t.close();
        wait_until("lost", || c.is_lost()).await?;
        p.server.server.close();
        Ok(())
    });
}

/// A second protocol to switch to.
#[derive(Default)]
struct Collector {
    data: Vec<u8>,
    made: usize,
    lost: usize,
}

impl BaseProtocol for Collector {
    fn connection_made(&mut self, _transport: Transport) {
        self.made += 1;
    }

    fn connection_lost(&mut self, _exc: Option<std::io::Error>) {
        self.lost += 1;
    }
}

impl Protocol for Collector {
    fn data_received(&mut self, data: &[u8]) {
        self.data.extend_from_slice(data);
    }
}

#[test]
fn get_protocol_downcasts_and_set_protocol_switches() {
    let h = Harness::new();
    h.run(|ev| async move {
        let p = pair(&ev, Hooks::echo, Hooks::new()).await?;
        let t = &p.client_t;
        let current = t.get_protocol::<Recorder>().expect("a Recorder");
        assert!(Rc::ptr_eq(&current.borrow().rec.log, &p.client.log));
        assert!(t.get_protocol::<Collector>().is_none(), "wrong type");

        let next = Rc::new(RefCell::new(Collector::default()));
        t.set_protocol(next.clone());
        assert!(t.get_protocol::<Recorder>().is_none());
        let got = t.get_protocol::<Collector>().expect("the new protocol");
        assert!(Rc::ptr_eq(&got, &next));

        t.write(b"after the switch");
        wait_until("echo to the new protocol", || {
            next.borrow().data == b"after the switch"
        })
        .await?;
        assert_eq!(p.client.events(), vec![Event::Made], "old one not called");
        t.close();
        wait_until("lost", || next.borrow().lost == 1).await?;
        assert_eq!(next.borrow().made, 0, "no connection_made on a switch");
        assert!(!p.client.is_lost());
        assert!(
            t.get_protocol::<Collector>().is_none(),
            "released when lost"
        );
        p.server.server.close();
        Ok(())
    });
}

#[test]
fn set_protocol_inside_data_received_takes_effect_for_the_next_read() {
    let h = Harness::new();
    let total = 1 << 20;
    h.run(|ev| async move {
        let next = Rc::new(RefCell::new(Collector::default()));
        let n = next.clone();
        let p = pair(
            &ev,
            Hooks::new,
            Hooks::new().on_data(move |rec, t, _| {
                if rec.count(&Event::Mark("switched")) == 0 {
                    t.set_protocol(n.clone());
                    rec.mark("switched");
                }
            }),
        )
        .await?;
        let t = &p.client_t;
        t.with_socket(|s| s.unwrap().set_recv_buffer_size(4 << 20).unwrap());
        t.pause_reading();
        p.server_t.write(&pattern(total));
        // Let the data pile up so that one wakeup reads several full
        // buffers.
        let t2 = t.clone();
        wait_until("most of the data in the kernel", || {
            t2.with_socket(|s| {
                let mut buf = vec![MaybeUninit::<u8>::uninit(); total];
                s.unwrap().peek(&mut buf).unwrap_or(0) > 600 * 1024
            })
        })
        .await?;
        t.resume_reading();
        let c = p.client.clone();
        wait_until("all the data", || {
            c.data_len() + next.borrow().data.len() == total
        })
        .await?;
        let old_chunks = p
            .client
            .events()
            .iter()
            .filter(|e| matches!(e, Event::Data(_)))
            .count();
        assert_eq!(
            old_chunks,
            1,
            "the old protocol got exactly one chunk: {:?}",
            p.client.shape()
        );
        assert!(!next.borrow().data.is_empty());
        let mut all = p.client.data();
        all.extend_from_slice(&next.borrow().data);
        assert!(
            all == pattern(total),
            "nothing lost or reordered by the switch"
        );
        t.close();
        wait_until("lost", || next.borrow().lost == 1).await?;
        p.server.server.close();
        Ok(())
    });
}

#[test]
fn server_sockets_serving_and_close() {
    let h = Harness::new();
    h.run(|ev| async move {
        let server = TestServer::start(&ev, Hooks::echo).await?;
        let sockets = server.server.sockets();
        assert_eq!(sockets, vec![SocketAddr::new(LOCALHOST, server.port)]);
        assert!(server.server.is_serving());
        assert!(server.server.get_loop().same_loop(&ev));
        assert_eq!(server.server.active_connections(), 0);
        assert!(format!("{:?}", server.server).contains("Server"));

        server.server.close();
        assert!(!server.server.is_serving());
        assert!(server.server.sockets().is_empty(), "no sockets once closed");
        server.server.close(); // idempotent
        let err = server.server.start_serving().unwrap_err();
        assert!(err.to_string().contains("closed"), "{err}");
        let refused = connect(&ev, server.port, Hooks::new()).await.err();
        let refused = refused.expect("nothing listens any more");
        assert_eq!(io_kind(&refused), ErrorKind::ConnectionRefused);
        server.server.wait_closed().await?;
        Ok(())
    });
}

#[test]
fn wait_closed_resolves_only_after_the_clients_are_gone() {
    let h = Harness::new();
    h.run(|ev| async move {
        let p = pair(&ev, Hooks::echo, Hooks::new()).await?;
        let server = &p.server.server;
        let early = server.wait_closed();
        assert!(!early.done(), "not closed yet");
        assert_eq!(server.active_connections(), 1);

        server.close();
        let waiter = server.wait_closed();
        iterations(5).await?;
        assert!(!waiter.done(), "a client is still connected");
        assert!(!early.done());
        // The live connection keeps working after the server closed.
        p.client_t.write(b"still");
        let c = p.client.clone();
        wait_until("echo", || c.data() == b"still").await?;
        assert!(!waiter.done());

        p.client_t.close();
        waiter.clone().await?;
        assert!(early.done());
        assert!(p.served.is_lost(), "resolved after the connection was lost");
        assert_eq!(server.active_connections(), 0);
        assert!(server.wait_closed().done(), "at once from now on");
        Ok(())
    });
}

#[test]
fn close_clients_flushes_and_closes_every_connection() {
    let h = Harness::new();
    h.run(|ev| async move {
        let server = TestServer::start(&ev, Hooks::new).await?;
        let (_ta, a) = connect(&ev, server.port, Hooks::new()).await?;
        let sa = server.wait_accepted(0).await?;
        let (_tb, b) = connect(&ev, server.port, Hooks::new()).await?;
        let sb = server.wait_accepted(1).await?;
        assert_eq!(server.server.active_connections(), 2);
        let reply = pattern(300 * 1024);
        sa.transport().write(&reply);
        sb.transport().write(b"bye");

        server.server.close_clients();
        assert!(sa.transport().is_closing() && sb.transport().is_closing());
        wait_until("clients lost", || a.is_lost() && b.is_lost()).await?;
        wait_until("server sides lost", || sa.is_lost() && sb.is_lost()).await?;
        assert!(a.data() == reply, "buffers flushed before closing");
        assert_eq!(b.data(), b"bye");
        for rec in [&a, &b, &sa, &sb] {
            rec.assert_complete();
            assert_eq!(rec.lost(), Some(None));
        }
        assert_eq!(server.server.active_connections(), 0);
        assert!(
            server.server.is_serving(),
            "the server itself keeps serving"
        );
        let (tc, c) = connect(&ev, server.port, Hooks::new()).await?;
        tc.close();
        wait_until("third client lost", || c.is_lost()).await?;
        server.server.close();
        server.server.wait_closed().await?;
        Ok(())
    });
}

#[test]
fn abort_clients_drops_every_connection() {
    let h = Harness::new();
    h.run(|ev| async move {
        let server = TestServer::start(&ev, Hooks::new).await?;
        let (_ta, a) = connect(&ev, server.port, Hooks::new()).await?;
        let sa = server.wait_accepted(0).await?;
        let (_tb, b) = connect(&ev, server.port, Hooks::new()).await?;
        let sb = server.wait_accepted(1).await?;
        server.server.close();
        let waiter = server.server.wait_closed();

        server.server.abort_clients();
        assert!(!sa.is_lost(), "connection_lost is not synchronous");
        iterations(1).await?;
        assert_eq!(sa.lost(), Some(None));
        assert_eq!(sb.lost(), Some(None));
        waiter.await?;
        wait_until("clients lost", || a.is_lost() && b.is_lost()).await?;
        for rec in [&a, &b, &sa, &sb] {
            rec.assert_complete();
        }
        Ok(())
    });
}

#[test]
fn serve_forever_until_cancelled() {
    let h = Harness::new();
    h.run(|ev| async move {
        let options = ServerOptions {
            start_serving: false,
            ..ServerOptions::default()
        };
        let server = TestServer::start_with(&ev, Hooks::echo, options).await?;
        assert!(!server.server.is_serving());
        let s = server.server.clone();
        let task = ev.create_task(async move { s.serve_forever().await })?;
        iterations(1).await?;
        assert!(server.server.is_serving(), "serve_forever starts serving");

        // Only one serve_forever at a time.
        let err = server.server.serve_forever().await.unwrap_err();
        assert!(err.to_string().contains("already"), "{err}");
        assert!(!task.done());

        let (t, client) = connect(&ev, server.port, Hooks::new()).await?;
        t.write(b"hi");
        wait_until("echo", || client.data() == b"hi").await?;

        assert!(task.cancel(Some("shutdown")));
        iterations(5).await?;
        assert!(!server.server.is_serving(), "closed by the cancellation");
        assert!(!task.done(), "still waiting for the client to go");
        t.close();
        let outcome = task.clone().await;
        let err = outcome.unwrap_err();
        assert_eq!(
            err.as_cancelled().map(|c| c.message()),
            Some(Some("shutdown")),
            "{err:?}"
        );
        assert!(task.cancelled());
        assert!(server.server.wait_closed().done());

        // A closed server cannot serve again.
        let err = server.server.serve_forever().await.unwrap_err();
        assert!(err.to_string().contains("closed"), "{err}");
        Ok(())
    });
}

#[test]
fn start_serving_later_accepts_the_waiting_connection() {
    let h = Harness::new();
    h.run(|ev| async move {
        let options = ServerOptions {
            start_serving: false,
            ..ServerOptions::default()
        };
        let server = TestServer::start_with(&ev, Hooks::echo, options).await?;
        assert!(!server.server.is_serving());
        // The kernel completes the handshake; the server does not accept.
        let (t, client) = connect(&ev, server.port, Hooks::new()).await?;
        t.write(b"queued");
        iterations(10).await?;
        assert!(
            server.accepted().is_empty(),
            "not accepted before start_serving"
        );
        assert_eq!(client.data(), b"");

        server.server.start_serving()?;
        server.server.start_serving()?; // idempotent
        assert!(server.server.is_serving());
        let served = server.wait_accepted(0).await?;
        wait_until("echo", || client.data() == b"queued").await?;
        assert_eq!(served.data(), b"queued");
        assert_eq!(server.accepted().len(), 1);
        t.close();
        wait_until("lost", || client.is_lost()).await?;
        server.server.close();
        server.server.wait_closed().await?;
        Ok(())
    });
}

#[test]
fn create_server_on_a_port_in_use_fails_and_the_loop_stays_usable() {
    let h = Harness::new();
    h.run(|ev| async move {
        let first = TestServer::start(&ev, Hooks::echo).await?;
        let second = create_server(
            &ev,
            || Recorder::new(Rec::default(), Hooks::new()),
            &["127.0.0.1"],
            first.port,
            ServerOptions::default(),
        )
        .await;
        let err = second.expect_err("the port is taken");
        assert_eq!(io_kind(&err), ErrorKind::AddrInUse);

        // A bad host is an error too.
        let bad = create_server(
            &ev,
            || Recorder::new(Rec::default(), Hooks::new()),
            &["local\0host"],
            0,
            ServerOptions::default(),
        )
        .await;
        assert!(bad.is_err());

        // The first server and the loop carry on.
        let (t, client) = connect(&ev, first.port, Hooks::new()).await?;
        t.write(b"fine");
        wait_until("echo", || client.data() == b"fine").await?;
        let other = TestServer::start(&ev, Hooks::echo).await?;
        assert_ne!(other.port, first.port);
        t.close();
        wait_until("lost", || client.is_lost()).await?;
        first.server.close();
        other.server.close();
        Ok(())
    });
}

#[test]
fn create_connection_argument_errors() {
    let h = Harness::new();
    h.run(|ev| async move {
        let server = TestServer::start(&ev, Hooks::echo).await?;
        let made = Rc::new(RefCell::new(0));

        // Neither host/port nor sock.
        let m = made.clone();
        let err = create_connection(
            &ev,
            move || {
                *m.borrow_mut() += 1;
                Collector::default()
            },
            None,
            None,
            ConnectOptions::default(),
        )
        .await
        .err()
        .expect("no address");
        assert_eq!(io_kind(&err), ErrorKind::InvalidInput);
        assert!(err.to_string().contains("not specified"), "{err}");

        // A host without a port.
        let err = create_connection(
            &ev,
            Collector::default,
            Some("127.0.0.1"),
            None,
            ConnectOptions::default(),
        )
        .await
        .err()
        .expect("no port");
        assert_eq!(io_kind(&err), ErrorKind::InvalidInput);

        // Both an address and a socket.
        let sock = std::net::TcpStream::connect(("127.0.0.1", server.port))?;
        let err = create_connection(
            &ev,
            Collector::default,
            Some("127.0.0.1"),
            Some(server.port),
            ConnectOptions {
                sock: Some(sock),
                ..ConnectOptions::default()
            },
        )
        .await
        .err()
        .expect("address and sock");
        assert_eq!(io_kind(&err), ErrorKind::InvalidInput);
        assert!(err.to_string().contains("same time"), "{err}");
        assert_eq!(*made.borrow(), 0, "the factory is not called on errors");

        // Nothing listening.
        let free = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let err = connect(&ev, free, Hooks::new())
            .await
            .err()
            .expect("refused");
        assert_eq!(io_kind(&err), ErrorKind::ConnectionRefused);
        let err = create_connection(
            &ev,
            Collector::default,
            Some("127.0.0.1"),
            Some(free),
            ConnectOptions {
                all_errors: true,
                ..ConnectOptions::default()
            },
        )
        .await
        .err()
        .expect("refused");
        let all = err.downcast_ref::<ConnectError>().expect("ConnectError");
        assert_eq!(all.errors.len(), 1);
        assert_eq!(all.errors[0].0, SocketAddr::new(LOCALHOST, free));
        assert_eq!(all.errors[0].1.kind(), ErrorKind::ConnectionRefused);

        // And a socket alone works.
        let sock = std::net::TcpStream::connect(("127.0.0.1", server.port))?;
        let local = sock.local_addr()?;
        let rec = Rec::default();
        let r = rec.clone();
        let (t, _) = create_connection(
            &ev,
            move || Recorder::new(r, Hooks::new()),
            None,
            None,
            ConnectOptions {
                sock: Some(sock),
                ..ConnectOptions::default()
            },
        )
        .await?;
        assert_eq!(t.sockname(), Some(local));
        t.write(b"via sock");
        wait_until("echo", || rec.data() == b"via sock").await?;
        t.close();
        wait_until("lost", || rec.is_lost()).await?;
        server.server.close();
        Ok(())
    });
}

#[test]
fn getaddrinfo_and_getnameinfo() {
    let h = Harness::new();
    h.run(|ev| async move {
        let addrs = getaddrinfo(&ev, "localhost", 8080).await?;
        assert!(!addrs.is_empty());
        assert!(
            addrs
                .iter()
                .all(|a| a.ip().is_loopback() && a.port() == 8080),
            "{addrs:?}"
        );
        assert_eq!(
            getaddrinfo(&ev, "127.0.0.1", 1).await?,
            vec![SocketAddr::new(LOCALHOST, 1)],
            "an IP literal is answered as is"
        );
        assert_eq!(
            getaddrinfo(&ev, "::1", 2).await?,
            vec!["[::1]:2".parse::<SocketAddr>().unwrap()]
        );
        let err = getaddrinfo(&ev, "local\0host", 80).await.unwrap_err();
        assert!(!err.is_cancelled(), "a resolver error: {err}");

        let numeric = NameInfoFlags {
            numeric_host: true,
            numeric_serv: true,
            ..NameInfoFlags::default()
        };
        let (host, service) = getnameinfo(&ev, SocketAddr::new(LOCALHOST, 80), numeric).await?;
        assert_eq!(host, "127.0.0.1");
        assert_eq!(service, "80");

        // A name required but a number asked for: an error, no lookup.
        let strict = NameInfoFlags {
            numeric_host: true,
            name_required: true,
            ..NameInfoFlags::default()
        };
        let err = getnameinfo(&ev, SocketAddr::new(LOCALHOST, 80), strict).await;
        assert!(err.is_err(), "{err:?}");

        // The loop is still fine.
        let server = TestServer::start(&ev, Hooks::echo).await?;
        let (t, rec) = connect(&ev, server.port, Hooks::new()).await?;
        t.write(b"ok");
        wait_until("echo", || rec.data() == b"ok").await?;
        t.close();
        wait_until("lost", || rec.is_lost()).await?;
        server.server.close();
        Ok(())
    });
}

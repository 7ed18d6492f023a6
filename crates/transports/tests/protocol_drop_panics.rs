//! A user protocol's destructor that panics, and a `start_server`
//! coroutine that panics: reported, and the connection's bookkeeping still
//! done (the server forgets it, the EOF is still read, the peer sees the
//! close). Over 127.0.0.1, bounded by the harness's watchdog and
//! `wait_for`.

mod support;

use std::cell::{Cell, RefCell};
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::rc::Rc;
use std::time::Duration;

use loop_futures::Error;
use loop_transports::{
    BaseProtocol, Protocol, ServerOptions, StreamOptions, Transport, create_server, start_server,
};
use support::{Harness, Hooks, connect, iterations, wait_until};

/// A server protocol whose destructor panics.
struct DropBomb {
    lost: Rc<Cell<bool>>,
}

impl BaseProtocol for DropBomb {
    fn connection_lost(&mut self, _exc: Option<io::Error>) {
        self.lost.set(true);
    }
}

impl Protocol for DropBomb {
    fn data_received(&mut self, _data: &[u8]) {}
}

impl Drop for DropBomb {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("protocol drop");
        }
    }
}

/// The transport's teardown dropped the protocol before it told the server
/// the connection was gone: a panicking Drop skipped `on_closed`, the
/// server counted the connection for ever and `wait_closed` never
/// resolved.
#[test]
fn protocol_drop_panic_does_not_stall_server_wait_closed() {
    let h = Harness::new();
    let (active, waited) = h.run(|ev| async move {
        let lost = Rc::new(Cell::new(false));
        let l = lost.clone();
        let server = create_server(
            &ev,
            move || DropBomb { lost: l.clone() },
            &["127.0.0.1"],
            0,
            ServerOptions::default(),
        )
        .await?;
        let port = server.sockets()[0].port();
        let (client_t, _rec) = connect(&ev, port, Hooks::new()).await?;
        let s = server.clone();
        wait_until("accepted", move || s.active_connections() == 1).await?;
        client_t.close();
        let l2 = lost.clone();
        wait_until("server connection_lost", move || l2.get()).await?;
        iterations(5).await?;
        server.close();
        let waited =
            loop_futures::wait_for(server.wait_closed(), Some(Duration::from_secs(2))).await;
        Ok::<_, Error>((server.active_connections(), waited.is_ok()))
    });
    let reports = h.take_reports();
    assert!(
        reports.iter().any(|r| r.contains("protocol drop")),
        "the panic is reported: {reports:?}"
    );
    assert_eq!(active, 0, "the closed connection is still counted");
    assert!(waited, "Server::wait_closed never resolved");
}

/// A start_server client coroutine that panics is reported and its
/// connection closed (asyncio's client_connected_cb failure).
#[test]
fn client_connected_coroutine_panic_closes_connection() {
    let h = Harness::new();
    let eof = h.run(|ev| async move {
        let server = start_server(
            &ev,
            |_reader, _writer| async move {
                loop_futures::yield_now().await?;
                panic!("client coroutine");
                #[allow(unreachable_code)]
                Ok::<_, Error>(())
            },
            &["127.0.0.1"],
            0,
            StreamOptions::default(),
        )
        .await?;
        let port = server.sockets()[0].port();
        let eof = loop_futures::to_thread(move || {
            let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
            let mut buf = [0u8; 16];
            matches!(s.read(&mut buf), Ok(0))
        })
        .await?;
        server.close();
        Ok::<_, Error>(eof)
    });
    let reports = h.take_reports();
    assert!(eof, "connection left open");
    assert!(
        reports.iter().any(|r| r.contains("client_connected_cb")),
        "{reports:?}"
    );
}

/// The protocol first attached: hands over to `Next` from data_received;
/// its destructor panics.
struct Handover {
    slot: Rc<RefCell<Option<Transport>>>,
    next: Rc<RefCell<Next>>,
}

#[derive(Default)]
struct Next {
    eof: bool,
    lost: bool,
}

impl BaseProtocol for Handover {
    fn connection_made(&mut self, transport: Transport) {
        // Reading paused until the client's data and FIN are both there.
        transport.pause_reading();
        *self.slot.borrow_mut() = Some(transport);
    }
}

impl Protocol for Handover {
    fn data_received(&mut self, _data: &[u8]) {
        let t = self.slot.borrow().clone();
        if let Some(t) = t {
            t.set_protocol(self.next.clone());
        }
    }
}

impl Drop for Handover {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("old protocol drop");
        }
    }
}

impl BaseProtocol for Next {
    fn connection_lost(&mut self, _exc: Option<io::Error>) {
        self.lost = true;
    }
}

impl Protocol for Next {
    fn data_received(&mut self, _data: &[u8]) {}
    fn eof_received(&mut self) -> bool {
        self.eof = true;
        false
    }
}

/// set_protocol from data_received: the old protocol was dropped by the
/// read path after the call, outside any guard, and its panic unwound out
/// of the read loop between two rounds: the peer's FIN already seen was
/// never read, the new protocol got neither eof_received nor
/// connection_lost, and the connection stayed half-open for ever.
#[test]
fn old_protocol_drop_panic_after_set_protocol_does_not_stall_eof() {
    let h = Harness::new();
    let (eof, lost, client_saw_close) = h.run(|ev| async move {
        let next: Rc<RefCell<Next>> = Rc::default();
        let n = next.clone();
        let slot: Rc<RefCell<Option<Transport>>> = Rc::default();
        let sl = slot.clone();
        let server = create_server(
            &ev,
            move || Handover {
                slot: sl.clone(),
                next: n.clone(),
            },
            &["127.0.0.1"],
            0,
            ServerOptions::default(),
        )
        .await?;
        let port = server.sockets()[0].port();
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let client = loop_futures::to_thread(move || {
            let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
            s.write_all(b"hi").unwrap();
            s.shutdown(std::net::Shutdown::Write).unwrap();
            tx.send(()).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
            let mut buf = [0u8; 16];
            matches!(s.read(&mut buf), Ok(0))
        });
        let sl = slot.clone();
        wait_until("connection_made", move || sl.borrow().is_some()).await?;
        // Over loopback the data and the FIN are queued once the client's
        // shutdown returned.
        wait_until("client sent", move || rx.try_recv().is_ok()).await?;
        let t = slot.borrow().clone().unwrap();
        t.resume_reading();
        let client_saw_close = client.await?;
        let (eof, lost) = (next.borrow().eof, next.borrow().lost);
        t.abort();
        server.close();
        Ok::<_, Error>((eof, lost, client_saw_close))
    });
    let reports = h.take_reports();
    assert!(
        reports.iter().any(|r| r.contains("old protocol drop")),
        "{reports:?}"
    );
    assert!(
        eof && lost && client_saw_close,
        "connection left half-open: eof_received {eof}, connection_lost {lost}, client saw close {client_saw_close}"
    );
}

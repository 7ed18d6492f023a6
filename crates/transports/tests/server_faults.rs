//! A server's own faults and lifetime: a protocol factory that panics, and
//! a server whose every handle was dropped.
//!
//! * A panicking factory is reported (asyncio's `_accept_connection2`
//!   reports the error and goes on): that connection is dropped, nothing is
//!   attached for it, `wait_closed` does not wait on it, and the
//!   connections queued behind it are accepted.
//! * Dropping every `Server` handle does not stop serving (asyncio's loop
//!   keeps the server); `close` through a clone does.

mod support;

use std::cell::Cell;
use std::io::Read;
use std::net::TcpStream;
use std::rc::Rc;
use std::time::Duration;

use loop_transports::{ServerOptions, create_server};
use support::{Harness, Hooks, Rec, Recorder, iterations, wait_until};

/// A factory that panics for its first connection, then makes recorders
/// that count `connection_made`.
fn flaky_factory(made: Rc<Cell<usize>>) -> impl Fn() -> Recorder + 'static {
    let calls = Cell::new(0);
    move || {
        calls.set(calls.get() + 1);
        assert!(calls.get() != 1, "factory fails on purpose");
        let m = made.clone();
        Recorder::new(
            Rec::default(),
            Hooks::new().on_made(move |_, _| m.set(m.get() + 1)),
        )
    }
}

#[test]
fn a_panicking_factory_is_reported_and_its_connection_dropped() {
    let h = Harness::new();
    let (active, peer_eof) = h.run(|ev| async move {
        let made = Rc::new(Cell::new(0));
        let server = create_server(
            &ev,
            flaky_factory(made.clone()),
            &["127.0.0.1"],
            0,
            ServerOptions::default(),
        )
        .await?;
        let port = server.sockets()[0].port();
        let mut first = TcpStream::connect(("127.0.0.1", port))?;
        first.set_read_timeout(Some(Duration::from_secs(10)))?;
        let second = TcpStream::connect(("127.0.0.1", port))?;
        wait_until("the second connection made", || made.get() == 1).await?;
        // The first connection was dropped: its peer reads EOF.
        let mut buf = [0u8; 1];
        let peer_eof = matches!(first.read(&mut buf), Ok(0));
        drop(second);
        server.close();
        let active = server.active_connections();
        // Resolves once the second connection is gone; nothing waits on
        // the first.
        server.close_clients();
        loop_futures::wait_for(server.wait_closed(), Some(Duration::from_secs(10))).await?;
        Ok((active, peer_eof))
    });
    assert!(peer_eof, "the failed connection is closed");
    assert_eq!(active, 1, "only the good connection counts");
    let reports = h.take_reports();
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert!(
        reports[0].contains("Error on transport creation for incoming connection")
            && reports[0].contains("factory fails on purpose"),
        "{reports:?}"
    );
}

#[test]
fn connections_queued_behind_a_panicking_factory_are_accepted() {
    let h = Harness::new();
    let made = h.run(|ev| async move {
        let made = Rc::new(Cell::new(0));
        let server = create_server(
            &ev,
            flaky_factory(made.clone()),
            &["127.0.0.1"],
            0,
            ServerOptions {
                start_serving: false,
                ..ServerOptions::default()
            },
        )
        .await?;
        let port = server.sockets()[0].port();
        // Three connections wait in the backlog before accepting starts: one
        // readiness edge for all three.
        let clients: Vec<TcpStream> = (0..3)
            .map(|_| TcpStream::connect(("127.0.0.1", port)))
            .collect::<Result<_, _>>()?;
        server.start_serving()?;
        wait_until("the two good connections made", || made.get() == 2).await?;
        drop(clients);
        server.close();
        server.close_clients();
        loop_futures::wait_for(server.wait_closed(), Some(Duration::from_secs(10))).await?;
        Ok(made.get())
    });
    assert_eq!(made, 2);
    assert_eq!(h.take_reports().len(), 1);
}

#[test]
fn a_server_whose_handles_were_all_dropped_goes_on_serving() {
    let h = Harness::new();
    h.run(|ev| async move {
        let registrations = ev.stats().io_registrations;
        let made = Rc::new(Cell::new(0));
        let m = made.clone();
        let server = create_server(
            &ev,
            move || {
                let m = m.clone();
                Recorder::new(
                    Rec::default(),
                    Hooks::new().on_made(move |_, _| m.set(m.get() + 1)),
                )
            },
            &["127.0.0.1"],
            0,
            ServerOptions::default(),
        )
        .await?;
        let port = server.sockets()[0].port();
        drop(server);
        iterations(3).await?;
        assert_eq!(
            ev.stats().io_registrations,
            registrations + 1,
            "still listening"
        );
        let client = TcpStream::connect(("127.0.0.1", port))?;
        wait_until("the connection made", || made.get() == 1).await?;
        drop(client);
        Ok(())
    });
    // The loop's close (the harness's drop) lets the server go.
}

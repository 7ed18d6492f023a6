//! Calls a protocol makes on its own transport from inside its callbacks:
//! no double borrow, no nested callback; flow-control callbacks that would
//! re-enter the protocol are delivered right after the running one returns.

mod support;

use std::cell::Cell;
use std::rc::Rc;

use loop_transports::{ConnectOptions, create_connection};
use support::{
    Event, Harness, Hooks, Rec, Recorder, TestServer, connect, pair, pattern, small_send_buffer,
    wait_until,
};

/// Index of the first event equal to `event`.
fn position(rec: &Rec, event: &Event) -> usize {
    rec.events()
        .iter()
        .position(|e| e == event)
        .unwrap_or_else(|| panic!("{event:?} not in {:?}", rec.shape()))
}

#[test]
fn write_past_high_water_inside_data_received_pauses_after_it_returns() {
    let h = Harness::new();
    let payload = pattern(1 << 20);
    let expected = payload.clone();
    h.run(|ev| async move {
        let buffered_at_mark = Rc::new(Cell::new(0usize));
        let seen = buffered_at_mark.clone();
        let p = pair(
            &ev,
            move || {
                let payload = payload.clone();
                let seen = seen.clone();
                Hooks::new()
                    .on_made(|_, t| {
                        small_send_buffer(t);
                        t.set_write_buffer_limits(Some(16 * 1024), Some(4 * 1024))
                            .expect("valid limits");
                    })
                    .on_data(move |rec, t, _| {
                        if rec.count(&Event::Mark("wrote")) == 0 {
                            t.write(&payload);
                            seen.set(t.get_write_buffer_size());
                            rec.mark("wrote");
                        }
                    })
            },
            Hooks::new(),
        )
        .await?;
        p.client_t.write(b"go");
        let c = p.client.clone();
        let len = expected.len();
        wait_until("the whole reply", || c.data_len() >= len).await?;
        let s = p.served.clone();
        wait_until("resume_writing", || s.count(&Event::Resume) == 1).await?;

        assert!(buffered_at_mark.get() > 16 * 1024, "the write crossed high");
        let mark = position(&p.served, &Event::Mark("wrote"));
        let pause = position(&p.served, &Event::Pause);
        assert_eq!(
            pause,
            mark + 1,
            "pause_writing delivered right after data_received returned: {:?}",
            p.served.events()
        );
        assert_eq!(p.served.count(&Event::Pause), 1);
        assert!(position(&p.served, &Event::Resume) > pause);
        assert!(p.client.data() == expected, "reply byte-exact");
        p.served.assert_grammar();

        p.client_t.close();
        let (c, s) = (p.client.clone(), p.served.clone());
        wait_until("both sides lost", || c.is_lost() && s.is_lost()).await?;
        p.client.assert_complete();
        p.served.assert_complete();
        p.server.server.close();
        Ok(())
    });
}

#[test]
fn write_past_high_water_inside_connection_made_pauses_after_it_returns() {
    let h = Harness::new();
    h.run(|ev| async move {
        let server = TestServer::start(&ev, Hooks::new).await?;
        let hooks = Hooks::new().on_made(|rec, t| {
            small_send_buffer(t);
            t.set_write_buffer_limits(Some(8 * 1024), None)
                .expect("valid limits");
            t.write(&pattern(1 << 20));
            rec.mark("wrote");
        });
        let (t, client) = connect(&ev, server.port, hooks).await?;
        assert_eq!(
            &client.events()[..3],
            &[Event::Made, Event::Mark("wrote"), Event::Pause],
            "pause_writing right after connection_made returned"
        );
        let c = client.clone();
        wait_until("resume_writing", || c.count(&Event::Resume) == 1).await?;
        client.assert_grammar();
        t.close();
        let served = server.wait_accepted(0).await?;
        wait_until("server side lost", || served.is_lost()).await?;
        assert!(served.data() == pattern(1 << 20));
        server.server.close();
        Ok(())
    });
}

#[test]
fn write_inside_resume_writing_pauses_again_after_resume_returns() {
    let h = Harness::new();
    let chunk = 512 * 1024;
    h.run(|ev| async move {
        let server = TestServer::start(&ev, Hooks::new).await?;
        let hooks = Hooks::new().on_resume(move |rec, t| {
            if rec.count(&Event::Mark("wrote in resume")) == 0 {
                t.write(&pattern(2 * chunk)[chunk..]);
                rec.mark("wrote in resume");
            }
        });
        let (t, client) = connect(&ev, server.port, hooks).await?;
        small_send_buffer(&t);
        t.set_write_buffer_limits(Some(16 * 1024), Some(4 * 1024))
            .expect("valid limits");
        t.write(&pattern(2 * chunk)[..chunk]);
        assert_eq!(client.count(&Event::Pause), 1, "paused by the first write");

        let c = client.clone();
        wait_until("the second resume_writing", || c.count(&Event::Resume) == 2).await?;
        assert_eq!(
            client.events(),
            vec![
                Event::Made,
                Event::Pause,
                Event::Resume,
                Event::Mark("wrote in resume"),
                Event::Pause,
                Event::Resume,
            ],
            "the pause caused inside resume_writing comes right after it returns"
        );
        let served = server.wait_accepted(0).await?;
        wait_until("all data", || served.data_len() == 2 * chunk).await?;
        assert!(served.data() == pattern(2 * chunk));
        t.close();
        wait_until("client lost", || client.is_lost()).await?;
        client.assert_complete();
        server.server.close();
        Ok(())
    });
}

#[test]
fn close_inside_data_received_flushes_the_echo_and_stops_reading() {
    let h = Harness::new();
    h.run(|ev| async move {
        let p = pair(
            &ev,
            || {
                Hooks::new().on_data(|rec, t, data| {
                    t.write(data);
                    t.close();
                    assert!(t.is_closing());
                    rec.mark("closed");
                })
            },
            Hooks::new(),
        )
        .await?;
        p.client_t.write(b"once");
        let (c, s) = (p.client.clone(), p.served.clone());
        wait_until("both sides lost", || c.is_lost() && s.is_lost()).await?;
        assert_eq!(
            p.served.shape(),
            vec![Event::Made, Event::Data(vec![]), Event::Lost(None)],
            "no eof_received once closing"
        );
        assert_eq!(p.served.count(&Event::Mark("closed")), 1);
        assert_eq!(p.client.data(), b"once", "the echo was flushed by close");
        assert_eq!(
            p.client.shape(),
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
fn abort_inside_data_received() {
    let h = Harness::new();
    h.run(|ev| async move {
        let p = pair(
            &ev,
            || {
                Hooks::new().on_data(|rec, t, _| {
                    t.abort();
                    assert!(t.is_closing());
                    rec.mark("aborted");
                })
            },
            Hooks::new(),
        )
        .await?;
        p.client_t.write(b"bye");
        let (c, s) = (p.client.clone(), p.served.clone());
        wait_until("both sides lost", || c.is_lost() && s.is_lost()).await?;
        assert_eq!(
            p.served.shape(),
            vec![Event::Made, Event::Data(vec![]), Event::Lost(None)]
        );
        assert_eq!(p.served.count(&Event::Mark("aborted")), 1);
        p.client.assert_complete();
        p.server.server.close();
        Ok(())
    });
}

#[test]
fn close_inside_connection_made() {
    let h = Harness::new();
    h.run(|ev| async move {
        // Server side.
        let p = pair(&ev, || Hooks::new().on_made(|_, t| t.close()), Hooks::new()).await?;
        let (c, s) = (p.client.clone(), p.served.clone());
        wait_until("both sides lost", || c.is_lost() && s.is_lost()).await?;
        assert_eq!(p.served.shape(), vec![Event::Made, Event::Lost(None)]);
        assert_eq!(
            p.client.shape(),
            vec![Event::Made, Event::Eof, Event::Lost(None)]
        );

        // Client side: create_connection still resolves.
        let (t, client) =
            connect(&ev, p.server.port, Hooks::new().on_made(|_, t| t.close())).await?;
        assert!(t.is_closing());
        wait_until("client lost", || client.is_lost()).await?;
        assert_eq!(client.shape(), vec![Event::Made, Event::Lost(None)]);
        p.server.server.close();
        Ok(())
    });
}

#[test]
fn abort_inside_connection_made() {
    let h = Harness::new();
    h.run(|ev| async move {
        let p = pair(&ev, || Hooks::new().on_made(|_, t| t.abort()), Hooks::new()).await?;
        let (c, s) = (p.client.clone(), p.served.clone());
        wait_until("both sides lost", || c.is_lost() && s.is_lost()).await?;
        assert_eq!(p.served.shape(), vec![Event::Made, Event::Lost(None)]);
        p.client.assert_complete();

        let (t, client) =
            connect(&ev, p.server.port, Hooks::new().on_made(|_, t| t.abort())).await?;
        assert!(t.is_closing());
        wait_until("client lost", || client.is_lost()).await?;
        assert_eq!(client.shape(), vec![Event::Made, Event::Lost(None)]);
        p.server.server.close();
        Ok(())
    });
}

#[test]
fn panic_inside_data_received_closes_only_that_connection() {
    let h = Harness::new();
    h.run(|ev| async move {
        let server = TestServer::start(&ev, || {
            Hooks::new().on_data(|_, t, data| {
                if data == b"boom" {
                    panic!("protocol exploded");
                }
                t.write(data);
            })
        })
        .await?;
        let (ta, a) = connect(&ev, server.port, Hooks::new()).await?;
        let served_a = server.wait_accepted(0).await?;
        let (tb, b) = connect(&ev, server.port, Hooks::new()).await?;
        let served_b = server.wait_accepted(1).await?;

        ta.write(b"boom");
        wait_until("the panicking connection lost", || served_a.is_lost()).await?;
        assert_eq!(
            served_a.lost(),
            Some(Some(std::io::ErrorKind::Other)),
            "connection_lost gets the panic as an error"
        );
        served_a.assert_complete();
        wait_until("its client lost", || a.is_lost()).await?;
        a.assert_complete();
        assert!(ta.is_closing());

        // The other connection and the server are untouched.
        tb.write(b"ping");
        wait_until("echo on the other connection", || b.data() == b"ping").await?;
        assert!(!served_b.is_lost());
        assert!(!tb.is_closing());
        assert!(server.server.is_serving());
        let (tc, c) = connect(&ev, server.port, Hooks::new()).await?;
        tc.write(b"pong");
        wait_until("echo on a new connection", || c.data() == b"pong").await?;

        tb.close();
        tc.close();
        wait_until("clients lost", || b.is_lost() && c.is_lost()).await?;
        server.server.close();
        server.server.wait_closed().await?;
        Ok(())
    });
    let reports = h.take_reports();
    assert_eq!(reports.len(), 1, "one report: {reports:?}");
    assert!(
        reports[0].contains("data_received") && reports[0].contains("protocol exploded"),
        "report names the method and the panic: {reports:?}"
    );
}

#[test]
fn panic_inside_connection_made_closes_the_connection() {
    let h = Harness::new();
    h.run(|ev| async move {
        let server =
            TestServer::start(&ev, || Hooks::new().on_made(|_, _| panic!("made exploded"))).await?;
        let (_t, client) = connect(&ev, server.port, Hooks::new()).await?;
        wait_until("client lost", || client.is_lost()).await?;
        client.assert_complete();
        let served = server.wait_accepted(0).await?;
        wait_until("server side lost", || served.is_lost()).await?;
        assert_eq!(
            served.shape(),
            vec![Event::Made, Event::Lost(Some(std::io::ErrorKind::Other))]
        );

        // Client side: create_connection fails, the protocol still gets
        // connection_lost.
        let rec = Rec::default();
        let r = rec.clone();
        let outcome = create_connection(
            &ev,
            move || {
                Recorder::new(
                    r,
                    Hooks::new().on_made(|_, _| panic!("client made exploded")),
                )
            },
            Some("127.0.0.1"),
            Some(server.port),
            ConnectOptions::default(),
        )
        .await;
        let err = outcome.err().expect("create_connection fails");
        assert!(err.to_string().contains("connection_made"), "{err}");
        assert_eq!(
            rec.shape(),
            vec![Event::Made, Event::Lost(Some(std::io::ErrorKind::Other))]
        );
        server.server.close();
        Ok(())
    });
    let reports = h.take_reports();
    // Two server connections (one per client) and the client's own.
    assert_eq!(reports.len(), 3, "{reports:?}");
    assert!(
        reports
            .iter()
            .all(|r| r.contains("connection_made() panicked"))
    );
    assert_eq!(
        reports
            .iter()
            .filter(|r| r.ends_with(": made exploded"))
            .count(),
        2
    );
    assert_eq!(
        reports
            .iter()
            .filter(|r| r.contains("client made exploded"))
            .count(),
        1
    );
}

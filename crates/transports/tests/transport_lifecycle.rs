//! The protocol callback grammar, on both ends of a TCP connection:
//! `connection_made` once → `data_received`* → `eof_received`? →
//! `connection_lost` exactly once, last — and nothing after it.

mod support;

use std::io::{Read, Write};
use std::time::Duration;

use loop_futures::Error;
use loop_transports::connect_accepted_socket;
use support::{
    Event, Harness, Hooks, Rec, Recorder, TestServer, connect, iterations, pair, pattern,
    small_send_buffer, wait_until,
};

#[test]
fn create_connection_resolves_after_connection_made() {
    let h = Harness::new();
    h.run(|ev| async move {
        let server = TestServer::start(&ev, Hooks::new).await?;
        let (t, client) = connect(&ev, server.port, Hooks::new()).await?;
        assert_eq!(
            client.events(),
            vec![Event::Made],
            "connection_made ran before create_connection resolved"
        );
        assert!(client.transport().same_transport(&t));
        assert!(!t.is_closing());
        assert!(t.is_reading());
        t.close();
        server.server.close();
        wait_until("client lost", || client.is_lost()).await?;
        Ok(())
    });
}

#[test]
fn echo_round_trip_follows_the_grammar_on_both_sides() {
    let h = Harness::new();
    h.run(|ev| async move {
        let p = pair(&ev, Hooks::echo, Hooks::new()).await?;
        p.client_t.write(b"hello");
        let client = p.client.clone();
        wait_until("echo", || client.data() == b"hello").await?;
        assert!(!p.client_t.is_closing());
        p.client_t.close();
        assert!(p.client_t.is_closing(), "is_closing right after close()");
        assert!(
            !p.client_t.is_reading(),
            "a closing transport does not read"
        );
        let (c, s) = (p.client.clone(), p.served.clone());
        wait_until("both sides lost", || c.is_lost() && s.is_lost()).await?;

        p.client.assert_complete();
        p.served.assert_complete();
        assert_eq!(
            p.client.shape(),
            vec![Event::Made, Event::Data(vec![]), Event::Lost(None)]
        );
        assert_eq!(
            p.served.shape(),
            vec![
                Event::Made,
                Event::Data(vec![]),
                Event::Eof,
                Event::Lost(None)
            ]
        );
        assert_eq!(p.served.data(), b"hello");
        p.server.server.close();
        Ok(())
    });
}

#[test]
fn nothing_is_called_after_connection_lost() {
    let h = Harness::new();
    h.run(|ev| async move {
        let p = pair(&ev, Hooks::new, Hooks::new()).await?;
        p.client_t.close();
        let c = p.client.clone();
        wait_until("client lost", || c.is_lost()).await?;
        let before = p.client.events();

        // Every call on a lost transport is a no-op for the protocol.
        p.client_t.write(b"late");
        p.client_t.writelines(&[b"la", b"te"]);
        p.client_t.close();
        p.client_t.abort();
        p.client_t.write_eof();
        p.client_t.pause_reading();
        p.client_t.resume_reading();
        p.client_t
            .set_write_buffer_limits(Some(0), Some(0))
            .expect("valid limits");
        iterations(5).await?;

        assert_eq!(p.client.events(), before);
        assert_eq!(p.client.count(&Event::Lost(None)), 1);
        assert!(p.client_t.is_closing());
        assert!(!p.client_t.is_reading());
        assert_eq!(p.client_t.get_write_buffer_size(), 0);
        assert!(
            p.client_t.with_socket(|s| s.is_none()),
            "socket released after connection_lost"
        );
        let s = p.served.clone();
        wait_until("server side lost", || s.is_lost()).await?;
        assert_eq!(p.served.data(), b"", "nothing written after the loss");
        p.served.assert_complete();
        p.server.server.close();
        Ok(())
    });
}

#[test]
fn peer_data_after_an_abort_is_not_delivered() {
    let h = Harness::new();
    h.run(|ev| async move {
        // The server keeps writing after the client is gone.
        let p = pair(&ev, || Hooks::new().on_eof(|_, _| true), Hooks::new()).await?;
        p.client_t.abort();
        let c = p.client.clone();
        wait_until("client lost", || c.is_lost()).await?;
        let before = p.client.events();
        for _ in 0..10 {
            p.server_t.write(b"are you there?");
            iterations(1).await?;
        }
        let s = p.served.clone();
        wait_until("server side lost", || s.is_lost()).await?;
        assert_eq!(p.client.events(), before);
        p.client.assert_complete();
        p.served.assert_complete();
        p.server.server.close();
        Ok(())
    });
}

#[test]
fn server_side_gets_eof_then_lost_and_client_sees_the_close() {
    let h = Harness::new();
    h.run(|ev| async move {
        let p = pair(&ev, Hooks::new, Hooks::new()).await?;
        p.client_t.write(b"abc");
        p.client_t.write_eof();
        assert!(p.client_t.can_write_eof());
        assert!(!p.client_t.is_closing(), "write_eof is not close");
        let (c, s) = (p.client.clone(), p.served.clone());
        wait_until("both sides lost", || c.is_lost() && s.is_lost()).await?;
        // The server's eof_received returned false: it closed, so the client
        // saw EOF and then the loss.
        assert_eq!(
            p.served.shape(),
            vec![
                Event::Made,
                Event::Data(vec![]),
                Event::Eof,
                Event::Lost(None)
            ]
        );
        assert_eq!(p.served.data(), b"abc");
        assert_eq!(
            p.client.shape(),
            vec![Event::Made, Event::Eof, Event::Lost(None)]
        );
        p.server.server.close();
        Ok(())
    });
}

#[test]
fn close_flushes_the_buffer_then_connection_lost_none() {
    let h = Harness::new();
    h.run(|ev| async move {
        let p = pair(&ev, Hooks::new, Hooks::new()).await?;
        small_send_buffer(&p.client_t);
        let payload = pattern(1 << 20);
        p.client_t.write(&payload);
        assert!(
            p.client_t.get_write_buffer_size() > 0,
            "a 4 KiB SO_SNDBUF cannot take 1 MiB at once"
        );
        p.client_t.close();
        p.client_t.close(); // idempotent
        assert!(p.client_t.is_closing());
        assert!(!p.client.is_lost(), "connection_lost is never synchronous");
        let (c, s) = (p.client.clone(), p.served.clone());
        wait_until("both sides lost", || c.is_lost() && s.is_lost()).await?;
        assert_eq!(p.client_t.get_write_buffer_size(), 0);
        assert_eq!(p.client.lost(), Some(None));
        assert_eq!(p.client.count(&Event::Lost(None)), 1);
        assert!(p.served.data() == payload, "the whole buffer was flushed");
        assert!(p.served.got_eof());
        p.client.assert_complete();
        p.served.assert_complete();
        p.server.server.close();
        Ok(())
    });
}

#[test]
fn abort_drops_the_buffer_and_connection_lost_comes_next_iteration() {
    let h = Harness::new();
    h.run(|ev| async move {
        let p = pair(&ev, Hooks::new, Hooks::new()).await?;
        small_send_buffer(&p.client_t);
        let payload = pattern(4 << 20);
        p.client_t.write(&payload);
        assert!(p.client_t.get_write_buffer_size() > 0);
        p.client_t.abort();
        assert!(p.client_t.is_closing());
        assert_eq!(p.client_t.get_write_buffer_size(), 0, "buffer dropped");
        assert!(!p.client.is_lost());
        iterations(1).await?;
        assert_eq!(
            p.client.lost(),
            Some(None),
            "connection_lost(None) in the next iteration"
        );
        let s = p.served.clone();
        wait_until("server side lost", || s.is_lost()).await?;
        assert!(
            p.served.data_len() < payload.len(),
            "the dropped buffer never reached the peer"
        );
        assert!(payload.starts_with(&p.served.data()));
        p.client.assert_complete();
        p.served.assert_complete();
        p.server.server.close();
        Ok(())
    });
}

#[test]
fn abort_after_close_still_gives_one_connection_lost() {
    let h = Harness::new();
    h.run(|ev| async move {
        let p = pair(&ev, Hooks::new, Hooks::new()).await?;
        small_send_buffer(&p.client_t);
        p.client_t.write(&pattern(1 << 20));
        p.client_t.close();
        // The flush is pending; abort cuts it short.
        p.client_t.abort();
        assert_eq!(p.client_t.get_write_buffer_size(), 0);
        p.client_t.close();
        p.client_t.abort();
        iterations(1).await?;
        assert_eq!(p.client.lost(), Some(None));
        iterations(5).await?;
        assert_eq!(
            p.client
                .events()
                .iter()
                .filter(|e| matches!(e, Event::Lost(_)))
                .count(),
            1
        );
        p.client.assert_complete();
        let s = p.served.clone();
        wait_until("server side lost", || s.is_lost()).await?;
        p.server.server.close();
        Ok(())
    });
}

#[test]
fn connect_accepted_socket_follows_the_grammar() {
    let h = Harness::new();
    h.run(|ev| async move {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let mut peer = std::net::TcpStream::connect(listener.local_addr()?)?;
        peer.set_read_timeout(Some(Duration::from_secs(5)))?;
        let (accepted, _) = listener.accept()?;
        let rec = Rec::default();
        let r = rec.clone();
        let (t, protocol) =
            connect_accepted_socket(&ev, move || Recorder::new(r, Hooks::echo()), accepted).await?;
        assert_eq!(rec.events(), vec![Event::Made]);
        assert!(protocol.borrow().rec.transport().same_transport(&t));
        assert_eq!(t.peername(), Some(peer.local_addr()?));

        peer.write_all(b"hi")?;
        peer.shutdown(std::net::Shutdown::Write)?;
        wait_until("accepted socket lost", || rec.is_lost()).await?;
        assert_eq!(
            rec.shape(),
            vec![
                Event::Made,
                Event::Data(vec![]),
                Event::Eof,
                Event::Lost(None)
            ]
        );
        let mut reply = Vec::new();
        peer.read_to_end(&mut reply)?;
        assert_eq!(reply, b"hi", "echoed, then closed");
        Ok::<_, Error>(())
    });
}

#[test]
fn data_and_eof_that_arrive_before_connection_made_are_delivered() {
    let h = Harness::new();
    h.run(|ev| async move {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let mut peer = std::net::TcpStream::connect(listener.local_addr()?)?;
        let (accepted, _) = listener.accept()?;
        // All of it is in the socket before the transport exists: the
        // edge-triggered event for it comes before connection_made.
        peer.write_all(b"early")?;
        peer.shutdown(std::net::Shutdown::Write)?;
        let rec = Rec::default();
        let r = rec.clone();
        let (_t, _) =
            connect_accepted_socket(&ev, move || Recorder::new(r, Hooks::new()), accepted).await?;
        wait_until("lost", || rec.is_lost()).await?;
        assert_eq!(rec.data(), b"early");
        assert_eq!(
            rec.shape(),
            vec![
                Event::Made,
                Event::Data(vec![]),
                Event::Eof,
                Event::Lost(None)
            ]
        );
        Ok::<_, Error>(())
    });
}

#[test]
#[should_panic(expected = "watchdog")]
fn the_watchdog_fails_a_scenario_that_hangs() {
    let h = Harness::new();
    h.run_within(Duration::from_millis(50), |ev| async move {
        // Nothing ever completes this future.
        let never = loop_futures::EventLoopExt::create_future::<()>(&ev);
        never.await
    });
}

/// A `connect_accepted_socket` (or `create_connection`) cancelled while it
/// waits for `connection_made` closes the transport it started: the caller
/// never gets it, so it must not stay connected with no owner (asyncio's
/// `except: transport.close(); raise`). The protocol still gets the whole
/// grammar: made, then lost.
#[test]
fn a_connect_cancelled_before_it_returns_closes_its_transport() {
    let h = Harness::new();
    let (events, peer_read) = h.run(|ev| async move {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let ours = std::net::TcpStream::connect(listener.local_addr()?)?;
        let (mut peer, _) = listener.accept()?;
        let rec = Rec::default();
        let r = rec.clone();
        let ev2 = ev.clone();
        let task = loop_futures::EventLoopExt::create_task(&ev, async move {
            connect_accepted_socket(&ev2, move || Recorder::new(r, Hooks::new()), ours).await?;
            Ok::<_, Error>(())
        })?;
        // The task's first step starts the transport and waits.
        loop_futures::yield_now().await?;
        assert!(!task.done());
        task.cancel(None);
        let r = rec.clone();
        wait_until("connection_lost", move || r.is_lost()).await?;
        assert!(task.cancelled());
        peer.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut buf = [0u8; 8];
        let peer_read = peer.read(&mut buf)?;
        Ok((rec.events(), peer_read))
    });
    assert_eq!(events, vec![Event::Made, Event::Lost(None)]);
    assert_eq!(peer_read, 0, "the peer sees the close");
}

//! Futures of loop-transports dropped before they completed (the losing
//! branch of a select, a timeout giving up): each cleans up as asyncio
//! does when the await is cancelled. Over 127.0.0.1, every run bounded by
//! a watchdog timer.

use std::future::Future as StdFuture;
use std::task::Poll;
use std::time::Duration;

use loop_core::EventLoop;
use loop_futures::{Error, EventLoopExt, sleep};
use loop_transports::{StreamOptions, start_server_with};

/// `serve_forever` dropped (the losing branch of a select against a
/// shutdown signal) closes the server, as asyncio's `serve_forever` does
/// when its await is cancelled (`except CancelledError: self.close()`);
/// it used to keep listening and accepting.
#[test]
fn serve_forever_dropped_leaves_the_server_listening() {
    let ev = EventLoop::new().unwrap();
    let watchdog = ev
        .call_later(Duration::from_secs(10), |ev| ev.stop())
        .unwrap();
    let ev2 = ev.clone();
    let out = ev.run_until_complete(async move {
        let opts = StreamOptions::default();
        let server = start_server_with(&ev2, |_r, _w| {}, &["127.0.0.1"], 0, opts).await?;
        let port = server.sockets()[0].port();
        {
            let mut a = Box::pin(server.serve_forever());
            let mut b = Box::pin(sleep(Duration::from_millis(50)));
            std::future::poll_fn(|cx| {
                if let Poll::Ready(x) = a.as_mut().poll(cx) {
                    return Poll::Ready(x);
                }
                b.as_mut().poll(cx)
            })
            .await?;
        } // serve_forever dropped here
        loop_futures::yield_now().await?;
        let still_serving = server.is_serving();
        let connect_ok = std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
        Ok::<_, Error>((still_serving, connect_ok))
    });
    watchdog.cancel();
    let (serving, connect_ok) = out.unwrap();
    assert!(
        !serving && !connect_ok,
        "serve_forever ended (dropped) but the server still serves: is_serving={serving}, a connect succeeded={connect_ok}"
    );
}

/// `open_connection` dropped while its connect is in progress (a
/// `timeout`/select gave up on it) aborts its attempt, which closes the
/// socket, as asyncio's `create_connection` does when cancelled
/// (`except: sock.close(); raise`; staggered_race cancels its attempts).
/// The attempt used to stay open and registered until the kernel gave up
/// on the SYN (minutes), or connect for nobody.
#[test]
fn open_connection_dropped_mid_connect_keeps_its_attempt_running() {
    use socket2::{Domain, Socket, Type};
    // A listener whose accept queue is full: further SYNs are dropped, so
    // a connect to it stays in progress.
    let listener = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    listener
        .bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    listener.listen(0).unwrap();
    let addr = listener.local_addr().unwrap().as_socket().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..4 {
        if let Ok(s) = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            fillers.push(s);
        }
    }
    let ev = EventLoop::new().unwrap();
    let watchdog = ev
        .call_later(Duration::from_secs(10), |ev| ev.stop())
        .unwrap();
    let ev2 = ev.clone();
    let out = ev.run_until_complete(async move {
        let before = ev2.stats().io_registrations;
        {
            let mut fut = Box::pin(loop_transports::open_connection(
                &ev2,
                "127.0.0.1",
                addr.port(),
                StreamOptions::default(),
            ));
            let mut tick = Box::pin(sleep(Duration::from_millis(100)));
            let gave_up = std::future::poll_fn(|cx| {
                if let Poll::Ready(r) = fut.as_mut().poll(cx) {
                    return Poll::Ready(r.map(|_| false));
                }
                tick.as_mut().poll(cx).map(|r| r.map(|()| true))
            })
            .await?;
            assert!(gave_up, "the connect should still be in progress");
        } // open_connection dropped here
        sleep(Duration::from_millis(300)).await?;
        Ok::<_, Error>((before, ev2.stats().io_registrations))
    });
    watchdog.cancel();
    drop(fillers);
    let (before, after) = out.unwrap();
    assert_eq!(
        after, before,
        "the dropped open_connection's attempt socket is still registered 300 ms later"
    );
}

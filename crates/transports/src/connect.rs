//! `create_connection` and `connect_accepted_socket` (asyncio's
//! `base_events.create_connection`, including RFC 8305 Happy Eyeballs).
//!
//! Invariants:
//! 1. The loop never blocks: names resolve on the executor, connects are
//!    non-blocking and completion is awaited on a writable event.
//! 2. Every socket that does not become the connection is closed (its
//!    attempt's guard deregisters and drops it), also when the caller's task
//!    is cancelled mid-way: no fd leaks.
//! 3. The returned future resolves after the protocol's `connection_made`
//!    ran, as asyncio's waiter does.

use std::cell::RefCell;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use loop_core::{EventLoop, Interest, Readiness, SourceHandler, SourceId, TimerHandle};
use loop_futures::{Error, EventLoopExt, Future, Task};
use mio::net::TcpStream;
use socket2::{Domain, Socket, Type};

use crate::dns::getaddrinfo;
use crate::protocol::{BufferedProtocol, Protocol};
use crate::protocol_sink::{BufferedSink, ProtocolSink, protocol_sink};
use crate::tcp::{TcpInner, to_io};
use crate::transport::Transport;

/// Options of [`create_connection`].
#[derive(Debug, Default)]
pub struct ConnectOptions {
    /// Bind the socket to this local address first.
    pub local_addr: Option<SocketAddr>,
    /// Use this already connected socket instead of connecting (asyncio's
    /// `sock=`); `host` and `port` must then be `None`.
    pub sock: Option<std::net::TcpStream>,
    /// Happy Eyeballs (RFC 8305): start the next address's attempt after
    /// this delay if the previous ones have not finished (asyncio's
    /// `happy_eyeballs_delay`; RFC 8305 recommends 250 ms).
    pub happy_eyeballs_delay: Option<Duration>,
    /// Reorder addresses by alternating families, this many of the first
    /// family first (asyncio's `interleave`; 1 when Happy Eyeballs is on).
    pub interleave: Option<usize>,
    /// Report every address's failure ([`ConnectError`]) instead of one
    /// error (asyncio's `all_errors`).
    pub all_errors: bool,
    /// Leave `TCP_NODELAY` off (asyncio turns it on).
    pub no_nodelay: bool,
}

/// Every address failed to connect (with `all_errors`).
#[derive(Debug)]
pub struct ConnectError {
    /// Each address tried and its error, in the order tried.
    pub errors: Vec<(SocketAddr, io::Error)>,
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "create_connection failed")?;
        for (addr, err) in &self.errors {
            write!(f, "; [{addr}] {err}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConnectError {}

fn invalid(msg: &str) -> Error {
    Error::new(io::Error::new(io::ErrorKind::InvalidInput, msg.to_string()))
}

/// Opens a TCP connection and attaches a protocol made by `factory`.
///
/// Equivalent of [`loop.create_connection`](https://docs.python.org/3/library/asyncio-eventloop.html#asyncio.loop.create_connection).
/// Resolves to the transport and the protocol once `connection_made` ran.
///
/// # Errors
///
/// Resolution and connection errors (the last address's, one combined
/// error, or [`ConnectError`] with `all_errors`); invalid arguments.
pub async fn create_connection<P, F>(
    ev: &EventLoop,
    factory: F,
    host: Option<&str>,
    port: Option<u16>,
    options: ConnectOptions,
) -> Result<(Transport, Rc<RefCell<P>>), Error>
where
    P: Protocol,
    F: FnOnce() -> P,
{
    let stream = connect_stream(ev, host, port, options).await?;
    let protocol = Rc::new(RefCell::new(factory()));
    let transport = attach(ev, stream, protocol_sink(protocol.clone())).await?;
    Ok((transport, protocol))
}

/// [`create_connection`] for a [`BufferedProtocol`].
///
/// # Errors
///
/// As [`create_connection`].
pub async fn create_connection_buffered<P, F>(
    ev: &EventLoop,
    factory: F,
    host: Option<&str>,
    port: Option<u16>,
    options: ConnectOptions,
) -> Result<(Transport, Rc<RefCell<P>>), Error>
where
    P: BufferedProtocol,
    F: FnOnce() -> P,
{
    let stream = connect_stream(ev, host, port, options).await?;
    let protocol = Rc::new(RefCell::new(factory()));
    let transport = attach(ev, stream, Rc::new(BufferedSink(protocol.clone()))).await?;
    Ok((transport, protocol))
}

/// Wraps an already accepted (or connected) socket in a transport.
///
/// Equivalent of [`loop.connect_accepted_socket`](https://docs.python.org/3/library/asyncio-eventloop.html#asyncio.loop.connect_accepted_socket).
///
/// # Errors
///
/// `InvalidInput` if `sock` is not a stream socket; the socket cannot be
/// made non-blocking or registered.
pub async fn connect_accepted_socket<P, F>(
    ev: &EventLoop,
    factory: F,
    sock: std::net::TcpStream,
) -> Result<(Transport, Rc<RefCell<P>>), Error>
where
    P: Protocol,
    F: FnOnce() -> P,
{
    check_stream_socket(&sock)?;
    sock.set_nonblocking(true)?;
    let protocol = Rc::new(RefCell::new(factory()));
    let transport = attach(
        ev,
        TcpStream::from_std(sock),
        protocol_sink(protocol.clone()),
    )
    .await?;
    Ok((transport, protocol))
}

/// asyncio's check of a given socket: a `TcpStream` can be made from any
/// socket (through socket2), and only a stream socket will do.
fn check_stream_socket(sock: &std::net::TcpStream) -> Result<(), Error> {
    let kind = socket2::SockRef::from(sock).r#type()?;
    if kind != Type::STREAM {
        return Err(invalid(&format!(
            "A Stream Socket was expected, got {kind:?}"
        )));
    }
    Ok(())
}

/// Starts the transport and waits for `connection_made`.
async fn attach(
    ev: &EventLoop,
    stream: TcpStream,
    sink: Rc<dyn ProtocolSink>,
) -> Result<Transport, Error> {
    let made: Future<()> = ev.create_future();
    let setter = made.clone();
    let on_made = Box::new(move |result: io::Result<()>| {
        let _ = match result {
            Ok(()) => setter.set_result(()),
            Err(err) => setter.set_exception(err),
        };
    });
    let transport = TcpInner::start(ev, stream, sink, Some(on_made), None)?;
    // Cancelled (or failed) before `connection_made` is known: the caller
    // never gets the transport, so it is closed here (asyncio's
    // `except: transport.close(); raise`) rather than left connected with
    // no owner.
    let unowned = CloseOnDrop(Some(transport.clone()));
    made.await?;
    unowned.disarm();
    Ok(transport)
}

/// Closes the transport it holds when dropped, unless disarmed (see
/// [`attach`]).
struct CloseOnDrop(Option<Transport>);

impl CloseOnDrop {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        if let Some(transport) = self.0.take() {
            transport.close();
        }
    }
}

async fn connect_stream(
    ev: &EventLoop,
    host: Option<&str>,
    port: Option<u16>,
    mut options: ConnectOptions,
) -> Result<TcpStream, Error> {
    let stream = match (host, port, options.sock.take()) {
        (None, None, Some(sock)) => {
            check_stream_socket(&sock)?;
            sock.set_nonblocking(true)?;
            TcpStream::from_std(sock)
        }
        (Some(_), _, Some(_)) | (_, Some(_), Some(_)) => {
            return Err(invalid(
                "host/port and sock can not be specified at the same time",
            ));
        }
        (None, _, None) | (_, None, None) => {
            return Err(invalid(
                "host and port was not specified and no sock specified",
            ));
        }
        (Some(host), Some(port), None) => {
            let addrs = getaddrinfo(ev, host, port).await?;
            if addrs.is_empty() {
                return Err(Error::new(io::Error::other(
                    "getaddrinfo() returned empty list",
                )));
            }
            let interleave = options
                .interleave
                .or(options.happy_eyeballs_delay.map(|_| 1));
            let addrs = match interleave {
                Some(first) => interleave_families(addrs, first.max(1)),
                None => addrs,
            };
            connect_any(ev, addrs, &options).await?
        }
    };
    if !options.no_nodelay {
        stream.set_nodelay(true)?;
    }
    Ok(stream)
}

/// asyncio's `_interleave_addrinfos`: alternate address families, the
/// first family's first `first` addresses leading.
fn interleave_families(addrs: Vec<SocketAddr>, first: usize) -> Vec<SocketAddr> {
    let mut families: Vec<(bool, Vec<SocketAddr>)> = Vec::new();
    for addr in addrs {
        match families.iter_mut().find(|(v6, _)| *v6 == addr.is_ipv6()) {
            Some((_, list)) => list.push(addr),
            None => families.push((addr.is_ipv6(), vec![addr])),
        }
    }
    let mut out = Vec::new();
    let mut queues: Vec<std::collections::VecDeque<SocketAddr>> =
        families.into_iter().map(|(_, list)| list.into()).collect();
    if let Some(q) = queues.first_mut() {
        for _ in 1..first {
            if let Some(a) = q.pop_front() {
                out.push(a);
            }
        }
    }
    while queues.iter().any(|q| !q.is_empty()) {
        for q in &mut queues {
            if let Some(a) = q.pop_front() {
                out.push(a);
            }
        }
    }
    out
}

/// Shared state of one connect race.
#[derive(Default)]
struct Race {
    winner: Option<TcpStream>,
    errors: Vec<(SocketAddr, io::Error)>,
    running: usize,
    event: Option<Future<()>>,
}

impl Race {
    fn signal(&mut self) {
        if let Some(event) = self.event.take() {
            let _ = event.set_result(());
        }
    }
}

async fn connect_any(
    ev: &EventLoop,
    addrs: Vec<SocketAddr>,
    options: &ConnectOptions,
) -> Result<TcpStream, Error> {
    let race = Rc::new(RefCell::new(Race::default()));
    // Unfinished attempts are aborted however this ends: a winner, every
    // address failed, the wait cancelled, or this future dropped mid-way
    // (a timeout gave up on it), as asyncio closes the socket of a
    // cancelled connect and its staggered race cancels the attempts.
    let mut attempts = Attempts::default();
    let mut next = 0;
    let result = loop {
        if let Some(stream) = race.borrow_mut().winner.take() {
            break Ok(stream);
        }
        if next < addrs.len()
            && (race.borrow().running == 0 || options.happy_eyeballs_delay.is_some())
        {
            let addr = addrs[next];
            next += 1;
            race.borrow_mut().running += 1;
            let race2 = race.clone();
            let ev2 = ev.clone();
            let local = options.local_addr;
            let task = ev.create_task(async move {
                let outcome = connect_one(&ev2, addr, local).await;
                let mut race = race2.borrow_mut();
                race.running -= 1;
                match outcome {
                    Ok(stream) if race.winner.is_none() => race.winner = Some(stream),
                    Ok(_) => {}
                    Err(err) => race.errors.push((addr, err)),
                }
                race.signal();
            })?;
            attempts.tasks.push(task);
        }
        if race.borrow().running == 0 && next >= addrs.len() && race.borrow().winner.is_none() {
            break Err(());
        }
        // Wait for an attempt to finish, or for the Happy Eyeballs delay.
        let event: Future<()> = ev.create_future();
        race.borrow_mut().event = Some(event.clone());
        attempts.timer = match options.happy_eyeballs_delay {
            Some(delay) if next < addrs.len() => {
                let setter = event.clone();
                Some(ev.call_later(delay, move |_| {
                    if !setter.done() {
                        let _ = setter.set_result(());
                    }
                })?)
            }
            _ => None,
        };
        let waited = event.await;
        if let Some(timer) = attempts.timer.take() {
            timer.cancel();
        }
        waited?;
    };
    drop(attempts);
    match result {
        Ok(stream) => Ok(stream),
        Err(()) => {
            let errors = std::mem::take(&mut race.borrow_mut().errors);
            Err(combine_errors(errors, options.all_errors))
        }
    }
}

/// `connect_any`'s attempt tasks and its Happy Eyeballs timer: dropped,
/// the unfinished attempts are aborted (each closes its socket) and the
/// timer is cancelled.
#[derive(Default)]
struct Attempts {
    tasks: Vec<Task<()>>,
    timer: Option<TimerHandle>,
}

impl Drop for Attempts {
    fn drop(&mut self) {
        if let Some(timer) = self.timer.take() {
            timer.cancel();
        }
        for task in &self.tasks {
            if !task.done() {
                task.abort();
            }
        }
    }
}

/// asyncio's error reporting when every address failed.
fn combine_errors(mut errors: Vec<(SocketAddr, io::Error)>, all_errors: bool) -> Error {
    if all_errors {
        return Error::new(ConnectError { errors });
    }
    if errors.len() == 1 {
        return Error::new(errors.remove(0).1);
    }
    let first = errors[0].1.to_string();
    if errors.iter().all(|(_, e)| e.to_string() == first) {
        return Error::new(errors.remove(0).1);
    }
    let joined: Vec<String> = errors.iter().map(|(a, e)| format!("[{a}] {e}")).collect();
    Error::new(io::Error::other(format!(
        "Multiple exceptions: {}",
        joined.join(", ")
    )))
}

/// One non-blocking connect, awaited on a writable event.
async fn connect_one(
    ev: &EventLoop,
    addr: SocketAddr,
    local: Option<SocketAddr>,
) -> io::Result<TcpStream> {
    // asyncio's `_connect_sock` skips local addresses of another family;
    // with none left the attempt fails before any socket is made (in a
    // Happy Eyeballs race the other family's attempts go on).
    if let Some(local) = local {
        if local.is_ipv4() != addr.is_ipv4() {
            let family = if addr.is_ipv4() {
                "AF_INET"
            } else {
                "AF_INET6"
            };
            return Err(io::Error::new(
                io::ErrorKind::AddrNotAvailable,
                format!("no matching local address with family={family} found"),
            ));
        }
    }
    let socket = Socket::new(
        Domain::for_address(addr),
        Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    socket.set_nonblocking(true)?;
    if let Some(local) = local {
        socket
            .bind(&local.into())
            .map_err(|err| crate::server::bind_error(local, err))?;
    }
    match socket.connect(&addr.into()) {
        Ok(()) => {}
        Err(err) if err.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
        Err(err) => return Err(err),
    }
    let stream = TcpStream::from_std(socket.into());
    {
        let wait = WritableWait::new(ev, &stream)?;
        wait.ready
            .clone()
            .await
            .map_err(|e| io::Error::other(e.to_string()))?;
    }
    if let Some(err) = stream.take_error()? {
        return Err(err);
    }
    stream.peer_addr()?;
    Ok(stream)
}

/// Waits for the first writable (or error) event of a connecting socket;
/// deregisters on drop (invariant 2).
struct WritableWait {
    ev: EventLoop,
    id: SourceId,
    ready: Future<()>,
}

struct Notify(Future<()>);

impl SourceHandler for Notify {
    fn on_ready(self: Rc<Self>, _ev: &EventLoop, readiness: Readiness) {
        if readiness.is_writable() && !self.0.done() {
            let _ = self.0.set_result(());
        }
    }
}

impl WritableWait {
    fn new(ev: &EventLoop, stream: &TcpStream) -> io::Result<Self> {
        let ready: Future<()> = ev.create_future();
        let id = ev
            .register_source(stream, Interest::WRITABLE, Rc::new(Notify(ready.clone())))
            .map_err(to_io)?;
        Ok(WritableWait {
            ev: ev.clone(),
            id,
            ready,
        })
    }
}

impl Drop for WritableWait {
    fn drop(&mut self) {
        self.ev.deregister_source(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interleave_alternates_families() {
        let a4: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let b4: SocketAddr = "127.0.0.2:1".parse().unwrap();
        let a6: SocketAddr = "[::1]:1".parse().unwrap();
        let b6: SocketAddr = "[::2]:1".parse().unwrap();
        assert_eq!(
            interleave_families(vec![a6, b6, a4, b4], 1),
            vec![a6, a4, b6, b4]
        );
        assert_eq!(
            interleave_families(vec![a6, b6, a4, b4], 2),
            vec![a6, b6, a4, b4]
        );
    }

    #[test]
    fn combined_errors_follow_asyncio() {
        let a: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let same = vec![
            (a, io::Error::from(io::ErrorKind::ConnectionRefused)),
            (a, io::Error::from(io::ErrorKind::ConnectionRefused)),
        ];
        let err = combine_errors(same, false);
        assert_eq!(
            err.downcast_ref::<io::Error>().unwrap().kind(),
            io::ErrorKind::ConnectionRefused
        );
        let mixed = vec![
            (a, io::Error::from(io::ErrorKind::ConnectionRefused)),
            (a, io::Error::from(io::ErrorKind::TimedOut)),
        ];
        assert!(
            combine_errors(mixed, false)
                .to_string()
                .starts_with("Multiple exceptions")
        );
        let all = vec![(a, io::Error::from(io::ErrorKind::TimedOut))];
        assert_eq!(
            combine_errors(all, true)
                .downcast_ref::<ConnectError>()
                .unwrap()
                .errors
                .len(),
            1
        );
    }

    /// Several loopback addresses that all refuse, with and without Happy
    /// Eyeballs (here and not in tests/: `getaddrinfo` gives one address
    /// per IP literal and the hosts file cannot be changed).
    #[test]
    fn every_refusing_address_is_reported() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let addrs: Vec<SocketAddr> = (1..=3)
            .map(|i| SocketAddr::from(([127, 0, 0, i], port)))
            .collect();
        let ev = EventLoop::new().expect("loop");
        for delay in [None, Some(Duration::from_millis(10))] {
            for all_errors in [true, false] {
                let ev2 = ev.clone();
                let list = addrs.clone();
                let outcome = ev.run_until_complete(async move {
                    let options = ConnectOptions {
                        happy_eyeballs_delay: delay,
                        all_errors,
                        ..ConnectOptions::default()
                    };
                    let err = connect_any(&ev2, list, &options)
                        .await
                        .expect_err("every address refuses");
                    let all = err.downcast_ref::<ConnectError>().map(|e| {
                        let mut tried: Vec<(SocketAddr, io::ErrorKind)> =
                            e.errors.iter().map(|(a, e)| (*a, e.kind())).collect();
                        tried.sort();
                        tried
                    });
                    let single = err.downcast_ref::<io::Error>().map(io::Error::kind);
                    Ok::<_, Error>((all, single))
                });
                let (all, single) = outcome.expect("the race ran");
                if all_errors {
                    let expected: Vec<_> = addrs
                        .iter()
                        .map(|a| (*a, io::ErrorKind::ConnectionRefused))
                        .collect();
                    assert_eq!(
                        all,
                        Some(expected),
                        "delay {delay:?}: one entry per address"
                    );
                } else {
                    assert_eq!(all, None, "delay {delay:?}");
                    assert_eq!(single, Some(io::ErrorKind::ConnectionRefused));
                }
                assert_eq!(
                    ev.stats().io_registrations,
                    0,
                    "every attempt's socket closed"
                );
            }
        }
        ev.close().expect("close");
    }

    /// A race over an IPv6 and an IPv4 address with an IPv4 `local_addr`:
    /// the IPv6 attempt fails at once (asyncio skips local addresses of
    /// another family, and with none left fails that attempt), the IPv4
    /// one connects from the local address. No IPv6 stack needed: the
    /// IPv6 attempt makes no socket.
    #[test]
    fn a_local_address_of_one_family_skips_the_other_familys_attempts() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
        let port = listener.local_addr().expect("addr").port();
        let local = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free local port");
        let addrs = vec![
            SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port)),
            SocketAddr::from(([127, 0, 0, 1], port)),
        ];
        let ev = EventLoop::new().expect("loop");
        let ev2 = ev.clone();
        let outcome = ev.run_until_complete(async move {
            let options = ConnectOptions {
                happy_eyeballs_delay: Some(Duration::from_millis(250)),
                local_addr: Some(local),
                all_errors: true,
                ..ConnectOptions::default()
            };
            let stream = connect_any(&ev2, addrs, &options).await?;
            Ok::<_, Error>(stream.local_addr()?)
        });
        assert_eq!(outcome.expect("the IPv4 attempt connects"), local);
        drop(listener);
        ev.close().expect("close");
    }
}

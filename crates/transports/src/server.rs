//! `create_server` and [`Server`] (asyncio's `base_events.create_server`
//! and `base_events.Server`).
//!
//! Invariants:
//! 1. Each listening socket is an edge-triggered source; one readiness
//!    event accepts up to `backlog` connections, then reschedules itself
//!    if the budget ran out (no new edge would come for the pending ones).
//! 2. Running out of fds (`EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM`) on
//!    accept: the exception handler is told, accepting pauses, and exactly
//!    one retry is scheduled after [`ACCEPT_RETRY_DELAY`] — never a busy
//!    loop and never duplicate retries (CPython schedules one per listening
//!    socket per failure, cpython#151615).
//! 3. The server tracks its live connections: `wait_closed` resolves once
//!    the server is closed *and* every connection it accepted is gone
//!    (asyncio 3.12.1+).
//! 4. A connection's failure never touches the server or other
//!    connections.
//! 5. Binding: an address that is not available here (`EADDRNOTAVAIL`) is
//!    skipped, as asyncio does (bpo-30945); no address bound is an error.
//!    Bind errors name the address.
//! 6. A serving server is held by its registered accept handlers: dropping
//!    every `Server` handle does not stop it (asyncio's loop keeps it too);
//!    `close` (or the loop's close) deregisters them and lets it go.
//! 7. A protocol factory that panics is reported to the exception handler
//!    and that connection is dropped; nothing is attached for it (no
//!    client `wait_closed` would wait on) and accepting goes on.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::panic::{self, AssertUnwindSafe};
use std::rc::{Rc, Weak};

use loop_core::{EventLoop, ExceptionContext, Interest, Readiness, SourceHandler, SourceId};
use loop_futures::{Error, EventLoopExt, Future, RuntimeError};
use mio::net::TcpListener;
use slab::Slab;
use socket2::{Domain, Socket, TcpKeepalive, Type};

use crate::constants::{ACCEPT_RETRY_DELAY, DEFAULT_BACKLOG};
use crate::dns::getaddrinfo;
use crate::protocol::{BufferedProtocol, Protocol};
use crate::protocol_sink::{BufferedSink, ProtocolSink, protocol_sink};
use crate::tcp::{TcpInner, to_io};

/// Options of [`create_server`].
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Listen backlog, and connections accepted per event (default 100).
    pub backlog: u32,
    /// `SO_REUSEADDR` (default true, as asyncio on Unix).
    pub reuse_address: bool,
    /// `SO_REUSEPORT`: several servers (one per loop thread) on one port.
    pub reuse_port: bool,
    /// Start accepting at once (default true).
    pub start_serving: bool,
    /// `SO_KEEPALIVE` on accepted connections.
    pub keep_alive: bool,
    /// Leave `TCP_NODELAY` off on accepted connections.
    pub no_nodelay: bool,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            backlog: DEFAULT_BACKLOG,
            reuse_address: true,
            reuse_port: false,
            start_serving: true,
            keep_alive: false,
            no_nodelay: false,
        }
    }
}

type SinkFactory = Rc<dyn Fn() -> Rc<dyn ProtocolSink>>;

struct Listener {
    sock: TcpListener,
    addr: SocketAddr,
    source: Option<SourceId>,
}

struct ServerInner {
    ev: EventLoop,
    listeners: RefCell<Vec<Listener>>,
    factory: SinkFactory,
    options: ServerOptions,
    serving: Cell<bool>,
    closed: Cell<bool>,
    accept_paused: Cell<bool>,
    retry_pending: Cell<bool>,
    serving_forever: Cell<bool>,
    /// What `serve_forever` awaits; `close` cancels it (as asyncio does).
    forever: RefCell<Option<Future<()>>>,
    clients: RefCell<Slab<Weak<TcpInner>>>,
    waiters: RefCell<Vec<Future<()>>>,
}

/// A listening TCP server.
///
/// Equivalent of [`asyncio.Server`](https://docs.python.org/3/library/asyncio-eventloop.html#asyncio.Server).
/// Cloning gives another handle to the same server.
#[derive(Clone)]
pub struct Server {
    inner: Rc<ServerInner>,
}

/// Starts a TCP server on `hosts` (all interfaces, IPv4 and IPv6, when
/// empty) and `port` (0: any free port; see [`Server::sockets`]); each
/// accepted connection gets a protocol from `factory`.
///
/// Equivalent of [`loop.create_server`](https://docs.python.org/3/library/asyncio-eventloop.html#asyncio.loop.create_server).
///
/// # Errors
///
/// Resolution or bind errors (an address in use, say).
pub async fn create_server<P, F>(
    ev: &EventLoop,
    factory: F,
    hosts: &[&str],
    port: u16,
    options: ServerOptions,
) -> Result<Server, Error>
where
    P: Protocol,
    F: Fn() -> P + 'static,
{
    let factory: SinkFactory = Rc::new(move || protocol_sink(Rc::new(RefCell::new(factory()))));
    start(ev, factory, hosts, port, options).await
}

/// [`create_server`] for a [`BufferedProtocol`].
///
/// # Errors
///
/// As [`create_server`].
pub async fn create_server_buffered<P, F>(
    ev: &EventLoop,
    factory: F,
    hosts: &[&str],
    port: u16,
    options: ServerOptions,
) -> Result<Server, Error>
where
    P: BufferedProtocol,
    F: Fn() -> P + 'static,
{
    let factory: SinkFactory = Rc::new(move || {
        Rc::new(BufferedSink(Rc::new(RefCell::new(factory())))) as Rc<dyn ProtocolSink>
    });
    start(ev, factory, hosts, port, options).await
}

async fn start(
    ev: &EventLoop,
    factory: SinkFactory,
    hosts: &[&str],
    port: u16,
    options: ServerOptions,
) -> Result<Server, Error> {
    let hosts: Vec<&str> = if hosts.is_empty() {
        vec!["0.0.0.0", "::"]
    } else {
        hosts.to_vec()
    };
    let mut addrs: Vec<SocketAddr> = Vec::new();
    for host in &hosts {
        for addr in getaddrinfo(ev, host, port).await? {
            if !addrs.contains(&addr) {
                addrs.push(addr);
            }
        }
    }
    let mut listeners = Vec::new();
    for &addr in &addrs {
        let sock = match bind_listener(addr, &options) {
            Ok(sock) => sock,
            // asyncio (bpo-30945): assume the family is not enabled here
            // and go on with the other addresses.
            Err(err) if err.kind() == io::ErrorKind::AddrNotAvailable => {
                tracing::debug!(target: "tulip", %err, "create_server skips an address");
                continue;
            }
            Err(err) => return Err(err.into()),
        };
        let addr = sock.local_addr()?;
        listeners.push(Listener {
            sock,
            addr,
            source: None,
        });
    }
    if listeners.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::AddrNotAvailable,
            format!("could not bind on any address out of {addrs:?}"),
        )
        .into());
    }
    let server = Server {
        inner: Rc::new(ServerInner {
            ev: ev.clone(),
            listeners: RefCell::new(listeners),
            factory,
            options: options.clone(),
            serving: Cell::new(false),
            closed: Cell::new(false),
            accept_paused: Cell::new(false),
            retry_pending: Cell::new(false),
            serving_forever: Cell::new(false),
            forever: RefCell::new(None),
            clients: RefCell::new(Slab::new()),
            waiters: RefCell::new(Vec::new()),
        }),
    };
    if options.start_serving {
        server.start_serving()?;
    }
    Ok(server)
}

fn bind_listener(addr: SocketAddr, options: &ServerOptions) -> io::Result<TcpListener> {
    let socket = Socket::new(
        Domain::for_address(addr),
        Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    if options.reuse_address {
        socket.set_reuse_address(true)?;
    }
    if options.reuse_port {
        socket.set_reuse_port(true)?;
    }
    if addr.is_ipv6() {
        // Bind IPv6 and IPv4 separately (asyncio sets IPV6_V6ONLY too).
        socket.set_only_v6(true)?;
    }
    socket
        .bind(&addr.into())
        .map_err(|err| bind_error(addr, err))?;
    socket.listen(options.backlog.min(i32::MAX as u32) as i32)?;
    socket.set_nonblocking(true)?;
    Ok(TcpListener::from_std(socket.into()))
}

/// asyncio's bind failure: the same kind, a message naming the address.
pub(crate) fn bind_error(addr: SocketAddr, err: io::Error) -> io::Error {
    io::Error::new(
        err.kind(),
        format!(
            "error while attempting to bind on address {addr}: {}",
            err.to_string().to_lowercase()
        ),
    )
}

/// A listening socket's readiness handler. It holds the server: while
/// the loop has it registered (serving, until `close` or the loop's
/// close), the server lives and serves even if every [`Server`] handle
/// was dropped, as asyncio's loop keeps a server whose object was dropped.
struct AcceptHandler {
    server: Rc<ServerInner>,
    index: usize,
}

impl SourceHandler for AcceptHandler {
    fn on_ready(self: Rc<Self>, _ev: &EventLoop, _readiness: Readiness) {
        self.server.accept_ready(self.index);
    }
}

fn is_resource_error(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

impl ServerInner {
    fn accept_ready(self: &Rc<Self>, index: usize) {
        if !self.serving.get() || self.accept_paused.get() || self.closed.get() {
            return;
        }
        for _ in 0..self.options.backlog.max(1) {
            let accepted = {
                let listeners = self.listeners.borrow();
                let Some(listener) = listeners.get(index) else {
                    return;
                };
                listener.sock.accept()
            };
            match accepted {
                Ok((stream, _peer)) => self.accepted(stream),
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) if is_resource_error(&err) => {
                    self.out_of_resources(index, err);
                    return;
                }
                // ECONNABORTED, EPROTO, …: that connection is gone; go on.
                Err(err) => tracing::debug!(target: "tulip", %err, "accept() failed"),
            }
        }
        // Budget spent: more may be pending and no new edge would tell us.
        self.reschedule(index);
    }

    fn reschedule(&self, index: usize) {
        let source = self.listeners.borrow().get(index).and_then(|l| l.source);
        if let Some(id) = source {
            self.ev.schedule_source(id, Readiness::READABLE);
        }
    }

    fn out_of_resources(self: &Rc<Self>, index: usize, err: io::Error) {
        let addr = self.listeners.borrow().get(index).map(|l| l.addr);
        let context = ExceptionContext::new("socket.accept() out of system resource")
            .with_error(std::sync::Arc::new(err))
            .with_extra("socket", format!("{addr:?}"));
        self.ev.call_exception_handler(context);
        self.accept_paused.set(true);
        if self.retry_pending.replace(true) {
            return;
        }
        let weak = Rc::downgrade(self);
        let scheduled = self.ev.call_later(ACCEPT_RETRY_DELAY, move |_| {
            if let Some(server) = weak.upgrade() {
                server.retry_pending.set(false);
                server.accept_paused.set(false);
                let count = server.listeners.borrow().len();
                for i in 0..count {
                    server.reschedule(i);
                }
            }
        });
        if scheduled.is_err() {
            self.retry_pending.set(false);
        }
    }

    fn accepted(self: &Rc<Self>, stream: mio::net::TcpStream) {
        if !self.options.no_nodelay {
            let _ = stream.set_nodelay(true);
        }
        if self.options.keep_alive {
            let _ = socket2::SockRef::from(&stream).set_tcp_keepalive(&TcpKeepalive::new());
        }
        // The factory first: if it panics, nothing is attached (no client
        // slot that `wait_closed` would wait on), the connection is
        // dropped, and the accept loop goes on (asyncio's
        // `_accept_connection2` reports the error and carries on).
        let sink = match panic::catch_unwind(AssertUnwindSafe(|| (self.factory)())) {
            Ok(sink) => sink,
            Err(payload) => {
                let context =
                    ExceptionContext::new("Error on transport creation for incoming connection")
                        .with_panic(payload)
                        .with_extra("peer", format!("{:?}", stream.peer_addr().ok()));
                self.ev.call_exception_handler(context);
                return;
            }
        };
        let key = self.clients.borrow_mut().insert(Weak::new());
        let weak = Rc::downgrade(self);
        let on_closed = Box::new(move || {
            if let Some(server) = weak.upgrade() {
                server.detach(key);
            }
        });
        match TcpInner::start(&self.ev, stream, sink, None, Some(on_closed)) {
            Ok(transport) => {
                if let Some(slot) = self.clients.borrow_mut().get_mut(key) {
                    *slot = transport.inner.downgrade();
                }
            }
            Err(err) => {
                self.clients.borrow_mut().try_remove(key);
                tracing::warn!(target: "tulip", %err, "could not start a transport for an accepted connection");
            }
        }
    }

    fn detach(&self, key: usize) {
        self.clients.borrow_mut().try_remove(key);
        self.wake_waiters_if_done();
    }

    fn wake_waiters_if_done(&self) {
        if self.closed.get() && self.clients.borrow().is_empty() {
            let waiters = std::mem::take(&mut *self.waiters.borrow_mut());
            for waiter in waiters {
                if !waiter.done() {
                    let _ = waiter.set_result(());
                }
            }
        }
    }

    fn live_clients(&self) -> Vec<Rc<TcpInner>> {
        self.clients
            .borrow()
            .iter()
            .filter_map(|(_, w)| w.upgrade())
            .collect()
    }
}

impl Server {
    /// Starts accepting (idempotent).
    ///
    /// # Errors
    ///
    /// [`Error::Runtime`] if the server is closed; registration errors.
    pub fn start_serving(&self) -> Result<(), Error> {
        let inner = &self.inner;
        if inner.closed.get() {
            return Err(RuntimeError::new("Server is closed").into());
        }
        if inner.serving.replace(true) {
            return Ok(());
        }
        let mut listeners = inner.listeners.borrow_mut();
        for (index, listener) in listeners.iter_mut().enumerate() {
            let handler = Rc::new(AcceptHandler {
                server: inner.clone(),
                index,
            });
            let id = inner
                .ev
                .register_source(&listener.sock, Interest::READABLE, handler)
                .map_err(to_io)?;
            listener.source = Some(id);
            // Connections may already be waiting.
            inner.ev.schedule_source(id, Readiness::READABLE);
        }
        Ok(())
    }

    /// True while accepting.
    pub fn is_serving(&self) -> bool {
        self.inner.serving.get() && !self.inner.closed.get()
    }

    /// Stops listening and closes the listening sockets; live connections
    /// stay open (see [`close_clients`](Server::close_clients)). A
    /// [`serve_forever`](Server::serve_forever) in progress ends with the
    /// cancellation.
    pub fn close(&self) {
        let inner = &self.inner;
        if inner.closed.replace(true) {
            return;
        }
        inner.serving.set(false);
        let forever = inner.forever.borrow_mut().take();
        if let Some(forever) = forever {
            if !forever.done() {
                forever.cancel(None);
            }
        }
        let listeners = std::mem::take(&mut *inner.listeners.borrow_mut());
        for listener in &listeners {
            if let Some(id) = listener.source {
                inner.ev.deregister_source(id);
            }
        }
        drop(listeners);
        inner.wake_waiters_if_done();
    }

    /// Resolves once the server is closed and all its connections are gone.
    pub fn wait_closed(&self) -> Future<()> {
        let inner = &self.inner;
        let waiter: Future<()> = inner.ev.create_future();
        if inner.closed.get() && inner.clients.borrow().is_empty() {
            let _ = waiter.set_result(());
        } else {
            inner.waiters.borrow_mut().push(waiter.clone());
        }
        waiter
    }

    /// Accepts until the awaiting task is cancelled or the server is
    /// closed; then closes the server and waits for it to be closed, and
    /// returns the cancellation.
    ///
    /// # Errors
    ///
    /// The cancellation; [`Error::Runtime`] if the server is closed or
    /// already serving forever.
    pub async fn serve_forever(&self) -> Result<(), Error> {
        let inner = &self.inner;
        if inner.serving_forever.replace(true) {
            return Err(
                RuntimeError::new("server is already being awaited on serve_forever()").into(),
            );
        }
        let _reset = ResetServing(inner.clone());
        self.start_serving()?;
        let forever: Future<()> = inner.ev.create_future();
        *inner.forever.borrow_mut() = Some(forever.clone());
        // Dropped while serving (a select's losing branch, the task
        // aborted): closed, as asyncio's serve_forever closes the server
        // when its await is cancelled.
        let mut close_on_drop = CloseOnDrop {
            server: self,
            armed: true,
        };
        let result = forever.await;
        close_on_drop.armed = false;
        self.close();
        self.wait_closed().await?;
        result
    }

    /// Closes every live connection (flushing their buffers).
    pub fn close_clients(&self) {
        for client in self.inner.live_clients() {
            client.close();
        }
    }

    /// Aborts every live connection.
    pub fn abort_clients(&self) {
        for client in self.inner.live_clients() {
            client.abort();
        }
    }

    /// The addresses the server listens on (with the real port when 0 was
    /// asked for).
    pub fn sockets(&self) -> Vec<SocketAddr> {
        self.inner
            .listeners
            .borrow()
            .iter()
            .map(|l| l.addr)
            .collect()
    }

    /// The number of live connections.
    pub fn active_connections(&self) -> usize {
        self.inner.clients.borrow().len()
    }

    /// The loop the server runs on.
    pub fn get_loop(&self) -> EventLoop {
        self.inner.ev.clone()
    }
}

/// Closes the server if `serve_forever` is dropped before it returned.
struct CloseOnDrop<'a> {
    server: &'a Server,
    armed: bool,
}

impl Drop for CloseOnDrop<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.server.close();
        }
    }
}

struct ResetServing(Rc<ServerInner>);

impl Drop for ResetServing {
    fn drop(&mut self) {
        self.0.serving_forever.set(false);
        self.0.forever.borrow_mut().take();
    }
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("sockets", &self.sockets())
            .field("serving", &self.is_serving())
            .field("connections", &self.active_connections())
            .finish()
    }
}

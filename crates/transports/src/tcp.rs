//! The TCP transport's engine (asyncio's `_SelectorSocketTransport`).
//!
//! # Lifecycle
//!
//! Created → `connection_made` (scheduled with `call_soon`, so it runs in
//! the next iteration) → reads and writes → close / abort / EOF / error →
//! `connection_lost` (scheduled with `call_soon`) → socket deregistered and
//! closed, protocol dropped.
//!
//! # Invariants
//!
//! 1. The socket is registered once, edge-triggered, for reading and
//!    writing; no `epoll_ctl` happens on the read or write path.
//! 2. Reads: up to [`READS_PER_WAKEUP`] reads of up to 256 KiB per event,
//!    into one buffer shared by every transport of the loop (a
//!    `BufferedProtocol` reads into its own buffer, a
//!    `StreamReaderProtocol` into its reader's, small messages too once a
//!    read left a spare chunk: see [`protocol_sink`](crate::protocol_sink)). A short read means the
//!    socket is drained (edge-triggered contract), unless the event also
//!    said the peer closed, in which case reading goes on to see the EOF. A
//!    full budget reschedules the source for the next iteration.
//! 3. Writes: `write` sends at once when nothing is buffered and keeps only
//!    what the socket did not take; the buffer is flushed with vectored
//!    sends on writable events. Every send uses `MSG_NOSIGNAL`: a peer reset
//!    is an error value, never a `SIGPIPE`.
//! 4. The protocol is never re-entered (see [`protocol`](crate::protocol)):
//!    `pause_writing` / `resume_writing` that cannot be delivered now are
//!    queued in `deferred` and delivered after the running callback.
//! 5. `connection_lost` is called exactly once, and only if
//!    `connection_made` was; nothing is called after it.
//! 6. A panic in a protocol method is reported to the exception handler and
//!    closes this connection only. A protocol's destructor is guarded too:
//!    teardown drops the protocol last, after the server forgot the
//!    connection, and a protocol replaced by `set_protocol` is dropped in a
//!    loop callback, never in the middle of a read.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::panic::{self, AssertUnwindSafe};
use std::rc::{Rc, Weak};

use loop_core::{EventLoop, ExceptionContext, Interest, Readiness, SourceHandler, SourceId};
use mio::net::TcpStream;
use rustix::net::{SendFlags, send, sendmsg};

use crate::constants::{
    LOG_THRESHOLD_FOR_CONNLOST_WRITES, MAX_IOVECS, MAX_READ_SIZE, READS_PER_WAKEUP,
};
use crate::flow_control::WriteLimits;
use crate::protocol_sink::{Panicked, ProtocolSink, ReadOutcome};
use crate::read_buffer::{SharedRef, shared_read_buffer};
use crate::transport::Transport;
use crate::write_buffer::WriteBuffer;

/// A flow-control callback waiting for the protocol to be free.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FlowEvent {
    Pause,
    Resume,
}

#[derive(Default)]
struct TcpState {
    buffer: WriteBuffer,
    limits: WriteLimits,
    closing: bool,
    eof_requested: bool,
    eof_written: bool,
    read_eof: bool,
    /// An event said the peer closed (kept: see `read_ready`).
    peer_closed: bool,
    paused_reading: bool,
    protocol_paused: bool,
    made: bool,
    lost: bool,
    conn_lost: usize,
}

/// Called once the transport is gone (a server forgets its client).
pub(crate) type OnClosed = Box<dyn FnOnce()>;

/// Called once `connection_made` ran, or with the error that came first.
pub(crate) type OnMade = Box<dyn FnOnce(io::Result<()>)>;

/// A write refused because `write_eof` was called (asyncio's
/// `RuntimeError('Cannot call write() after write_eof()')`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WriteAfterEof;

impl WriteAfterEof {
    /// asyncio's message for `write`.
    pub(crate) const WRITE: &'static str = "Cannot call write() after write_eof()";
    /// asyncio's message for `writelines`.
    pub(crate) const WRITELINES: &'static str = "Cannot call writelines() after write_eof()";
}

pub(crate) struct TcpInner {
    ev: EventLoop,
    sock: RefCell<Option<TcpStream>>,
    source: Cell<Option<SourceId>>,
    protocol: RefCell<Option<Rc<dyn ProtocolSink>>>,
    state: RefCell<TcpState>,
    deferred: RefCell<VecDeque<FlowEvent>>,
    /// A retry of `deferred` is scheduled (see [`TcpInner::retry_flow`]).
    flow_retry: Cell<bool>,
    peer: Option<SocketAddr>,
    local: Option<SocketAddr>,
    on_made: RefCell<Option<OnMade>>,
    on_closed: RefCell<Option<OnClosed>>,
    read_buffer: SharedRef,
    /// The next run of the read path makes a receive a stream read owes
    /// (see [`read_now`](Self::read_now)): set by `read_now`, or kept for
    /// the next iteration when the read path was busy.
    owed_read: Cell<bool>,
}

impl TcpInner {
    /// Wraps a connected, non-blocking socket; schedules `connection_made`.
    pub(crate) fn start(
        ev: &EventLoop,
        sock: TcpStream,
        protocol: Rc<dyn ProtocolSink>,
        on_made: Option<OnMade>,
        on_closed: Option<OnClosed>,
    ) -> io::Result<Transport> {
        let peer = sock.peer_addr().ok();
        let local = sock.local_addr().ok();
        let inner = Rc::new(TcpInner {
            ev: ev.clone(),
            sock: RefCell::new(Some(sock)),
            source: Cell::new(None),
            protocol: RefCell::new(Some(protocol)),
            state: RefCell::new(TcpState::default()),
            deferred: RefCell::new(VecDeque::new()),
            flow_retry: Cell::new(false),
            peer,
            local,
            on_made: RefCell::new(on_made),
            on_closed: RefCell::new(on_closed),
            read_buffer: shared_read_buffer(ev, MAX_READ_SIZE),
            owed_read: Cell::new(false),
        });
        let id = {
            let sock = inner.sock.borrow();
            let sock = sock.as_ref().expect("socket set above");
            ev.register_source(sock, Interest::READABLE | Interest::WRITABLE, inner.clone())
                .map_err(to_io)?
        };
        inner.source.set(Some(id));
        let transport = Transport {
            inner: inner.clone(),
        };
        let made = transport.clone();
        ev.call_soon(move |_| made.inner.deliver_connection_made(made.clone()))
            .map_err(to_io)?;
        Ok(transport)
    }

    pub(crate) fn event_loop(&self) -> &EventLoop {
        &self.ev
    }

    pub(crate) fn peer(&self) -> Option<SocketAddr> {
        self.peer
    }

    pub(crate) fn local(&self) -> Option<SocketAddr> {
        self.local
    }

    pub(crate) fn with_socket<R>(&self, f: impl FnOnce(Option<&TcpStream>) -> R) -> R {
        f(self.sock.borrow().as_ref())
    }

    fn sink(&self) -> Option<Rc<dyn ProtocolSink>> {
        self.protocol.borrow().clone()
    }

    pub(crate) fn protocol_any<R>(&self, f: impl FnOnce(&dyn std::any::Any) -> R) -> Option<R> {
        let sink = self.sink()?;
        Some(f(sink.as_any()))
    }

    pub(crate) fn set_protocol(&self, sink: Rc<dyn ProtocolSink>) {
        let old = self.protocol.replace(Some(sink));
        // The old protocol goes in a loop callback: called from one of its
        // own methods (data_received hands over), the read path holds it
        // until the method returns, and its destructor, if it panicked
        // there, would unwind out of the read between two rounds (a FIN
        // already seen never read). The callback runs guarded; a closed
        // loop refuses it and it is dropped here.
        if let Some(old) = old {
            let _ = self.ev.call_soon(move |_| drop(old));
        }
    }

    fn deliver_connection_made(self: &Rc<Self>, transport: Transport) {
        if self.state.borrow().lost {
            return;
        }
        let Some(sink) = self.sink() else { return };
        match sink.connection_made(transport.clone()) {
            Ok(true) => {
                self.state.borrow_mut().made = true;
                self.flush_deferred();
                if let Some(on_made) = self.on_made.take() {
                    on_made(Ok(()));
                }
                // Data may have arrived before the protocol was ready.
                if let Some(id) = self.source.get() {
                    self.ev.schedule_source(id, Readiness::READABLE);
                }
            }
            Ok(false) => {
                let _ = self
                    .ev
                    .call_soon(move |_| transport.inner.deliver_connection_made(transport.clone()));
            }
            Err(panic) => {
                // connection_made ran (and panicked): the protocol still
                // gets its connection_lost.
                self.state.borrow_mut().made = true;
                self.protocol_panicked(panic, "connection_made");
            }
        }
    }

    // ===== reading =====

    // Inlined into `on_ready`, the readable event's path (measured: a
    // call of its own there costs ~18 instructions per message since
    // `read_now` calls it too; plain `#[inline]` was not taken).
    //
    // `owed_read`: a deferred receive (`read_now`), made even if reading
    // was paused or the transport closed after the readable event; only
    // that first receive, the budget's later rounds stop as usual.
    #[inline(always)]
    fn read_ready(self: &Rc<Self>, readiness: Readiness) {
        let owed = self.owed_read.take();
        {
            let mut st = self.state.borrow_mut();
            // Edge-triggered: the peer's close may be reported by an event
            // we do not read on (paused, before connection_made) or be
            // dropped by a reschedule; remember it, or a later short read
            // would stop before the EOF and no new edge would come.
            if readiness.is_read_closed() {
                st.peer_closed = true;
            }
            let stopped = st.closing || st.paused_reading;
            if !st.made || (stopped && !owed) || st.read_eof || st.lost {
                return;
            }
        }
        let Ok(mut buf) = self.read_buffer.try_borrow_mut() else {
            self.reschedule_read_owing(owed);
            return;
        };
        for round in 0..READS_PER_WAKEUP {
            // Each round: data_received may have called set_protocol.
            let Some(sink) = self.sink() else { return };
            let outcome = {
                let sock = self.sock.borrow();
                let Some(sock) = sock.as_ref() else { return };
                sink.read(sock, &mut buf[..])
            };
            match outcome {
                ReadOutcome::Data { full } => {
                    self.flush_deferred();
                    let st = self.state.borrow();
                    if st.closing || st.paused_reading || st.lost {
                        return;
                    }
                    let peer_closed = st.peer_closed;
                    drop(st);
                    if !full && !peer_closed {
                        return;
                    }
                    if round + 1 == READS_PER_WAKEUP {
                        self.reschedule_read();
                    }
                }
                ReadOutcome::Eof => {
                    drop(buf);
                    self.eof_received();
                    return;
                }
                ReadOutcome::WouldBlock => return,
                ReadOutcome::Busy => {
                    self.reschedule_read_owing(owed && round == 0);
                    return;
                }
                ReadOutcome::Failed(err) => {
                    drop(buf);
                    self.fatal_error(err, "Fatal read error on socket transport");
                    return;
                }
                ReadOutcome::Misbehaved(err) => {
                    drop(buf);
                    self.protocol_failed(err, "Fatal error: protocol.get_buffer() call failed.");
                    return;
                }
                ReadOutcome::Panicked(panic) => {
                    drop(buf);
                    self.protocol_panicked(panic, "data_received");
                    return;
                }
            }
        }
    }

    /// Runs the read path now, from a reading task: the receive a
    /// [`StreamReader`](crate::StreamReader) deferred to its woken read (see
    /// the reader's module docs). What the readable event would have done
    /// then, also if the transport was closed or its reading paused since:
    /// asyncio's callback had received these bytes before that happened.
    pub(crate) fn read_now(self: &Rc<Self>) {
        self.owed_read.set(true);
        self.read_ready(Readiness::READABLE);
    }

    /// Runs the read path next iteration; `owed`: still making a receive
    /// that [`read_now`](Self::read_now) could not (the read path was busy).
    fn reschedule_read_owing(&self, owed: bool) {
        if owed {
            self.owed_read.set(true);
        }
        self.reschedule_read();
    }

    /// Whether `sock` is this transport's socket.
    pub(crate) fn reads_from(&self, sock: &TcpStream) -> bool {
        self.sock
            .borrow()
            .as_ref()
            .is_some_and(|own| own.as_raw_fd() == sock.as_raw_fd())
    }

    fn reschedule_read(&self) {
        if let Some(id) = self.source.get() {
            self.ev.schedule_source(id, Readiness::READABLE);
        }
    }

    fn eof_received(self: &Rc<Self>) {
        self.state.borrow_mut().read_eof = true;
        let Some(sink) = self.sink() else { return };
        match sink.eof_received() {
            Ok(Some(true)) => self.flush_deferred(),
            Ok(Some(false)) => {
                self.flush_deferred();
                self.close();
            }
            Ok(None) => {
                // Busy: try again next iteration.
                self.state.borrow_mut().read_eof = false;
                self.reschedule_read();
            }
            Err(panic) => self.protocol_panicked(panic, "eof_received"),
        }
    }

    pub(crate) fn pause_reading(&self) {
        self.state.borrow_mut().paused_reading = true;
    }

    pub(crate) fn resume_reading(&self) {
        let was_paused = std::mem::replace(&mut self.state.borrow_mut().paused_reading, false);
        if was_paused {
            self.reschedule_read();
        }
    }

    pub(crate) fn is_reading(&self) -> bool {
        let st = self.state.borrow();
        !st.paused_reading && !st.closing && !st.lost
    }

    // ===== writing =====

    /// Sends `data`, buffering what the socket does not take. Returns
    /// `Err(WriteAfterEof)` (nothing written) after `write_eof`; writes
    /// after the connection is lost are dropped and counted, as asyncio's.
    pub(crate) fn write(self: &Rc<Self>, data: &[u8]) -> Result<(), WriteAfterEof> {
        // The common case on its own path (an echo's every message):
        // nothing buffered and the transport open, so the bytes go to the
        // socket at once, and only what it does not take is buffered.
        let direct = {
            let st = self.state.borrow();
            st.buffer.is_empty()
                && !st.eof_requested
                && st.conn_lost == 0
                && !st.lost
                && !data.is_empty()
        };
        if !direct {
            return self.write_vectored(&[data]);
        }
        let sent = match self.send_one(data) {
            Ok(sent) => sent,
            Err(err) => {
                self.fatal_error(err, "Fatal write error on socket transport");
                return Ok(());
            }
        };
        if sent < data.len() {
            self.state.borrow_mut().buffer.push(&data[sent..]);
            self.maybe_pause_protocol();
        }
        Ok(())
    }

    /// [`write`](TcpInner::write) of several buffers, with one vectored
    /// send.
    pub(crate) fn write_vectored(self: &Rc<Self>, parts: &[&[u8]]) -> Result<(), WriteAfterEof> {
        let total: usize = parts.iter().map(|p| p.len()).sum();
        {
            let mut st = self.state.borrow_mut();
            if st.eof_requested {
                return Err(WriteAfterEof);
            }
            if st.conn_lost > 0 || st.lost {
                if st.conn_lost >= LOG_THRESHOLD_FOR_CONNLOST_WRITES {
                    tracing::warn!(target: "tulip", "socket.send() raised exception.");
                }
                st.conn_lost += 1;
                return Ok(());
            }
            if total == 0 {
                return Ok(());
            }
        }
        let mut sent = 0;
        if self.state.borrow().buffer.is_empty() {
            match self.send_parts(parts) {
                Ok(n) => sent = n,
                Err(err) => {
                    self.fatal_error(err, "Fatal write error on socket transport");
                    return Ok(());
                }
            }
        }
        if sent < total {
            let mut st = self.state.borrow_mut();
            let mut skip = sent;
            for part in parts {
                if skip >= part.len() {
                    skip -= part.len();
                    continue;
                }
                st.buffer.push(&part[skip..]);
                skip = 0;
            }
        }
        self.maybe_pause_protocol();
        Ok(())
    }

    /// Sends as much of `data` as the socket takes now.
    fn send_one(&self, data: &[u8]) -> io::Result<usize> {
        let sock = self.sock.borrow();
        match sock.as_ref() {
            Some(sock) => send_all(sock, data),
            None => Ok(0),
        }
    }

    /// Sends as much of `parts` as the socket takes now.
    fn send_parts(&self, parts: &[&[u8]]) -> io::Result<usize> {
        let sock = self.sock.borrow();
        let Some(sock) = sock.as_ref() else {
            return Ok(0);
        };
        if let [one] = parts {
            return send_all(sock, one);
        }
        let total: usize = parts.iter().map(|p| p.len()).sum();
        let mut sent = 0;
        while sent < total {
            let result = {
                // On the stack, as in `write_ready`: `writelines` allocates
                // nothing of its own.
                let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
                let mut count = 0;
                let mut skip = sent;
                for part in parts {
                    if skip >= part.len() {
                        skip -= part.len();
                        continue;
                    }
                    slices[count] = IoSlice::new(&part[skip..]);
                    count += 1;
                    skip = 0;
                    // More than IOV_MAX buffers is EMSGSIZE; the loop sends
                    // the rest.
                    if count == MAX_IOVECS {
                        break;
                    }
                }
                sendmsg(
                    sock,
                    &slices[..count],
                    &mut Default::default(),
                    SendFlags::NOSIGNAL,
                )
            };
            match result {
                Ok(n) => sent += n,
                Err(rustix::io::Errno::AGAIN) => break,
                Err(rustix::io::Errno::INTR) => continue,
                Err(err) => return Err(err.into()),
            }
        }
        Ok(sent)
    }

    fn write_ready(self: &Rc<Self>) {
        if self.state.borrow().buffer.is_empty() {
            return;
        }
        loop {
            let result = {
                let st = self.state.borrow();
                let sock = self.sock.borrow();
                let Some(sock) = sock.as_ref() else { return };
                let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
                let count = st.buffer.slices(&mut slices);
                sendmsg(
                    sock,
                    &slices[..count],
                    &mut Default::default(),
                    SendFlags::NOSIGNAL,
                )
            };
            match result {
                Ok(n) => {
                    let mut st = self.state.borrow_mut();
                    st.buffer.consume(n);
                    if st.buffer.is_empty() {
                        break;
                    }
                }
                Err(rustix::io::Errno::AGAIN) => break,
                Err(rustix::io::Errno::INTR) => continue,
                Err(err) => {
                    self.fatal_error(err.into(), "Fatal write error on socket transport");
                    return;
                }
            }
        }
        self.maybe_resume_protocol();
        let (empty, closing, eof) = {
            let st = self.state.borrow();
            (
                st.buffer.is_empty(),
                st.closing,
                st.eof_requested && !st.eof_written,
            )
        };
        if empty {
            if closing {
                self.schedule_connection_lost(None);
            } else if eof {
                self.shutdown_write();
            }
        }
    }

    fn shutdown_write(&self) {
        self.state.borrow_mut().eof_written = true;
        if let Some(sock) = self.sock.borrow().as_ref() {
            if let Err(err) = sock.shutdown(std::net::Shutdown::Write) {
                tracing::debug!(target: "tulip", %err, "shutdown(SHUT_WR) failed");
            }
        }
    }

    pub(crate) fn write_eof(&self) {
        let empty = {
            let mut st = self.state.borrow_mut();
            if st.closing || st.eof_requested {
                return;
            }
            st.eof_requested = true;
            st.buffer.is_empty()
        };
        if empty {
            self.shutdown_write();
        }
    }

    pub(crate) fn buffer_size(&self) -> usize {
        self.state.borrow().buffer.len()
    }

    pub(crate) fn limits(&self) -> WriteLimits {
        self.state.borrow().limits
    }

    pub(crate) fn set_limits(self: &Rc<Self>, limits: WriteLimits) {
        self.state.borrow_mut().limits = limits;
        self.maybe_pause_protocol();
    }

    fn maybe_pause_protocol(self: &Rc<Self>) {
        let pause = {
            let mut st = self.state.borrow_mut();
            if !st.protocol_paused && st.buffer.len() > st.limits.high {
                st.protocol_paused = true;
                true
            } else {
                false
            }
        };
        if pause {
            self.deliver_flow(FlowEvent::Pause);
        }
    }

    fn maybe_resume_protocol(self: &Rc<Self>) {
        let resume = {
            let mut st = self.state.borrow_mut();
            if st.protocol_paused && st.buffer.len() <= st.limits.low {
                st.protocol_paused = false;
                true
            } else {
                false
            }
        };
        if resume {
            self.deliver_flow(FlowEvent::Resume);
        }
    }

    /// Delivers a flow-control callback now, or after the running one.
    fn deliver_flow(self: &Rc<Self>, event: FlowEvent) {
        if !self.deferred.borrow().is_empty() {
            self.deferred.borrow_mut().push_back(event);
            return;
        }
        if self.call_flow(event) {
            // The callback may have queued another one (a write inside
            // resume_writing crossing the high-water mark again).
            self.flush_deferred();
        } else {
            self.deferred.borrow_mut().push_back(event);
            self.retry_flow();
        }
    }

    /// The protocol was busy: borrowed by the code that wrote, outside any
    /// protocol callback (`proto.borrow_mut().send(..)` from a task), so no
    /// callback's return will deliver the queued flow callbacks. They are
    /// retried next iteration (as `connection_lost` is), not left until the
    /// peer happens to send something. Before `connection_made` has
    /// returned nothing is scheduled: its return delivers them.
    fn retry_flow(self: &Rc<Self>) {
        if !self.state.borrow().made || self.flow_retry.replace(true) {
            return;
        }
        let this = self.clone();
        let scheduled = self.ev.call_soon(move |_| {
            this.flow_retry.set(false);
            this.flush_deferred();
        });
        if scheduled.is_err() {
            self.flow_retry.set(false);
        }
    }

    /// True if delivered (or no longer deliverable), false if busy (or
    /// `connection_made` has not returned yet: delivered after it).
    fn call_flow(self: &Rc<Self>, event: FlowEvent) -> bool {
        {
            let st = self.state.borrow();
            if st.lost {
                return true;
            }
            if !st.made {
                return false;
            }
        }
        let Some(sink) = self.sink() else { return true };
        let outcome = match event {
            FlowEvent::Pause => sink.pause_writing(),
            FlowEvent::Resume => sink.resume_writing(),
        };
        match outcome {
            Ok(delivered) => delivered,
            Err(panic) => {
                let what = if event == FlowEvent::Pause {
                    "pause_writing"
                } else {
                    "resume_writing"
                };
                self.protocol_panicked(panic, what);
                true
            }
        }
    }

    /// Delivers queued flow-control callbacks now that the protocol is free.
    fn flush_deferred(self: &Rc<Self>) {
        loop {
            let Some(event) = self.deferred.borrow_mut().pop_front() else {
                return;
            };
            if !self.call_flow(event) {
                self.deferred.borrow_mut().push_front(event);
                self.retry_flow();
                return;
            }
        }
    }

    // ===== closing =====

    pub(crate) fn is_closing(&self) -> bool {
        let st = self.state.borrow();
        st.closing || st.lost
    }

    pub(crate) fn close(self: &Rc<Self>) {
        let schedule = {
            let mut st = self.state.borrow_mut();
            if st.closing || st.lost {
                return;
            }
            st.closing = true;
            st.buffer.is_empty()
        };
        if schedule {
            self.schedule_connection_lost(None);
        }
    }

    pub(crate) fn abort(self: &Rc<Self>) {
        self.force_close(None);
    }

    fn force_close(self: &Rc<Self>, exc: Option<io::Error>) {
        {
            let mut st = self.state.borrow_mut();
            if st.conn_lost > 0 || st.lost {
                return;
            }
            st.buffer.clear();
            st.closing = true;
        }
        self.schedule_connection_lost(exc);
    }

    fn schedule_connection_lost(self: &Rc<Self>, exc: Option<io::Error>) {
        {
            let mut st = self.state.borrow_mut();
            if st.conn_lost > 0 || st.lost {
                return;
            }
            st.conn_lost += 1;
        }
        let this = self.clone();
        if self
            .ev
            .call_soon(move |_| this.call_connection_lost(exc))
            .is_err()
        {
            // The loop is closed: tear down without the protocol call.
            self.teardown();
        }
    }

    fn call_connection_lost(self: &Rc<Self>, exc: Option<io::Error>) {
        let made = {
            let st = self.state.borrow();
            if st.lost {
                return;
            }
            st.made
        };
        if let Some(on_made) = self.on_made.take() {
            let err = exc
                .as_ref()
                .map(|e| io::Error::new(e.kind(), e.to_string()))
                .unwrap_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::ConnectionAborted,
                        "connection lost before connection_made",
                    )
                });
            on_made(Err(err));
        }
        if made {
            if let Some(sink) = self.sink() {
                match sink.connection_lost(exc) {
                    Ok(Ok(())) => {}
                    Ok(Err(exc)) => {
                        // Busy: retry next iteration.
                        let this = self.clone();
                        if self
                            .ev
                            .call_soon(move |_| this.call_connection_lost(exc))
                            .is_ok()
                        {
                            return;
                        }
                    }
                    Err(panic) => self.report_panic(panic, "connection_lost"),
                }
            }
        }
        self.teardown();
    }

    /// Marks the connection lost, deregisters and closes the socket, drops
    /// the protocol (invariant 5).
    fn teardown(self: &Rc<Self>) {
        self.state.borrow_mut().lost = true;
        if let Some(id) = self.source.take() {
            self.ev.deregister_source(id);
        }
        let sock = self.sock.borrow_mut().take();
        drop(sock);
        let protocol = self.protocol.borrow_mut().take();
        self.deferred.borrow_mut().clear();
        if let Some(on_closed) = self.on_closed.take() {
            on_closed();
        }
        // Last, once the server has forgotten the connection: the
        // protocol's destructor is the user's code, and a panic in it is
        // reported, not let stop the bookkeeping above.
        if let Some(protocol) = protocol {
            if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(move || drop(protocol))) {
                let context = ExceptionContext::new("Protocol destructor panicked")
                    .with_panic(payload)
                    .with_extra("transport", format!("{:?}", self.peer));
                self.ev.call_exception_handler(context);
            }
        }
    }

    /// An OS error ends the connection: logged at debug level, not sent to
    /// the exception handler (asyncio's `_fatal_error` reports only errors
    /// that are not `OSError`s, and logs those in debug mode), and the
    /// protocol gets `connection_lost(err)`. Panics are reported (see
    /// [`protocol_panicked`](TcpInner::protocol_panicked)).
    fn fatal_error(self: &Rc<Self>, err: io::Error, message: &'static str) {
        tracing::debug!(target: "tulip", %err, peer = ?self.peer, "{message}");
        self.force_close(Some(err));
    }

    /// The protocol broke its contract: reported to the exception handler
    /// (asyncio's `_fatal_error` of a non-`OSError`), then the connection
    /// is closed with that error.
    fn protocol_failed(self: &Rc<Self>, err: io::Error, message: &'static str) {
        let context = ExceptionContext::new(message)
            .with_error(std::sync::Arc::new(io::Error::new(
                err.kind(),
                err.to_string(),
            )))
            .with_extra("transport", format!("{:?}", self.peer));
        self.ev.call_exception_handler(context);
        self.force_close(Some(err));
    }

    fn report_panic(&self, panic: Panicked, method: &'static str) {
        let context = ExceptionContext::new(format!("Protocol method {method}() panicked"))
            .with_panic(panic.0)
            .with_extra("transport", format!("{:?}", self.peer));
        self.ev.call_exception_handler(context);
    }

    fn protocol_panicked(self: &Rc<Self>, panic: Panicked, method: &'static str) {
        self.report_panic(panic, method);
        self.force_close(Some(io::Error::other(format!(
            "protocol {method}() panicked"
        ))));
    }

    /// Closes without calling the protocol again (server `abort_clients`
    /// uses `abort`; this is for a loop going away).
    pub(crate) fn downgrade(self: &Rc<Self>) -> Weak<TcpInner> {
        Rc::downgrade(self)
    }
}

impl SourceHandler for TcpInner {
    fn on_ready(self: Rc<Self>, _ev: &EventLoop, readiness: Readiness) {
        if readiness.is_writable() {
            self.write_ready();
        }
        if readiness.is_readable() {
            self.read_ready(readiness);
        }
    }
}

/// Sends as much of `data` as `sock` takes now (`MSG_NOSIGNAL`; `EINTR`
/// retried, `EAGAIN` ends it).
fn send_all(sock: &TcpStream, data: &[u8]) -> io::Result<usize> {
    let mut sent = 0;
    while sent < data.len() {
        match send(sock, &data[sent..], SendFlags::NOSIGNAL) {
            Ok(n) => sent += n,
            Err(rustix::io::Errno::AGAIN) => break,
            Err(rustix::io::Errno::INTR) => continue,
            Err(err) => return Err(err.into()),
        }
    }
    Ok(sent)
}

pub(crate) fn to_io(err: loop_core::LoopError) -> io::Error {
    match err {
        loop_core::LoopError::Io(err) => err,
        other => io::Error::other(other.to_string()),
    }
}

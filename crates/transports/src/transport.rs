//! [`Transport`]: the handle a protocol writes with (asyncio's
//! `transports.Transport`).

use std::cell::RefCell;
use std::fmt;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;

use loop_core::EventLoop;
use socket2::SockRef;

use crate::flow_control::{InvalidWriteLimits, WriteLimits};
use crate::protocol::{BufferedProtocol, Protocol};
use crate::protocol_sink::{BufferedSink, downcast_protocol, protocol_sink};
use crate::tcp::{TcpInner, WriteAfterEof};

/// One value of [`Transport::get_extra_info`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExtraInfo {
    /// An address (`"peername"`, `"sockname"`).
    Addr(SocketAddr),
    /// A file descriptor (`"socket"`: the raw fd; use
    /// [`Transport::with_socket`] for a typed handle).
    Fd(RawFd),
}

/// A TCP connection's write side and control handle.
///
/// Equivalent of [`asyncio.Transport`](https://docs.python.org/3/library/asyncio-protocol.html#transports).
/// Cloning gives another handle to the same connection; it is `!Send`.
///
/// * `write` sends at once and buffers only what the socket did not take;
///   past the high-water mark the protocol's `pause_writing` is called, and
///   `resume_writing` once the buffer drains to the low-water mark.
/// * `close` flushes the buffer, then calls `connection_lost(None)`;
///   `abort` drops the buffer and calls it at once (next iteration).
/// * Writes after the connection is lost are dropped (with a warning from
///   the 5th on, as asyncio does).
#[derive(Clone)]
pub struct Transport {
    pub(crate) inner: Rc<TcpInner>,
}

impl Transport {
    /// Sends `data`, buffering what the socket cannot take now.
    ///
    /// Equivalent of `transport.write`. After `write_eof` the data is
    /// dropped with a warning (asyncio raises `RuntimeError`;
    /// [`StreamWriter::write`](crate::StreamWriter::write) returns it).
    pub fn write(&self, data: &[u8]) {
        if self.inner.write(data).is_err() {
            warn_write_after_eof(WriteAfterEof::WRITE);
        }
    }

    /// Sends several buffers with one vectored send.
    pub fn writelines(&self, parts: &[&[u8]]) {
        if self.inner.write_vectored(parts).is_err() {
            warn_write_after_eof(WriteAfterEof::WRITELINES);
        }
    }

    /// Closes the write side once the buffer is flushed (half-close).
    pub fn write_eof(&self) {
        self.inner.write_eof();
    }

    /// True: TCP supports half-close.
    pub fn can_write_eof(&self) -> bool {
        true
    }

    /// Flushes the buffer, then closes; the protocol gets
    /// `connection_lost(None)`.
    pub fn close(&self) {
        self.inner.close();
    }

    /// Closes now, dropping buffered data; the protocol gets
    /// `connection_lost(None)` in the next iteration.
    pub fn abort(&self) {
        self.inner.abort();
    }

    /// True once closing or closed.
    pub fn is_closing(&self) -> bool {
        self.inner.is_closing()
    }

    /// Stops calling `data_received` until `resume_reading` (idempotent).
    pub fn pause_reading(&self) {
        self.inner.pause_reading();
    }

    /// Resumes `data_received` (idempotent).
    pub fn resume_reading(&self) {
        self.inner.resume_reading();
    }

    /// True while reading is neither paused nor stopped by closing.
    pub fn is_reading(&self) -> bool {
        self.inner.is_reading()
    }

    /// Sets the write-buffer water marks (asyncio's rules: given only
    /// `high`, low is high/4; given only `low`, high is 4 × low; neither:
    /// 64 KiB / 16 KiB).
    ///
    /// # Errors
    ///
    /// [`InvalidWriteLimits`] when `high < low`; the limits are unchanged.
    pub fn set_write_buffer_limits(
        &self,
        high: Option<usize>,
        low: Option<usize>,
    ) -> Result<(), InvalidWriteLimits> {
        let limits = WriteLimits::new(high, low)?;
        self.inner.set_limits(limits);
        Ok(())
    }

    /// The water marks as `(low, high)`, in asyncio's order.
    pub fn get_write_buffer_limits(&self) -> (usize, usize) {
        let limits = self.inner.limits();
        (limits.low, limits.high)
    }

    /// Bytes buffered and not yet sent.
    pub fn get_write_buffer_size(&self) -> usize {
        self.inner.buffer_size()
    }

    /// The peer's address.
    pub fn peername(&self) -> Option<SocketAddr> {
        self.inner.peer()
    }

    /// The local address.
    pub fn sockname(&self) -> Option<SocketAddr> {
        self.inner.local()
    }

    /// Calls `f` with the socket (for options through socket2), or `None`
    /// once the connection is closed.
    pub fn with_socket<R>(&self, f: impl FnOnce(Option<SockRef<'_>>) -> R) -> R {
        self.inner.with_socket(|sock| f(sock.map(SockRef::from)))
    }

    /// asyncio's string-keyed extra info: `"peername"`, `"sockname"`,
    /// `"socket"`; `None` for other keys.
    pub fn get_extra_info(&self, key: &str) -> Option<ExtraInfo> {
        match key {
            "peername" => self.peername().map(ExtraInfo::Addr),
            "sockname" => self.sockname().map(ExtraInfo::Addr),
            "socket" => self
                .inner
                .with_socket(|s| s.map(|s| ExtraInfo::Fd(s.as_raw_fd()))),
            _ => None,
        }
    }

    /// Replaces the protocol (asyncio's `set_protocol`). The old one is
    /// dropped in a loop callback of the next iteration (it may be the
    /// protocol whose method is calling this).
    pub fn set_protocol<P: Protocol>(&self, protocol: Rc<RefCell<P>>) {
        self.inner.set_protocol(protocol_sink(protocol));
    }

    /// Replaces the protocol with a buffered one.
    pub fn set_buffered_protocol<P: BufferedProtocol>(&self, protocol: Rc<RefCell<P>>) {
        self.inner.set_protocol(Rc::new(BufferedSink(protocol)));
    }

    /// The protocol, if it is a `P` (asyncio's `get_protocol`).
    pub fn get_protocol<P: Protocol>(&self) -> Option<Rc<RefCell<P>>> {
        self.inner.protocol_any(downcast_protocol::<P>).flatten()
    }

    /// The buffered protocol, if it is a `P`.
    pub fn get_buffered_protocol<P: BufferedProtocol>(&self) -> Option<Rc<RefCell<P>>> {
        self.inner
            .protocol_any(|any| any.downcast_ref::<BufferedSink<P>>().map(|s| s.0.clone()))
            .flatten()
    }

    /// The loop the transport runs on.
    pub fn get_loop(&self) -> EventLoop {
        self.inner.event_loop().clone()
    }

    /// True if both handles are the same connection.
    pub fn same_transport(&self, other: &Transport) -> bool {
        Rc::ptr_eq(&self.inner, &other.inner)
    }
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transport")
            .field("peer", &self.peername())
            .field("local", &self.sockname())
            .field("closing", &self.is_closing())
            .field("buffered", &self.get_write_buffer_size())
            .finish()
    }
}

/// A transport write after `write_eof`, which has no error to return.
#[cold]
fn warn_write_after_eof(message: &str) {
    tracing::warn!(target: "tulip", "{message}: data dropped");
}

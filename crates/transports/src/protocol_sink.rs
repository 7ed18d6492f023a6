//! The transport's side of a protocol: a type-erased, re-entrancy-safe cell.
//!
//! Invariants:
//! 1. Every call borrows the protocol with `try_borrow_mut`; a protocol that
//!    is already borrowed (its own callback is running, or user code holds
//!    it) is reported as [`Busy`](ReadOutcome::Busy) / `false`, never
//!    double-borrowed.
//! 2. A read borrows the protocol *before* the `recv`, so bytes taken from
//!    the kernel are always delivered in the same call.
//! 3. A panic in a protocol method is caught here and returned as
//!    [`Panicked`], so the transport closes only that connection.
//! 4. A [`StreamReaderProtocol`], however it is attached
//!    ([`protocol_sink`]: `create_connection`, `create_server`,
//!    `connect_accepted_socket`, `set_protocol`, and so the stream
//!    helpers), gets a [`ReaderSink`]: the `recv` goes into its reader's
//!    buffer (straight into a chunk; small messages into the spare chunk
//!    the last read left, or without one through the shared buffer into an
//!    exact copy; see `StreamReader::receive_with`),
//!    with the same wake-up and flow control as `feed_data`. Its other
//!    callbacks are the protocol's own, and `get_protocol` finds it as
//!    usual. Any other `Protocol` reads into the loop's shared buffer and
//!    gets `data_received`.

use std::any::Any;
use std::cell::RefCell;
use std::io::{self, Read};
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;

use mio::net::TcpStream;
use rustix::buffer::spare_capacity;
use rustix::net::{RecvFlags, recv};

use crate::protocol::{BaseProtocol, BufferedProtocol, Protocol};
use crate::streams::{Room, StreamReaderProtocol};
use crate::transport::Transport;

/// A protocol method panicked; carries the payload.
pub(crate) struct Panicked(pub(crate) Box<dyn Any + Send>);

/// What one read attempt did.
pub(crate) enum ReadOutcome {
    /// `n` bytes were delivered; `full` if the read filled the buffer.
    Data { full: bool },
    /// The peer closed its write side.
    Eof,
    /// Nothing to read.
    WouldBlock,
    /// The protocol is borrowed; nothing was read.
    Busy,
    /// The read failed (an OS error).
    Failed(io::Error),
    /// The protocol broke its contract (`get_buffer` returned an empty
    /// buffer): asyncio's non-`OSError` fatal error, reported.
    Misbehaved(io::Error),
    /// The protocol panicked.
    Panicked(Panicked),
}

fn guard<R>(f: impl FnOnce() -> R) -> Result<R, Panicked> {
    panic::catch_unwind(AssertUnwindSafe(f)).map_err(Panicked)
}

/// The protocol as the transport sees it.
pub(crate) trait ProtocolSink {
    fn connection_made(&self, transport: Transport) -> Result<bool, Panicked>;
    fn read(&self, sock: &TcpStream, shared: &mut [u8]) -> ReadOutcome;
    /// `None` if busy.
    fn eof_received(&self) -> Result<Option<bool>, Panicked>;
    /// Gives `exc` back if busy.
    fn connection_lost(
        &self,
        exc: Option<io::Error>,
    ) -> Result<Result<(), Option<io::Error>>, Panicked>;
    fn pause_writing(&self) -> Result<bool, Panicked>;
    fn resume_writing(&self) -> Result<bool, Panicked>;
    fn as_any(&self) -> &dyn Any;
}

pub(crate) struct StreamSink<P>(pub(crate) Rc<RefCell<P>>);
pub(crate) struct BufferedSink<P>(pub(crate) Rc<RefCell<P>>);
/// A [`StreamReaderProtocol`]: reads go straight into its reader's buffer.
pub(crate) struct ReaderSink(pub(crate) Rc<RefCell<StreamReaderProtocol>>);

/// The sink of a [`Protocol`]: a [`ReaderSink`] if it is a
/// [`StreamReaderProtocol`] (invariant 4), a [`StreamSink`] otherwise.
pub(crate) fn protocol_sink<P: Protocol>(protocol: Rc<RefCell<P>>) -> Rc<dyn ProtocolSink> {
    let any: Rc<dyn Any> = protocol.clone();
    match any.downcast::<RefCell<StreamReaderProtocol>>() {
        Ok(reader) => Rc::new(ReaderSink(reader)),
        Err(_) => Rc::new(StreamSink(protocol)),
    }
}

/// The protocol of a [`StreamSink`] or [`ReaderSink`], if it is a `P`.
pub(crate) fn downcast_protocol<P: Protocol>(sink: &dyn Any) -> Option<Rc<RefCell<P>>> {
    if let Some(sink) = sink.downcast_ref::<StreamSink<P>>() {
        return Some(sink.0.clone());
    }
    let reader: Rc<dyn Any> = sink.downcast_ref::<ReaderSink>()?.0.clone();
    reader.downcast::<RefCell<P>>().ok()
}

/// What one receive came to: 0 bytes is EOF, `WouldBlock` a drained
/// socket, any other error fatal; otherwise `data` decides, given the byte
/// count and what else the receive reported.
fn outcome<X>(
    received: io::Result<(usize, X)>,
    data: impl FnOnce(usize, X) -> ReadOutcome,
) -> ReadOutcome {
    match received {
        Ok((0, _)) => ReadOutcome::Eof,
        Ok((n, extra)) => data(n, extra),
        Err(err) if err.kind() == io::ErrorKind::WouldBlock => ReadOutcome::WouldBlock,
        Err(err) => ReadOutcome::Failed(err),
    }
}

fn read_into(sock: &TcpStream, buf: &mut [u8]) -> Result<usize, io::Error> {
    let mut reader: &TcpStream = sock;
    loop {
        match reader.read(buf) {
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// Receives into `buf`'s spare capacity (appending); 0 is EOF.
fn recv_spare(sock: &TcpStream, buf: &mut Vec<u8>) -> Result<usize, io::Error> {
    rustix::io::retry_on_intr(|| recv(sock, spare_capacity(&mut *buf), RecvFlags::empty()))
        .map(|(n, _)| n)
        .map_err(Into::into)
}

macro_rules! common_calls {
    () => {
        fn connection_made(&self, transport: Transport) -> Result<bool, Panicked> {
            let Ok(mut p) = self.0.try_borrow_mut() else {
                return Ok(false);
            };
            guard(|| p.connection_made(transport)).map(|()| true)
        }

        fn connection_lost(
            &self,
            exc: Option<io::Error>,
        ) -> Result<Result<(), Option<io::Error>>, Panicked> {
            let Ok(mut p) = self.0.try_borrow_mut() else {
                return Ok(Err(exc));
            };
            guard(|| p.connection_lost(exc)).map(Ok)
        }

        fn pause_writing(&self) -> Result<bool, Panicked> {
            let Ok(mut p) = self.0.try_borrow_mut() else {
                return Ok(false);
            };
            guard(|| p.pause_writing()).map(|()| true)
        }

        fn resume_writing(&self) -> Result<bool, Panicked> {
            let Ok(mut p) = self.0.try_borrow_mut() else {
                return Ok(false);
            };
            guard(|| p.resume_writing()).map(|()| true)
        }

        fn eof_received(&self) -> Result<Option<bool>, Panicked> {
            let Ok(mut p) = self.0.try_borrow_mut() else {
                return Ok(None);
            };
            guard(|| p.eof_received()).map(Some)
        }

        fn as_any(&self) -> &dyn Any {
            self
        }
    };
}

impl<P: Protocol> ProtocolSink for StreamSink<P> {
    common_calls!();

    fn read(&self, sock: &TcpStream, shared: &mut [u8]) -> ReadOutcome {
        let Ok(mut p) = self.0.try_borrow_mut() else {
            return ReadOutcome::Busy;
        };
        let received = read_into(sock, shared).map(|n| (n, ()));
        outcome(received, |n, ()| {
            match guard(|| p.data_received(&shared[..n])) {
                Ok(()) => ReadOutcome::Data {
                    full: n == shared.len(),
                },
                Err(panic) => ReadOutcome::Panicked(panic),
            }
        })
    }
}

impl<P: BufferedProtocol> ProtocolSink for BufferedSink<P> {
    common_calls!();

    fn read(&self, sock: &TcpStream, shared: &mut [u8]) -> ReadOutcome {
        let Ok(mut p) = self.0.try_borrow_mut() else {
            return ReadOutcome::Busy;
        };
        let hint = shared.len();
        let received = guard(|| {
            let buf = p.get_buffer(hint);
            if buf.is_empty() {
                return None;
            }
            let len = buf.len();
            Some(read_into(sock, buf).map(|n| (n, len)))
        });
        match received {
            Err(panic) => ReadOutcome::Panicked(panic),
            Ok(None) => {
                ReadOutcome::Misbehaved(io::Error::other("get_buffer() returned an empty buffer"))
            }
            Ok(Some(received)) => outcome(received, |n, len| match guard(|| p.buffer_updated(n)) {
                Ok(()) => ReadOutcome::Data { full: n == len },
                Err(panic) => ReadOutcome::Panicked(panic),
            }),
        }
    }
}

impl ProtocolSink for ReaderSink {
    common_calls!();

    fn read(&self, sock: &TcpStream, shared: &mut [u8]) -> ReadOutcome {
        let Ok(p) = self.0.try_borrow_mut() else {
            return ReadOutcome::Busy;
        };
        let Some(reader) = p.reader() else {
            // No reader any more: read and drop, as `data_received` would.
            let len = shared.len();
            let received = read_into(sock, shared).map(|n| (n, ()));
            return outcome(received, |n, ()| ReadOutcome::Data { full: n == len });
        };
        let recv = |room: Room<'_>| match room {
            Room::Spare(vec) => recv_spare(sock, vec),
            Room::Scratch(slice) => read_into(sock, slice),
        };
        // A receive is deferred only to the transport reading this socket
        // (not one of a protocol attached by `set_protocol`, which never
        // saw `connection_made`).
        let reading = || p.transport().filter(|t| t.inner.reads_from(sock)).cloned();
        match guard(|| reader.receive_with(shared, recv, reading)) {
            Err(panic) => ReadOutcome::Panicked(panic),
            Ok(received) => outcome(received, |_, full| ReadOutcome::Data { full }),
        }
    }
}

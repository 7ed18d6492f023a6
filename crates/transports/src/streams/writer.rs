//! [`StreamWriter`]: the write side of a stream (asyncio's
//! `StreamWriter`).
//!
//! Invariants:
//! 1. `drain` waits only while the transport has paused the protocol
//!    (write buffer over the high-water mark); it returns at once otherwise.
//! 2. When the transport is closing, `drain` first yields one loop
//!    iteration so `connection_lost` can run, then reports the lost
//!    connection as an error (python/asyncio#263).
//! 3. The opt-in cap ([`set_buffer_cap`](StreamWriter::set_buffer_cap))
//!    refuses a write that would take the transport's buffer past it,
//!    instead of letting it grow without bound (cpython#116279). Off by
//!    default.

use std::cell::RefCell;
use std::fmt;
use std::io;

use loop_futures::{Error, EventLoopExt, Future, yield_now};

use super::protocol::{Flow, closed_future};
use super::reader::StreamReader;
use super::write_data::WriteData;
use crate::transport::{ExtraInfo, Transport};

/// The write side of a stream.
///
/// Equivalent of [`asyncio.StreamWriter`](https://docs.python.org/3/library/asyncio-stream.html#streamwriter).
#[derive(Clone)]
pub struct StreamWriter {
    transport: Transport,
    /// The connection's reader: its exception for `drain`, and the
    /// connection's [`Flow`] it holds.
    reader: StreamReader,
}

/// A write refused by the writer's buffer cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufferCapExceeded {
    /// Bytes already buffered.
    pub buffered: usize,
    /// Bytes the write wanted to add.
    pub requested: usize,
    /// The cap.
    pub cap: usize,
}

impl fmt::Display for BufferCapExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "write of {} bytes refused: {} already buffered, cap {}",
            self.requested, self.buffered, self.cap
        )
    }
}

impl std::error::Error for BufferCapExceeded {}

impl StreamWriter {
    pub(crate) fn new(transport: Transport, reader: StreamReader) -> Self {
        StreamWriter { transport, reader }
    }

    fn flow(&self) -> &RefCell<Flow> {
        self.reader.flow()
    }

    /// The transport underneath.
    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// Refuse writes that would take the write buffer past `cap` bytes
    /// (`None`: no cap, the default).
    pub fn set_buffer_cap(&self, cap: Option<usize>) {
        self.flow().borrow_mut().write_cap = cap;
    }

    #[inline]
    fn check_cap(&self, requested: usize) -> Result<(), Error> {
        let cap = self.flow().borrow().write_cap;
        if let Some(cap) = cap {
            let buffered = self.transport.get_write_buffer_size();
            if buffered + requested > cap {
                return Err(Error::new(BufferCapExceeded {
                    buffered,
                    requested,
                    cap,
                }));
            }
        }
        Ok(())
    }

    /// Writes `data` (see [`Transport::write`]); follow with
    /// [`drain`](StreamWriter::drain) to respect flow control.
    ///
    /// `data` is borrowed bytes or an owned vector (see [`WriteData`]). An
    /// owned vector, once its bytes are sent or buffered, is offered to the
    /// connection's reader for its next receive: `writer.write(chunk)` of a
    /// chunk `read` returned spares the reader an allocation (and the chunk
    /// a free) per message.
    ///
    /// # Errors
    ///
    /// [`BufferCapExceeded`] when a cap is set and would be passed (nothing
    /// is written; an owned vector is consumed all the same).
    pub fn write(&self, data: impl WriteData) -> Result<(), Error> {
        let bytes = data.bytes();
        let result = self.check_cap(bytes.len());
        if result.is_ok() {
            self.transport.write(bytes);
        }
        if let Some(chunk) = data.into_vec() {
            self.reader.give_back(chunk);
        }
        result
    }

    /// Writes several buffers with one vectored send.
    ///
    /// # Errors
    ///
    /// As [`write`](StreamWriter::write).
    pub fn writelines(&self, parts: &[&[u8]]) -> Result<(), Error> {
        self.check_cap(parts.iter().map(|p| p.len()).sum())?;
        self.transport.writelines(parts);
        Ok(())
    }

    /// Closes the write side after the buffer is flushed.
    pub fn write_eof(&self) {
        self.transport.write_eof();
    }

    /// True: TCP supports half-close.
    pub fn can_write_eof(&self) -> bool {
        self.transport.can_write_eof()
    }

    /// Closes the stream (the buffer is flushed first).
    pub fn close(&self) {
        self.transport.close();
    }

    /// True once closing or closed.
    pub fn is_closing(&self) -> bool {
        self.transport.is_closing()
    }

    /// Resolves when the connection is closed (with its error, if any).
    pub fn wait_closed(&self) -> Future<()> {
        closed_future(self.flow(), &self.transport.get_loop())
    }

    /// A typed piece of connection info (see [`Transport::get_extra_info`]).
    pub fn get_extra_info(&self, key: &str) -> Option<ExtraInfo> {
        self.transport.get_extra_info(key)
    }

    /// Waits until the write buffer is below the high-water mark.
    ///
    /// # Errors
    ///
    /// The reader's exception; `ConnectionReset` ("Connection lost") once
    /// the connection is gone; cancellation.
    pub async fn drain(&self) -> Result<(), Error> {
        if let Some(err) = self.reader.exception() {
            return Err(err);
        }
        if self.transport.is_closing() {
            // Let connection_lost run first (python/asyncio#263).
            yield_now().await?;
        }
        let waiter = {
            let mut flow = self.flow().borrow_mut();
            if flow.connection_lost {
                let kind = flow.lost_error.unwrap_or(io::ErrorKind::ConnectionReset);
                return Err(Error::new(io::Error::new(kind, "Connection lost")));
            }
            if !flow.paused {
                return Ok(());
            }
            let waiter: Future<()> = self.transport.get_loop().create_future();
            flow.drain_waiters.push_back(waiter.clone());
            waiter
        };
        // About to suspend with a chunk the reader handed over most likely
        // still held (a borrowed write): its replacement is made now, in
        // the task, not by a receive in the transport's callback.
        self.reader.settle();
        waiter.await
    }
}

impl fmt::Debug for StreamWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamWriter")
            .field("transport", &self.transport)
            .finish()
    }
}

//! [`StreamWriter`]: the write side of a stream (asyncio's
//! `StreamWriter`).
//!
//! Invariants:
//! 1. `drain` waits only while the transport has paused the protocol
//!    (write buffer over the high-water mark); it returns at once otherwise.
//! 2. When the transport is closing, `drain` first yields one loop
//!    iteration so `connection_lost` can run, then reports the lost
//!    connection as an error (python/asyncio#263).
//! 3. A `drain`'s waiter leaves the connection's list when the drain
//!    ends, however it ends (woken, cancelled, dropped).
//! 4. `write` and `writelines` after `write_eof` write nothing and return
//!    asyncio's `RuntimeError`.
//! 5. The opt-in cap ([`set_buffer_cap`](StreamWriter::set_buffer_cap))
//!    refuses a write that would take the transport's buffer past it,
//!    instead of letting it grow without bound (cpython#116279). Off by
//!    default.

use std::cell::RefCell;
use std::fmt;
use std::io;

use loop_futures::{Error, EventLoopExt, Future, RuntimeError, yield_now};

use super::protocol::{Flow, closed_future};
use super::reader::StreamReader;
use super::write_data::WriteData;
use crate::tcp::WriteAfterEof;
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
    /// [`BufferCapExceeded`] when a cap is set and would be passed;
    /// `Error::Runtime` ("Cannot call write() after write_eof()") after
    /// [`write_eof`](StreamWriter::write_eof). Nothing is written either
    /// way; an owned vector is consumed all the same. Writes after the
    /// connection is lost are dropped without an error, as asyncio's
    /// (`drain` reports the loss).
    pub fn write(&self, data: impl WriteData) -> Result<(), Error> {
        let bytes = data.bytes();
        let mut result = self.check_cap(bytes.len());
        if result.is_ok() && self.transport.inner.write(bytes).is_err() {
            result = Err(after_eof(WriteAfterEof::WRITE));
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
        self.transport
            .inner
            .write_vectored(parts)
            .map_err(|WriteAfterEof| after_eof(WriteAfterEof::WRITELINES))
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
    /// The reader's exception; the connection's error if it is lost with
    /// one while this waits; `ConnectionReset` ("Connection lost") once the
    /// connection is gone, also after a loss without an error while this
    /// waits (asyncio returns there: the bytes waited on were not sent);
    /// cancellation.
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
                // Lost with an error, the reader's exception (that error)
                // was returned above; without one, asyncio's error.
                return Err(Error::new(io::Error::new(
                    io::ErrorKind::ConnectionReset,
                    "Connection lost",
                )));
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
        wait_drained(self.flow(), waiter).await
    }
}

/// The waiting part of `drain`, out of its fast path (most drains do not
/// wait): awaits `waiter`, listed in `flow` until it ends.
async fn wait_drained(flow: &RefCell<Flow>, waiter: Future<()>) -> Result<(), Error> {
    let _listed = DrainWaiter {
        flow,
        waiter: &waiter,
    };
    waiter.clone().await
}

/// A `drain`'s waiter in the connection's list: removed when the drain
/// ends, also cancelled or dropped before the wake (asyncio's `finally:
/// self._drain_waiters.remove(waiter)`), so a drain retried under a
/// timeout while the peer stalls does not grow the list.
struct DrainWaiter<'a> {
    flow: &'a RefCell<Flow>,
    waiter: &'a Future<()>,
}

impl Drop for DrainWaiter<'_> {
    fn drop(&mut self) {
        if let Ok(mut flow) = self.flow.try_borrow_mut() {
            flow.drain_waiters.retain(|w| !w.same_future(self.waiter));
        }
    }
}

/// asyncio's `RuntimeError` for a write after `write_eof`.
#[cold]
fn after_eof(message: &str) -> Error {
    RuntimeError::new(message).into()
}

impl fmt::Debug for StreamWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamWriter")
            .field("transport", &self.transport)
            .finish()
    }
}

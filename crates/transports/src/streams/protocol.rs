//! [`StreamReaderProtocol`]: the protocol between a transport and a
//! stream reader/writer pair (asyncio's `StreamReaderProtocol` +
//! `FlowControlMixin`).
//!
//! Invariants:
//! 1. Data and EOF go to the reader; an error on the connection goes, as
//!    it came (the same `io::Error`, shared), to the reader as its
//!    exception, to every `drain` waiter and to the `closed` future.
//! 2. `pause_writing` blocks `drain`; `resume_writing` and the connection's
//!    end wake *every* drain waiter (two tasks may drain at once,
//!    cpython#74116): `resume_writing` with `Ok`, the connection's end with
//!    its error, or `ConnectionReset` ("Connection lost") for an end
//!    without one (asyncio returns normally there: see
//!    `docs/asyncio-mapping.md`, "drain reports a closed connection").
//! 3. The writer's `closed` future resolves when the connection is lost
//!    (with its error, pre-marked as retrieved so an unawaited
//!    `wait_closed` never logs).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;
use std::rc::Rc;

use loop_core::{EventLoop, ExceptionContext, LoopError};
use loop_futures::{Error, EventLoopExt, Future, Task};

use super::reader::StreamReader;
use super::writer::StreamWriter;
use crate::protocol::{BaseProtocol, Protocol};
use crate::transport::Transport;

/// Called with each new client's reader and writer (and the loop); returns
/// the task it started to serve them, if it started one. The task is made
/// where the coroutine's type is known, so the coroutine lives in the
/// task's own allocation (not boxed beside it: one object less touched per
/// message).
pub(crate) type ClientConnected =
    Rc<dyn Fn(StreamReader, StreamWriter, &EventLoop) -> Option<Result<Task<()>, LoopError>>>;

/// Writer-side flow state of a connection, read by its writers' `write`
/// and `drain` and set by the protocol. It lives in the reader's
/// allocation (see [`StreamReader`]), the object a stream task touches
/// anyway, so a message's `drain` and the writer's cap check touch no
/// allocation of their own.
#[derive(Default)]
pub(crate) struct Flow {
    pub(crate) paused: bool,
    pub(crate) connection_lost: bool,
    /// The error the connection was lost with (`None`: lost without one,
    /// or not lost).
    pub(crate) lost_error: Option<Error>,
    pub(crate) drain_waiters: VecDeque<Future<()>>,
    pub(crate) closed: Option<Future<()>>,
    /// The writer's buffer cap (`StreamWriter::set_buffer_cap`), here so
    /// that a write and its drain touch one allocation.
    pub(crate) write_cap: Option<usize>,
}

/// The protocol of a stream connection.
pub struct StreamReaderProtocol {
    /// The reader fed, and the holder of the connection's [`Flow`];
    /// `None` once the connection is lost.
    reader: Option<StreamReader>,
    client_connected: Option<ClientConnected>,
    transport: Option<Transport>,
}

impl StreamReaderProtocol {
    /// A protocol feeding `reader` (asyncio's `StreamReaderProtocol`).
    ///
    /// A reader serves one connection: its writer-side flow state is kept
    /// with it (asyncio asserts the same in `StreamReader.set_transport`).
    pub fn new(reader: StreamReader) -> Self {
        Self::with_callback(reader, None)
    }

    pub(crate) fn with_callback(
        reader: StreamReader,
        client_connected: Option<ClientConnected>,
    ) -> Self {
        StreamReaderProtocol {
            reader: Some(reader),
            client_connected,
            transport: None,
        }
    }

    /// The reader this protocol feeds, until the connection is lost.
    pub(crate) fn reader(&self) -> Option<&StreamReader> {
        self.reader.as_ref()
    }

    /// The transport `connection_made` gave this protocol (`None` for a
    /// protocol attached with `set_protocol`).
    pub(crate) fn transport(&self) -> Option<&Transport> {
        self.transport.as_ref()
    }

    fn wake_drainers(flow: &RefCell<Flow>, error: Option<&Error>) {
        let waiters = std::mem::take(&mut flow.borrow_mut().drain_waiters);
        for waiter in waiters {
            if waiter.done() {
                continue;
            }
            let _ = match error {
                Some(err) => waiter.set_exception(err.clone()),
                None => waiter.set_result(()),
            };
        }
    }
}

/// Creates the `closed` future of a protocol's writers (once).
pub(crate) fn closed_future(flow: &RefCell<Flow>, ev: &EventLoop) -> Future<()> {
    let mut flow = flow.borrow_mut();
    if let Some(closed) = &flow.closed {
        return closed.clone();
    }
    let closed: Future<()> = ev.create_future();
    if flow.connection_lost {
        let _ = match &flow.lost_error {
            Some(err) => closed.set_exception(err.clone()),
            None => closed.set_result(()),
        };
        let _ = closed.exception();
    }
    flow.closed = Some(closed.clone());
    closed
}

impl BaseProtocol for StreamReaderProtocol {
    fn connection_made(&mut self, transport: Transport) {
        if let Some(reader) = &self.reader {
            reader.set_transport(transport.clone());
        }
        self.transport = Some(transport.clone());
        let Some(callback) = self.client_connected.clone() else {
            return;
        };
        let Some(reader) = self.reader.clone() else {
            return;
        };
        let writer = StreamWriter::new(transport.clone(), reader.clone());
        let ev = transport.get_loop();
        let Some(started) = callback(reader, writer, &ev) else {
            return;
        };
        match started {
            Ok(task) => {
                let t = transport.clone();
                task.add_done_callback(move |task| {
                    if task.cancelled() {
                        t.close();
                        return;
                    }
                    if let Ok(Some(err)) = task.exception() {
                        let context =
                            ExceptionContext::new("Unhandled exception in client_connected_cb")
                                .with_error(err.to_shared())
                                .with_extra("transport", format!("{t:?}"));
                        t.get_loop().call_exception_handler(context);
                        t.close();
                    }
                });
            }
            Err(err) => {
                tracing::warn!(target: "tulip", %err, "could not start the client_connected task");
                transport.close();
            }
        }
    }

    fn connection_lost(&mut self, exc: Option<io::Error>) {
        self.transport = None;
        let Some(reader) = self.reader.take() else {
            return;
        };
        // One shared error for the reader, the drainers and `closed`: the
        // OS error itself (its `raw_os_error` and message kept).
        let error = exc.map(Error::new);
        match &error {
            None => reader.feed_eof(),
            Some(err) => reader.set_exception(err.clone()),
        }
        let closed = {
            let mut flow = reader.flow().borrow_mut();
            flow.connection_lost = true;
            flow.lost_error.clone_from(&error);
            flow.closed.clone()
        };
        if let Some(closed) = closed {
            if !closed.done() {
                let _ = match &error {
                    Some(err) => closed.set_exception(err.clone()),
                    None => closed.set_result(()),
                };
                // Retrieved in advance: an unawaited wait_closed never logs.
                let _ = closed.exception();
            }
        }
        // Waiting drainers fail: with the connection's error, as asyncio's
        // FlowControlMixin, and without one still (asyncio returns there,
        // but the bytes they waited on were not sent).
        let lost = error.unwrap_or_else(|| {
            Error::new(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "Connection lost",
            ))
        });
        Self::wake_drainers(reader.flow(), Some(&lost));
    }

    fn pause_writing(&mut self) {
        if let Some(reader) = &self.reader {
            reader.flow().borrow_mut().paused = true;
        }
    }

    fn resume_writing(&mut self) {
        if let Some(reader) = &self.reader {
            reader.flow().borrow_mut().paused = false;
            Self::wake_drainers(reader.flow(), None);
        }
    }
}

impl Protocol for StreamReaderProtocol {
    fn data_received(&mut self, data: &[u8]) {
        if let Some(reader) = &self.reader {
            reader.feed_data(data);
        }
    }

    fn eof_received(&mut self) -> bool {
        if let Some(reader) = &self.reader {
            reader.feed_eof();
        }
        // Keep the write side open: the writer decides when to close.
        true
    }
}

impl std::fmt::Debug for StreamReaderProtocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("StreamReaderProtocol");
        match &self.reader {
            Some(reader) => {
                let flow = reader.flow().borrow();
                d.field("paused", &flow.paused)
                    .field("drain_waiters", &flow.drain_waiters.len())
                    .field("connection_lost", &flow.connection_lost)
            }
            None => d.field("connection_lost", &true),
        }
        .finish_non_exhaustive()
    }
}

//! [`StreamReader`]: a buffer fed by the protocol and read by coroutines.
//!
//! # Data path
//!
//! A connection whose protocol is a
//! [`StreamReaderProtocol`](super::StreamReaderProtocol) receives into the
//! reader's buffer ([`receive_with`](StreamReader::receive_with), called
//! by the transport instead of `data_received`): past small messages
//! straight into a chunk of the buffer (one copy, the kernel's), small
//! messages into the spare chunk the last read left, or, before any read,
//! through the loop's shared buffer into exact-size chunks. A
//! read that takes a whole chunk gets that chunk's vector, uncopied (see
//! the buffer's module docs). `feed_data` (a protocol fed by hand, or any
//! other caller) appends a copy. Both paths wake the waiter and apply flow
//! control identically.
//!
//! # Deferred receive
//!
//! Once the buffer's receive size has grown to 64 KiB (big messages or a
//! bulk transfer), a readable socket whose reader has a read waiting and
//! nothing buffered is not received from in the transport's callback:
//! [`receive_with`](StreamReader::receive_with) wakes the read and
//! records the receive as owed by the transport reading the socket (only
//! one whose `connection_made` gave the protocol to it: a protocol
//! attached by `set_protocol` never defers), and the woken read runs that
//! transport's read path itself (`TcpInner::read_now`) before it takes the
//! bytes; the owed receive is made even if the transport was closed or its
//! reading paused since (asyncio's callback had buffered the bytes before
//! that). The receive and whatever the coroutine does next with the
//! bytes (an echo's `send`) then touch the data back to back, while it is
//! still in the cache: with big messages, received an iteration before the
//! task runs, ten connections' worth of data had pushed it out (measured:
//! +8 % throughput at 10 × 100 KiB). The read still returns in the
//! iteration after the readiness, as asyncio's would; only `buffered()`
//! and `at_eof()` read by other code in between see the bytes (or the EOF)
//! later. A read cancelled or dropped between the wake and its receive
//! makes the receive as it goes (`WaitGuard`, which a [`StreamRead`]
//! dropped mid-wait also runs), for the next read, so no bytes wait in
//! the socket for an edge that will not come; a readable
//! event that comes while the receive is still owed (a woken read future
//! nobody polls) receives as usual. One divergence is left: a
//! `set_protocol` in that window sends the owed bytes to the new protocol,
//! where asyncio's old reader had them already. Smaller
//! messages are received at once (deferring them measured 2-5 % slower at
//! 1 KiB and 10 KiB: they stay cached anyway, and the read path's second
//! pass costs more than that saves).
//!
//! Invariants (asyncio's `StreamReader`):
//! 1. At most one coroutine waits for data at a time; a second one gets
//!    `Error::Runtime` ("… called while another coroutine is already waiting
//!    for incoming data").
//! 2. Flow control: when the buffer grows past `2 × limit` the transport's
//!    reading is paused; once a read brings it to `limit` or below, reading
//!    resumes. A reader about to wait always resumes reading first.
//! 3. Nothing hangs: once EOF was fed or an exception set, every read
//!    returns (the data left, an `IncompleteReadError`, or the exception).
//! 4. The results of every read method do not depend on how the incoming
//!    bytes were split into `feed_data` calls or receives.
//! 5. `deferred` names the transport only while a woken read owes it a
//!    receive; whoever clears it makes that receive happen: the read, or
//!    when the read is dropped its `WaitGuard` (a `StreamRead`'s `Drop`
//!    for `read`), now or through the transport's next read when its
//!    read path is busy, or a readable event that receives as usual.
//! 6. A read checks the exception before it waits, not after: a wait ended
//!    by data or EOF returns what it was woken for even if an exception
//!    was set since (asyncio's waiter had its result by then); a wait ended
//!    by `set_exception` (`State::wait_failed`) fails with that exception
//!    (the first, if another is set before the read runs). A woken read
//!    with nothing to take and an exception set fails rather than wait
//!    again (where asyncio's `readexactly` would wait on).

use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use loop_core::check_running_loop;
use loop_futures::{Error, RuntimeError, checkpoint_if_cancelled};

use super::DEFAULT_LIMIT;
use super::buffer::{Buffer, Room};
use super::errors::{IncompleteReadError, LimitOverrunError};
use super::iterate::{Chunks, Lines};
use super::protocol::Flow;
use crate::transport::Transport;

struct State {
    buffer: Buffer,
    eof: bool,
    exception: Option<Error>,
    /// The waiting read's task (asyncio's `_waiter` future; a waker is all
    /// it needs: see `WaitForData`). Taken by whoever wakes it.
    waiter: Option<Waker>,
    /// The last waiter, kept after its wake for the next wait to reuse
    /// (`Waker::clone_from` does not clone a waker that wakes the same
    /// task): a stream read waits once per message, and this spares each
    /// wait a reference-count increment and each wake a decrement, both
    /// atomic.
    idle_waker: Option<Waker>,
    transport: Option<Transport>,
    paused: bool,
    /// The socket is readable and the receive was left to the woken read:
    /// the transport it is owed to (see the module docs, "Deferred
    /// receive").
    deferred: Option<Transport>,
    /// The wait was ended by `set_exception` (asyncio's waiter got the
    /// exception, kept in `Inner::wait_error`): the woken read fails with
    /// it, also if another is set before it runs. A wait ended by data or
    /// EOF (asyncio's waiter got a result) returns what is buffered even
    /// if an exception was set after the wake.
    wait_failed: bool,
}

struct Inner {
    state: RefCell<State>,
    limit: usize,
    waiting: Cell<bool>,
    /// The writer-side flow state of the connection this reader serves
    /// (see [`Flow`]).
    flow: RefCell<Flow>,
    /// The exception that ended the wait, while `State::wait_failed` is
    /// set: out of the state every message touches, and boxed (it is
    /// rare; the reader, read once per message, grows by 8 bytes, not 24).
    wait_error: Cell<Option<Box<Error>>>,
}

/// Ends a wait for data, also when the waiting read is dropped before it
/// completes (`Task::abort`, a dropped future): asyncio's
/// `finally: self._waiter = None`. Without it the reader would refuse
/// every later wait as concurrent.
struct WaitGuard<'a>(&'a Inner);

impl Drop for WaitGuard<'_> {
    fn drop(&mut self) {
        self.0.waiting.set(false);
        // Woken for a deferred receive, then cancelled or dropped before
        // making it: make it now, for the next read (no new readiness edge
        // would come, and a close since must not lose the bytes asyncio's
        // callback had buffered).
        let owed = match self.0.state.try_borrow_mut() {
            Ok(mut st) => {
                let (owed, failed) = end_wait(self.0, &mut st);
                if failed {
                    // Nobody reads the exception that ended this wait.
                    self.0.wait_error.take();
                }
                owed
            }
            Err(_) => None,
        };
        if let Some(transport) = owed {
            transport.inner.read_now();
        }
    }
}

/// The read side of a stream.
///
/// Equivalent of [`asyncio.StreamReader`](https://docs.python.org/3/library/asyncio-stream.html#streamreader).
/// Cloning gives another handle to the same reader.
#[derive(Clone)]
pub struct StreamReader {
    inner: Rc<Inner>,
}

impl Default for StreamReader {
    fn default() -> Self {
        Self::new(DEFAULT_LIMIT)
    }
}

impl StreamReader {
    /// A reader with buffer limit `limit` (see the module docs; at least 1).
    pub fn new(limit: usize) -> Self {
        StreamReader {
            inner: Rc::new(Inner {
                state: RefCell::new(State {
                    buffer: Buffer::default(),
                    eof: false,
                    exception: None,
                    waiter: None,
                    idle_waker: None,
                    transport: None,
                    paused: false,
                    deferred: None,
                    wait_failed: false,
                }),
                limit: limit.max(1),
                waiting: Cell::new(false),
                flow: RefCell::new(Flow::default()),
                wait_error: Cell::new(None),
            }),
        }
    }

    /// The buffer limit.
    pub fn limit(&self) -> usize {
        self.inner.limit
    }

    /// Bytes buffered and not read yet.
    pub fn buffered(&self) -> usize {
        self.inner.state.borrow().buffer.len()
    }

    /// The writer-side flow state of the connection this reader serves.
    pub(crate) fn flow(&self) -> &RefCell<Flow> {
        &self.inner.flow
    }

    /// A chunk its user is done with, offered back to the buffer for the
    /// next receive (see `StreamWriter::write` of an owned vector); dropped
    /// if the buffer has no use for it.
    pub(crate) fn give_back(&self, chunk: Vec<u8>) {
        self.with_buffer(|buffer| buffer.give_back(chunk));
    }

    /// Makes the replacement the buffer owes for a chunk handed over (see
    /// the buffer's `settle`), here in the task, before it suspends
    /// elsewhere (`drain`): the receives that come meanwhile then do not
    /// allocate it in the transport's callback.
    pub(crate) fn settle(&self) {
        self.with_buffer(Buffer::settle);
    }

    /// Runs `f` on the buffer unless the state is borrowed already (a
    /// writer called back from inside the reader: then `f` is skipped,
    /// which only costs an allocation later).
    fn with_buffer(&self, f: impl FnOnce(&mut Buffer)) {
        if let Ok(mut st) = self.inner.state.try_borrow_mut() {
            f(&mut st.buffer);
        }
    }

    pub(crate) fn set_transport(&self, transport: Transport) {
        self.inner.state.borrow_mut().transport = Some(transport);
    }

    fn wake_waiter(&self) {
        let waiter = self.inner.state.borrow_mut().waiter.take();
        wake(&self.inner, waiter);
    }

    /// Adds received bytes (called by the protocol).
    pub fn feed_data(&self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        let (waiter, pause) = {
            let mut st = self.inner.state.borrow_mut();
            st.buffer.extend(data);
            (st.waiter.take(), self.check_pause(&mut st))
        };
        data_arrived(&self.inner, waiter, pause);
    }

    /// Receives straight into the buffer (the transport's path for a
    /// [`StreamReaderProtocol`](super::StreamReaderProtocol), instead of
    /// `data_received` of bytes read into the shared buffer): `recv` fills
    /// the [`Room`] it is given (a chunk's spare capacity, or `scratch`
    /// for small messages) and returns how many bytes it wrote (0 means
    /// EOF and changes nothing). Returns that count and whether the
    /// receive filled all the room it had. Arriving bytes act exactly as
    /// `feed_data` of them: the waiter is woken and reading paused past
    /// `2 × limit`.
    ///
    /// With big receives and a read waiting on an empty buffer, `recv` is
    /// not called: the read is woken to receive itself from the transport
    /// `reading` returns (the one reading this socket; with none, no
    /// deferral), and this returns `WouldBlock`, which stops the
    /// transport's reading for this wakeup, as a drained socket would (see
    /// the module docs, "Deferred receive"). A readable event that comes
    /// while a deferred receive is still owed receives as usual (the read
    /// then finds the bytes).
    ///
    /// # Errors
    ///
    /// `recv`'s error, the buffer unchanged; `WouldBlock` for a deferred
    /// receive.
    pub(crate) fn receive_with(
        &self,
        scratch: &mut [u8],
        recv: impl FnOnce(Room<'_>) -> io::Result<usize>,
        reading: impl FnOnce() -> Option<Transport>,
    ) -> io::Result<(usize, bool)> {
        let (n, full, waiter, pause) = {
            let mut st = self.inner.state.borrow_mut();
            if st.deferred.is_some() {
                // The woken read has not run yet (a peer's close, more
                // bytes, or a read future nobody polls): receive now.
                st.deferred = None;
            } else if st.waiter.is_some() && st.buffer.len() == 0 && st.buffer.receives_big() {
                if let Some(transport) = reading() {
                    st.deferred = Some(transport);
                    let waiter = st.waiter.take();
                    drop(st);
                    wake(&self.inner, waiter);
                    return Err(io::ErrorKind::WouldBlock.into());
                }
            }
            let (n, full) = st.buffer.receive(scratch, recv)?;
            if n == 0 {
                return Ok((0, full));
            }
            let pause = self.check_pause(&mut st);
            (n, full, st.waiter.take(), pause)
        };
        data_arrived(&self.inner, waiter, pause);
        Ok((n, full))
    }

    /// Past `2 × limit`: marks the reader paused and returns the transport
    /// to pause (after the state is released).
    fn check_pause(&self, st: &mut State) -> Option<Transport> {
        if !st.paused && st.buffer.len() > self.inner.limit.saturating_mul(2) {
            let transport = st.transport.clone();
            st.paused = transport.is_some();
            transport
        } else {
            None
        }
    }

    /// Marks the end of the stream (called by the protocol).
    pub fn feed_eof(&self) {
        self.inner.state.borrow_mut().eof = true;
        self.wake_waiter();
    }

    /// Makes the waiting read (if one waits) and every later read fail
    /// with `error`. A read already woken by data or EOF still returns
    /// what it was woken for, as asyncio's does (its waiter was resolved
    /// by then).
    pub fn set_exception(&self, error: impl Into<Error>) {
        let error = error.into();
        let waiter = {
            let mut st = self.inner.state.borrow_mut();
            let waiter = st.waiter.take();
            if waiter.is_some() {
                st.wait_failed = true;
                self.inner.wait_error.set(Some(Box::new(error.clone())));
            }
            st.exception = Some(error);
            waiter
        };
        wake(&self.inner, waiter);
    }

    /// The exception set with [`set_exception`](StreamReader::set_exception).
    pub fn exception(&self) -> Option<Error> {
        self.inner.state.borrow().exception.clone()
    }

    /// True once EOF was fed and the buffer is empty.
    pub fn at_eof(&self) -> bool {
        let st = self.inner.state.borrow();
        st.eof && st.buffer.len() == 0
    }

    fn maybe_resume_transport(&self) {
        let resume = check_resume(&self.inner, &mut self.inner.state.borrow_mut());
        if let Some(transport) = resume {
            transport.resume_reading();
        }
    }

    async fn wait_for_data(&self, func: &str) -> Result<(), Error> {
        if self.inner.waiting.get() {
            return Err(RuntimeError::new(format!(
                "{func}() called while another coroutine is already waiting for incoming data"
            ))
            .into());
        }
        let resume = {
            let mut st = self.inner.state.borrow_mut();
            if let Some(err) = &st.exception {
                return Err(err.clone());
            }
            if st.eof {
                return Ok(());
            }
            begin_wait(&mut st)?
        };
        if let Some(transport) = resume {
            transport.resume_reading();
        }
        self.inner.waiting.set(true);
        let _guard = WaitGuard(&self.inner);
        let deferred = WaitForData {
            inner: &self.inner,
            registered: false,
        }
        .await?;
        if let Some(transport) = deferred {
            transport.inner.read_now();
        }
        // Woken by data or EOF: the caller looks at the buffer (an
        // exception set since is for the next read, or for the next wait).
        Ok(())
    }

    /// Reads up to `n` bytes; with `n < 0`, everything until EOF. Returns
    /// an empty vector at EOF.
    ///
    /// The returned [`StreamRead`] future is the whole operation: it takes what
    /// is buffered, or waits for data (with the same rules as every other
    /// read: one waiter at a time, reading resumed before waiting) and then
    /// takes it.
    ///
    /// # Errors
    ///
    /// The reader's exception; a concurrent wait; cancellation.
    pub fn read(&self, n: isize) -> StreamRead<'_> {
        StreamRead {
            inner: &self.inner,
            n,
            registered: false,
            all: Vec::new(),
        }
    }

    /// Reads exactly `n` bytes.
    ///
    /// # Errors
    ///
    /// [`IncompleteReadError`] (with the partial bytes) if EOF comes first;
    /// the reader's exception; cancellation.
    pub async fn readexactly(&self, n: usize) -> Result<Vec<u8>, Error> {
        check_exception(&self.inner)?;
        if n == 0 {
            return Ok(Vec::new());
        }
        loop {
            let (have, eof) = {
                let st = self.inner.state.borrow();
                (st.buffer.len(), st.eof)
            };
            if have >= n {
                break;
            }
            if eof {
                let partial = self.inner.state.borrow_mut().buffer.take_all();
                return Err(Error::new(IncompleteReadError {
                    partial,
                    expected: Some(n),
                }));
            }
            self.wait_for_data("readexactly").await?;
        }
        let data = self.inner.state.borrow_mut().buffer.take(n);
        self.maybe_resume_transport();
        Ok(data)
    }

    /// Reads up to and including `separator`.
    ///
    /// # Errors
    ///
    /// [`LimitOverrunError`] if the separator is not within the limit (the
    /// data stays buffered); [`IncompleteReadError`] at EOF without it (the
    /// data is returned in `partial`); an empty separator.
    pub async fn readuntil(&self, separator: &[u8]) -> Result<Vec<u8>, Error> {
        self.readuntil_any(&[separator]).await
    }

    /// Reads up to and including whichever of `separators` ends first
    /// (asyncio 3.13's tuple form); when two end at the same byte, the
    /// shortest one is the match (it decides the limit check).
    ///
    /// # Errors
    ///
    /// As [`readuntil`](StreamReader::readuntil); an empty list of
    /// separators.
    pub async fn readuntil_any(&self, separators: &[&[u8]]) -> Result<Vec<u8>, Error> {
        if separators.is_empty() {
            return Err(Error::new(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "Separator should contain at least one element",
            )));
        }
        if separators.iter().any(|s| s.is_empty()) {
            return Err(Error::new(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "Separator should be at least one-byte string",
            )));
        }
        let min_len = separators.iter().map(|s| s.len()).min().unwrap_or(1);
        let max_len = separators.iter().map(|s| s.len()).max().unwrap_or(1);
        let limit = self.inner.limit;
        let mut offset = 0;
        // Checked once: after a wait the buffer is searched first (a wait
        // ended by the exception returned it already; a later one would).
        check_exception(&self.inner)?;
        let (start, end) = loop {
            {
                let mut st = self.inner.state.borrow_mut();
                let buflen = st.buffer.len();
                if buflen - offset.min(buflen) >= min_len {
                    let mut best: Option<(usize, usize)> = None;
                    for sep in separators {
                        if let Some(i) = st.buffer.find(sep, offset) {
                            let e = i + sep.len();
                            // The first end wins; at the same end, the
                            // shortest separator (asyncio sorts them by
                            // length), whatever the order given.
                            if best.is_none_or(|(bi, be)| e < be || (e == be && i > bi)) {
                                best = Some((i, e));
                            }
                        }
                    }
                    if let Some(found) = best {
                        break found;
                    }
                    offset = (buflen + 1).saturating_sub(max_len);
                    if offset > limit {
                        return Err(Error::new(LimitOverrunError {
                            message: "Separator is not found, and chunk exceed the limit".into(),
                            consumed: offset,
                        }));
                    }
                }
                if st.eof {
                    let partial = st.buffer.take_all();
                    drop(st);
                    return Err(Error::new(IncompleteReadError {
                        partial,
                        expected: None,
                    }));
                }
            }
            self.wait_for_data("readuntil").await?;
        };
        if start > limit {
            return Err(Error::new(LimitOverrunError {
                message: "Separator is found, but chunk is too long".into(),
                consumed: start,
            }));
        }
        let chunk = self.inner.state.borrow_mut().buffer.take(end);
        self.maybe_resume_transport();
        Ok(chunk)
    }

    /// Reads one line (up to and including `\n`); at EOF, what is left
    /// (possibly empty).
    ///
    /// # Errors
    ///
    /// A line longer than the limit (asyncio's `ValueError`; the line is
    /// dropped from the buffer); the reader's exception.
    pub async fn readline(&self) -> Result<Vec<u8>, Error> {
        match self.readuntil(b"\n").await {
            Ok(line) => Ok(line),
            Err(err) => {
                if let Some(incomplete) = err.downcast_ref::<IncompleteReadError>() {
                    return Ok(incomplete.partial.clone());
                }
                if let Some(overrun) = err.downcast_ref::<LimitOverrunError>() {
                    {
                        let mut st = self.inner.state.borrow_mut();
                        let consumed = overrun.consumed;
                        if st.buffer.byte_at(consumed) == Some(b'\n') {
                            st.buffer.consume(consumed + 1);
                        } else {
                            let all = st.buffer.len();
                            st.buffer.consume(all);
                        }
                    }
                    self.maybe_resume_transport();
                    return Err(Error::new(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        overrun.message.clone(),
                    )));
                }
                Err(err)
            }
        }
    }

    /// The lines of the stream, for `while let Some(line) = lines.next().await`
    /// (asyncio's `async for line in reader`).
    pub fn lines(&self) -> Lines {
        Lines::new(self.clone())
    }

    /// The stream in chunks of at most `n` bytes (each as [`read(n)`]
    /// returns it), for `while let Some(chunk) = chunks.next().await`.
    ///
    /// [`read(n)`]: StreamReader::read
    pub fn chunks(&self, n: usize) -> Chunks {
        Chunks::new(self.clone(), n)
    }
}

impl fmt::Debug for StreamReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.inner.state.borrow();
        f.debug_struct("StreamReader")
            .field("buffered", &st.buffer.len())
            .field("eof", &st.eof)
            .field("paused", &st.paused)
            .field("limit", &self.inner.limit)
            .finish()
    }
}

/// The future of [`StreamReader::read`].
///
/// One state machine for the whole read (the stream echo's hot path): a
/// pass takes the buffered bytes, or registers the task's waker as the
/// reader's waiter and returns `Pending`; the next poll after the wake
/// (the waker taken back by a feed, EOF, exception or deferred receive)
/// makes that deferred receive if it owes one and takes the bytes.
/// Dropped while waiting (`Task::abort`, a dropped future), it ends the
/// wait: a later read is not refused as concurrent, and a receive the
/// wake left to it is made for the next read, so no bytes are lost.
#[must_use = "futures do nothing unless awaited"]
pub struct StreamRead<'a> {
    inner: &'a Inner,
    /// Bytes asked for; below zero, everything until EOF.
    n: isize,
    /// This read is the reader's waiting one (`waiting` set, waker stored).
    registered: bool,
    /// Blocks gathered so far by a read until EOF.
    all: Vec<u8>,
}

impl StreamRead<'_> {
    /// One pass of a read of up to `n` bytes (`n > 0`).
    fn poll_some(&mut self, n: usize, cx: &mut Context<'_>) -> Poll<Result<Vec<u8>, Error>> {
        let inner = self.inner;
        // Woken by data or EOF, the bytes come before an exception set
        // since the wake (asyncio's read checks it only before waiting).
        let mut exception_first = true;
        if self.registered {
            let cancelled = checkpoint_if_cancelled();
            let (owed, failed) = {
                let mut st = inner.state.borrow_mut();
                if cancelled.is_ok() {
                    if let Some(waiter) = &mut st.waiter {
                        // Polled again without being woken: keep the newest
                        // waker.
                        waiter.clone_from(cx.waker());
                        return Poll::Pending;
                    }
                }
                // Woken or cancelled, the wait ends now (not when the
                // future is dropped, which may be later).
                end_wait(inner, &mut st)
            };
            self.registered = false;
            // A receive the wake left to this read: for this read, or, if
            // it was cancelled, for the next one.
            if let Some(transport) = owed {
                transport.inner.read_now();
            }
            let failed = if failed {
                inner.wait_error.take()
            } else {
                None
            };
            cancelled?;
            if let Some(err) = failed {
                return Poll::Ready(Err(*err));
            }
            exception_first = false;
        }
        let (resume, cancelled) = {
            let mut st = inner.state.borrow_mut();
            if let Some(err) = &st.exception {
                // Before a wait, or woken with nothing to take (no new wait
                // then).
                if exception_first || (st.buffer.len() == 0 && !st.eof) {
                    return Poll::Ready(Err(err.clone()));
                }
            }
            if st.buffer.len() > 0 || st.eof {
                let data = st.buffer.take(n);
                let resume = check_resume(inner, &mut st);
                drop(st);
                if let Some(transport) = resume {
                    transport.resume_reading();
                }
                return Poll::Ready(Ok(data));
            }
            if inner.waiting.get() {
                return Poll::Ready(Err(RuntimeError::new(
                    "read() called while another coroutine is already waiting for incoming data",
                )
                .into()));
            }
            let resume = begin_wait(&mut st)?;
            // A cancellation already requested is delivered here, at the
            // await that would suspend, as at every tulip await (the task
            // may have no wake left to come back with).
            let cancelled = checkpoint_if_cancelled();
            if cancelled.is_ok() {
                st.waiter = Some(reuse_waker(&mut st, cx));
                inner.waiting.set(true);
                self.registered = true;
            }
            (resume, cancelled)
        };
        if let Some(transport) = resume {
            transport.resume_reading();
        }
        match cancelled {
            Ok(()) => Poll::Pending,
            Err(cancelled) => Poll::Ready(Err(cancelled)),
        }
    }
}

impl Future for StreamRead<'_> {
    type Output = Result<Vec<u8>, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        if this.n > 0 {
            return this.poll_some(this.n as usize, cx);
        }
        if this.n == 0 {
            return Poll::Ready(check_exception(this.inner).map(|()| Vec::new()));
        }
        // Until EOF: blocks of `limit` bytes, gathered.
        loop {
            let block = std::task::ready!(this.poll_some(this.inner.limit, cx))?;
            if block.is_empty() {
                return Poll::Ready(Ok(std::mem::take(&mut this.all)));
            }
            if this.all.is_empty() {
                this.all = block;
            } else {
                this.all.extend_from_slice(&block);
            }
        }
    }
}

impl Drop for StreamRead<'_> {
    fn drop(&mut self) {
        if self.registered {
            drop(WaitGuard(self.inner));
        }
    }
}

impl fmt::Debug for StreamRead<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamRead")
            .field("n", &self.n)
            .field("waiting", &self.registered)
            .finish_non_exhaustive()
    }
}

/// Ends the wait for data (`waiting` cleared, no waiter) and returns the
/// transport a receive is owed to, if the wake left one to the read (the
/// caller makes it once the state is released: invariant 5), and whether
/// whether the exception ended it (`State::wait_failed`; the caller takes
/// `Inner::wait_error`).
fn end_wait(inner: &Inner, st: &mut State) -> (Option<Transport>, bool) {
    inner.waiting.set(false);
    st.waiter = None;
    (st.deferred.take(), std::mem::take(&mut st.wait_failed))
}

/// The reader's exception, if one was set.
fn check_exception(inner: &Inner) -> Result<(), Error> {
    match &inner.state.borrow().exception {
        Some(err) => Err(err.clone()),
        None => Ok(()),
    }
}

/// At or below `limit` while paused: marks the reader resumed and returns
/// the transport to resume (after the state is released).
fn check_resume(inner: &Inner, st: &mut State) -> Option<Transport> {
    if st.paused && st.buffer.len() <= inner.limit {
        st.paused = false;
        st.transport.clone()
    } else {
        None
    }
}

/// A wait for data is about to start: it needs a running loop (asyncio's
/// waiter is a future of the running loop; waiting without one is its
/// RuntimeError), the buffer makes the replacement it owes for a chunk
/// handed over (in the task, for the receive to come), and a paused
/// transport is marked resumed (invariant 2), returned to resume once the
/// state is released.
#[inline]
fn begin_wait(st: &mut State) -> Result<Option<Transport>, Error> {
    check_running_loop()?;
    st.buffer.settle();
    if st.paused {
        st.paused = false;
        Ok(st.transport.clone())
    } else {
        Ok(None)
    }
}

/// The waker a new wait registers: the idle one, updated to `cx`'s
/// (which does not clone when both wake the same task), or a clone.
// Always inline: every stream read's wait registers a waker, and the
// inliner outlined it when `poll_some` grew (+26 instructions per message).
#[inline(always)]
fn reuse_waker(st: &mut State, cx: &Context<'_>) -> Waker {
    match st.idle_waker.take() {
        Some(mut waker) => {
            waker.clone_from(cx.waker());
            waker
        }
        None => cx.waker().clone(),
    }
}

/// Wakes the reader's waiter, taken out of the state by the caller (the
/// state is not borrowed while the wake runs).
fn wake(inner: &Inner, waiter: Option<Waker>) {
    if let Some(waiter) = waiter {
        waiter.wake_by_ref();
        // Kept for the next wait (see `State::idle_waker`).
        if let Ok(mut st) = inner.state.try_borrow_mut() {
            st.idle_waker = Some(waiter);
        }
    }
}

/// One wait for data: registers the task's waker as the reader's waiter and
/// is ready once a feed, EOF, exception or deferred receive took it back
/// (with the transport to receive from, for the latter). No allocation: the
/// waker is the task's own (a reference count). Cancellation is delivered
/// as at every tulip await: `Task::cancel` wakes the task, and the next
/// poll returns `Err(Cancelled)` ([`checkpoint_if_cancelled`]), leaving
/// whatever arrived in the buffer (asyncio: the `CancelledError` from
/// `_wait_for_data`).
struct WaitForData<'a> {
    inner: &'a Inner,
    registered: bool,
}

impl Future for WaitForData<'_> {
    /// The transport to receive from when the wake deferred its receive.
    type Output = Result<Option<Transport>, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        checkpoint_if_cancelled()?;
        let mut st = self.inner.state.borrow_mut();
        if self.registered && st.waiter.is_none() {
            // Taken back by whoever woke us; a deferred receive is ours now
            // (in the same borrow: this is every stream read's path). The
            // exception's wake fails the wait (it defers no receive).
            if std::mem::take(&mut st.wait_failed) {
                if let Some(err) = self.inner.wait_error.take() {
                    return Poll::Ready(Err(*err));
                }
            }
            return Poll::Ready(Ok(st.deferred.take()));
        }
        match &mut st.waiter {
            // Polled again without being woken: keep the newest waker.
            Some(w) => w.clone_from(cx.waker()),
            None => st.waiter = Some(reuse_waker(&mut st, cx)),
        }
        drop(st);
        self.registered = true;
        Poll::Pending
    }
}

/// What arriving bytes do once the state is released: wake the waiter
/// (taken in the same borrow that stored the bytes), then pause the
/// transport if the buffer went past `2 × limit`.
fn data_arrived(inner: &Inner, waiter: Option<Waker>, pause: Option<Transport>) {
    wake(inner, waiter);
    if let Some(transport) = pause {
        transport.pause_reading();
    }
}

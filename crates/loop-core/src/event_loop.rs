//! [`EventLoop`]: asyncio's event loop on one thread.
//!
//! # One iteration (`run_once`, asyncio's `_run_once`)
//!
//! 1. **Timeout.** Zero if the ready queue is non-empty or the loop is
//!    stopping; otherwise until the earliest live timer; otherwise block.
//! 2. **Poll.** Wait in mio; turn each event into ready-queue entries:
//!    reader/writer callbacks, signal callbacks, callbacks and wakes sent
//!    from other threads.
//! 3. **Timers.** Move every timer with `when <= now` to the ready queue in
//!    `(when, seq)` order (never early: no clock-resolution slack).
//! 4. **Run.** Run exactly the entries that were ready at this point
//!    (`ntodo`); what they schedule runs next iteration. Cancelled entries
//!    are skipped.
//!
//! # Invariants
//!
//! 1. Everything here runs on the loop's thread: `EventLoop` is `!Send` and
//!    `!Sync` (it holds an `Rc`). Other threads go through [`Remote`].
//! 2. No `RefCell` of the loop is borrowed while user code runs, and no user
//!    value is dropped while one is borrowed: callbacks may call any loop
//!    method, including from destructors.
//! 3. A panic in a callback is caught at the run step and reported to the
//!    exception handler; the iteration continues with the next entry. So is
//!    a panic in the destructor of what the loop drops after it: the
//!    closure of a reader that removed itself, the context it ran in. A
//!    reported panic's payload whose destructor panics is logged and
//!    leaked, never unwound.
//! 4. After `close`, nothing can be scheduled (`LoopError::Closed`), and the
//!    poller, its fds, all registrations, pending callbacks and runnables
//!    have been released, also when a destructor or `on_loop_closed` of
//!    one of them panics (each is reported to the exception handler).
//! 5. A non-blocking iteration of a loop with no fd, source or signal
//!    registered skips the `epoll_wait` syscall: such a poll could only
//!    report the cross-thread waker, whose queue is checked with an atomic
//!    load instead. Ordering is unchanged (remote items are drained at the
//!    same point of the iteration); only the syscall is saved.

use std::any::{Any, TypeId};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::io;
use std::panic::{self, AssertUnwindSafe, Location};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Waker;
use std::time::{Duration, Instant};

use crate::builder::Builder;
use crate::clock::Clock;
use crate::context;
use crate::error::LoopError;
use crate::exception::{ExceptionContext, ExceptionHandler, default_exception_handler};
use crate::handle::{Callback, Handle, Slot, TimerHandle};
use crate::io::{Descriptor, IoRegistry, IoSide, unpack_token};
use crate::poller::{Poller, TIMER_TOKEN, WAKER_TOKEN, token_signal};
use crate::ready::{Ready, ReadyQueue};
use crate::remote::{Remote, RemoteItem, RemoteShared};
use crate::remote_queue::RemoteQueue;
use crate::runnable::{Runnable, RunnableId, RunnableSet};
use crate::signals::Signals;
use crate::slot_table::SlotTable;
use crate::source::{Readiness, SourceHandler, SourceId, SourceSet};

static NEXT_LOOP_ID: AtomicU64 = AtomicU64::new(1);

/// A single-threaded event loop with asyncio's semantics.
///
/// Equivalent of [`asyncio`'s event loop](https://docs.python.org/3/library/asyncio-eventloop.html).
/// `EventLoop` is a cheap-clone handle (clones are the same loop) and is
/// `!Send`: using it from another thread is a compile error, not a runtime
/// check. Use [`remote`](EventLoop::remote) for cross-thread scheduling.
///
/// # Ordering guarantees
///
/// * `call_soon` callbacks run in FIFO order.
/// * Timers run in `(deadline, scheduling order)` order, never before their
///   deadline.
/// * A callback scheduled while the loop runs callbacks runs in the *next*
///   iteration, after the loop has polled for I/O once.
///
/// # Examples
///
/// ```
/// use loop_core::EventLoop;
/// use std::cell::RefCell;
/// use std::rc::Rc;
///
/// let ev = EventLoop::new().unwrap();
/// let log = Rc::new(RefCell::new(Vec::new()));
/// for i in 0..3 {
///     let log = log.clone();
///     ev.call_soon(move |_| log.borrow_mut().push(i)).unwrap();
/// }
/// ev.call_soon(|ev| ev.stop()).unwrap();
/// ev.run_forever().unwrap();
/// assert_eq!(*log.borrow(), [0, 1, 2]);
/// ```
#[derive(Clone)]
pub struct EventLoop {
    pub(crate) inner: Rc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) id: u64,
    pub(crate) ready: RefCell<ReadyQueue>,
    slots: RefCell<SlotTable>,
    timers: RefCell<crate::timers::TimerQueue>,
    io: RefCell<IoRegistry>,
    runnables: RefCell<RunnableSet>,
    sources: RefCell<SourceSet>,
    signals: RefCell<Signals>,
    poller: RefCell<Option<Poller>>,
    remote: Arc<RemoteShared>,
    remote_buf: RefCell<Vec<RemoteItem>>,
    clock: Clock,
    /// The clock's time at creation: the origin of timer offsets.
    epoch: Instant,
    seq: Cell<u64>,
    io_version: Cell<u64>,
    running: Cell<bool>,
    stopping: Cell<bool>,
    closed: Cell<bool>,
    debug: Cell<bool>,
    slow_callback_duration: Cell<Duration>,
    exception_handler: RefCell<Option<ExceptionHandler>>,
    extensions: RefCell<HashMap<TypeId, Rc<dyn Any>>>,
}

/// Counts of what a loop holds, for tests and diagnostics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct LoopStats {
    /// Entries in the ready queue.
    pub ready: usize,
    /// Entries in the timer heap, cancelled ones not yet removed included.
    pub timers: usize,
    /// Cancelled entries still in the timer heap.
    pub cancelled_timers: usize,
    /// Callback slots (pending `call_soon` callbacks and timers).
    pub callbacks: usize,
    /// File descriptors with a reader or writer.
    pub io_registrations: usize,
    /// Spawned runnables (tasks) the loop owns.
    pub runnables: usize,
    /// Signals with a handler.
    pub signals: usize,
}

impl EventLoop {
    /// A new loop with default options (see [`Builder`]).
    ///
    /// Debug mode is on when the environment variable `TULIP_DEBUG` is set
    /// to a non-empty value other than `0`.
    ///
    /// # Errors
    ///
    /// The OS refused to create the poller (epoll, eventfd, timerfd).
    pub fn new() -> io::Result<EventLoop> {
        Builder::new().build()
    }

    /// A builder for a loop with options.
    pub fn builder() -> Builder {
        Builder::new()
    }

    pub(crate) fn from_builder(
        clock: Clock,
        debug: bool,
        events_capacity: usize,
        slow_callback_duration: Duration,
    ) -> io::Result<EventLoop> {
        let (poller, waker) = Poller::new(events_capacity)?;
        let id = NEXT_LOOP_ID.fetch_add(1, Ordering::Relaxed);
        let epoch = clock.now();
        let inner = Inner {
            id,
            ready: RefCell::new(ReadyQueue::new()),
            slots: RefCell::new(SlotTable::with_capacity(crate::constants::READY_CAPACITY)),
            timers: RefCell::new(crate::timers::TimerQueue::new(epoch)),
            io: RefCell::new(IoRegistry::new()),
            runnables: RefCell::new(RunnableSet::new()),
            sources: RefCell::new(SourceSet::default()),
            signals: RefCell::new(Signals::default()),
            poller: RefCell::new(Some(poller)),
            remote: Arc::new(RemoteShared {
                loop_id: id,
                queue: RemoteQueue::new(waker),
            }),
            remote_buf: RefCell::new(Vec::new()),
            clock,
            epoch,
            seq: Cell::new(0),
            io_version: Cell::new(0),
            running: Cell::new(false),
            stopping: Cell::new(false),
            closed: Cell::new(false),
            debug: Cell::new(debug),
            slow_callback_duration: Cell::new(slow_callback_duration),
            exception_handler: RefCell::new(None),
            extensions: RefCell::new(HashMap::new()),
        };
        Ok(EventLoop {
            inner: Rc::new(inner),
        })
    }

    // ===== running =====

    /// Runs the loop until [`stop`](EventLoop::stop) is called.
    ///
    /// Equivalent of [`loop.run_forever`](https://docs.python.org/3/library/asyncio-eventloop.html#asyncio.loop.run_forever).
    /// If `stop` was called before, the loop polls once without blocking,
    /// runs what is ready, and returns.
    ///
    /// # Errors
    ///
    /// * [`LoopError::Closed`] — the loop was closed;
    /// * [`LoopError::AlreadyRunning`] — called from inside this loop;
    /// * [`LoopError::AnotherLoopRunning`] — another loop runs on this thread;
    /// * [`LoopError::Io`] — polling failed (the loop stops; it can be run
    ///   again).
    pub fn run_forever(&self) -> Result<(), LoopError> {
        let _running = self.enter_running()?;
        loop {
            self.run_once_inner()?;
            if self.inner.stopping.get() {
                return Ok(());
            }
        }
    }

    /// Runs exactly one iteration (see the module docs), blocking in the
    /// poller if nothing is ready. Mostly for tests and for embedding the
    /// loop in another one.
    ///
    /// # Errors
    ///
    /// As [`run_forever`](EventLoop::run_forever).
    pub fn run_once(&self) -> Result<(), LoopError> {
        let _running = self.enter_running()?;
        self.run_once_inner()?;
        Ok(())
    }

    fn enter_running(&self) -> Result<RunningGuard<'_>, LoopError> {
        if self.inner.closed.get() {
            return Err(LoopError::Closed);
        }
        if self.inner.running.get() {
            return Err(LoopError::AlreadyRunning);
        }
        if context::running_id().is_some() {
            return Err(LoopError::AnotherLoopRunning);
        }
        let entered = context::enter(self);
        self.inner.running.set(true);
        Ok(RunningGuard {
            ev: self,
            _entered: entered,
        })
    }

    /// Asks the loop to stop: the current iteration finishes, then
    /// `run_forever` returns.
    ///
    /// Equivalent of [`loop.stop`](https://docs.python.org/3/library/asyncio-eventloop.html#asyncio.loop.stop).
    pub fn stop(&self) {
        self.inner.stopping.set(true);
    }

    /// True while `run_forever` / `run_once` is executing.
    pub fn is_running(&self) -> bool {
        self.inner.running.get()
    }

    /// True once [`close`](EventLoop::close) ran.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.get()
    }

    /// Closes the loop: pending callbacks and timers are dropped, every
    /// reader, writer and signal handler is removed, runnables still
    /// registered are told ([`Runnable::on_loop_closed`]) and released, the
    /// poller and its fds are closed, and [`Remote`]s start failing.
    /// Closing twice does nothing.
    ///
    /// Equivalent of [`loop.close`](https://docs.python.org/3/library/asyncio-eventloop.html#asyncio.loop.close).
    ///
    /// # Errors
    ///
    /// [`LoopError::CloseRunning`] if the loop is running.
    pub fn close(&self) -> Result<(), LoopError> {
        let inner = &*self.inner;
        if inner.running.get() {
            return Err(LoopError::CloseRunning);
        }
        if inner.closed.replace(true) {
            return Ok(());
        }
        tracing::debug!(target: "tulip", loop_id = inner.id, "closing the event loop");
        let (remote_items, notifier) = inner.remote.queue.close();
        inner.ready.borrow_mut().take_all();
        inner.timers.borrow_mut().clear();
        let slots = inner.slots.borrow_mut().take_all();
        let io_entries = {
            let poller = inner.poller.borrow();
            inner
                .io
                .borrow_mut()
                .clear(poller.as_ref().map(Poller::registry))
        };
        let source_handlers = {
            let poller = inner.poller.borrow();
            inner
                .sources
                .borrow_mut()
                .clear(poller.as_ref().map(Poller::registry))
        };
        let mut signal_callbacks = Vec::new();
        {
            let poller = inner.poller.borrow();
            let registry = poller.as_ref().map(Poller::registry);
            let mut signals = inner.signals.borrow_mut();
            for sig in signals.signals() {
                signal_callbacks.extend(signals.remove(registry, sig));
            }
        }
        let runnables = inner.runnables.borrow_mut().take_all();
        // The user's values go one at a time, each under `catch_unwind`: a
        // destructor (or `on_loop_closed`) that panics is reported and the
        // rest of the teardown still happens (invariant 4).
        drop(notifier);
        for item in remote_items {
            self.drop_reported(item);
        }
        for slot in slots {
            self.drop_reported(slot.callback);
            self.drop_reported(slot.context);
        }
        for (reader, writer) in io_entries {
            self.drop_reported(reader);
            self.drop_reported(writer);
        }
        for handler in source_handlers {
            self.drop_reported(handler);
        }
        for callback in signal_callbacks {
            self.drop_reported(callback);
        }
        for entry in runnables {
            let runnable = entry.runnable.clone();
            self.catch_reported(CLOSING, None, move || runnable.on_loop_closed(self));
            self.drop_reported(entry);
        }
        let extensions = std::mem::take(&mut *inner.extensions.borrow_mut());
        for (_, extension) in extensions {
            self.drop_reported(extension);
        }
        let poller = inner.poller.borrow_mut().take();
        drop(poller);
        Ok(())
    }

    /// Drops `value` during `close`: a destructor that panics is reported
    /// instead of unwinding out of `close` half done.
    fn drop_reported<T>(&self, value: T) {
        self.catch_reported(CLOSING, None, move || drop(value));
    }

    /// Runs `f` under `catch_unwind`: a panic in it is reported (see
    /// [`report_panic`](Self::report_panic)), never unwound.
    fn catch_reported(
        &self,
        message: &'static str,
        site: Option<&'static Location<'static>>,
        f: impl FnOnce(),
    ) {
        if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(f)) {
            self.report_panic(message, site, payload);
        }
    }

    /// Reports a caught panic to the exception handler as `message`, with
    /// the site the callback was scheduled at (the run step's guard,
    /// `close`'s teardown). Out of line: the run step keeps only the call.
    #[cold]
    #[inline(never)]
    pub(crate) fn report_panic(
        &self,
        message: &'static str,
        site: Option<&'static Location<'static>>,
        payload: Box<dyn std::any::Any + Send>,
    ) {
        let mut context = ExceptionContext::new(message).with_panic(payload);
        if let Some(site) = site {
            context = context.with_site(site);
        }
        self.call_exception_handler(context);
    }

    // ===== scheduling =====

    /// Schedules `f` to run in the next iteration, after callbacks already
    /// scheduled (FIFO).
    ///
    /// Equivalent of [`loop.call_soon`](https://docs.python.org/3/library/asyncio-eventloop.html#asyncio.loop.call_soon).
    /// Arguments are captured by the closure.
    ///
    /// # Errors
    ///
    /// [`LoopError::Closed`] if the loop is closed.
    #[track_caller]
    #[inline]
    pub fn call_soon<F>(&self, f: F) -> Result<Handle, LoopError>
    where
        F: FnOnce(&EventLoop) + 'static,
    {
        self.call_soon_with_site(Location::caller(), f)
    }

    /// Like [`call_soon`](EventLoop::call_soon), but reports `site` as the
    /// callback's creation site (in debug logs and exception contexts).
    /// For libraries that schedule a user's callback on the user's behalf,
    /// such as a future's done callbacks.
    ///
    /// # Errors
    ///
    /// [`LoopError::Closed`] if the loop is closed.
    #[inline]
    pub fn call_soon_with_site<F>(
        &self,
        site: &'static Location<'static>,
        f: F,
    ) -> Result<Handle, LoopError>
    where
        F: FnOnce(&EventLoop) + 'static,
    {
        if self.inner.closed.get() {
            return Err(LoopError::Closed);
        }
        let (key, seq) = self
            .inner
            .insert_slot(Box::new(f), site, crate::task_context::current());
        self.inner.ready.borrow_mut().push(Ready::Callback(key));
        Ok(Handle::new(Rc::downgrade(&self.inner), key, seq, site))
    }

    /// Like [`call_soon_with_site`](EventLoop::call_soon_with_site) for a
    /// callback that is already boxed: it is queued as is, without a second
    /// allocation. For layers that store boxed callbacks until they are due
    /// (a future's done hooks).
    ///
    /// # Errors
    ///
    /// [`LoopError::Closed`] if the loop is closed.
    #[inline]
    pub fn call_soon_boxed(
        &self,
        site: &'static Location<'static>,
        f: Box<dyn FnOnce(&EventLoop)>,
    ) -> Result<Handle, LoopError> {
        if self.inner.closed.get() {
            return Err(LoopError::Closed);
        }
        let (key, seq) = self
            .inner
            .insert_slot(f, site, crate::task_context::current());
        self.inner.ready.borrow_mut().push(Ready::Callback(key));
        Ok(Handle::new(Rc::downgrade(&self.inner), key, seq, site))
    }

    /// Schedules `f` to run `delay` from now ([`time`](EventLoop::time)).
    ///
    /// Equivalent of [`loop.call_later`](https://docs.python.org/3/library/asyncio-eventloop.html#asyncio.loop.call_later).
    /// A zero delay runs after the callbacks that are already ready.
    ///
    /// # Errors
    ///
    /// [`LoopError::Closed`] if the loop is closed.
    #[track_caller]
    pub fn call_later<F>(&self, delay: Duration, f: F) -> Result<TimerHandle, LoopError>
    where
        F: FnOnce(&EventLoop) + 'static,
    {
        let site = Location::caller();
        let when = self.time_after(delay);
        self.schedule_at(when, Box::new(f), site)
    }

    /// Schedules `f` to run at `when` on the loop's clock. A `when` in the
    /// past runs in the next iteration, in deadline order (asyncio's
    /// negative delays).
    ///
    /// Equivalent of [`loop.call_at`](https://docs.python.org/3/library/asyncio-eventloop.html#asyncio.loop.call_at).
    ///
    /// # Errors
    ///
    /// [`LoopError::Closed`] if the loop is closed.
    #[track_caller]
    pub fn call_at<F>(&self, when: Instant, f: F) -> Result<TimerHandle, LoopError>
    where
        F: FnOnce(&EventLoop) + 'static,
    {
        let site = Location::caller();
        self.schedule_at(when, Box::new(f), site)
    }

    fn schedule_at(
        &self,
        when: Instant,
        callback: Callback,
        site: &'static Location<'static>,
    ) -> Result<TimerHandle, LoopError> {
        if self.inner.closed.get() {
            return Err(LoopError::Closed);
        }
        let (key, seq) = self
            .inner
            .insert_slot(callback, site, crate::task_context::current());
        self.inner.timers.borrow_mut().push(when, key);
        let handle = Handle::new(Rc::downgrade(&self.inner), key, seq, site);
        Ok(TimerHandle::new(handle, when))
    }

    /// The loop's current time (monotonic, or the manual clock in tests).
    ///
    /// Equivalent of [`loop.time`](https://docs.python.org/3/library/asyncio-eventloop.html#asyncio.loop.time),
    /// as an `Instant` rather than float seconds.
    #[inline]
    pub fn time(&self) -> Instant {
        self.inner.clock.now()
    }

    /// The loop's time `delay` from now. A delay too long for `Instant`
    /// (`Duration::MAX`, Rust's "forever"; asyncio takes `inf`) gives a
    /// time a century away instead of overflowing: a timer set for it
    /// never fires in practice.
    #[inline]
    pub fn time_after(&self, delay: Duration) -> Instant {
        crate::clock::saturating_after(self.time(), delay)
    }

    /// A `Send + Sync` handle for scheduling from other threads.
    pub fn remote(&self) -> Remote {
        Remote {
            shared: self.inner.remote.clone(),
        }
    }

    /// Schedules `f` from the loop thread, in FIFO order with
    /// [`call_soon`](EventLoop::call_soon) (asyncio appends both to one
    /// queue). Callbacks other threads sent earlier through a [`Remote`] are
    /// queued first. From other threads, use [`Remote::call_soon_threadsafe`].
    ///
    /// # Errors
    ///
    /// [`LoopError::Closed`] if the loop is closed.
    #[track_caller]
    pub fn call_soon_threadsafe<F>(&self, f: F) -> Result<(), LoopError>
    where
        F: FnOnce(&EventLoop) + Send + 'static,
    {
        let site = Location::caller();
        if self.inner.closed.get() {
            return Err(LoopError::Closed);
        }
        // The remote queue is otherwise drained only at the next poll, which
        // would run `f` after callbacks scheduled later with `call_soon`.
        self.drain_remote();
        let (key, _) = self
            .inner
            .insert_slot(Box::new(f), site, crate::task_context::current());
        self.inner.ready.borrow_mut().push(Ready::Callback(key));
        Ok(())
    }

    // ===== I/O readiness =====

    /// Calls `f` every iteration while `fd` is readable (level-triggered,
    /// as asyncio). Replaces the fd's previous reader.
    ///
    /// Equivalent of [`loop.add_reader`](https://docs.python.org/3/library/asyncio-eventloop.html#asyncio.loop.add_reader).
    /// The loop does not own `fd`: remove the reader before closing it.
    ///
    /// # Errors
    ///
    /// [`LoopError::Closed`] if the loop is closed; [`LoopError::Io`] if the
    /// fd cannot be polled (a bad fd, a regular file).
    #[track_caller]
    pub fn add_reader<F>(&self, fd: impl Descriptor, f: F) -> Result<(), LoopError>
    where
        F: FnMut(&EventLoop) + 'static,
    {
        self.add_io(fd.raw_fd(), false, Box::new(f), Location::caller())
    }

    /// Calls `f` every iteration while `fd` is writable (level-triggered).
    /// Replaces the fd's previous writer.
    ///
    /// Equivalent of [`loop.add_writer`](https://docs.python.org/3/library/asyncio-eventloop.html#asyncio.loop.add_writer).
    ///
    /// # Errors
    ///
    /// As [`add_reader`](EventLoop::add_reader).
    #[track_caller]
    pub fn add_writer<F>(&self, fd: impl Descriptor, f: F) -> Result<(), LoopError>
    where
        F: FnMut(&EventLoop) + 'static,
    {
        self.add_io(fd.raw_fd(), true, Box::new(f), Location::caller())
    }

    /// Stops watching `fd` for reading. Returns whether a reader was
    /// registered.
    ///
    /// Equivalent of [`loop.remove_reader`](https://docs.python.org/3/library/asyncio-eventloop.html#asyncio.loop.remove_reader).
    pub fn remove_reader(&self, fd: impl Descriptor) -> bool {
        self.remove_io(fd.raw_fd(), false)
    }

    /// Stops watching `fd` for writing. Returns whether a writer was
    /// registered.
    ///
    /// Equivalent of [`loop.remove_writer`](https://docs.python.org/3/library/asyncio-eventloop.html#asyncio.loop.remove_writer).
    pub fn remove_writer(&self, fd: impl Descriptor) -> bool {
        self.remove_io(fd.raw_fd(), true)
    }

    /// Whether `fd` has a reader (`write == false`) or a writer.
    pub fn has_io_callback(&self, fd: impl Descriptor, write: bool) -> bool {
        self.inner.io.borrow().has(fd.raw_fd(), write)
    }

    fn add_io(
        &self,
        fd: i32,
        write: bool,
        callback: crate::io::IoCallback,
        site: &'static Location<'static>,
    ) -> Result<(), LoopError> {
        if self.inner.closed.get() {
            return Err(LoopError::Closed);
        }
        let version = self.inner.io_version.get();
        self.inner.io_version.set(version + 1);
        let callback = with_context(callback);
        let side = IoSide {
            callback: Some(callback),
            site,
            version,
        };
        let replaced = {
            let poller = self.inner.poller.borrow();
            let poller = poller.as_ref().ok_or(LoopError::Closed)?;
            self.inner
                .io
                .borrow_mut()
                .add(poller.registry(), fd, write, side)
        };
        // Dropped here, outside every borrow: a replaced callback, or on an
        // error (a bad fd) the one given.
        match replaced {
            Ok(replaced) => {
                drop(replaced);
                Ok(())
            }
            Err((err, given)) => {
                drop(given);
                Err(err.into())
            }
        }
    }

    fn remove_io(&self, fd: i32, write: bool) -> bool {
        let removed = {
            let poller = self.inner.poller.borrow();
            let Some(poller) = poller.as_ref() else {
                return false;
            };
            self.inner
                .io
                .borrow_mut()
                .remove(poller.registry(), fd, write)
        };
        removed.is_some()
    }

    // ===== edge-triggered sources (the transport seam) =====

    /// Registers `fd` as an edge-triggered source: `handler` is called from
    /// the ready queue with each event's [`Readiness`]. See the
    /// [`SourceHandler`] contract: drain until `WouldBlock` or reschedule
    /// with [`schedule_source`](EventLoop::schedule_source).
    ///
    /// This is the path transports use instead of
    /// [`add_reader`](EventLoop::add_reader), whose level-triggered emulation
    /// costs a re-arm syscall per callback.
    ///
    /// # Errors
    ///
    /// [`LoopError::Closed`]; [`LoopError::Io`] if the fd cannot be polled.
    pub fn register_source(
        &self,
        fd: impl Descriptor,
        interest: mio::Interest,
        handler: Rc<dyn SourceHandler>,
    ) -> Result<SourceId, LoopError> {
        if self.inner.closed.get() {
            return Err(LoopError::Closed);
        }
        let registered = {
            let poller = self.inner.poller.borrow();
            let poller = poller.as_ref().ok_or(LoopError::Closed)?;
            self.inner.sources.borrow_mut().register(
                poller.registry(),
                fd.raw_fd(),
                interest,
                handler,
            )
        };
        // A refused handler is dropped here, after the borrows.
        registered.map_err(|(err, handler)| {
            drop(handler);
            LoopError::Io(err)
        })
    }

    /// Changes the interest of a source. Returns false if `id` is not
    /// registered.
    ///
    /// # Errors
    ///
    /// [`LoopError::Io`] if the OS refuses.
    pub fn reregister_source(
        &self,
        id: SourceId,
        interest: mio::Interest,
    ) -> Result<bool, LoopError> {
        let poller = self.inner.poller.borrow();
        let Some(poller) = poller.as_ref() else {
            return Ok(false);
        };
        Ok(self
            .inner
            .sources
            .borrow_mut()
            .reregister(poller.registry(), id, interest)?)
    }

    /// Deregisters a source and drops the loop's reference to its handler.
    /// Returns false if it was not registered. Deregister before closing the
    /// fd.
    pub fn deregister_source(&self, id: SourceId) -> bool {
        let handler = {
            let poller = self.inner.poller.borrow();
            self.inner
                .sources
                .borrow_mut()
                .deregister(poller.as_ref().map(Poller::registry), id)
        };
        handler.is_some()
    }

    /// Queues a call of the source's handler with `readiness` (merged with
    /// any pending readiness; at most one queued call per source). For a
    /// handler that stopped reading before `WouldBlock` (its budget ran out).
    pub fn schedule_source(&self, id: SourceId, readiness: Readiness) {
        let inner = &*self.inner;
        let mut ready = inner.ready.borrow_mut();
        inner
            .sources
            .borrow_mut()
            .mark(id.key(), id.generation(), readiness, &mut ready);
    }

    // ===== signals =====

    /// Runs `f` on the loop thread whenever signal `sig` arrives (Unix).
    /// Replaces an earlier handler for `sig`.
    ///
    /// Equivalent of [`loop.add_signal_handler`](https://docs.python.org/3/library/asyncio-eventloop.html#asyncio.loop.add_signal_handler).
    /// Deliveries that arrive before the loop gets to run the callback are
    /// coalesced into one call.
    ///
    /// # Errors
    ///
    /// [`LoopError::SignalOutOfRange`], [`LoopError::SignalCannotBeCaught`]
    /// (`SIGKILL`, `SIGSTOP`, `SIGSEGV`, `SIGILL`, `SIGFPE`),
    /// [`LoopError::Closed`], or [`LoopError::Io`].
    #[track_caller]
    pub fn add_signal_handler<F>(&self, sig: i32, f: F) -> Result<(), LoopError>
    where
        F: Fn(&EventLoop) + 'static,
    {
        let site = Location::caller();
        crate::signals::check_signal(sig)?;
        if self.inner.closed.get() {
            return Err(LoopError::Closed);
        }
        // The handler runs in the task context current now, as asyncio's
        // signal Handle copies the context when it is made.
        let context = crate::task_context::current();
        let callback: crate::signals::SignalCallback = Rc::new(move |ev: &EventLoop| {
            let _scope = crate::task_context::enter(context.clone());
            f(ev);
        });
        // A second reference, dropped last, outside every borrow: if the
        // handler cannot be installed (no fds left), the table drops its
        // copy under its borrow, and the closure must not go with it
        // (invariant 2).
        let keep = callback.clone();
        let replaced = {
            let poller = self.inner.poller.borrow();
            let poller = poller.as_ref().ok_or(LoopError::Closed)?;
            self.inner
                .signals
                .borrow_mut()
                .add(poller.registry(), sig, callback, site)
        };
        let result = replaced.map(drop);
        drop(keep);
        result
    }

    /// Removes the handler for `sig`; the signal's default action applies
    /// again. Returns whether a handler was installed.
    ///
    /// Equivalent of [`loop.remove_signal_handler`](https://docs.python.org/3/library/asyncio-eventloop.html#asyncio.loop.remove_signal_handler).
    ///
    /// # Errors
    ///
    /// [`LoopError::SignalOutOfRange`] or [`LoopError::SignalCannotBeCaught`]
    /// for a bad `sig`.
    pub fn remove_signal_handler(&self, sig: i32) -> Result<bool, LoopError> {
        crate::signals::check_signal(sig)?;
        let removed = {
            let poller = self.inner.poller.borrow();
            let registry = poller.as_ref().map(Poller::registry);
            self.inner.signals.borrow_mut().remove(registry, sig)
        };
        Ok(removed.is_some())
    }

    /// True if this loop has a handler for `sig` (added with
    /// [`add_signal_handler`](EventLoop::add_signal_handler)). asyncio's
    /// runner asks `signal.getsignal` the same question before it installs
    /// its own SIGINT handler.
    pub fn has_signal_handler(&self, sig: i32) -> bool {
        self.inner.signals.borrow().handles(sig)
    }

    // ===== exception handling =====

    /// Sets the handler called for errors no caller can receive (panicking
    /// callbacks, unretrieved task errors, …); `None` restores the default.
    ///
    /// Equivalent of [`loop.set_exception_handler`](https://docs.python.org/3/library/asyncio-eventloop.html#asyncio.loop.set_exception_handler).
    pub fn set_exception_handler<F>(&self, handler: Option<F>)
    where
        F: Fn(&EventLoop, ExceptionContext) + 'static,
    {
        let new = handler.map(|h| Rc::new(h) as ExceptionHandler);
        let old = self.inner.exception_handler.replace(new);
        drop(old);
    }

    /// The custom exception handler, if one is set.
    ///
    /// Equivalent of [`loop.get_exception_handler`](https://docs.python.org/3/library/asyncio-eventloop.html#asyncio.loop.get_exception_handler).
    pub fn get_exception_handler(&self) -> Option<ExceptionHandler> {
        self.inner.exception_handler.borrow().clone()
    }

    /// Reports `context` to the exception handler (the default one if none
    /// is set). A panic inside a custom handler is caught and logged.
    ///
    /// Equivalent of [`loop.call_exception_handler`](https://docs.python.org/3/library/asyncio-eventloop.html#asyncio.loop.call_exception_handler).
    pub fn call_exception_handler(&self, context: ExceptionContext) {
        let handler = self.inner.exception_handler.borrow().clone();
        match handler {
            None => {
                default_exception_handler(&context);
                drop_context_quietly(context);
            }
            Some(handler) => {
                let description = context.to_string();
                let outcome = panic::catch_unwind(AssertUnwindSafe(|| handler(self, context)));
                if let Err(payload) = outcome {
                    let context = ExceptionContext::new("Unhandled error in exception handler")
                        .with_panic(payload)
                        .with_extra("context", description);
                    default_exception_handler(&context);
                    drop_context_quietly(context);
                }
            }
        }
    }

    /// The default handler; see [`default_exception_handler`].
    ///
    /// Equivalent of [`loop.default_exception_handler`](https://docs.python.org/3/library/asyncio-eventloop.html#asyncio.loop.default_exception_handler).
    pub fn default_exception_handler(&self, context: &ExceptionContext) {
        default_exception_handler(context);
    }

    // ===== debug mode =====

    /// Turns debug mode on or off. In debug mode callbacks that run longer
    /// than [`slow_callback_duration`](EventLoop::slow_callback_duration)
    /// are logged with where they were scheduled.
    ///
    /// Equivalent of [`loop.set_debug`](https://docs.python.org/3/library/asyncio-eventloop.html#asyncio.loop.set_debug).
    pub fn set_debug(&self, enabled: bool) {
        self.inner.debug.set(enabled);
    }

    /// Whether debug mode is on.
    pub fn get_debug(&self) -> bool {
        self.inner.debug.get()
    }

    /// The slow-callback threshold of debug mode (default 100 ms).
    pub fn slow_callback_duration(&self) -> Duration {
        self.inner.slow_callback_duration.get()
    }

    /// Sets the slow-callback threshold of debug mode.
    pub fn set_slow_callback_duration(&self, duration: Duration) {
        self.inner.slow_callback_duration.set(duration);
    }

    // ===== runnables (the task seam) =====

    /// Hands `runnable` to the loop, which owns it from now on, and
    /// schedules its first [`run`](Runnable::run). Returns its id and the
    /// `Waker` that schedules further runs (thread-safe; one step per batch
    /// of wakes).
    ///
    /// # Errors
    ///
    /// [`LoopError::Closed`] if the loop is closed.
    pub fn spawn_runnable(
        &self,
        runnable: Pin<Rc<dyn Runnable>>,
    ) -> Result<(RunnableId, Waker), LoopError> {
        if self.inner.closed.get() {
            return Err(LoopError::Closed);
        }
        let (id, waker) = self
            .inner
            .runnables
            .borrow_mut()
            .insert(runnable, &self.inner.remote);
        self.inner.ready.borrow_mut().push(Ready::Runnable(id));
        Ok((id, Waker::from(waker)))
    }

    /// Releases the loop's reference to a finished runnable. Returns false
    /// if it was not registered (already removed, or the loop closed).
    pub fn remove_runnable(&self, id: RunnableId) -> bool {
        let removed = self.inner.runnables.borrow_mut().remove(id);
        removed.is_some()
    }

    /// Schedules one run of `id` from the loop thread, unless one is
    /// already scheduled. Same as waking its `Waker`.
    pub fn schedule_runnable(&self, id: RunnableId) {
        let waker = self
            .inner
            .runnables
            .borrow()
            .get(id)
            .map(|e| e.waker.clone());
        if let Some(waker) = waker {
            std::task::Wake::wake_by_ref(&waker);
        }
    }

    /// The runnables the loop owns, in slab order.
    pub fn runnables(&self) -> Vec<Pin<Rc<dyn Runnable>>> {
        let set = self.inner.runnables.borrow();
        set.iter().map(|e| e.runnable.clone()).collect()
    }

    /// Offers every runnable the loop owns to `sink`
    /// ([`Runnable::collect`]), in slab order. The runnables are listed
    /// first, so `collect` may use the loop.
    pub fn collect_runnables(&self, sink: &mut dyn Any) {
        for runnable in self.runnables() {
            runnable.collect(sink);
        }
    }

    /// The loop's extension of type `T`, if one was set. Layers above
    /// loop-core keep per-loop state here (the default executor, say).
    pub fn extension<T: 'static>(&self) -> Option<Rc<T>> {
        let ext = self
            .inner
            .extensions
            .borrow()
            .get(&TypeId::of::<T>())
            .cloned()?;
        ext.downcast::<T>().ok()
    }

    /// The loop's extension of type `T`, created with `make` (and set) if
    /// there is none yet.
    pub fn extension_or_insert_with<T: 'static>(&self, make: impl FnOnce() -> T) -> Rc<T> {
        if let Some(ext) = self.extension::<T>() {
            return ext;
        }
        let ext = Rc::new(make());
        self.set_extension(ext.clone());
        ext
    }

    /// Sets the loop's extension of type `T`; returns the previous one.
    /// Extensions are dropped by [`close`](EventLoop::close).
    pub fn set_extension<T: 'static>(&self, value: Rc<T>) -> Option<Rc<T>> {
        let old = self
            .inner
            .extensions
            .borrow_mut()
            .insert(TypeId::of::<T>(), value);
        old.and_then(|old| old.downcast::<T>().ok())
    }

    /// Removes the loop's extension of type `T`.
    pub fn take_extension<T: 'static>(&self) -> Option<Rc<T>> {
        let old = self
            .inner
            .extensions
            .borrow_mut()
            .remove(&TypeId::of::<T>());
        old.and_then(|old| old.downcast::<T>().ok())
    }

    /// Counts of what the loop holds.
    pub fn stats(&self) -> LoopStats {
        let inner = &*self.inner;
        let timers = inner.timers.borrow();
        LoopStats {
            ready: inner.ready.borrow().len(),
            timers: timers.len(),
            cancelled_timers: timers.cancelled(),
            callbacks: inner.slots.borrow().len(),
            io_registrations: inner.io.borrow().len() + inner.sources.borrow().len(),
            runnables: inner.runnables.borrow().len(),
            signals: inner.signals.borrow().signals().len(),
        }
    }

    /// True if `self` and `other` are handles to the same loop.
    pub fn same_loop(&self, other: &EventLoop) -> bool {
        Rc::ptr_eq(&self.inner, &other.inner)
    }

    /// A number that identifies this loop within the process.
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    // ===== one iteration =====

    fn run_once_inner(&self) -> io::Result<()> {
        let inner = &*self.inner;
        // 1. Timeout.
        let deadline = {
            let mut slots = inner.slots.borrow_mut();
            inner.timers.borrow_mut().next_deadline(&mut slots)
        };
        let zero = !inner.ready.borrow().is_empty() || inner.stopping.get();
        let manual = inner.clock.manual();
        // The clock is read only when a timer needs it.
        let now = match deadline {
            Some(_) => inner.clock.now(),
            None => inner.epoch,
        };

        // 2. Poll.
        {
            let mut poller = inner.poller.borrow_mut();
            let Some(poller) = poller.as_mut() else {
                return Ok(());
            };
            // Never sleep for a timer on virtual time (clock invariant 2).
            let nonblocking = zero
                || (manual.is_some() && deadline.is_some())
                || deadline.is_some_and(|when| when <= now);
            if nonblocking && self.only_remote_can_be_ready() {
                // No fd is registered, so a zero-timeout poll could only
                // report the cross-thread waker: check its queue directly
                // and save the epoll_wait syscall (invariant 5).
                if inner.remote.queue.has_pending() {
                    self.drain_remote();
                }
            } else {
                if manual.is_some() {
                    poller.poll(nonblocking, None, now)?;
                } else {
                    poller.poll(zero, deadline, now)?;
                }
                self.process_events(poller);
            }
        }
        if let (Some(clock), Some(when)) = (manual, deadline) {
            if !zero && inner.ready.borrow().is_empty() {
                clock.set(when);
            }
        }

        // 3. Timers.
        if inner.timers.borrow().len() > 0 {
            let now = inner.clock.now();
            let mut slots = inner.slots.borrow_mut();
            let mut ready = inner.ready.borrow_mut();
            inner
                .timers
                .borrow_mut()
                .collect_due(now, &mut slots, &mut ready);
        }

        // 4. Run exactly what is ready now.
        let ntodo = inner.ready.borrow().len();
        for _ in 0..ntodo {
            let Some(entry) = inner.ready.borrow_mut().pop() else {
                break;
            };
            match entry {
                Ready::Callback(key) => {
                    let slot = inner.slots.borrow_mut().try_remove(key as usize);
                    if let Some(Slot {
                        callback: Some(callback),
                        site,
                        context,
                        ..
                    }) = slot
                    {
                        match context {
                            None => self.run_guarded(Some(site), move || callback(self)),
                            Some(context) => {
                                let _scope = crate::task_context::enter(Some(context));
                                self.run_guarded(Some(site), move || callback(self));
                            }
                        }
                    }
                }
                Ready::Runnable(id) => {
                    let runnable = inner.runnables.borrow().get(id).map(|entry| {
                        entry.waker.clear();
                        entry.runnable.clone()
                    });
                    if let Some(runnable) = runnable {
                        let site = runnable.site();
                        self.run_guarded(site, move || runnable.run(self));
                    }
                }
                Ready::Io {
                    key,
                    generation,
                    write,
                } => self.run_io(key, generation, write),
                Ready::Source { key, generation } => {
                    let taken = inner.sources.borrow_mut().take(key, generation);
                    if let Some((handler, readiness)) = taken {
                        self.run_guarded(None, move || handler.on_ready(self, readiness));
                    }
                }
            }
        }
        // An empty table hands out keys in order again (slot_table.rs).
        inner.slots.borrow_mut().restart_if_empty();
        Ok(())
    }

    /// True if no fd, source or signal is registered: then the poller can
    /// only ever report the cross-thread waker (and the precise timer, whose
    /// deadlines the loop computes itself).
    fn only_remote_can_be_ready(&self) -> bool {
        let inner = &*self.inner;
        inner.io.borrow().len() == 0
            && inner.sources.borrow().len() == 0
            && inner.signals.borrow().is_empty()
    }

    /// Step 2: events → ready queue.
    fn process_events(&self, poller: &mut Poller) {
        let inner = &*self.inner;
        let mut drain_remote = false;
        let mut timer_fired = false;
        {
            let io = inner.io.borrow();
            let mut ready = inner.ready.borrow_mut();
            for event in poller.events.iter() {
                let token = event.token();
                if let Some((key, generation)) = crate::source::unpack(token) {
                    let readiness = Readiness::from_event(event);
                    inner
                        .sources
                        .borrow_mut()
                        .mark(key, generation, readiness, &mut ready);
                } else if let Some((key, generation)) = unpack_token(token) {
                    let readable =
                        event.is_readable() || event.is_read_closed() || event.is_error();
                    let writable =
                        event.is_writable() || event.is_write_closed() || event.is_error();
                    io.dispatch(key, generation, readable, writable, &mut ready);
                } else if token == WAKER_TOKEN {
                    drain_remote = true;
                } else if token == TIMER_TOKEN {
                    timer_fired = true;
                } else if let Some(sig) = token_signal(token) {
                    let fired = inner.signals.borrow_mut().fired(sig);
                    if let Some((callback, site)) = fired {
                        let (key, _) =
                            inner.insert_slot(Box::new(move |ev| callback(ev)), site, None);
                        ready.push(Ready::Callback(key));
                    }
                }
            }
        }
        if timer_fired {
            poller.timer_fired();
        }
        if drain_remote {
            self.drain_remote();
        }
    }

    /// Moves what other threads sent into the ready queue, in order.
    fn drain_remote(&self) {
        let inner = &*self.inner;
        let mut buf = inner.remote_buf.borrow_mut();
        inner.remote.queue.drain_into(&mut buf);
        let mut ready = inner.ready.borrow_mut();
        for item in buf.drain(..) {
            match item {
                RemoteItem::Callback(callback, site) => {
                    let (key, _) = inner.insert_slot(callback, site, None);
                    ready.push(Ready::Callback(key));
                }
                RemoteItem::Runnable(id) => ready.push(Ready::Runnable(id)),
            }
        }
    }

    fn run_io(&self, key: u32, generation: u32, write: bool) {
        let taken = self
            .inner
            .io
            .borrow_mut()
            .take_callback(key, generation, write);
        let Some((mut callback, version, site)) = taken else {
            return;
        };
        self.run_guarded(Some(site), || callback(self));
        let leftover: Option<crate::io::IoCallback> = {
            let poller = self.inner.poller.borrow();
            match poller.as_ref() {
                Some(poller) => self.inner.io.borrow_mut().restore_callback(
                    poller.registry(),
                    key,
                    generation,
                    write,
                    callback,
                    version,
                ),
                None => Some(callback),
            }
        };
        // A callback that removed or replaced itself comes back here: its
        // destructor is the user's code too, so it runs guarded.
        if let Some(leftover) = leftover {
            self.run_guarded(Some(site), move || drop(leftover));
        }
    }

    /// Runs one callback: catches its panic (invariant 3) and, in debug
    /// mode, times it.
    #[inline]
    fn run_guarded(&self, site: Option<&'static Location<'static>>, f: impl FnOnce()) {
        let started = if self.inner.debug.get() {
            Some(self.inner.clock.now())
        } else {
            None
        };
        if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(f)) {
            self.report_panic("Exception in callback", site, payload);
        }
        if let Some(started) = started {
            let took = self.inner.clock.now().saturating_duration_since(started);
            if took >= self.inner.slow_callback_duration.get() {
                let site = site
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "<unknown>".into());
                tracing::warn!(
                    target: "tulip",
                    "Executing callback created at {site} took {:.3} seconds",
                    took.as_secs_f64()
                );
            }
        }
    }
}

impl Inner {
    #[inline]
    fn insert_slot(
        &self,
        callback: Callback,
        site: &'static Location<'static>,
        context: Option<crate::task_context::Context>,
    ) -> (u32, u64) {
        let seq = self.seq.get();
        self.seq.set(seq + 1);
        let key = self
            .slots
            .borrow_mut()
            .insert(seq, Some(callback), site, context);
        (key as u32, seq)
    }

    /// Cancels the callback in slot `key` if it still belongs to `seq`.
    /// The closure and the captured task context both leave the slot here
    /// and are dropped once the borrows are released (invariant 2): a
    /// cancelled slot holds no user value, so removing it later (the timer
    /// heap's pops and compaction, the ready queue skipping it) drops none
    /// while the loop's cells are borrowed.
    pub(crate) fn cancel_slot(&self, key: u32, seq: u64) {
        let taken = {
            let mut slots = self.slots.borrow_mut();
            let Some(slot) = slots.get_mut(key as usize).filter(|s| s.seq == seq) else {
                return;
            };
            let callback = slot.callback.take();
            let context = slot.context.take();
            if callback.is_some() {
                self.timers.borrow_mut().cancel(key, &mut slots);
            }
            (callback, context)
        };
        drop(taken);
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Threads holding a Remote now get `Closed`; signal-hook stops
        // writing to our pipes.
        let leftovers = self.remote.queue.close();
        drop(leftovers);
        let signals = self.signals.get_mut();
        for sig in signals.signals() {
            signals.remove(None, sig);
        }
    }
}

/// Drops a reported context: its panic payload is the user's value, and a
/// destructor of it that panics must not unwind out of the loop. That
/// panic is logged, and its own payload leaked rather than dropped (it
/// could panic again), as std's test harness does.
fn drop_context_quietly(context: ExceptionContext) {
    if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(move || drop(context))) {
        tracing::error!(
            target: "tulip",
            "the destructor of a reported panic's payload panicked; that panic is ignored"
        );
        Box::leak(payload);
    }
}

/// A reader's or writer's callback, run in the task context current when
/// it was added (asyncio's `_add_reader` makes a `Handle`, which copies the
/// context); unchanged when there is none.
fn with_context(mut callback: crate::io::IoCallback) -> crate::io::IoCallback {
    match crate::task_context::current() {
        None => callback,
        Some(context) => Box::new(move |ev: &EventLoop| {
            let _scope = crate::task_context::enter(Some(context.clone()));
            callback(ev);
        }),
    }
}

/// How a panic during `close` is reported.
const CLOSING: &str = "Exception in closing the event loop";

struct RunningGuard<'a> {
    ev: &'a EventLoop,
    _entered: context::Entered,
}

impl Drop for RunningGuard<'_> {
    fn drop(&mut self) {
        self.ev.inner.running.set(false);
        self.ev.inner.stopping.set(false);
    }
}

impl fmt::Debug for EventLoop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventLoop")
            .field("id", &self.inner.id)
            .field("running", &self.inner.running.get())
            .field("closed", &self.inner.closed.get())
            .field("debug", &self.inner.debug.get())
            .finish()
    }
}

impl PartialEq for EventLoop {
    fn eq(&self, other: &Self) -> bool {
        self.same_loop(other)
    }
}

impl Eq for EventLoop {}

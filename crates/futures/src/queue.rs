//! [`Queue`], [`PriorityQueue`], [`LifoQueue`]: asyncio's `queues.py`.
//!
//! Invariants:
//! 1. Getters and putters wait in FIFO order; `put` waits only while the
//!    queue is full (`maxsize > 0`), `get` only while it is empty.
//! 2. Cancellation-safe: a getter (putter) cancelled at the moment it was
//!    woken passes the wake-up to the next one, so no item (free slot) is
//!    stranded; so does one whose coroutine is dropped mid-wait
//!    (`Task::abort`).
//! 3. `task_done` is counted against `put`: more `task_done` calls than
//!    items is an error; `join` waits until every item was marked done (on
//!    an [`Event`], so cancelling one joiner leaves the others waiting).
//! 4. After `shutdown`, `put` fails with [`QueueShutDown`]; `get` drains
//!    what is left (or nothing, with `immediate`) and then fails too;
//!    every waiter is woken.

use std::cell::{Cell, RefCell};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;

use loop_core::get_running_loop;

use crate::error::Error;
use crate::future::Future;
use crate::sync_primitives::{Event, OnDrop};

/// `put_nowait` on a full queue (asyncio's `QueueFull`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueFull;

/// `get_nowait` on an empty queue (asyncio's `QueueEmpty`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueEmpty;

/// The queue was shut down (asyncio 3.13's `QueueShutDown`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueShutDown;

macro_rules! simple_error {
    ($ty:ident, $msg:literal) => {
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str($msg)
            }
        }
        impl std::error::Error for $ty {}
    };
}

simple_error!(QueueFull, "queue is full");
simple_error!(QueueEmpty, "queue is empty");
simple_error!(QueueShutDown, "queue is shut down");

/// How a queue orders its items.
pub trait QueueStore<T>: Default {
    /// Adds an item.
    fn push(&mut self, item: T);
    /// Removes the next item.
    fn pop(&mut self) -> Option<T>;
    /// Items held.
    fn len(&self) -> usize;
    /// True if empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Drops every item.
    fn clear(&mut self);
}

/// First in, first out.
#[derive(Debug)]
pub struct Fifo<T>(VecDeque<T>);

impl<T> Default for Fifo<T> {
    fn default() -> Self {
        Fifo(VecDeque::new())
    }
}

impl<T> QueueStore<T> for Fifo<T> {
    fn push(&mut self, item: T) {
        self.0.push_back(item);
    }
    fn pop(&mut self) -> Option<T> {
        self.0.pop_front()
    }
    fn len(&self) -> usize {
        self.0.len()
    }
    fn clear(&mut self) {
        self.0.clear();
    }
}

/// Last in, first out.
#[derive(Debug)]
pub struct Lifo<T>(Vec<T>);

impl<T> Default for Lifo<T> {
    fn default() -> Self {
        Lifo(Vec::new())
    }
}

impl<T> QueueStore<T> for Lifo<T> {
    fn push(&mut self, item: T) {
        self.0.push(item);
    }
    fn pop(&mut self) -> Option<T> {
        self.0.pop()
    }
    fn len(&self) -> usize {
        self.0.len()
    }
    fn clear(&mut self) {
        self.0.clear();
    }
}

/// Smallest first (ties in insertion order).
#[derive(Debug)]
pub struct Priority<T: Ord>(BinaryHeap<Reverse<(T, u64)>>, u64);

impl<T: Ord> Default for Priority<T> {
    fn default() -> Self {
        Priority(BinaryHeap::new(), 0)
    }
}

impl<T: Ord> QueueStore<T> for Priority<T> {
    fn push(&mut self, item: T) {
        self.1 += 1;
        self.0.push(Reverse((item, self.1)));
    }
    fn pop(&mut self) -> Option<T> {
        self.0.pop().map(|Reverse((item, _))| item)
    }
    fn len(&self) -> usize {
        self.0.len()
    }
    fn clear(&mut self) {
        self.0.clear();
    }
}

struct Inner<T, S> {
    items: RefCell<S>,
    maxsize: usize,
    getters: RefCell<VecDeque<Future<()>>>,
    putters: RefCell<VecDeque<Future<()>>>,
    unfinished: Cell<usize>,
    /// Set while no item is unfinished; each joiner waits on it with its
    /// own waiter future, so cancelling one joiner leaves the others be.
    finished: Event,
    shutdown: Cell<bool>,
    _marker: std::marker::PhantomData<T>,
}

/// An async queue for tasks on one loop; `S` sets the order.
///
/// Equivalent of [`asyncio.Queue`](https://docs.python.org/3/library/asyncio-queue.html).
/// Cloning gives another handle to the same queue.
///
/// # Examples
///
/// ```
/// use loop_futures::{Error, Queue, create_task, run};
///
/// let got = run(async {
///     let q: Queue<u32> = Queue::new(2);
///     let producer = q.clone();
///     create_task(async move {
///         for i in 0..5 {
///             producer.put(i).await?;
///         }
///         Ok::<_, Error>(())
///     })?;
///     let mut got = Vec::new();
///     for _ in 0..5 {
///         got.push(q.get().await?);
///     }
///     Ok::<_, Error>(got)
/// })
/// .unwrap();
/// assert_eq!(got, [0, 1, 2, 3, 4]);
/// ```
pub struct Queue<T, S: QueueStore<T> = Fifo<T>> {
    inner: Rc<Inner<T, S>>,
}

/// A queue that returns the smallest item first.
pub type PriorityQueue<T> = Queue<T, Priority<T>>;

/// A queue that returns the newest item first.
pub type LifoQueue<T> = Queue<T, Lifo<T>>;

impl<T, S: QueueStore<T>> Clone for Queue<T, S> {
    fn clone(&self) -> Self {
        Queue {
            inner: self.inner.clone(),
        }
    }
}

fn wake_first(waiters: &RefCell<VecDeque<Future<()>>>) {
    // Wakes the first waiter still waiting (asyncio's `_wakeup_next`).
    let mut waiters = waiters.borrow_mut();
    while let Some(waiter) = waiters.pop_front() {
        if !waiter.done() {
            let _ = waiter.set_result(());
            return;
        }
    }
}

fn wake_all(waiters: &RefCell<VecDeque<Future<()>>>) {
    let waiters = std::mem::take(&mut *waiters.borrow_mut());
    for waiter in waiters {
        if !waiter.done() {
            let _ = waiter.set_result(());
        }
    }
}

impl<T: 'static, S: QueueStore<T> + 'static> Queue<T, S> {
    /// A queue holding at most `maxsize` items (0: unbounded).
    pub fn new(maxsize: usize) -> Self {
        Queue {
            inner: Rc::new(Inner {
                items: RefCell::new(S::default()),
                maxsize,
                getters: RefCell::new(VecDeque::new()),
                putters: RefCell::new(VecDeque::new()),
                unfinished: Cell::new(0),
                finished: {
                    let finished = Event::new();
                    finished.set();
                    finished
                },
                shutdown: Cell::new(false),
                _marker: std::marker::PhantomData,
            }),
        }
    }

    /// The bound given at creation (0: unbounded).
    pub fn maxsize(&self) -> usize {
        self.inner.maxsize
    }

    /// Items in the queue.
    pub fn qsize(&self) -> usize {
        self.inner.items.borrow().len()
    }

    /// True if no items are queued.
    pub fn empty(&self) -> bool {
        self.inner.items.borrow().is_empty()
    }

    /// True if `maxsize` items are queued.
    pub fn full(&self) -> bool {
        self.inner.maxsize > 0 && self.qsize() >= self.inner.maxsize
    }

    /// Adds `item` without waiting.
    ///
    /// # Errors
    ///
    /// [`QueueFull`] (the item is handed back) or [`QueueShutDown`], as
    /// `Err((item, error))`.
    pub fn put_nowait(&self, item: T) -> Result<(), (T, Error)> {
        if self.inner.shutdown.get() {
            return Err((item, Error::new(QueueShutDown)));
        }
        if self.full() {
            return Err((item, Error::new(QueueFull)));
        }
        self.inner.items.borrow_mut().push(item);
        self.inner.unfinished.set(self.inner.unfinished.get() + 1);
        self.inner.finished.clear();
        wake_first(&self.inner.getters);
        Ok(())
    }

    /// Adds `item`, waiting while the queue is full.
    ///
    /// # Errors
    ///
    /// [`QueueShutDown`]; the waiting task's cancellation (the item is
    /// dropped).
    pub async fn put(&self, item: T) -> Result<(), Error> {
        let inner = &self.inner;
        while self.full() {
            if inner.shutdown.get() {
                return Err(Error::new(QueueShutDown));
            }
            let ev = get_running_loop()?;
            let putter: Future<()> = Future::new(&ev);
            inner.putters.borrow_mut().push_back(putter.clone());
            // Leaving without putting (cancelled, or dropped mid-wait): a
            // free slot this putter was woken for goes to the next one.
            let leave = OnDrop::new(|| {
                putter.cancel(None);
                inner
                    .putters
                    .borrow_mut()
                    .retain(|p| !p.same_future(&putter));
                if !self.full() && !putter.cancelled() {
                    wake_first(&inner.putters);
                }
            });
            if let Err(err) = putter.clone().await {
                drop(leave);
                return Err(err);
            }
            leave.defuse();
        }
        self.put_nowait(item).map_err(|(_, err)| err)
    }

    /// Removes the next item without waiting.
    ///
    /// # Errors
    ///
    /// [`QueueEmpty`], or [`QueueShutDown`] once shut down and drained.
    pub fn get_nowait(&self) -> Result<T, Error> {
        let item = self.inner.items.borrow_mut().pop();
        match item {
            Some(item) => {
                wake_first(&self.inner.putters);
                Ok(item)
            }
            None if self.inner.shutdown.get() => Err(Error::new(QueueShutDown)),
            None => Err(Error::new(QueueEmpty)),
        }
    }

    /// Removes the next item, waiting while the queue is empty.
    ///
    /// # Errors
    ///
    /// [`QueueShutDown`] once shut down and drained; the waiting task's
    /// cancellation.
    pub async fn get(&self) -> Result<T, Error> {
        let inner = &self.inner;
        while self.empty() {
            if inner.shutdown.get() {
                return Err(Error::new(QueueShutDown));
            }
            let ev = get_running_loop()?;
            let getter: Future<()> = Future::new(&ev);
            inner.getters.borrow_mut().push_back(getter.clone());
            // Leaving without an item (cancelled, or dropped mid-wait): an
            // item this getter was woken for goes to the next one.
            let leave = OnDrop::new(|| {
                getter.cancel(None);
                inner
                    .getters
                    .borrow_mut()
                    .retain(|g| !g.same_future(&getter));
                if !self.empty() && !getter.cancelled() {
                    wake_first(&inner.getters);
                }
            });
            if let Err(err) = getter.clone().await {
                drop(leave);
                return Err(err);
            }
            leave.defuse();
        }
        self.get_nowait()
    }

    /// Marks one item as processed (see [`join`](Queue::join)).
    ///
    /// # Errors
    ///
    /// Called more times than items were put ("task_done() called too many
    /// times").
    pub fn task_done(&self) -> Result<(), Error> {
        let unfinished = self.inner.unfinished.get();
        if unfinished == 0 {
            return Err(Error::msg("task_done() called too many times"));
        }
        self.inner.unfinished.set(unfinished - 1);
        if unfinished == 1 {
            self.inner.finished.set();
        }
        Ok(())
    }

    /// Waits until every item put was marked done with `task_done`.
    ///
    /// # Errors
    ///
    /// The waiting task's cancellation.
    pub async fn join(&self) -> Result<(), Error> {
        if self.inner.unfinished.get() > 0 {
            self.inner.finished.wait().await?;
        }
        Ok(())
    }

    /// Shuts the queue down: `put` fails from now on, and `get` fails once
    /// the queue is empty; with `immediate`, the items are dropped now (and
    /// counted as done for `join`). Every waiter is woken.
    ///
    /// Equivalent of asyncio 3.13's `Queue.shutdown`.
    ///
    /// # Panics
    ///
    /// If an item's destructor panics, with that panic, once the queue's
    /// state is settled: every waiter woken, the count for `join` updated,
    /// every other item dropped.
    pub fn shutdown(&self, immediate: bool) {
        let inner = &self.inner;
        inner.shutdown.set(true);
        // The items are dropped after the queue's borrow ends (an item's
        // `Drop` may use the queue) and after the state is settled (it may
        // panic).
        let items = if immediate {
            let items = std::mem::take(&mut *inner.items.borrow_mut());
            let unfinished = inner.unfinished.get().saturating_sub(items.len());
            inner.unfinished.set(unfinished);
            if unfinished == 0 {
                inner.finished.set();
            }
            Some(items)
        } else {
            None
        };
        wake_all(&inner.getters);
        wake_all(&inner.putters);
        if let Some(items) = items {
            drop_each(items);
        }
    }

    /// True once [`shutdown`](Queue::shutdown) was called.
    pub fn is_shutdown(&self) -> bool {
        self.inner.shutdown.get()
    }
}

/// Drops every item, one at a time: a destructor that panics does not stop
/// the others from being dropped (a second panic while the first unwinds
/// would abort); the first panic is resumed at the end, the others'
/// payloads are leaked (their own drop could panic again).
fn drop_each<T, S: QueueStore<T>>(mut items: S) {
    let mut first = None;
    while let Some(item) = items.pop() {
        if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(move || drop(item))) {
            match first {
                None => first = Some(payload),
                Some(_) => {
                    Box::leak(payload);
                }
            }
        }
    }
    if let Some(payload) = first {
        panic::resume_unwind(payload);
    }
}

impl<T, S: QueueStore<T>> fmt::Debug for Queue<T, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue")
            .field("maxsize", &self.inner.maxsize)
            .field("qsize", &self.inner.items.borrow().len())
            .field("getters", &self.inner.getters.borrow().len())
            .field("putters", &self.inner.putters.borrow().len())
            .field("unfinished", &self.inner.unfinished.get())
            .finish()
    }
}

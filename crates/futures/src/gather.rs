//! [`gather`], [`gather_settled`] and the [`gather!`](crate::gather!)
//! macro: run awaitables concurrently, collect results in input order
//! (asyncio's `asyncio.gather`).
//!
//! Invariants (asyncio's `_GatheringFuture`):
//! 1. Every awaitable runs as its own task, so a failing child does not stop
//!    the others: without `return_exceptions` the first error (or child
//!    cancellation) completes the gather at once and the other children keep
//!    running; with it (`gather_settled`) errors come back in place.
//! 2. Cancelling the gather (or the task awaiting it) cancels every child;
//!    the gather then ends with `Cancelled` once they finished, even with
//!    `return_exceptions`. So does dropping it while it is awaited (a
//!    select's losing branch); one dropped without being awaited leaves
//!    its children running (asyncio's children run whoever awaits).
//! 3. Results are moved out of the children (no `Clone` needed): the gather
//!    owns its child tasks.
//! 4. An awaitable that is already a tulip [`Task`] or [`Future`] is what
//!    cancelling the gather cancels (asyncio's gather uses such objects as
//!    its children): its wrapper task, if cancelled before its first step,
//!    would never reach it and leave it running.

use std::any::Any;
use std::cell::{Cell, OnceCell, RefCell};
use std::fmt;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, ready};

use loop_core::{EventLoop, get_running_loop};

use crate::error::Error;
use crate::future::{DoneObserver, Future};
use crate::task::{AnyFuture, AnyTask, Task, TaskControl};
use crate::task_result::IntoTaskResult;

/// Cancels a child awaitable that is a [`Task`] or a [`Future`] itself
/// (invariant 4).
pub(crate) type Canceller = Box<dyn Fn(Option<&str>) -> bool>;

/// The canceller of `aw`, if it is a tulip task or future.
fn canceller<F: 'static, T: 'static>(aw: &F) -> Option<Canceller> {
    let aw: &dyn Any = aw;
    if let Some(task) = aw.downcast_ref::<Task<T>>() {
        let task = task.as_any();
        return Some(Box::new(move |msg| task.cancel(msg)));
    }
    if let Some(fut) = aw.downcast_ref::<Future<T>>() {
        let fut = fut.clone();
        return Some(Box::new(move |msg| fut.cancel(msg)));
    }
    None
}

/// A gather's children, by index: its own typed tasks (`gather`), or
/// type-erased ones (`gather!` of differently typed awaitables).
pub(crate) trait Children {
    fn count(&self) -> usize;
    fn child(&self, index: usize) -> &dyn TaskControl;
}

impl<T: 'static> Children for Vec<Task<T>> {
    fn count(&self) -> usize {
        self.len()
    }

    fn child(&self, index: usize) -> &dyn TaskControl {
        self[index].control()
    }
}

impl Children for Vec<AnyTask> {
    fn count(&self) -> usize {
        self.len()
    }

    fn child(&self, index: usize) -> &dyn TaskControl {
        self[index].control()
    }
}

/// The shared state of one gather; it owns the children (invariant 3),
/// so the results are moved out of them at the end.
pub(crate) struct GatherCore<C> {
    /// Set once every child is spawned ([`GatherCore::attach`]); children
    /// are told to report here as each is spawned, while its memory is
    /// still in cache.
    children: OnceCell<C>,
    /// By child index (ascending), the awaitables to cancel instead of the
    /// wrapper task; sparse, as most children have none.
    cancellers: OnceCell<Cancellers>,
    return_exceptions: bool,
    finished: Cell<usize>,
    cancel_requested: Cell<bool>,
    cancel_message: RefCell<Option<String>>,
    outcome: RefCell<Option<Result<(), Error>>>,
    done: Future<()>,
}

impl<C: Children + 'static> GatherCore<C> {
    /// A core whose children are still to be spawned and attached.
    fn new(return_exceptions: bool, done: Future<()>) -> Rc<Self> {
        Rc::new(GatherCore {
            children: OnceCell::new(),
            cancellers: OnceCell::new(),
            return_exceptions,
            finished: Cell::new(0),
            cancel_requested: Cell::new(false),
            cancel_message: RefCell::new(None),
            outcome: RefCell::new(None),
            done,
        })
    }

    /// Takes the spawned children (each already told to report here).
    fn attach(&self, children: C, cancellers: Cancellers) {
        let empty = children.count() == 0;
        let _ = self.children.set(children);
        let _ = self.cancellers.set(cancellers);
        if empty {
            self.finish(Ok(()));
        }
    }

    /// A core for children spawned already (`gather!`).
    pub(crate) fn start(
        children: C,
        cancellers: Cancellers,
        return_exceptions: bool,
        done: Future<()>,
    ) -> Rc<Self> {
        let core = Self::new(return_exceptions, done);
        let observer: Rc<dyn DoneObserver> = core.clone();
        for index in 0..children.count() {
            children
                .child(index)
                .add_done_observer(observer.clone(), index);
        }
        core.attach(children, cancellers);
        core
    }

    /// The children, for moving their results out once done.
    pub(crate) fn children(&self) -> Option<&C> {
        self.children.get()
    }

    fn child_done(&self, child: &dyn TaskControl) {
        self.finished.set(self.finished.get() + 1);
        if self.outcome.borrow().is_some() {
            // Mark a late child's error retrieved, as asyncio does.
            let _ = child.error_now();
            return;
        }
        if !self.return_exceptions && child.has_error() {
            if let Some(err) = child.error_now() {
                self.finish(Err(err));
                return;
            }
        }
        let count = self.children.get().map_or(usize::MAX, Children::count);
        if self.finished.get() == count {
            if self.cancel_requested.get() {
                let msg = self.cancel_message.borrow().clone();
                self.finish(Err(Error::cancelled(msg.as_deref())));
            } else {
                self.finish(Ok(()));
            }
        }
    }

    fn finish(&self, outcome: Result<(), Error>) {
        *self.outcome.borrow_mut() = Some(outcome);
        let _ = self.done.set_result(());
    }

    pub(crate) fn cancel(&self, msg: Option<&str>) -> bool {
        if self.outcome.borrow().is_some() {
            return false;
        }
        let (Some(children), Some(cancellers)) = (self.children.get(), self.cancellers.get())
        else {
            return false;
        };
        let mut any = false;
        let mut cancellers = cancellers.iter().peekable();
        for index in 0..children.count() {
            let cancelled = match cancellers.next_if(|(i, _)| *i == index) {
                Some((_, cancel)) => cancel(msg),
                None => children.child(index).cancel_task(msg),
            };
            if cancelled {
                any = true;
            }
        }
        if any {
            self.cancel_requested.set(true);
            *self.cancel_message.borrow_mut() = msg.map(str::to_string);
        }
        any
    }

    pub(crate) fn is_done(&self) -> bool {
        self.outcome.borrow().is_some()
    }

    /// The gather's future is dropped: if it was being awaited through
    /// `signal`, the children are cancelled (invariant 2).
    pub(crate) fn cancel_if_awaited(&self, signal: &Future<()>) {
        if signal.is_awaiting() {
            self.cancel(None);
        }
    }

    /// Waits for the outcome as one awaiter; cancelling the awaiting task
    /// cancels the children (invariant 2).
    pub(crate) fn poll_outcome(
        self: &Rc<Self>,
        signal: &mut Future<()>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), Error>> {
        let waiter: Pin<Rc<dyn AnyFuture>> = Pin::new(self.clone()) as Pin<Rc<dyn AnyFuture>>;
        ready!(signal.poll_awaiter(cx, Some(waiter)))?;
        Poll::Ready(self.outcome.borrow().clone().unwrap_or(Ok(())))
    }
}

// The core is never pinned in place (nothing projects into `C`).
impl<C> Unpin for GatherCore<C> {}

impl<C: Children + 'static> DoneObserver for GatherCore<C> {
    fn notify(&self, index: usize) {
        // Not attached: the gather failed while spawning; nobody waits.
        if let Some(children) = self.children.get() {
            if index < children.count() {
                self.child_done(children.child(index));
            }
        }
    }
}

impl<C: Children + 'static> AnyFuture for GatherCore<C> {
    fn cancel_any(&self, msg: Option<&str>) -> bool {
        self.cancel(msg)
    }
}

/// The core of a `gather!` (children of different types).
pub(crate) type TupleCore = GatherCore<Vec<AnyTask>>;

/// The spawned children and their cancellers.
type Spawned<T> = (Vec<Task<T>>, Cancellers);

/// Child index → canceller, ascending, only for the children that have one.
pub(crate) type Cancellers = Vec<(usize, Canceller)>;

/// Spawns each awaitable as a task on `ev`, each told to report to
/// `observer` with its index.
fn spawn_all<I, F, R>(
    ev: &EventLoop,
    aws: I,
    observer: &Rc<dyn DoneObserver>,
    site: &'static std::panic::Location<'static>,
) -> Result<Spawned<R::Ok>, Error>
where
    I: IntoIterator<Item = F>,
    F: std::future::Future<Output = R> + 'static,
    R: IntoTaskResult,
{
    let aws = aws.into_iter();
    let mut tasks = Vec::with_capacity(aws.size_hint().0);
    let mut cancellers = Vec::new();
    for (index, aw) in aws.enumerate() {
        if let Some(cancel) = canceller::<F, R::Ok>(&aw) {
            cancellers.push((index, cancel));
        }
        let task = Task::spawn(ev, aw, site)?;
        task.control().add_done_observer(observer.clone(), index);
        tasks.push(task);
    }
    Ok((tasks, cancellers))
}

enum Setup<T: 'static> {
    Ready {
        core: Rc<GatherCore<Vec<Task<T>>>>,
        signal: Future<()>,
    },
    Failed(Option<Error>),
}

/// Spawns the children of a `gather`/`gather_settled`.
fn setup<I, F, R>(
    aws: I,
    return_exceptions: bool,
    site: &'static std::panic::Location<'static>,
) -> Setup<R::Ok>
where
    I: IntoIterator<Item = F>,
    F: std::future::Future<Output = R> + 'static,
    R: IntoTaskResult,
{
    let ev = match get_running_loop() {
        Ok(ev) => ev,
        Err(err) => return Setup::Failed(Some(err.into())),
    };
    let signal = Future::with_site(&ev, site);
    let core = GatherCore::new(return_exceptions, signal.clone());
    let observer: Rc<dyn DoneObserver> = core.clone();
    match spawn_all(&ev, aws, &observer, site) {
        Ok((tasks, cancellers)) => {
            core.attach(tasks, cancellers);
            Setup::Ready { core, signal }
        }
        Err(err) => Setup::Failed(Some(err)),
    }
}

/// Runs every awaitable concurrently; resolves to their results in input
/// order, or to the first error.
///
/// Equivalent of [`asyncio.gather`](https://docs.python.org/3/library/asyncio-task.html#asyncio.gather)
/// with `return_exceptions=False`, for awaitables of one type. For
/// differently typed awaitables use [`gather!`](crate::gather!).
#[track_caller]
pub fn gather<I, F, R>(aws: I) -> Gather<R::Ok>
where
    I: IntoIterator<Item = F>,
    F: std::future::Future<Output = R> + 'static,
    R: IntoTaskResult,
{
    Gather {
        setup: setup(aws, false, std::panic::Location::caller()),
    }
}

/// Like [`gather`] with `return_exceptions=True`: each result or error in
/// place; the gather itself fails only when cancelled.
#[track_caller]
pub fn gather_settled<I, F, R>(aws: I) -> GatherSettled<R::Ok>
where
    I: IntoIterator<Item = F>,
    F: std::future::Future<Output = R> + 'static,
    R: IntoTaskResult,
{
    GatherSettled {
        setup: setup(aws, true, std::panic::Location::caller()),
    }
}

/// The future returned by [`gather`].
#[must_use = "futures do nothing unless awaited"]
pub struct Gather<T: 'static> {
    setup: Setup<T>,
}

/// The future returned by [`gather_settled`].
#[must_use = "futures do nothing unless awaited"]
pub struct GatherSettled<T: 'static> {
    setup: Setup<T>,
}

/// A gather dropped while it was being awaited (a select's losing branch,
/// the awaiting task aborted) cancels its children, as cancelling the task
/// awaiting an asyncio gather does (invariant 2); one never awaited leaves
/// them running, as an asyncio gather nobody awaits.
impl<T: 'static> Drop for Setup<T> {
    fn drop(&mut self) {
        if let Setup::Ready { core, signal } = self {
            core.cancel_if_awaited(signal);
        }
    }
}

impl<T: 'static> Setup<T> {
    fn cancel(&self, msg: Option<&str>) -> bool {
        match self {
            Setup::Ready { core, .. } => core.cancel(msg),
            Setup::Failed(_) => false,
        }
    }

    fn done(&self) -> bool {
        match self {
            Setup::Ready { core, .. } => core.is_done(),
            Setup::Failed(_) => true,
        }
    }

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<&[Task<T>], Error>> {
        match self {
            Setup::Failed(err) => Poll::Ready(Err(err
                .take()
                .unwrap_or_else(|| Error::msg("gather polled after completion")))),
            Setup::Ready { core, signal } => {
                ready!(core.poll_outcome(signal, cx))?;
                Poll::Ready(Ok(core.children().map_or(&[], Vec::as_slice)))
            }
        }
    }
}

macro_rules! gather_common {
    ($name:ident) => {
        impl<T: 'static> $name<T> {
            /// Cancels every child; false if the gather is already done or
            /// no child could be cancelled.
            pub fn cancel(&self, msg: Option<&str>) -> bool {
                self.setup.cancel(msg)
            }

            /// True once the outcome is known.
            pub fn done(&self) -> bool {
                self.setup.done()
            }
        }

        impl<T: 'static> fmt::Debug for $name<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("done", &self.done())
                    .finish()
            }
        }
    };
}

gather_common!(Gather);
gather_common!(GatherSettled);

impl<T: 'static> std::future::Future for Gather<T> {
    type Output = Result<Vec<T>, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let tasks = ready!(self.get_mut().setup.poll_ready(cx))?;
        Poll::Ready(tasks.iter().map(Task::__take_outcome).collect())
    }
}

impl<T: 'static> std::future::Future for GatherSettled<T> {
    type Output = Result<Vec<Result<T, Error>>, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let tasks = ready!(self.get_mut().setup.poll_ready(cx))?;
        Poll::Ready(Ok(tasks.iter().map(Task::__take_outcome).collect()))
    }
}

/// Support for [`gather!`](crate::gather!): tuples of awaitables.
#[doc(hidden)]
pub mod tuple {
    use super::*;

    /// The future [`gather!`](crate::gather!) returns: a tuple of tasks.
    #[must_use = "futures do nothing unless awaited"]
    pub struct GatherTuple<Ts> {
        pub(super) state: Option<(Rc<TupleCore>, Ts, Future<()>)>,
        pub(super) error: Option<Error>,
    }

    /// A tuple of awaitables that can be gathered.
    pub trait IntoGatherTuple {
        /// The tuple of tasks.
        type Tasks: TakeAll;
        /// Spawns every element; also returns their cancellers.
        fn spawn(self) -> Result<(Self::Tasks, Cancellers), Error>;
    }

    /// A tuple of tasks whose results can be moved out.
    pub trait TakeAll {
        /// The tuple of results.
        type Out;
        /// The tasks, type-erased.
        fn any(&self) -> Vec<AnyTask>;
        /// Moves every result out.
        fn take_all(&self) -> Result<Self::Out, Error>;
    }

    macro_rules! tuple_impls {
        ($(($F:ident, $R:ident, $i:tt)),+) => {
            impl<$($F, $R),+> IntoGatherTuple for ($($F,)+)
            where
                $($F: std::future::Future<Output = $R> + 'static, $R: IntoTaskResult,)+
            {
                type Tasks = ($(Task<$R::Ok>,)+);

                fn spawn(self) -> Result<(Self::Tasks, Cancellers), Error> {
                    let ev = get_running_loop()?;
                    let site = std::panic::Location::caller();
                    let cancellers = [$(canceller::<$F, $R::Ok>(&self.$i)),+]
                        .into_iter()
                        .enumerate()
                        .filter_map(|(i, cancel)| Some((i, cancel?)))
                        .collect();
                    Ok((($(Task::spawn(&ev, self.$i, site)?,)+), cancellers))
                }
            }

            impl<$($F: 'static),+> TakeAll for ($(Task<$F>,)+) {
                type Out = ($($F,)+);

                fn any(&self) -> Vec<AnyTask> {
                    vec![$(self.$i.as_any()),+]
                }

                fn take_all(&self) -> Result<Self::Out, Error> {
                    Ok(($(self.$i.__take_outcome()?,)+))
                }
            }
        };
    }

    tuple_impls!((A, RA, 0));
    tuple_impls!((A, RA, 0), (B, RB, 1));
    tuple_impls!((A, RA, 0), (B, RB, 1), (C, RC, 2));
    tuple_impls!((A, RA, 0), (B, RB, 1), (C, RC, 2), (D, RD, 3));
    tuple_impls!((A, RA, 0), (B, RB, 1), (C, RC, 2), (D, RD, 3), (E, RE, 4));
    tuple_impls!(
        (A, RA, 0),
        (B, RB, 1),
        (C, RC, 2),
        (D, RD, 3),
        (E, RE, 4),
        (G, RG, 5)
    );
    tuple_impls!(
        (A, RA, 0),
        (B, RB, 1),
        (C, RC, 2),
        (D, RD, 3),
        (E, RE, 4),
        (G, RG, 5),
        (H, RH, 6)
    );
    tuple_impls!(
        (A, RA, 0),
        (B, RB, 1),
        (C, RC, 2),
        (D, RD, 3),
        (E, RE, 4),
        (G, RG, 5),
        (H, RH, 6),
        (I, RI, 7)
    );

    /// Spawns the tuple's awaitables and gathers them.
    pub fn gather_tuple<T: IntoGatherTuple>(aws: T) -> GatherTuple<T::Tasks> {
        let started = aws.spawn().and_then(|(tasks, cancellers)| {
            let ev = get_running_loop()?;
            let signal = Future::new(&ev);
            let core = GatherCore::start(tasks.any(), cancellers, false, signal.clone());
            Ok((core, tasks, signal))
        });
        match started {
            Ok(state) => GatherTuple {
                state: Some(state),
                error: None,
            },
            Err(err) => GatherTuple {
                state: None,
                error: Some(err),
            },
        }
    }

    impl<Ts> Drop for GatherTuple<Ts> {
        fn drop(&mut self) {
            // As a gather's (see `Setup`'s drop).
            if let Some((core, _, signal)) = &self.state {
                core.cancel_if_awaited(signal);
            }
        }
    }

    impl<Ts: TakeAll> GatherTuple<Ts> {
        /// Cancels every child.
        pub fn cancel(&self, msg: Option<&str>) -> bool {
            self.state
                .as_ref()
                .is_some_and(|(core, _, _)| core.cancel(msg))
        }
    }

    impl<Ts: TakeAll + Unpin> std::future::Future for GatherTuple<Ts> {
        type Output = Result<Ts::Out, Error>;

        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
            let this = self.get_mut();
            let Some((core, tasks, signal)) = this.state.as_mut() else {
                return Poll::Ready(Err(this
                    .error
                    .take()
                    .unwrap_or_else(|| Error::msg("gather polled after completion"))));
            };
            ready!(core.poll_outcome(signal, cx))?;
            Poll::Ready(tasks.take_all())
        }
    }

    impl<Ts> fmt::Debug for GatherTuple<Ts> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("GatherTuple").finish_non_exhaustive()
        }
    }
}

/// Gathers differently typed awaitables into a tuple of results.
///
/// Equivalent of `asyncio.gather(a, b, …)`: the awaitables run as tasks,
/// results come back in order, the first error propagates (the others keep
/// running), and cancelling the gather cancels them all. Up to 8
/// awaitables.
///
/// # Examples
///
/// ```
/// use loop_futures::{Error, gather, run};
///
/// let (n, s) = run(async {
///     gather!(async { Ok::<_, Error>(1) }, async { Ok::<_, Error>("two") }).await
/// })
/// .unwrap();
/// assert_eq!((n, s), (1, "two"));
/// ```
#[macro_export]
macro_rules! gather {
    ($($aw:expr),+ $(,)?) => {
        $crate::__gather_tuple::gather_tuple(($($aw,)+))
    };
}

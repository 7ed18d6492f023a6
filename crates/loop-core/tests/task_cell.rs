//! `TaskCell`: the pinned task allocation. These tests pin down the
//! guarantees its one `unsafe` block relies on: a polled body never moves
//! (checked by a body that remembers its own address), it is dropped in
//! place, a re-entrant poll or drop is refused, and the cell is a
//! `Runnable` driven by its head's hooks.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::marker::PhantomPinned;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use loop_core::{EventLoop, ManualClock, Runnable, TaskCell, TaskHooks};

type Log = Rc<RefCell<Vec<String>>>;

/// A `!Unpin` body that records where it was first polled and checks, at
/// every later poll and when dropped, that it is still there.
struct AddressCheck {
    polls: Cell<u32>,
    ready_after: u32,
    seen_at: Cell<Option<usize>>,
    log: Log,
    _pinned: PhantomPinned,
}

impl AddressCheck {
    fn new(ready_after: u32, log: &Log) -> Self {
        AddressCheck {
            polls: Cell::new(0),
            ready_after,
            seen_at: Cell::new(None),
            log: log.clone(),
            _pinned: PhantomPinned,
        }
    }

    fn check_address(&self) {
        let here = std::ptr::from_ref(self) as usize;
        match self.seen_at.get() {
            Some(at) => assert_eq!(at, here, "a pinned body moved"),
            None => self.seen_at.set(Some(here)),
        }
    }
}

impl Future for AddressCheck {
    type Output = u32;

    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<u32> {
        let this = self.as_ref().get_ref();
        this.check_address();
        this.polls.set(this.polls.get() + 1);
        this.log
            .borrow_mut()
            .push(format!("poll {}", this.polls.get()));
        if this.polls.get() >= this.ready_after {
            Poll::Ready(this.polls.get())
        } else {
            Poll::Pending
        }
    }
}

impl Drop for AddressCheck {
    fn drop(&mut self) {
        if self.seen_at.get().is_some() {
            self.check_address();
        }
        self.log.borrow_mut().push("drop".to_string());
    }
}

fn poll_once<H, F: Future>(cell: &Pin<Rc<TaskCell<H, F>>>) -> Option<Poll<F::Output>> {
    let mut cx = Context::from_waker(Waker::noop());
    let mut output = None;
    let step = cell.as_ref().poll_body(&mut cx, &mut output)?;
    Some(step.map(|()| output.expect("a finished step hands over its output")))
}

#[test]
fn a_polled_body_stays_at_its_address_and_is_dropped_in_place() {
    let log = Log::default();
    let cell = TaskCell::new((), AddressCheck::new(10, &log));
    for _ in 0..3 {
        assert_eq!(poll_once(&cell), Some(Poll::Pending));
    }
    assert!(cell.has_body());
    // `drop_body` drops it where it is: `AddressCheck::drop` checks.
    assert!(cell.drop_body());
    assert!(!cell.has_body());
    assert_eq!(poll_once(&cell), None, "no body, nothing to poll");
    assert_eq!(*log.borrow(), ["poll 1", "poll 2", "poll 3", "drop"]);
    assert!(cell.drop_body(), "dropping an empty body again is fine");
}

#[test]
fn a_body_still_there_is_dropped_in_place_with_the_cell() {
    let log = Log::default();
    let cell = TaskCell::new((), AddressCheck::new(10, &log));
    assert_eq!(poll_once(&cell), Some(Poll::Pending));
    drop(cell);
    assert_eq!(*log.borrow(), ["poll 1", "drop"]);
}

#[test]
fn a_ready_body_returns_its_output() {
    let log = Log::default();
    let cell = TaskCell::new(7_u8, AddressCheck::new(2, &log));
    assert_eq!(*cell.head(), 7);
    assert_eq!(poll_once(&cell), Some(Poll::Pending));
    assert_eq!(poll_once(&cell), Some(Poll::Ready(2)));
}

/// A body that, while being polled, tries to poll and drop itself through
/// the cell it lives in.
/// Where a `Reentrant` body finds its own cell.
type SelfSlot = Rc<RefCell<Option<Pin<Rc<TaskCell<(), Reentrant>>>>>>;

struct Reentrant {
    cell: SelfSlot,
    seen: Rc<RefCell<Vec<String>>>,
}

impl Future for Reentrant {
    type Output = ();

    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        let cell = self.cell.borrow().clone().expect("cell set");
        let mut seen = self.seen.borrow_mut();
        seen.push(format!("polling {}", cell.is_polling()));
        seen.push(format!("has body {}", cell.has_body()));
        seen.push(format!("drop {}", cell.drop_body()));
        seen.push(format!("nested poll {:?}", poll_once(&cell)));
        Poll::Pending
    }
}

#[test]
fn a_reentrant_poll_or_drop_is_refused() {
    let slot = Rc::new(RefCell::new(None));
    let seen = Rc::new(RefCell::new(Vec::new()));
    let cell = TaskCell::new(
        (),
        Reentrant {
            cell: slot.clone(),
            seen: seen.clone(),
        },
    );
    *slot.borrow_mut() = Some(cell.clone());
    assert!(!cell.is_polling());
    assert_eq!(poll_once(&cell), Some(Poll::Pending));
    assert_eq!(
        *seen.borrow(),
        [
            "polling true",
            "has body true",
            "drop false",
            "nested poll None"
        ]
    );
    assert!(cell.has_body(), "the refused drop left the body in place");
    // Break the cycle: the body holds its own cell.
    assert!(cell.drop_body());
    slot.borrow_mut().take();
}

/// A head whose hooks log what the loop does with the cell.
struct Head {
    log: Log,
}

impl<F: Future<Output = u32> + 'static> TaskHooks<F> for Head {
    fn run(cell: Pin<Rc<TaskCell<Self, F>>>, _ev: &EventLoop) {
        let outcome = poll_once(&cell);
        cell.head()
            .log
            .borrow_mut()
            .push(format!("run {outcome:?}"));
    }

    fn on_loop_closed(cell: Pin<Rc<TaskCell<Self, F>>>, _ev: &EventLoop) {
        cell.head().log.borrow_mut().push("closed".to_string());
        cell.drop_body();
    }

    fn site(_cell: &TaskCell<Self, F>) -> Option<&'static std::panic::Location<'static>> {
        Some(std::panic::Location::caller())
    }

    fn collect(cell: Pin<Rc<TaskCell<Self, F>>>, sink: &mut dyn Any) {
        if let Some(count) = sink.downcast_mut::<usize>() {
            *count += 1;
        }
        drop(cell);
    }
}

/// A loop on virtual time.
fn manual_loop() -> EventLoop {
    EventLoop::builder()
        .manual_clock(ManualClock::new())
        .build()
        .expect("create loop")
}

#[test]
fn a_cell_is_a_runnable_driven_by_its_head() {
    let ev = manual_loop();
    let log = Log::default();
    let cell = TaskCell::new(Head { log: log.clone() }, AddressCheck::new(5, &log));
    assert!(cell.site().is_some());
    let (_id, waker) = ev
        .spawn_runnable(cell.clone() as Pin<Rc<dyn Runnable>>)
        .unwrap();
    ev.run_once().unwrap();
    waker.wake_by_ref();
    ev.run_once().unwrap();

    let mut count = 0_usize;
    ev.collect_runnables(&mut count);
    assert_eq!(count, 1, "collect reaches the head's hook");
    let mut wrong_type = String::new();
    ev.collect_runnables(&mut wrong_type);
    assert!(
        wrong_type.is_empty(),
        "a sink of another type is left alone"
    );

    ev.close().unwrap();
    assert_eq!(
        *log.borrow(),
        [
            "poll 1",
            "run Some(Pending)",
            "poll 2",
            "run Some(Pending)",
            "closed",
            "drop"
        ]
    );
    assert!(!cell.has_body());
}

/// A head that steps its body with the waker the loop gave at spawn and,
/// once the body is done, gives the loop's reference back (as a task does).
struct Stepping {
    id: Cell<Option<loop_core::RunnableId>>,
    waker: RefCell<Option<Waker>>,
    steps: Rc<Cell<u32>>,
}

impl<F: Future<Output = ()> + 'static> TaskHooks<F> for Stepping {
    fn run(cell: Pin<Rc<TaskCell<Self, F>>>, ev: &EventLoop) {
        let head = cell.head();
        head.steps.set(head.steps.get() + 1);
        let waker = head.waker.borrow().clone().expect("spawned");
        let mut cx = Context::from_waker(&waker);
        if let Some(Poll::Ready(())) = cell.as_ref().poll_body(&mut cx, &mut None) {
            cell.drop_body();
            head.waker.borrow_mut().take();
            if let Some(id) = head.id.take() {
                ev.remove_runnable(id);
            }
        }
    }
}

fn spawn_stepping<F: Future<Output = ()> + 'static>(ev: &EventLoop, body: F) -> Rc<Cell<u32>> {
    let steps = Rc::new(Cell::new(0));
    let head = Stepping {
        id: Cell::new(None),
        waker: RefCell::new(None),
        steps: steps.clone(),
    };
    let cell = TaskCell::new(head, body);
    let (id, waker) = ev.spawn_runnable(cell.clone()).unwrap();
    cell.head().id.set(Some(id));
    *cell.head().waker.borrow_mut() = Some(waker);
    steps
}

/// One loop iteration that cannot block: a no-op callback is queued first.
fn turn(ev: &EventLoop) {
    ev.call_soon(|_| {}).unwrap();
    ev.run_once().unwrap();
}

/// Returns `Pending` `n` times, waking itself each time (a yield).
fn yields(n: u32) -> impl Future<Output = ()> {
    let mut left = n;
    std::future::poll_fn(move |cx| {
        if left == 0 {
            return Poll::Ready(());
        }
        left -= 1;
        cx.waker().wake_by_ref();
        Poll::Pending
    })
}

#[test]
fn a_reused_waker_wakes_its_new_task_and_a_stale_one_wakes_nothing() {
    let ev = manual_loop();
    // Task A keeps a clone of its waker past its end: that waker cannot
    // be reused, and waking it later must not step anything.
    let leaked: Rc<RefCell<Option<Waker>>> = Rc::default();
    let a_steps = {
        let leaked = leaked.clone();
        spawn_stepping(
            &ev,
            std::future::poll_fn(move |cx| {
                *leaked.borrow_mut() = Some(cx.waker().clone());
                Poll::Ready(())
            }),
        )
    };
    turn(&ev);
    assert_eq!(a_steps.get(), 1);

    // Tasks B and C finish without keeping their waker: later tasks reuse
    // those wakers, re-labelled for them.
    for _ in 0..2 {
        let steps = spawn_stepping(&ev, yields(0));
        turn(&ev);
        assert_eq!(steps.get(), 1);
    }
    // D reuses a waker: its self-wakes must reach D, step after step.
    let d_steps = spawn_stepping(&ev, yields(3));
    for expected in 1..=4 {
        turn(&ev);
        assert_eq!(d_steps.get(), expected, "each yield woke D once");
    }
    // E is pending for good; A's stale waker must not step it.
    let e_steps = spawn_stepping(&ev, std::future::pending::<()>());
    turn(&ev);
    assert_eq!(e_steps.get(), 1);
    leaked.borrow().as_ref().unwrap().wake_by_ref();
    turn(&ev);
    turn(&ev);
    assert_eq!(e_steps.get(), 1, "a stale waker stepped another task");
    assert_eq!(a_steps.get(), 1);
    ev.close().unwrap();
}

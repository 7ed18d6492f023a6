//! `StreamReader::read` is one hand-written future (`StreamRead`), not the
//! shared wait the other read methods use: these tests pin down its own
//! paths, each against asyncio's `read` behaviour (a waiter is left
//! behind by nobody, a second waiting read is refused, cancellation
//! leaves the bytes, a read to EOF gathers every block). Manual clock, no
//! sockets, every run bounded by a watchdog timer.

use std::cell::{Cell, RefCell};
use std::future::Future as _;
use std::io;
use std::pin::{Pin, pin};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use loop_core::EventLoop;
use loop_futures::{Error, EventLoopExt, current_task};
use loop_transports::StreamReader;
use support::{manual_loop, run_briefly};

mod support;

fn run<T: 'static>(
    ev: &EventLoop,
    fut: impl std::future::Future<Output = Result<T, Error>> + 'static,
) -> Result<T, Error> {
    support::run_bounded(ev, support::WATCHDOG, fut)
}

/// Counts its wakes.
struct CountingWaker(AtomicUsize);

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn read_aborted_while_waiting_leaves_no_waiter() {
    let ev = manual_loop();
    let stream = StreamReader::default();
    let r = stream.clone();
    let t = ev.create_task(async move { r.read(10).await }).unwrap();
    run_briefly(&ev);
    assert!(!t.done(), "read waits for data");
    t.abort();
    run_briefly(&ev);
    assert!(t.cancelled());
    // A new read that has to wait is not refused as concurrent.
    let r = stream.clone();
    let t = ev.create_task(async move { r.read(10).await }).unwrap();
    run_briefly(&ev);
    assert!(!t.done());
    stream.feed_data(b"after abort");
    assert_eq!(run(&ev, t).unwrap(), b"after abor");
}

#[test]
fn read_polled_once_then_dropped_outside_a_task_leaves_no_waiter() {
    let ev = manual_loop();
    let stream = StreamReader::default();
    let r = stream.clone();
    let got = run(&ev, async move {
        {
            let mut fut = pin!(r.read(4));
            let mut cx = Context::from_waker(Waker::noop());
            assert!(fut.as_mut().poll(&mut cx).is_pending());
        }
        r.feed_data(b"abcd");
        r.read(4).await
    })
    .unwrap();
    assert_eq!(got, b"abcd");
}

#[test]
fn read_while_another_read_waits_is_refused() {
    let ev = manual_loop();
    let stream = StreamReader::default();
    let r = stream.clone();
    let first = ev.create_task(async move { r.read(100).await }).unwrap();
    run_briefly(&ev);
    let r = stream.clone();
    let err = run(&ev, async move { r.read(100).await }).unwrap_err();
    assert!(
        err.to_string()
            .contains("read() called while another coroutine is already waiting for incoming data"),
        "{err}"
    );
    // The first read is unaffected.
    stream.feed_data(b"first");
    assert_eq!(run(&ev, first).unwrap(), b"first");
}

#[test]
fn read_cancelled_while_waiting_keeps_later_bytes_for_the_next_read() {
    let ev = manual_loop();
    let stream = StreamReader::default();
    let r = stream.clone();
    let t = ev.create_task(async move { r.read(100).await }).unwrap();
    run_briefly(&ev);
    t.cancel(None);
    // Bytes arrive between the cancel and the task's next step: the read
    // ends cancelled (asyncio's CancelledError from the waiter), the bytes
    // stay buffered.
    stream.feed_data(b"kept");
    run_briefly(&ev);
    assert!(t.cancelled());
    assert_eq!(stream.buffered(), 4);
    let r = stream.clone();
    assert_eq!(run(&ev, async move { r.read(100).await }).unwrap(), b"kept");
}

#[test]
fn read_waiting_gets_an_exception_set_later() {
    let ev = manual_loop();
    let stream = StreamReader::default();
    let r = stream.clone();
    let t = ev.create_task(async move { r.read(100).await }).unwrap();
    run_briefly(&ev);
    stream.set_exception(Error::new(io::Error::other("boom")));
    let err = run(&ev, t).unwrap_err();
    assert_eq!(err.to_string(), "boom");
    // Every later read, of any size, fails the same way.
    for n in [-1, 0, 5] {
        let r = stream.clone();
        let err = run(&ev, async move { r.read(n).await }).unwrap_err();
        assert_eq!(err.to_string(), "boom", "read({n})");
    }
}

#[test]
fn read_polled_again_before_its_wake_wakes_the_newest_waker() {
    let ev = manual_loop();
    let stream = StreamReader::default();
    let r = stream.clone();
    let old = Arc::new(CountingWaker(AtomicUsize::new(0)));
    let new = Arc::new(CountingWaker(AtomicUsize::new(0)));
    let (old2, new2) = (old.clone(), new.clone());
    let got = run(&ev, async move {
        let mut fut = pin!(r.read(3));
        let old_waker = Waker::from(old2);
        let new_waker = Waker::from(new2);
        assert!(
            fut.as_mut()
                .poll(&mut Context::from_waker(&old_waker))
                .is_pending()
        );
        assert!(
            fut.as_mut()
                .poll(&mut Context::from_waker(&new_waker))
                .is_pending()
        );
        r.feed_data(b"xyz");
        match fut.as_mut().poll(&mut Context::from_waker(&new_waker)) {
            Poll::Ready(result) => result,
            Poll::Pending => panic!("the fed bytes are ready"),
        }
    })
    .unwrap();
    assert_eq!(got, b"xyz");
    assert_eq!(
        old.0.load(Ordering::SeqCst),
        0,
        "the replaced waker is not woken"
    );
    assert_eq!(
        new.0.load(Ordering::SeqCst),
        1,
        "the newest waker is woken once"
    );
}

#[test]
fn read_to_eof_gathers_every_block_past_the_limit() {
    let ev = manual_loop();
    // A limit of 4: a read to EOF takes the bytes in blocks of at most 4.
    let stream = StreamReader::new(4);
    let r = stream.clone();
    let t = ev.create_task(async move { r.read(-1).await }).unwrap();
    for (i, part) in [&b"abcdef"[..], b"ghi", b"", b"jklmnopq"]
        .iter()
        .enumerate()
    {
        run_briefly(&ev);
        assert!(!t.done(), "still reading after part {i}");
        stream.feed_data(part);
    }
    stream.feed_eof();
    assert_eq!(run(&ev, t).unwrap(), b"abcdefghijklmnopq");
    // At EOF with nothing left: empty, at once.
    let r = stream.clone();
    assert_eq!(run(&ev, async move { r.read(-1).await }).unwrap(), b"");
    let r = stream.clone();
    assert_eq!(run(&ev, async move { r.read(7).await }).unwrap(), b"");
}

#[test]
fn read_zero_returns_empty_without_waiting() {
    let ev = manual_loop();
    let stream = StreamReader::default();
    stream.feed_data(b"left alone");
    let r = stream.clone();
    assert_eq!(run(&ev, async move { r.read(0).await }).unwrap(), b"");
    assert_eq!(stream.buffered(), 10, "read(0) takes nothing");
}

/// The reader keeps its last waker for the next wait: a wait by another
/// task must register (and wake) that task's waker, not the kept one.
#[test]
fn a_wait_by_another_task_wakes_that_task_not_the_last_one() {
    let ev = manual_loop();
    let stream = StreamReader::default();
    let r = stream.clone();
    let first = ev.create_task(async move { r.read(10).await }).unwrap();
    run_briefly(&ev);
    stream.feed_data(b"one");
    assert_eq!(run(&ev, first).unwrap(), b"one");
    // A second task waits, through `read` and then through `readline`.
    let r = stream.clone();
    let second = ev
        .create_task(async move {
            let a = r.read(10).await?;
            let b = r.readline().await?;
            Ok::<_, Error>((a, b))
        })
        .unwrap();
    run_briefly(&ev);
    assert!(!second.done());
    stream.feed_data(b"two");
    run_briefly(&ev);
    run_briefly(&ev);
    assert!(!second.done(), "the read returned, readline waits");
    stream.feed_data(b"three\n");
    let (a, b) = run(&ev, second).unwrap();
    assert_eq!((a.as_slice(), b.as_slice()), (&b"two"[..], &b"three\n"[..]));
}

/// Not a tulip future: parks the task's waker until opened.
struct Gate {
    open: Rc<Cell<bool>>,
    waker: Rc<RefCell<Option<Waker>>>,
}

impl std::future::Future for Gate {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.open.get() {
            return Poll::Ready(());
        }
        *self.waker.borrow_mut() = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// A task is woken (its step queued), then cancelled before that step
/// runs: the cancel's own wake is folded into the queued one, so the
/// first await that would suspend must deliver it (asyncio: the
/// `CancelledError` thrown into the coroutine at its next step), or the
/// task waits for data that may never come.
fn cancel_while_scheduled_then_wait(use_read: bool) -> bool {
    let ev = manual_loop();
    let stream = StreamReader::default();
    let open = Rc::new(Cell::new(false));
    let waker = Rc::new(RefCell::new(None::<Waker>));
    let (r, o, w) = (stream.clone(), open.clone(), waker.clone());
    let t = ev
        .create_task(async move {
            Gate { open: o, waker: w }.await;
            if use_read {
                r.read(10).await
            } else {
                r.readline().await
            }
        })
        .unwrap();
    run_briefly(&ev);
    assert!(!t.done());
    open.set(true);
    waker
        .borrow_mut()
        .take()
        .expect("the gate parked a waker")
        .wake();
    assert!(t.cancel(Some("stop")));
    run_briefly(&ev);
    run_briefly(&ev);
    t.cancelled()
}

#[test]
fn read_delivers_a_cancel_requested_while_the_task_was_scheduled() {
    assert!(cancel_while_scheduled_then_wait(true));
}

#[test]
fn readline_delivers_a_cancel_requested_while_the_task_was_scheduled() {
    assert!(cancel_while_scheduled_then_wait(false));
}

/// A read future that ended with `Cancelled` but is kept alive (the
/// coroutine swallowed the cancellation) no longer holds the reader's
/// wait: the next read may wait.
#[test]
fn a_read_ended_by_cancellation_but_kept_alive_releases_the_wait() {
    let ev = manual_loop();
    let stream = StreamReader::default();
    let r = stream.clone();
    let t = ev
        .create_task(async move {
            let me = current_task().expect("inside a task");
            let mut first = pin!(r.read(10));
            std::future::poll_fn(|cx| {
                assert!(first.as_mut().poll(cx).is_pending(), "the first read waits");
                Poll::Ready(())
            })
            .await;
            me.cancel(None);
            assert!((&mut first).await.unwrap_err().is_cancelled());
            me.uncancel();
            // `first` is still alive here.
            r.read(10).await
        })
        .unwrap();
    run_briefly(&ev);
    run_briefly(&ev);
    assert!(!t.done(), "the second read waits instead of being refused");
    stream.feed_data(b"second");
    assert_eq!(run(&ev, t).unwrap(), b"second");
}

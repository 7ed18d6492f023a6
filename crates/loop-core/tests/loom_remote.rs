//! loom models of the loop's cross-thread paths: the remote queue behind
//! `call_soon_threadsafe` (racing `close`, racing the poll) and the wake-dedup
//! flag of runnable wakers.
//!
//! Run with
//! `RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test -p loop-core --release --test loom_remote`.

#![cfg(loom)]

use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;
use loop_core::__loom::{Notify, RemoteQueue, WakeFlag};

/// The poller's wake-up fd (an eventfd): `notify` adds to a counter, a poll
/// takes the whole count. SeqCst: a syscall on the same fd is totally ordered.
#[derive(Debug, Clone)]
struct EventFd(Arc<AtomicUsize>);

impl EventFd {
    fn new() -> Self {
        EventFd(Arc::new(AtomicUsize::new(0)))
    }

    /// What the loop's poll does with the waker token: consume every pending
    /// notification; true if there was one.
    fn take(&self) -> bool {
        self.0.swap(0, Ordering::SeqCst) > 0
    }

    fn pending(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

impl Notify for EventFd {
    fn notify(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Model 1: two threads `call_soon_threadsafe` twice each while the loop
/// thread drains once and then closes. Every item ends up in exactly one
/// place: drained by the loop, handed back by `close`, or refused to its
/// pusher; each thread's items keep its call order, and once one of its
/// pushes is refused the later one is too.
#[test]
fn push_racing_close_loses_and_duplicates_nothing() {
    loom::model(|| {
        let fd = EventFd::new();
        let queue = Arc::new(RemoteQueue::new(fd.clone()));
        let producers: Vec<_> = (0..2u32)
            .map(|p| {
                let queue = queue.clone();
                thread::spawn(move || {
                    let first = queue.push(10 * p).err();
                    let second = queue.push(10 * p + 1).err();
                    if first.is_some() {
                        assert!(second.is_some(), "a push succeeded after one was refused");
                    }
                    [first, second]
                })
            })
            .collect();

        let mut drained = Vec::new();
        queue.drain_into(&mut drained);
        let (left, notifier) = queue.close();
        assert!(
            notifier.is_some(),
            "the first close hands back the notifier"
        );
        drop(notifier);

        let refused: Vec<u32> = producers
            .into_iter()
            .flat_map(|p| p.join().expect("producer panicked"))
            .flatten()
            .collect();
        let accepted: Vec<u32> = drained.iter().chain(&left).copied().collect();
        for p in 0..2 {
            let mine: Vec<u32> = accepted.iter().copied().filter(|i| i / 10 == p).collect();
            assert!(
                mine.is_sorted(),
                "thread {p}'s items out of order: {accepted:?}"
            );
        }
        let mut seen: Vec<u32> = accepted.iter().chain(&refused).copied().collect();
        seen.sort_unstable();
        assert_eq!(
            seen,
            [0, 1, 10, 11],
            "drained {drained:?}, left {left:?}, refused {refused:?}"
        );

        // Closed for good: a later push is refused, a second close is empty.
        assert!(queue.is_closed());
        assert_eq!(queue.push(7), Err(7));
        let (again, notifier) = queue.close();
        assert!(again.is_empty() && notifier.is_none());

        // Accepted items woke the poller, at most once per drain cycle (the
        // one drain splits the pushes into at most two cycles).
        let notes = fd.pending();
        assert!(notes <= 2, "{notes} notifications for {accepted:?}");
        assert_eq!(
            notes == 0,
            accepted.is_empty(),
            "{notes} notifications for {accepted:?}"
        );
    });
}

/// Model 2: pushes (two threads, two each) racing the loop's poll-then-drain cycle. Once the
/// producers are done and the loop finds no pending notification (it would
/// block in the poller for good), every pushed item has been drained: no
/// wake-up is lost between a drain and a push.
#[test]
fn push_racing_poll_loses_no_wake_up() {
    loom::model(|| {
        let fd = EventFd::new();
        let queue = Arc::new(RemoteQueue::new(fd.clone()));
        let producers: Vec<_> = (0..2u32)
            .map(|p| {
                let queue = queue.clone();
                thread::spawn(move || {
                    for item in [10 * p, 10 * p + 1] {
                        queue.push(item).expect("queue is open");
                    }
                })
            })
            .collect();

        // The loop runs while the producers push: each iteration polls
        // (consumes the notification, if any) and drains when woken. A poll
        // that finds nothing would block; here it returns and polls again.
        let mut drained = Vec::new();
        for _ in 0..2 {
            if fd.take() {
                queue.drain_into(&mut drained);
            }
        }
        for producer in producers {
            producer.join().expect("producer panicked");
        }
        // Producers done: the loop keeps going only while woken.
        while fd.take() {
            queue.drain_into(&mut drained);
        }

        // Asleep with no notification pending: nothing may be left behind.
        let (left, _notifier) = queue.close();
        assert!(left.is_empty(), "lost wake-up: {left:?} stuck in the queue");
        drained.sort_unstable();
        assert_eq!(drained, [0, 1, 10, 11]);
    });
}

/// Model 3a: two threads wake the same runnable at once: exactly one of them
/// enqueues a step. After the loop clears the flag (the step starts), a wake
/// enqueues again, once.
#[test]
fn concurrent_wakes_enqueue_one_step() {
    loom::model(|| {
        let flag = Arc::new(WakeFlag::new(false));
        let wakers: Vec<_> = (0..2)
            .map(|_| {
                let flag = flag.clone();
                thread::spawn(move || flag.try_set())
            })
            .collect();
        let enqueued = wakers
            .into_iter()
            .map(|w| w.join().expect("waker panicked"))
            .filter(|&enqueued| enqueued)
            .count();
        assert_eq!(
            enqueued, 1,
            "two concurrent wakes enqueued {enqueued} steps"
        );

        flag.clear();
        assert!(flag.try_set(), "a wake after clear must enqueue");
        assert!(!flag.try_set(), "a second wake before the step must not");
    });
}

/// Model 3b: a wake racing the start of the queued step. Either the wake
/// enqueues the next step, or it is folded into the step that is starting;
/// then that step must see what the waker wrote before waking (otherwise it
/// could return pending on stale data and never be woken again).
#[test]
fn wake_racing_step_start_is_never_lost() {
    loom::model(|| {
        // A step is queued: the flag is set.
        let flag = Arc::new(WakeFlag::new(true));
        let data = Arc::new(AtomicUsize::new(0));
        let waker = {
            let flag = flag.clone();
            let data = data.clone();
            thread::spawn(move || {
                // What the task will look at, e.g. a channel's state.
                data.store(1, Ordering::Relaxed);
                flag.try_set()
            })
        };

        // The loop starts the queued step: clear, then run (read the state).
        flag.clear();
        let seen_by_step = data.load(Ordering::Relaxed);

        let enqueued_next = waker.join().expect("waker panicked");
        if enqueued_next {
            // The wake came after the clear: it queued a second step, which
            // runs later and sees the write.
            assert!(!flag.try_set(), "the second step is queued once");
        } else {
            assert_eq!(
                seen_by_step, 1,
                "a wake folded into the running step was not visible to it"
            );
        }
    });
}

//! The task workloads measured both by the criterion benches
//! (`benches/futures.rs`, `benches/high_level.rs`) and by the interleaved
//! A/B runner (`examples/interleaved.rs`), so both measure the same code.
//!
//! Each function runs one iteration and checks its result, so a workload
//! that stopped doing its work would fail rather than get faster.

use std::cell::Cell;

use loop_core::EventLoop;
use loop_futures::{Error, EventLoopExt, gather};
use tokio::runtime::Runtime;
use tokio::sync::oneshot;
use tokio::task::LocalSet;

/// Tasks per iteration of `create_task_run`.
pub const TASKS: u64 = 100_000;
/// Round trips per iteration of `future_round_trip`.
pub const TRIPS: u64 = 100_000;
/// Children per `gather_1e4`.
pub const GATHER_N: u64 = 10_000;

thread_local! {
    /// Trivial coroutines run so far in the current iteration.
    static COUNT: Cell<u64> = const { Cell::new(0) };
}

fn bump() {
    COUNT.set(COUNT.get() + 1);
}

/// A tulip loop as the benches use it (debug off).
pub fn tulip_loop() -> EventLoop {
    EventLoop::builder()
        .debug(false)
        .build()
        .expect("create the tulip loop")
}

/// A tokio current-thread runtime with its I/O and time drivers (a tulip
/// loop always polls epoll).
pub fn tokio_rt() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("create the tokio runtime")
}

/// `TASKS` × `create_task` of a coroutine that finishes in its first step,
/// one `call_soon(stop)` behind them, one `run_forever`: every task is
/// created, stepped once, finished and released (the handle is dropped at
/// once).
pub fn create_task_run_tulip(ev: &EventLoop) {
    COUNT.set(0);
    for _ in 0..TASKS {
        let task = ev.create_task(async { bump() }).expect("create_task");
        drop(task);
    }
    ev.call_soon(|ev| ev.stop()).expect("call_soon");
    ev.run_forever().expect("run_forever");
    assert_eq!(COUNT.get(), TASKS);
}

/// The tokio peer of [`create_task_run_tulip`]: a `LocalSet` whose first
/// task spawns `TASKS` local tasks (its cheapest spawn path), then
/// `block_on(local_set)` until all ran.
pub fn create_task_run_tokio(rt: &Runtime) {
    COUNT.set(0);
    let local = LocalSet::new();
    drop(local.spawn_local(async {
        for _ in 0..TASKS {
            drop(tokio::task::spawn_local(async { bump() }));
        }
    }));
    rt.block_on(local);
    assert_eq!(COUNT.get(), TASKS);
}

/// Σ 0..n, what both gathers must add up to.
pub fn expected_sum(n: u64) -> u64 {
    n * (n - 1) / 2
}

/// `gather` of `GATHER_N` trivial coroutines: each runs as a task, the
/// results come back in input order.
pub fn gather_tulip(ev: &EventLoop) {
    let out = ev
        .run_until_complete(async {
            gather((0..GATHER_N).map(|i| async move { Ok::<_, Error>(i) })).await
        })
        .expect("gather");
    assert_eq!(out.len() as u64, GATHER_N);
    assert_eq!(out.iter().sum::<u64>(), expected_sum(GATHER_N));
}

/// The tokio peer of [`gather_tulip`]: spawn `GATHER_N` local tasks, then
/// await their `JoinHandle`s in order (what a hand-written gather does).
pub fn gather_tokio(rt: &Runtime, local: &LocalSet) {
    let out = local.block_on(rt, async {
        tokio::task::spawn_local(async {
            let handles: Vec<_> = (0..GATHER_N)
                .map(|i| tokio::task::spawn_local(async move { i }))
                .collect();
            let mut out = Vec::with_capacity(handles.len());
            for handle in handles {
                out.push(handle.await.expect("child"));
            }
            out
        })
        .await
        .expect("parent")
    });
    assert_eq!(out.len() as u64, GATHER_N);
    assert_eq!(out.iter().sum::<u64>(), expected_sum(GATHER_N));
}

/// tulip: the coroutine of the awaiting task. A task creates a future,
/// schedules a loop callback (`call_soon`) that sets its result, and awaits
/// it; `TRIPS` times in a row. Under asyncio's rule each trip is two loop
/// iterations: the callback runs in the iteration after the task's step,
/// and the task's wake-up (scheduled by `set_result`) in the one after.
async fn tulip_trips(ev: EventLoop) -> Result<(), Error> {
    for i in 0..TRIPS {
        let fut = ev.create_future::<u64>();
        let setter = fut.clone();
        ev.call_soon(move |_| {
            setter.set_result(i).expect("the future is pending");
        })?;
        let got = fut.await?;
        assert_eq!(got, i);
    }
    Ok(())
}

/// One iteration of `future_round_trip` on tulip.
pub fn future_round_trip_tulip(ev: &EventLoop) {
    ev.run_until_complete(tulip_trips(ev.clone()))
        .expect("round trips");
}

/// tokio: the coroutine of the awaiting task; each trip spawns the local
/// task that completes the oneshot (tokio's unit of "run this soon").
pub async fn tokio_trips() {
    for i in 0..TRIPS {
        let (tx, rx) = oneshot::channel::<u64>();
        drop(tokio::task::spawn_local(async move {
            tx.send(i).expect("the receiver is alive");
        }));
        let got = rx.await.expect("the sender sent");
        assert_eq!(got, i);
    }
}

/// One iteration of `future_round_trip` on tokio: the awaiter is a local
/// task, as on tulip's side.
pub fn future_round_trip_tokio(rt: &Runtime, local: &LocalSet) {
    local.block_on(rt, async {
        tokio::task::spawn_local(tokio_trips())
            .await
            .expect("the task finished");
    });
}

//! loop-futures hot paths (task creation, future round trips), side by side
//! with tokio's current-thread runtime in the same run.
//!
//! Every group has a `tulip` row and a `tokio` row (sometimes a second,
//! informational row) so criterion prints them together. Results and their
//! reading are in `docs/performance.md`. Run with
//! `cargo bench -p benches --bench futures`.
//!
//! As in `loop_core.rs`: one tulip loop / one tokio runtime per group,
//! reused across iterations, and the tokio runtime has its I/O and time
//! drivers enabled, since a tulip loop always polls epoll. tulip's unit of
//! concurrency is a task driven by the loop; tokio's `!Send` equivalent is a
//! task spawned with `spawn_local` on a `LocalSet`.

use std::time::Duration;

use benches::workloads::{
    TASKS, TRIPS, create_task_run_tokio, create_task_run_tulip, future_round_trip_tokio,
    future_round_trip_tulip, tokio_rt, tokio_trips, tulip_loop,
};
use criterion::{Criterion, SamplingMode, Throughput, criterion_group};
use tokio::task::LocalSet;

// ===== 1. create_task + run =====

fn create_task_run(c: &mut Criterion) {
    let mut group = c.benchmark_group("create_task_run");
    group.throughput(Throughput::Elements(TASKS));
    group.sampling_mode(SamplingMode::Flat);

    // TASKS × `create_task` of a coroutine that finishes in its first step,
    // one `call_soon(stop)` queued behind them, one `run_forever`: every
    // task is created, stepped once, finished and released (the loop drops
    // its reference in the finishing step; the handle is dropped at once).
    let ev = tulip_loop();
    group.bench_function("tulip", |b| b.iter(|| create_task_run_tulip(&ev)));
    ev.close().expect("close");

    // tokio: the same peer as loop_core's `call_soon_run`: a LocalSet whose
    // first task spawns TASKS local tasks (its cheapest spawn path, straight
    // onto the local run queue), then `block_on(local_set)` until all ran.
    let rt = tokio_rt();
    group.bench_function("tokio", |b| b.iter(|| create_task_run_tokio(&rt)));
    group.finish();
}

// ===== 2. future round trip =====

fn future_round_trip(c: &mut Criterion) {
    let mut group = c.benchmark_group("future_round_trip");
    group.throughput(Throughput::Elements(TRIPS));
    group.sampling_mode(SamplingMode::Flat);

    // A task creates a future, schedules a loop callback (`call_soon`) that
    // sets its result, and awaits it; TRIPS times in a row. Under asyncio's
    // rule each trip is two loop iterations: the callback runs in the
    // iteration after the task's step, and the task's wake-up (scheduled by
    // `set_result`) in the one after that.
    let ev = tulip_loop();
    group.bench_function("tulip", |b| {
        b.iter(|| future_round_trip_tulip(&ev));
    });
    ev.close().expect("close");

    // tokio: a local task awaits a oneshot whose sender is a freshly spawned
    // local task. Both sides allocate per trip (tulip: the future and the
    // boxed callback; tokio: the oneshot and the task). The awaiter is a
    // task on both sides; tokio runs the sender and the woken awaiter in one
    // LocalSet tick, without polling its driver in between.
    let rt = tokio_rt();
    let local = LocalSet::new();
    group.bench_function("tokio", |b| {
        b.iter(|| future_round_trip_tokio(&rt, &local));
    });
    // For information: the same loop awaited in the `block_on` future
    // itself. A woken `block_on` future is polled again only after a
    // zero-timeout driver poll, so this row pays one `epoll_wait` per trip,
    // like one of tulip's two loop iterations.
    group.bench_function("tokio_block_on", |b| {
        b.iter(|| local.block_on(&rt, tokio_trips()));
    });
    group.finish();
}

criterion_group! {
    name = futures;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = create_task_run, future_round_trip
}
fn main() {
    let started = std::time::SystemTime::now();
    futures();
    Criterion::default().configure_from_args().final_summary();
    benches::ratios::print(
        started,
        &[
            ("create_task_run/tulip", "create_task_run/tokio", "<= 0.7"),
            (
                "future_round_trip/tulip",
                "future_round_trip/tokio",
                "<= 0.7",
            ),
        ],
    );
}

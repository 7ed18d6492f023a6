//! loop-futures high-level API (queues, gather, locks), side by side with
//! tokio's current-thread runtime in the same run.
//!
//! Every group has a `tulip` row and a `tokio` row (sometimes an
//! informational extra row) so criterion prints them together. Results and
//! their reading are in `docs/performance.md`. Run with
//! `cargo bench -p benches --bench high_level`.
//!
//! As in `loop_core.rs`: one tulip loop / one tokio runtime per group,
//! reused across iterations; the tokio runtime has its I/O and time drivers
//! enabled. tulip's code runs in tasks on the loop, tokio's in tasks spawned
//! with `spawn_local` on a `LocalSet` (the `!Send` equivalent).

use std::hint::black_box;
use std::time::Duration;

use benches::workloads::{
    GATHER_N, expected_sum, gather_tokio, gather_tulip, tokio_rt, tulip_loop,
};
use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group};
use loop_futures::{Error, EventLoopExt, Lock, Queue, create_task};
use tokio::sync::{Mutex, mpsc};
use tokio::task::LocalSet;

/// Items per iteration of `queue_put_get`.
const ITEMS: u64 = 100_000;
/// Queue capacities: 64 (headline: the producer runs ahead in batches) and
/// 1 (every item is a hand-off between the two tasks).
const CAPACITIES: [usize; 2] = [64, 1];
/// Acquire/release pairs per iteration of `lock_uncontended`.
const LOCK_N: u64 = 1_000_000;

// ===== 1. queue put/get =====

/// tulip: a producer task puts ITEMS items; the awaiting task (the one
/// `run_until_complete` wraps) gets and adds them up.
async fn tulip_queue(cap: usize) -> Result<u64, Error> {
    let queue: Queue<u64> = Queue::new(cap);
    let producer = queue.clone();
    let producer = create_task(async move {
        for i in 0..ITEMS {
            producer.put(i).await?;
        }
        Ok::<_, Error>(())
    })?;
    let mut sum = 0;
    for _ in 0..ITEMS {
        sum += queue.get().await?;
    }
    producer.await?;
    Ok(sum)
}

/// tokio: a producer and a consumer local task on a bounded mpsc channel
/// of the same capacity.
async fn tokio_queue(cap: usize) -> u64 {
    let (tx, mut rx) = mpsc::channel::<u64>(cap);
    let producer = tokio::task::spawn_local(async move {
        for i in 0..ITEMS {
            tx.send(i).await.expect("the receiver is alive");
        }
    });
    let consumer = tokio::task::spawn_local(async move {
        let mut sum = 0;
        for _ in 0..ITEMS {
            sum += rx.recv().await.expect("the sender is alive");
        }
        sum
    });
    producer.await.expect("producer");
    consumer.await.expect("consumer")
}

fn queue_put_get(c: &mut Criterion) {
    let mut group = c.benchmark_group("queue_put_get");
    group.throughput(Throughput::Elements(ITEMS));
    group.sampling_mode(SamplingMode::Flat);
    let ev = tulip_loop();
    let rt = tokio_rt();
    let local = LocalSet::new();
    for cap in CAPACITIES {
        group.bench_function(BenchmarkId::new("tulip", cap), |b| {
            b.iter(|| {
                let sum = ev.run_until_complete(tulip_queue(cap)).expect("queue");
                assert_eq!(sum, expected_sum(ITEMS));
            });
        });
        group.bench_function(BenchmarkId::new("tokio", cap), |b| {
            b.iter(|| {
                let sum = local.block_on(&rt, tokio_queue(cap));
                assert_eq!(sum, expected_sum(ITEMS));
            });
        });
    }
    ev.close().expect("close");
    group.finish();
}

// ===== 2. gather of 10^4 trivial tasks =====

fn gather_1e4(c: &mut Criterion) {
    let mut group = c.benchmark_group("gather_1e4");
    // Elements = children, so criterion's throughput line is per task; the
    // time line is per gather.
    group.throughput(Throughput::Elements(GATHER_N));
    group.sampling_mode(SamplingMode::Flat);

    // tulip: `gather` spawns each coroutine as a task, waits for all, and
    // moves the results out in input order.
    let ev = tulip_loop();
    group.bench_function("tulip", |b| b.iter(|| gather_tulip(&ev)));
    ev.close().expect("close");

    // tokio: spawn GATHER_N local tasks, then await their JoinHandles in
    // order (what a hand-written gather does; tokio has no built-in one for
    // spawned tasks that keeps input order without extra bookkeeping).
    let rt = tokio_rt();
    let local = LocalSet::new();
    group.bench_function("tokio", |b| b.iter(|| gather_tokio(&rt, &local)));
    group.finish();
}

// ===== 3. uncontended lock =====

fn lock_uncontended(c: &mut Criterion) {
    let mut group = c.benchmark_group("lock_uncontended");
    group.throughput(Throughput::Elements(LOCK_N));
    group.sampling_mode(SamplingMode::Flat);

    // tulip: one task, LOCK_N × (`acquire().await`, `release()`); the lock
    // is always free, so no await suspends. The guard row (`lock().await`,
    // guard dropped) is the RAII form, for information.
    let ev = tulip_loop();
    let lock = Lock::new();
    group.bench_function("tulip", |b| {
        b.iter(|| {
            let lock = lock.clone();
            ev.run_until_complete(async move {
                for _ in 0..LOCK_N {
                    black_box(&lock).acquire().await?;
                    black_box(&lock).release()?;
                }
                Ok::<_, Error>(())
            })
            .expect("lock loop");
        });
    });
    group.bench_function("tulip_guard", |b| {
        b.iter(|| {
            let lock = lock.clone();
            ev.run_until_complete(async move {
                for _ in 0..LOCK_N {
                    drop(black_box(&lock).lock().await?);
                }
                Ok::<_, Error>(())
            })
            .expect("lock loop");
        });
    });
    ev.close().expect("close");

    // tokio: one local task, LOCK_N × (`lock().await`, guard dropped) on a
    // `tokio::sync::Mutex<()>`. Each `lock()` consumes one unit of tokio's
    // cooperative budget (128 per task poll), so the task yields every 128
    // pairs: that is part of what a tokio user pays. The `unconstrained`
    // row switches the budget off, for information.
    let rt = tokio_rt();
    let local = LocalSet::new();
    let mutex = std::rc::Rc::new(Mutex::new(()));
    group.bench_function("tokio", |b| {
        b.iter(|| {
            let mutex = mutex.clone();
            local.block_on(&rt, async {
                tokio::task::spawn_local(async move {
                    for _ in 0..LOCK_N {
                        drop(black_box(&*mutex).lock().await);
                    }
                })
                .await
                .expect("lock loop");
            });
        });
    });
    group.bench_function("tokio_unconstrained", |b| {
        b.iter(|| {
            let mutex = mutex.clone();
            local.block_on(&rt, async {
                tokio::task::spawn_local(tokio::task::unconstrained(async move {
                    for _ in 0..LOCK_N {
                        drop(black_box(&*mutex).lock().await);
                    }
                }))
                .await
                .expect("lock loop");
            });
        });
    });
    group.finish();
}

criterion_group! {
    name = high_level;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = queue_put_get, gather_1e4, lock_uncontended
}
fn main() {
    let started = std::time::SystemTime::now();
    high_level();
    Criterion::default().configure_from_args().final_summary();
    benches::ratios::print(
        started,
        &[
            ("queue_put_get/tulip/64", "queue_put_get/tokio/64", "<= 1.0"),
            ("gather_1e4/tulip", "gather_1e4/tokio", "<= 1.0"),
            ("lock_uncontended/tulip", "lock_uncontended/tokio", "<= 1.0"),
        ],
    );
}

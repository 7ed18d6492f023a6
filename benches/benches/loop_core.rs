//! Loop-core hot paths, side by side with tokio's current-thread runtime.
//!
//! Every group has a `tulip` row and a `tokio` row (sometimes a second,
//! informational tokio row) so criterion prints them together. Results and
//! their reading are in `docs/performance.md`. Run with
//! `cargo bench -p benches --bench loop_core`.
//!
//! Both sides get the same setup: one loop / one runtime per group, reused
//! across iterations (their queues and slabs stay warm), and the tokio
//! runtime has its I/O and time drivers enabled, since a tulip loop always
//! polls epoll.

use std::cell::Cell;
use std::future::poll_fn;
use std::hint::black_box;
use std::panic::Location;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread::JoinHandle;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group};
use loop_core::{EventLoop, TimerHandle};
use tokio::runtime::Runtime;
use tokio::sync::Notify;
use tokio::task::LocalSet;
use tokio_util::time::DelayQueue;
use tokio_util::time::delay_queue::Key;

/// Callbacks per iteration of `call_soon_run` (and a tenth of it).
const RUN_N: u64 = 1_000_000;
/// Links per iteration of `call_soon_chain`.
const CHAIN_N: u64 = 100_000;
/// Timers per iteration of `timers` (half of them cancelled).
const TIMER_N: u64 = 100_000;
/// Threads × calls per thread in `call_soon_threadsafe`.
const THREADS: usize = 4;
const CALLS_PER_THREAD: u64 = 10_000;
/// Seed of the delay generator (fixed: both sides see the same delays).
const SEED: u64 = 0x9E37_79B9_7F4A_7C15;

thread_local! {
    /// Callbacks run so far in the current iteration (loop thread only).
    static COUNT: Cell<u64> = const { Cell::new(0) };
    /// The count at which the current iteration is complete.
    static TARGET: Cell<u64> = const { Cell::new(0) };
}

/// Wakes the tokio side of `call_soon_threadsafe` when the last task ran.
static TOKIO_DONE: Notify = Notify::const_new();

fn reset(target: u64) {
    COUNT.set(0);
    TARGET.set(target);
}

/// Counts one callback; true when it was the last one of the iteration.
fn tick() -> bool {
    let count = COUNT.get() + 1;
    COUNT.set(count);
    count == TARGET.get()
}

/// A tulip callback (a zero-sized fn item) that stops the loop when the
/// iteration's count is reached.
fn tulip_tick(ev: &EventLoop) {
    if tick() {
        ev.stop();
    }
}

/// xorshift64: a fixed, cheap sequence of pseudo-random delays.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A delay in `0..1 ms`.
    fn delay(&mut self) -> Duration {
        Duration::from_nanos(self.next() % 1_000_000)
    }
}

fn tulip_loop() -> EventLoop {
    EventLoop::builder()
        .debug(false)
        .build()
        .expect("create the tulip loop")
}

fn tokio_rt() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("create the tokio runtime")
}

// ===== 1. call_soon + run =====

fn call_soon_run(c: &mut Criterion) {
    let mut group = c.benchmark_group("call_soon_run");
    group.sampling_mode(SamplingMode::Flat);
    let ev = tulip_loop();
    let rt = tokio_rt();
    // RUN_N is the headline size; a tenth of it shows how much of each side's
    // cost is cache misses on its queues (10^6 tokio tasks are ~200 MB).
    for n in [RUN_N, RUN_N / 10] {
        group.throughput(Throughput::Elements(n));
        group.bench_function(BenchmarkId::new("tulip", n), |b| {
            b.iter(|| {
                for _ in 0..n {
                    ev.call_soon(|_| {}).expect("call_soon");
                }
                ev.call_soon(|ev| ev.stop()).expect("call_soon");
                ev.run_forever().expect("run_forever");
            });
        });

        // tokio: one task per callback on a LocalSet (the `!Send` analogue
        // of tulip's loop), spawned from inside the LocalSet (its cheapest
        // path: straight onto the local run queue); the LocalSet future
        // completes once every task ran.
        group.bench_function(BenchmarkId::new("tokio", n), |b| {
            b.iter(|| {
                let local = LocalSet::new();
                drop(local.spawn_local(async move {
                    for _ in 0..n {
                        drop(tokio::task::spawn_local(async {}));
                    }
                }));
                rt.block_on(local);
            });
        });
    }
    ev.close().expect("close");
    group.finish();
}

// ===== 2. call_soon chain =====

fn chain_step(ev: &EventLoop) {
    if tick() {
        ev.stop();
    } else {
        ev.call_soon(chain_step).expect("call_soon");
    }
}

async fn tokio_chain_link() {
    if !tick() {
        drop(tokio::task::spawn_local(tokio_chain_link()));
    }
}

fn call_soon_chain(c: &mut Criterion) {
    let mut group = c.benchmark_group("call_soon_chain");
    group.throughput(Throughput::Elements(CHAIN_N));
    group.sampling_mode(SamplingMode::Flat);

    // Each callback schedules the next, so every link is one loop iteration
    // (asyncio's rule: what a callback schedules runs after the next poll),
    // i.e. one zero-timeout epoll_wait per link.
    let ev = tulip_loop();
    group.bench_function("tulip", |b| {
        b.iter(|| {
            reset(CHAIN_N);
            ev.call_soon(chain_step).expect("call_soon");
            ev.run_forever().expect("run_forever");
        });
    });
    ev.close().expect("close");

    // The closest tokio equivalent is `yield_now` in a loop: tokio defers
    // the yielded task's wake-up until the scheduler has polled its driver
    // (a zero-timeout epoll_wait), exactly tulip's "next iteration, after a
    // poll"; and like tulip's zero-sized callback it allocates nothing per
    // link. A chain of `spawn_local` is shown too, but it is a different
    // thing: each new task runs in the same LocalSet tick without polling
    // the driver, and each link allocates a task.
    let rt = tokio_rt();
    group.bench_function("tokio", |b| {
        b.iter(|| {
            rt.block_on(async {
                for _ in 0..CHAIN_N {
                    tokio::task::yield_now().await;
                }
            });
        });
    });
    group.bench_function("tokio_spawn_local_chain", |b| {
        b.iter(|| {
            reset(CHAIN_N);
            let local = LocalSet::new();
            drop(local.spawn_local(tokio_chain_link()));
            rt.block_on(local);
        });
    });
    group.finish();
}

// ===== 3. timers =====

fn timers(c: &mut Criterion) {
    let mut group = c.benchmark_group("timers");
    group.throughput(Throughput::Elements(TIMER_N));
    group.sampling_mode(SamplingMode::Flat);

    // Schedule TIMER_N timers with delays in 0..1 ms, cancel every other
    // one, run until the last live one fired.
    let ev = tulip_loop();
    let mut handles: Vec<TimerHandle> = Vec::with_capacity(TIMER_N as usize);
    group.bench_function("tulip", |b| {
        b.iter(|| {
            let mut rng = XorShift(SEED);
            reset(TIMER_N / 2);
            for _ in 0..TIMER_N {
                handles.push(ev.call_later(rng.delay(), tulip_tick).expect("call_later"));
            }
            for handle in handles.iter().step_by(2) {
                handle.cancel();
            }
            ev.run_forever().expect("run_forever");
            handles.clear();
        });
    });
    ev.close().expect("close");

    // tokio: DelayQueue with the same delays, every other key removed,
    // drained by the block_on future.
    let rt = tokio_rt();
    let mut queue: DelayQueue<()> = DelayQueue::with_capacity(TIMER_N as usize);
    let mut keys: Vec<Key> = Vec::with_capacity(TIMER_N as usize);
    group.bench_function("tokio", |b| {
        b.iter(|| {
            rt.block_on(async {
                let mut rng = XorShift(SEED);
                for _ in 0..TIMER_N {
                    keys.push(queue.insert((), rng.delay()));
                }
                for key in keys.iter().step_by(2) {
                    queue.remove(key);
                }
                let mut fired = 0u64;
                while poll_fn(|cx| queue.poll_expired(cx)).await.is_some() {
                    fired += 1;
                }
                assert_eq!(fired, TIMER_N / 2);
                keys.clear();
            });
        });
    });
    group.finish();
}

// ===== 4. call_soon_threadsafe =====

/// `THREADS` persistent threads that each run `job` once per
/// [`start`](Workers::start) (no thread creation inside the measurement).
struct Workers {
    go: Arc<Barrier>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Workers {
    fn new(job: impl Fn() + Send + Sync + 'static) -> Self {
        let job = Arc::new(job);
        let go = Arc::new(Barrier::new(THREADS + 1));
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..THREADS)
            .map(|_| {
                let (job, go, stop) = (job.clone(), go.clone(), stop.clone());
                std::thread::spawn(move || {
                    loop {
                        go.wait();
                        if stop.load(Ordering::Acquire) {
                            return;
                        }
                        job();
                    }
                })
            })
            .collect();
        Workers { go, stop, threads }
    }

    /// Releases every worker for one run of its job.
    fn start(&self) {
        self.go.wait();
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        self.go.wait();
        for thread in self.threads.drain(..) {
            thread.join().expect("worker thread panicked");
        }
    }
}

fn tokio_tick() {
    if tick() {
        TOKIO_DONE.notify_one();
    }
}

fn call_soon_threadsafe(c: &mut Criterion) {
    let total = THREADS as u64 * CALLS_PER_THREAD;
    let mut group = c.benchmark_group("call_soon_threadsafe");
    group.throughput(Throughput::Elements(total));
    group.sampling_mode(SamplingMode::Flat);

    // The loop runs on the bench thread; the workers push while it runs.
    let ev = tulip_loop();
    let remote = ev.remote();
    let workers = Workers::new(move || {
        for _ in 0..CALLS_PER_THREAD {
            remote
                .call_soon_threadsafe(tulip_tick)
                .expect("call_soon_threadsafe");
        }
    });
    group.bench_function("tulip", |b| {
        b.iter(|| {
            reset(total);
            workers.start();
            ev.run_forever().expect("run_forever");
        });
    });
    drop(workers);
    ev.close().expect("close");

    // tokio: `Handle::spawn` from the workers onto a current-thread runtime
    // that the bench thread drives. It is the closest equivalent: "run this
    // code on that runtime's thread, from any thread", queued in the
    // runtime's inject queue (a mutex-protected list, like tulip's remote
    // queue) with a driver unpark, and no user code needed on the loop side.
    // The price is one task allocation per call, which tokio cannot avoid.
    // An unbounded mpsc carrying boxed closures to one receiver task is the
    // hand-built alternative (closer in mechanism: a queue drained by the
    // loop thread); it is shown as a second tokio row.
    let rt = tokio_rt();
    let handle = rt.handle().clone();
    let workers = Workers::new(move || {
        for _ in 0..CALLS_PER_THREAD {
            drop(handle.spawn(async { tokio_tick() }));
        }
    });
    group.bench_function("tokio", |b| {
        b.iter(|| {
            reset(total);
            workers.start();
            rt.block_on(TOKIO_DONE.notified());
        });
    });
    drop(workers);

    type Job = Box<dyn FnOnce() + Send>;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Job>();
    let workers = Workers::new(move || {
        for _ in 0..CALLS_PER_THREAD {
            tx.send(Box::new(|| {
                tick();
            }))
            .map_err(|_| "receiver gone")
            .expect("send");
        }
    });
    group.bench_function("tokio_mpsc", |b| {
        b.iter(|| {
            reset(total);
            workers.start();
            rt.block_on(async {
                for _ in 0..total {
                    let job = rx.recv().await.expect("senders alive");
                    job();
                }
            });
        });
    });
    drop(workers);
    group.finish();
}

// ===== 5. cost of the #[track_caller] creation site =====

/// A callback slot shaped like loop-core's (`seq`, boxed callback,
/// `in_heap`), with the creation site: 40 bytes.
struct SiteSlot {
    seq: u64,
    callback: Option<Box<dyn FnOnce()>>,
    site: &'static Location<'static>,
    in_heap: bool,
}

/// The same slot without the site: 32 bytes.
struct PlainSlot {
    seq: u64,
    callback: Option<Box<dyn FnOnce()>>,
    in_heap: bool,
}

impl SiteSlot {
    #[track_caller]
    fn new(seq: u64) -> Self {
        SiteSlot {
            seq,
            callback: None,
            site: Location::caller(),
            in_heap: false,
        }
    }
}

impl PlainSlot {
    fn new(seq: u64) -> Self {
        PlainSlot {
            seq,
            callback: None,
            in_heap: false,
        }
    }
}

/// Out of line: the location travels as a hidden argument, as it does
/// through a `#[track_caller]` function that is not inlined.
#[track_caller]
#[inline(never)]
fn store_with_site(slots: &mut [SiteSlot], i: usize, seq: u64) {
    slots[i] = SiteSlot::new(seq);
}

#[inline(never)]
fn store_plain(slots: &mut [PlainSlot], i: usize, seq: u64) {
    slots[i] = PlainSlot::new(seq);
}

/// Inlined, as loop-core's `call_soon` is (`#[inline]`): the location is a
/// constant address and capturing it is one more 8-byte store.
#[track_caller]
#[inline(always)]
fn store_with_site_inlined(slots: &mut [SiteSlot], i: usize, seq: u64) {
    slots[i] = SiteSlot::new(seq);
}

#[inline(always)]
fn store_plain_inlined(slots: &mut [PlainSlot], i: usize, seq: u64) {
    slots[i] = PlainSlot::new(seq);
}

/// One row: `store` into every slot of `slots`, in order.
fn site_row<T>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: String,
    slots: &mut [T],
    store: impl Fn(&mut [T], usize, u64),
) {
    let n = slots.len();
    group.throughput(Throughput::Elements(n as u64));
    group.bench_function(name, |b| {
        b.iter(|| {
            for i in 0..n {
                store(black_box(&mut *slots), i, i as u64);
            }
        });
    });
}

fn call_soon_site_overhead(c: &mut Criterion) {
    let mut group = c.benchmark_group("call_soon_site_overhead");
    // 1 Ki slots stay in L1: the bare cost of capturing and storing the
    // location. 1 Mi slots stream through memory like the callback slab of
    // `call_soon_run`: adds the cost of the larger slot (40 vs 32 bytes).
    for (label, n) in [("1k", 1usize << 10), ("1m", 1 << 20)] {
        let mut with_site: Vec<SiteSlot> = (0..n as u64).map(SiteSlot::new).collect();
        let mut plain: Vec<PlainSlot> = (0..n as u64).map(PlainSlot::new).collect();
        site_row(
            &mut group,
            format!("with_site_call_{label}"),
            &mut with_site,
            |s, i, q| store_with_site(s, i, q),
        );
        site_row(
            &mut group,
            format!("no_site_call_{label}"),
            &mut plain,
            store_plain,
        );
        site_row(
            &mut group,
            format!("with_site_inlined_{label}"),
            &mut with_site,
            |s, i, q| store_with_site_inlined(s, i, q),
        );
        site_row(
            &mut group,
            format!("no_site_inlined_{label}"),
            &mut plain,
            store_plain_inlined,
        );
        // Read every field so no store is dead.
        black_box(
            with_site
                .iter()
                .filter(|s| s.callback.is_some() || s.in_heap || s.site.line() == s.seq as u32)
                .count(),
        );
        black_box(
            plain
                .iter()
                .filter(|s| s.callback.is_some() || s.in_heap || s.seq == 1)
                .count(),
        );
    }
    group.finish();
}

criterion_group! {
    name = loop_core;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = call_soon_run, call_soon_chain, timers, call_soon_threadsafe, call_soon_site_overhead
}
fn main() {
    let started = std::time::SystemTime::now();
    loop_core();
    Criterion::default().configure_from_args().final_summary();
    benches::ratios::print(
        started,
        &[
            (
                "call_soon_run/tulip/1000000",
                "call_soon_run/tokio/1000000",
                "<= 0.2",
            ),
            (
                "call_soon_run/tulip/100000",
                "call_soon_run/tokio/100000",
                "<= 0.2",
            ),
            ("call_soon_chain/tulip", "call_soon_chain/tokio", "none"),
            ("timers/tulip", "timers/tokio", "<= 1.0"),
            (
                "call_soon_threadsafe/tulip",
                "call_soon_threadsafe/tokio",
                "none",
            ),
        ],
    );
}

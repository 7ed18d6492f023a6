//! Interleaved A/B runs of the task benchmarks, for a noisy machine.
//!
//! Criterion times tulip and tokio one after the other, so a neighbour's
//! burst of load lands on one side only. This runs one iteration of each,
//! alternating, `ROUNDS` times, and reports the minimum and the median of
//! each side and their ratios: the minimum is what the code costs when
//! nothing interferes. The workloads are the same as the criterion benches
//! `create_task_run` (benches/futures.rs) and `gather_1e4`
//! (benches/high_level.rs).
//!
//! ```sh
//! cargo run --release -p benches --example interleaved [rounds]
//! SHOW_ALL=1 cargo run --release -p benches --example interleaved 12
//! ```
//!
//! `SHOW_ALL` prints every run with the minor page faults it took (how a
//! peer's allocator returning memory to the OS shows up).
//!
//! `--only <side>` runs one side alone, three iterations, for a
//! noise-free instruction and cache-miss count under cachegrind (what the
//! task work in docs/performance.md was judged by when the VM was busy):
//!
//! ```sh
//! valgrind --tool=cachegrind --cache-sim=yes \
//!     target/release/examples/interleaved --only tulip-create
//! ```
//!
//! Sides: `tulip-create`, `tokio-create`, `tulip-gather`, `tokio-gather`
//! (the gathers run ten per iteration), `tulip-trips`, `tokio-trips`
//! (`future_round_trip`).

#![allow(clippy::print_stdout)] // a measuring tool: printing is its output

use std::time::{Duration, Instant};

use benches::workloads::{
    create_task_run_tokio, create_task_run_tulip, future_round_trip_tokio, future_round_trip_tulip,
    gather_tokio, gather_tulip, tokio_rt, tulip_loop,
};
use tokio::task::LocalSet;

fn minflt() -> u64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            s.rsplit(')')
                .next()?
                .split_whitespace()
                .nth(7)?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

fn time(f: impl FnOnce()) -> Duration {
    let faults = minflt();
    let start = Instant::now();
    f();
    let took = start.elapsed();
    if std::env::var_os("SHOW_ALL").is_some() {
        println!("{took:>10.3?} {} faults", minflt() - faults);
    }
    took
}

fn summary(name: &str, tulip: &mut [Duration], tokio: &mut [Duration]) {
    tulip.sort();
    tokio.sort();
    let (a_min, b_min) = (tulip[0], tokio[0]);
    let (a_med, b_med) = (tulip[tulip.len() / 2], tokio[tokio.len() / 2]);
    println!(
        "{name:<16} tulip min {a_min:>10.3?} med {a_med:>10.3?} | tokio min {b_min:>10.3?} med {b_med:>10.3?} | ratio min {:.3} med {:.3}",
        a_min.as_secs_f64() / b_min.as_secs_f64(),
        a_med.as_secs_f64() / b_med.as_secs_f64(),
    );
}

/// `--only <side>`: one side alone, for cachegrind.
fn only(side: &str) {
    let ev = tulip_loop();
    let rt = tokio_rt();
    let local = LocalSet::new();
    for _ in 0..3 {
        match side {
            "tulip-create" => create_task_run_tulip(&ev),
            "tokio-create" => create_task_run_tokio(&rt),
            "tulip-gather" => (0..10).for_each(|_| gather_tulip(&ev)),
            "tokio-gather" => (0..10).for_each(|_| gather_tokio(&rt, &local)),
            "tulip-trips" => future_round_trip_tulip(&ev),
            "tokio-trips" => future_round_trip_tokio(&rt, &local),
            other => panic!("unknown side {other:?}"),
        }
    }
    ev.close().expect("close");
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, side] = args.as_slice() {
        if flag == "--only" {
            only(side);
            return;
        }
    }
    let rounds: usize = args.first().and_then(|s| s.parse().ok()).unwrap_or(30);
    let ev = tulip_loop();
    let rt = tokio_rt();

    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        a.push(time(|| create_task_run_tulip(&ev)));
        b.push(time(|| create_task_run_tokio(&rt)));
    }
    summary("create_task_run", &mut a, &mut b);

    let (mut a, mut b) = (Vec::new(), Vec::new());
    let local = LocalSet::new();
    for _ in 0..rounds * 5 {
        a.push(time(|| gather_tulip(&ev)));
        b.push(time(|| gather_tokio(&rt, &local)));
    }
    summary("gather_1e4", &mut a, &mut b);

    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        a.push(time(|| future_round_trip_tulip(&ev)));
        b.push(time(|| future_round_trip_tokio(&rt, &local)));
    }
    summary("future_round_trip", &mut a, &mut b);
    ev.close().expect("close");
}

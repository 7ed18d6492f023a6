//! Criterion benchmarks live in `benches/`; this library holds what they
//! share: the ratio report and the task workloads.

pub mod ratios;
pub mod workloads;

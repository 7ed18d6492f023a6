//! Criterion benchmarks live in `benches/`.

pub mod ratios;

//! Benchmarks and the load they share: figures, not verdicts. Each benchmark is measured against
//! a reference init in the same run and reported as medians and ratios
//! (`target/test-results/results.json` and the summary tables); it asserts only that the
//! measurement itself worked.

mod footprint;
pub mod load;

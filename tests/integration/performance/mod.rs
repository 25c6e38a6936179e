//! Benchmarks: figures, not verdicts. Each is measured against a reference init in the same run
//! and reported as medians and ratios (`target/test-results/results.json` and the summary
//! tables). They assert only that the measurement itself worked.

mod footprint;

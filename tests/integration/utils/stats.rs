//! Order statistics for figures: the suite's one percentile, the confidence interval of a
//! percentile that `make bench` reports beside every median and tail, and the longest gap
//! between events per window (the gap each restart of a restart benchmark caused).

/// The `p`-th percentile (0–100) of `values` by the nearest-rank method on the sorted values;
/// NaN for no values.
pub fn percentile(values: &[f64], p: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * sorted.len().saturating_sub(1) as f64).round() as usize;
    sorted.get(rank).copied().unwrap_or(f64::NAN)
}

/// A percentile of some samples and a confidence interval for it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    /// The sample percentile, as [`percentile`] gives it.
    pub value: f64,
    pub low: f64,
    pub high: f64,
    /// The probability that `[low, high]` holds the true percentile: at least the level asked
    /// for, unless the samples are too few to reach it, when the interval is the whole sample
    /// range and this says what it is worth.
    pub coverage: f64,
    pub samples: usize,
}

/// The `p`-th percentile (0 < p < 100) of `values` with its confidence interval at `level`
/// (e.g. 0.95), by order statistics: the number of samples below the true percentile is
/// binomial(n, p/100) whatever the distribution, so two of the sorted samples bound it with a
/// known probability. Distribution-free and deterministic (no resampling), which suits latencies
/// with long tails and small sample counts alike. `None` for no values; for `p` of 0 or 100 the
/// interval is the value itself (the extremes of a sample have no such interval).
pub fn percentile_ci(values: &[f64], p: f64, level: f64) -> Option<Estimate> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let value = percentile(&sorted, p);
    let q = p / 100.0;
    if q <= 0.0 || q >= 1.0 {
        return Some(Estimate { value, low: value, high: value, coverage: 0.0, samples: n });
    }
    let cdf = binomial_cdf(n, q);
    let (low, high) = rank_interval(&cdf, level);
    // P(x_(l) <= ξ <= x_(u)) = P(l <= X <= u-1) = F(u-1) - F(l-1) for X ~ binomial(n, q),
    // ranks 1-based.
    let coverage = (cdf[high - 1] - cdf[low - 1]).clamp(0.0, 1.0);
    Some(Estimate { value, low: sorted[low - 1], high: sorted[high - 1], coverage, samples: n })
}

/// The median of `values` with its 95 % confidence interval (see [`percentile_ci`]).
pub fn median_ci(values: &[f64]) -> Option<Estimate> {
    percentile_ci(values, 50.0, 0.95)
}

/// The 1-based ranks `(l, u)` of the sorted samples that bound a quantile at `level`, given
/// the distribution `cdf` of the number of samples below it: the largest `l` with
/// P(X <= l-1) <= α/2 and the smallest `u` with P(X <= u-1) >= 1-α/2, clamped to the samples.
fn rank_interval(cdf: &[f64], level: f64) -> (usize, usize) {
    let tail = (1.0 - level) / 2.0;
    let n = cdf.len() - 1;
    let low = cdf.iter().take(n).filter(|&&f| f <= tail).count().max(1);
    let high = cdf.iter().position(|&f| f >= 1.0 - tail).map_or(n, |k| k + 1).min(n);
    (low, high.max(low))
}

/// P(X <= k) for X ~ binomial(n, q), for k in 0..=n. Summed in log space: the terms of a large
/// `n` underflow one by one instead of all at once.
fn binomial_cdf(n: usize, q: f64) -> Vec<f64> {
    let (ln_q, ln_rest) = (q.ln(), (1.0 - q).ln());
    let mut ln_choose = 0.0;
    let mut total = 0.0;
    (0..=n)
        .map(|k| {
            if k > 0 {
                ln_choose += ((n - k + 1) as f64).ln() - (k as f64).ln();
            }
            total += (ln_choose + k as f64 * ln_q + (n - k) as f64 * ln_rest).exp();
            total.min(1.0)
        })
        .collect()
}

/// For each window `[marks[i], marks[i+1])` (the last one open), the longest interval between
/// consecutive `events` that ends inside it; NaN for a window in which no interval ends. With
/// request completions as events and restarts as marks, it is the longest wait for a reply that
/// each restart caused: a restart's gap ends after the restart, when the new child answers.
/// Both in one unit; the events in any order, the marks ascending.
pub fn longest_gap_per_window(events: &[f64], marks: &[f64]) -> Vec<f64> {
    let mut sorted = events.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mut longest = vec![f64::NAN; marks.len()];
    for pair in sorted.windows(2) {
        let (start, end) = (pair[0], pair[1]);
        let Some(window) = marks.iter().rposition(|&m| m <= end) else { continue };
        let gap = end - start;
        if longest[window].is_nan() || gap > longest[window] {
            longest[window] = gap;
        }
    }
    longest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_the_nearest_rank_of_the_sorted_values() {
        assert_eq!(percentile(&[3.0, 1.0, 2.0], 50.0), 2.0);
        assert_eq!(percentile(&[3.0, 1.0, 2.0], 100.0), 3.0);
        assert_eq!(percentile(&[5.0], 99.0), 5.0);
        assert!(percentile(&[], 50.0).is_nan());
    }

    #[test]
    fn the_binomial_distribution_sums_to_one_and_is_symmetric_at_one_half() {
        let cdf = binomial_cdf(10, 0.5);
        assert!((cdf[10] - 1.0).abs() < 1e-12);
        assert!((cdf[0] - 1.0 / 1024.0).abs() < 1e-12);
        assert!((cdf[4] + cdf[5] - 1.0).abs() < 1e-12, "P(X<=4) + P(X<=5) = 1 at q = 1/2");
        // Large n: no underflow to zero everywhere, no NaN.
        let big = binomial_cdf(5000, 0.99);
        assert!(big.iter().all(|f| f.is_finite()) && (big[5000] - 1.0).abs() < 1e-9);
    }

    #[test]
    fn the_median_interval_of_100_samples_spans_ranks_40_to_61() {
        // The textbook ranks for n = 100 at 95 %.
        assert_eq!(rank_interval(&binomial_cdf(100, 0.5), 0.95), (40, 61));
        let values: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        let e = median_ci(&values).unwrap();
        assert_eq!((e.low, e.high, e.samples), (40.0, 61.0, 100));
        assert_eq!(e.value, percentile(&values, 50.0));
        assert!(e.coverage >= 0.95 && e.coverage < 0.97, "{}", e.coverage);
    }

    #[test]
    fn intervals_hold_the_estimate_and_tails_need_more_samples() {
        let values: Vec<f64> = (0..12).map(|i| f64::from(i * i)).collect();
        let median = median_ci(&values).unwrap();
        assert_eq!((median.low, median.high), (4.0, 81.0), "ranks 3 and 10 of 12");
        assert!(median.low <= median.value && median.value <= median.high);
        let values: Vec<f64> = (0..1000).map(f64::from).collect();
        let p99 = percentile_ci(&values, 99.0, 0.95).unwrap();
        assert!(p99.low < p99.value && p99.value < p99.high && p99.high <= 999.0, "{p99:?}");
        assert!(p99.coverage >= 0.95);
    }

    #[test]
    fn too_few_samples_give_the_range_and_say_what_it_is_worth() {
        let e = median_ci(&[3.0, 1.0, 2.0]).unwrap();
        assert_eq!((e.value, e.low, e.high), (2.0, 1.0, 3.0));
        assert!((e.coverage - 0.75).abs() < 1e-12, "1 - 2/2^3 = {}", e.coverage);
        let one = median_ci(&[7.0]).unwrap();
        assert_eq!((one.low, one.high, one.coverage), (7.0, 7.0, 0.0));
        assert!(median_ci(&[]).is_none());
        assert_eq!(percentile_ci(&[1.0, 9.0], 100.0, 0.95).unwrap().low, 9.0);
    }

    #[test]
    fn each_window_gets_the_longest_gap_that_ends_in_it() {
        let completions = [0.0, 1.0, 2.0, 2.5, 9.0, 10.0, 11.0, 30.0];
        let gaps = longest_gap_per_window(&completions, &[2.2, 10.5]);
        assert_eq!(gaps, [6.5, 19.0]);
        let none = longest_gap_per_window(&[0.0, 1.0], &[5.0]);
        assert!(none[0].is_nan());
        assert!(longest_gap_per_window(&[], &[]).is_empty());
    }
}

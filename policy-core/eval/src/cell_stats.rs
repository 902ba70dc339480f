//! The statistics every results page uses, in one place: the median of a
//! cell's runs, its bootstrap interval, and the verdict of a comparison
//! (a difference whose interval holds 0 is a tie, not a win).
//!
//! One median (the mean of the two middle values for an even count), one
//! interval (the percentile bootstrap, 95 %, seeded: the same runs give the
//! same page), so no two pages can disagree on how they count.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Resamples of a bootstrap interval.
pub const BOOTSTRAP_RESAMPLES: usize = 2000;
/// Coverage of every interval a page reports.
pub const INTERVAL_LEVEL: f64 = 0.95;

/// A baseline dominates a policy when it is more than this fraction
/// faster …
pub const DOMINANCE_TIME_FRACTION: f64 = 0.05;
/// … and has more than this many ms less downtime.
pub const DOMINANCE_DOWNTIME_MS: f64 = 30.0;
/// The goal on a policy's cost over the oracle's (simulation, where the
/// oracle is exact).
pub const MAX_ORACLE_RATIO: f64 = 1.1;

/// Does a run or cell with total time `t` and downtime `d` dominate one
/// with (`t0`, `d0`)? Both more than [`DOMINANCE_TIME_FRACTION`] faster
/// and more than [`DOMINANCE_DOWNTIME_MS`] less downtime.
pub fn dominates(t: f64, d: f64, t0: f64, d0: f64) -> bool {
    t < t0 * (1.0 - DOMINANCE_TIME_FRACTION) && d < d0 - DOMINANCE_DOWNTIME_MS
}

/// The median of the finite values (None when there are none).
pub fn median(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    let mut v: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// The `q` quantile (0..=1) of the finite values, linear between ranks
/// (the median is the 0.5 quantile); `None` when there are none.
pub fn quantile(values: impl IntoIterator<Item = f64>, q: f64) -> Option<f64> {
    let mut v: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(quantile_sorted(&v, q))
}

/// The `q` quantile (0..=1) of sorted finite values, linear between ranks.
fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// A two-sided interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    /// Lower end.
    pub lo: f64,
    /// Upper end.
    pub hi: f64,
}

impl Interval {
    /// True when `x` is inside (ends included).
    pub fn contains(&self, x: f64) -> bool {
        self.lo <= x && x <= self.hi
    }
}

/// The percentile-bootstrap interval of `statistic` over `samples`, one
/// group of repeats per cell: each resample redraws every group's repeats
/// with replacement (groups never mix), and `statistic` reads the
/// resampled groups. None when a group is empty.
pub fn bootstrap_interval(
    groups: &[&[f64]],
    statistic: impl Fn(&[Vec<f64>]) -> f64,
    seed: u64,
) -> Option<Interval> {
    if groups.is_empty() || groups.iter().any(|g| g.is_empty()) {
        return None;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut resampled: Vec<Vec<f64>> = groups.iter().map(|g| g.to_vec()).collect();
    let mut stats = Vec::with_capacity(BOOTSTRAP_RESAMPLES);
    for _ in 0..BOOTSTRAP_RESAMPLES {
        for (group, out) in groups.iter().zip(resampled.iter_mut()) {
            for slot in out.iter_mut() {
                *slot = group[rng.random_range(0..group.len())];
            }
        }
        let s = statistic(&resampled);
        if s.is_finite() {
            stats.push(s);
        }
    }
    if stats.is_empty() {
        return None;
    }
    stats.sort_by(f64::total_cmp);
    let tail = (1.0 - INTERVAL_LEVEL) / 2.0;
    Some(Interval {
        lo: quantile_sorted(&stats, tail),
        hi: quantile_sorted(&stats, 1.0 - tail),
    })
}

/// The bootstrap interval of one cell's median.
pub fn median_interval(values: &[f64], seed: u64) -> Option<Interval> {
    bootstrap_interval(
        &[values],
        |g| median(g[0].iter().copied()).unwrap_or(f64::NAN),
        seed,
    )
}

/// How a policy compares with a reference, read from the interval of
/// (policy − reference): below 0 a win, above 0 a loss, holding 0 a tie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The policy costs less, outside the runs' interval.
    Cheaper,
    /// The difference is inside the runs' interval.
    Tie,
    /// The policy costs more, outside the runs' interval.
    Dearer,
}

impl Verdict {
    /// The verdict the interval of (policy − reference) gives.
    pub fn of(difference: Interval) -> Self {
        if difference.hi < 0.0 {
            Verdict::Cheaper
        } else if difference.lo > 0.0 {
            Verdict::Dearer
        } else {
            Verdict::Tie
        }
    }

    /// Its word in tables.
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Cheaper => "cheaper",
            Verdict::Tie => "tie",
            Verdict::Dearer => "dearer",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_linear_between_ranks_and_agree_with_the_median() {
        let v = [4.0, 1.0, 3.0, 2.0, f64::NAN];
        assert_eq!(quantile(v, 0.5), median(v));
        assert_eq!(quantile(v, 0.0), Some(1.0));
        assert_eq!(quantile(v, 1.0), Some(4.0));
        assert!((quantile(v, 0.9).unwrap() - 3.7).abs() < 1e-12);
        assert_eq!(quantile([f64::NAN], 0.9), None);
    }

    #[test]
    fn one_median() {
        assert_eq!(median([3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median([4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median([f64::NAN]), None);
        assert_eq!(median(std::iter::empty()), None);
    }

    #[test]
    fn the_interval_holds_the_median_and_narrows_with_agreeing_runs() {
        let spread = [10.0, 12.0, 9.0, 30.0, 11.0];
        let i = median_interval(&spread, 1).unwrap();
        assert!(i.contains(11.0), "{i:?}");
        assert!(i.lo >= 9.0 && i.hi <= 30.0, "{i:?}");
        let same = [5.0; 5];
        assert_eq!(
            median_interval(&same, 1),
            Some(Interval { lo: 5.0, hi: 5.0 })
        );
        assert_eq!(median_interval(&[], 1), None);
        // Seeded: the same runs, the same interval.
        assert_eq!(median_interval(&spread, 7), median_interval(&spread, 7));
    }

    #[test]
    fn a_difference_inside_the_noise_is_a_tie() {
        let a = [10.0, 11.0, 12.0, 10.5, 11.5];
        let close = [10.2, 11.1, 12.3, 10.4, 11.8];
        let far = [20.0, 21.0, 22.0, 20.5, 21.5];
        let diff = |x: &[f64], y: &[f64]| {
            bootstrap_interval(
                &[x, y],
                |g| median(g[0].iter().copied()).unwrap() - median(g[1].iter().copied()).unwrap(),
                3,
            )
            .unwrap()
        };
        assert_eq!(Verdict::of(diff(&a, &close)), Verdict::Tie);
        assert_eq!(Verdict::of(diff(&a, &far)), Verdict::Cheaper);
        assert_eq!(Verdict::of(diff(&far, &a)), Verdict::Dearer);
    }
}

//! What profiling costs the guest: its throughput in windows where the
//! profiler samples it, against windows where it does not.
//!
//! The windows alternate off, on, off, …, off (an A-B-A design). The
//! estimate is a least-squares fit over every window of
//!
//! `ln(ops/s) = β₀ + β₁·index + β₂·sampled`
//!
//! so a drift of the guest's throughput over the run (a warming cache, a
//! noisy neighbour on a shared host) is taken by β₁ instead of reading as
//! overhead, and `exp(β₂)` is the throughput while sampled as a share of
//! without, with a Student-t interval on β₂ (n − 3 degrees of freedom). A
//! fit rather than each "on" window over its two neighbours: neighbouring
//! ratios share an "off" window, so they are not independent and a t
//! interval on their mean would be too narrow. The per-window ratios are
//! kept as a description (the worst one).

use nalgebra::{Matrix3, Vector3};
use serde::Serialize;
use statrs::distribution::{ContinuousCDF, StudentsT};
use thiserror::Error;

/// Whether the profiler sampled the guest during a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Sampling {
    /// Nothing sampled the guest.
    Off,
    /// The profiler sampled it on `advise`'s schedule.
    On,
}

/// The guest's throughput over one window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct WindowThroughput {
    /// Whether the profiler sampled during the window.
    pub sampling: Sampling,
    /// The workload's reports counted in the window (the caller leaves out
    /// those that may cover time before it).
    pub reports: usize,
    /// Mean operations per second over those reports.
    pub mean_ops_per_s: f64,
}

/// Why no overhead can be computed from a series of windows.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum OverheadError {
    /// Windows must alternate off, on, off, …, off, starting and ending
    /// off, with at least one "on" window.
    #[error("windows must alternate off, on, …, off (got {0} windows, or two of a kind in a row)")]
    Schedule(usize),
    /// A window had no report, or a throughput that is not a positive
    /// finite number (the workload stalled or does not report).
    #[error(
        "window {index} has no usable throughput ({reports} reports, mean {mean_ops_per_s} ops/s)"
    )]
    NoThroughput {
        /// 0-based index of the window.
        index: usize,
        /// Reports in it.
        reports: usize,
        /// Its mean.
        mean_ops_per_s: f64,
    },
}

/// The guest's throughput while sampled, relative to while not.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
pub struct Overhead {
    /// "On" windows.
    pub pairs: usize,
    /// Throughput while sampled ÷ without, drift removed: `exp(β₂)`.
    pub ratio: f64,
    /// Lower end of its 95 % interval (None with one pair: three windows
    /// leave no degree of freedom for the noise).
    pub ratio_low: Option<f64>,
    /// Upper end of that interval.
    pub ratio_high: Option<f64>,
    /// Smallest ratio of an "on" window to the mean of its two neighbours.
    pub ratio_min: f64,
    /// Pooled mean ops/s of the "off" windows.
    pub off_ops_per_s: f64,
    /// Pooled mean ops/s of the "on" windows.
    pub on_ops_per_s: f64,
}

/// The goal: the guest's throughput while `advise` samples it is at least
/// this share of its throughput without.
pub const THROUGHPUT_GOAL: f64 = 0.97;

/// Two-sided confidence of the interval.
const CONFIDENCE: f64 = 0.95;
/// Parameters of the fit (intercept, drift, sampling).
const PARAMS: usize = 3;

/// The overhead from windows in the order they ran.
pub fn overhead(windows: &[WindowThroughput]) -> Result<Overhead, OverheadError> {
    let n = windows.len();
    let alternates = n >= 3
        && n % 2 == 1
        && windows.iter().enumerate().all(|(i, w)| {
            w.sampling
                == if i % 2 == 0 {
                    Sampling::Off
                } else {
                    Sampling::On
                }
        });
    if !alternates {
        return Err(OverheadError::Schedule(n));
    }
    for (index, w) in windows.iter().enumerate() {
        if w.reports == 0 || !(w.mean_ops_per_s.is_finite() && w.mean_ops_per_s > 0.0) {
            return Err(OverheadError::NoThroughput {
                index,
                reports: w.reports,
                mean_ops_per_s: w.mean_ops_per_s,
            });
        }
    }
    let row = |i: usize| {
        let on = if windows[i].sampling == Sampling::On {
            1.0
        } else {
            0.0
        };
        Vector3::new(1.0, i as f64, on)
    };
    // Normal equations: 3 × 3, always invertible for an alternating
    // schedule of three or more windows (the columns are independent).
    let mut xtx = Matrix3::zeros();
    let mut xty = Vector3::zeros();
    for (i, w) in windows.iter().enumerate() {
        let x = row(i);
        xtx += x * x.transpose();
        xty += x * w.mean_ops_per_s.ln();
    }
    let inv = xtx.try_inverse().ok_or(OverheadError::Schedule(n))?;
    let beta = inv * xty;
    let rss: f64 = windows
        .iter()
        .enumerate()
        .map(|(i, w)| (w.mean_ops_per_s.ln() - row(i).dot(&beta)).powi(2))
        .sum();
    let dof = n - PARAMS;
    let (ratio_low, ratio_high) = if dof > 0 {
        let se = (rss / dof as f64 * inv[(2, 2)]).sqrt();
        let t = StudentsT::new(0.0, 1.0, dof as f64)
            .map(|d| d.inverse_cdf(0.5 + CONFIDENCE / 2.0))
            .unwrap_or(f64::NAN);
        (
            Some((beta[2] - t * se).exp()),
            Some((beta[2] + t * se).exp()),
        )
    } else {
        (None, None)
    };
    let ratio_min = (1..n)
        .step_by(2)
        .map(|i| {
            let off = 0.5 * (windows[i - 1].mean_ops_per_s + windows[i + 1].mean_ops_per_s);
            windows[i].mean_ops_per_s / off
        })
        .fold(f64::INFINITY, f64::min);
    let pooled = |s: Sampling| {
        let (sum, count) = windows
            .iter()
            .filter(|w| w.sampling == s)
            .fold((0.0, 0usize), |(sum, count), w| {
                (sum + w.mean_ops_per_s * w.reports as f64, count + w.reports)
            });
        sum / count as f64
    };
    Ok(Overhead {
        pairs: n / 2,
        ratio: beta[2].exp(),
        ratio_low,
        ratio_high,
        ratio_min,
        off_ops_per_s: pooled(Sampling::Off),
        on_ops_per_s: pooled(Sampling::On),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(sampling: Sampling, mean_ops_per_s: f64) -> WindowThroughput {
        WindowThroughput {
            sampling,
            reports: 10,
            mean_ops_per_s,
        }
    }

    fn schedule(ops: &[f64]) -> Vec<WindowThroughput> {
        ops.iter()
            .enumerate()
            .map(|(i, &y)| {
                let s = if i % 2 == 0 {
                    Sampling::Off
                } else {
                    Sampling::On
                };
                w(s, y)
            })
            .collect()
    }

    #[test]
    fn no_overhead_reads_one() {
        let o = overhead(&schedule(&[100.0; 5])).unwrap();
        assert_eq!(o.pairs, 2);
        assert!((o.ratio - 1.0).abs() < 1e-12);
        assert!((o.ratio_low.unwrap() - 1.0).abs() < 1e-9);
        assert!((o.ratio_high.unwrap() - 1.0).abs() < 1e-9);
        assert!((o.ratio_min - 1.0).abs() < 1e-12);
    }

    #[test]
    fn a_drift_cancels_and_a_cost_on_top_of_it_is_found() {
        // Throughput falls 3 % a window; sampling costs nothing, then 4 %.
        let drift = |i: usize| 200.0 * 0.97f64.powi(i as i32);
        let free: Vec<f64> = (0..7).map(drift).collect();
        let o = overhead(&schedule(&free)).unwrap();
        assert_eq!(o.pairs, 3);
        assert!((o.ratio - 1.0).abs() < 1e-9, "{o:?}");
        // The pooled means alone would read the drift as a cost or a gain.
        assert!((o.on_ops_per_s / o.off_ops_per_s - 1.0).abs() > 1e-3);
        let costly: Vec<f64> = (0..7)
            .map(|i| drift(i) * if i % 2 == 1 { 0.96 } else { 1.0 })
            .collect();
        let o = overhead(&schedule(&costly)).unwrap();
        assert!((o.ratio - 0.96).abs() < 1e-9, "{o:?}");
    }

    #[test]
    fn a_five_percent_cost_in_noise_is_inside_its_interval_and_below_one() {
        let noise = [
            1.01, 0.99, 1.0, 1.012, 0.993, 1.004, 0.998, 1.006, 0.991, 1.0, 1.003,
        ];
        let ops: Vec<f64> = noise
            .iter()
            .enumerate()
            .map(|(i, e)| 100.0 * e * if i % 2 == 1 { 0.95 } else { 1.0 })
            .collect();
        let o = overhead(&schedule(&ops)).unwrap();
        let (lo, hi) = (o.ratio_low.unwrap(), o.ratio_high.unwrap());
        assert!(lo < 0.95 && 0.95 < hi, "{o:?}");
        assert!(
            hi < 1.0,
            "a consistent 5 % cost is told apart from none: {o:?}"
        );
        assert!(lo < o.ratio && o.ratio < hi);
        assert!(o.ratio_min < 0.96, "{o:?}");
    }

    #[test]
    fn one_pair_gives_a_ratio_without_an_interval() {
        let o = overhead(&schedule(&[100.0, 95.0, 100.0])).unwrap();
        assert!((o.ratio - 0.95).abs() < 1e-9, "{o:?}");
        assert_eq!((o.ratio_low, o.ratio_high), (None, None));
    }

    #[test]
    fn a_broken_schedule_is_refused() {
        assert_eq!(overhead(&[]), Err(OverheadError::Schedule(0)));
        let on_first = [
            w(Sampling::On, 1.0),
            w(Sampling::Off, 1.0),
            w(Sampling::On, 1.0),
        ];
        assert_eq!(overhead(&on_first), Err(OverheadError::Schedule(3)));
        let even = [w(Sampling::Off, 1.0), w(Sampling::On, 1.0)];
        assert_eq!(overhead(&even), Err(OverheadError::Schedule(2)));
    }

    #[test]
    fn a_window_without_throughput_is_refused() {
        let mut ws = [
            w(Sampling::Off, 100.0),
            w(Sampling::On, 0.0),
            w(Sampling::Off, 100.0),
        ];
        assert!(matches!(
            overhead(&ws),
            Err(OverheadError::NoThroughput { index: 1, .. })
        ));
        ws[1] = WindowThroughput {
            sampling: Sampling::On,
            reports: 0,
            mean_ops_per_s: 100.0,
        };
        assert!(matches!(
            overhead(&ws),
            Err(OverheadError::NoThroughput { index: 1, .. })
        ));
        ws[1].reports = 3;
        ws[1].mean_ops_per_s = f64::NAN;
        assert!(overhead(&ws).is_err());
    }
}

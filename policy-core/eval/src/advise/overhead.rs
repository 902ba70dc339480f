//! What profiling costs the guest: its throughput in windows where the
//! profiler samples it, against windows where it does not.
//!
//! The windows alternate off, on, off, …, off (an A-B-A design): each "on"
//! window is compared with the mean of the "off" windows on either side of
//! it, so a drift of the guest's throughput over the run (a warming cache,
//! a noisy neighbour on a shared host) cancels instead of reading as
//! overhead. The result is the mean of those per-window ratios with a
//! Student-t interval, and the ratio of the pooled means beside it.

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
    /// The workload's reports that fell in the window (a report straddling
    /// the window's start is left out by the caller).
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
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Overhead {
    /// "On" windows, each compared with its two neighbours.
    pub pairs: usize,
    /// Mean of the per-window ratios (on ÷ mean of the neighbouring offs).
    pub ratio_mean: f64,
    /// Lower end of the 95 % Student-t interval of that mean (equal to the
    /// mean with one pair).
    pub ratio_low: f64,
    /// Upper end of that interval.
    pub ratio_high: f64,
    /// Smallest per-window ratio.
    pub ratio_min: f64,
    /// Pooled mean ops/s of the "off" windows.
    pub off_ops_per_s: f64,
    /// Pooled mean ops/s of the "on" windows.
    pub on_ops_per_s: f64,
}

/// Two-sided confidence of the interval.
const CONFIDENCE: f64 = 0.95;

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
    let ratios: Vec<f64> = (1..n)
        .step_by(2)
        .map(|i| {
            let off = 0.5 * (windows[i - 1].mean_ops_per_s + windows[i + 1].mean_ops_per_s);
            windows[i].mean_ops_per_s / off
        })
        .collect();
    let pairs = ratios.len();
    let ratio_mean = ratios.iter().sum::<f64>() / pairs as f64;
    let half_width = if pairs > 1 {
        let var = ratios.iter().map(|r| (r - ratio_mean).powi(2)).sum::<f64>() / (pairs - 1) as f64;
        let t = StudentsT::new(0.0, 1.0, (pairs - 1) as f64)
            .map(|d| d.inverse_cdf(0.5 + CONFIDENCE / 2.0))
            .unwrap_or(f64::NAN);
        t * (var / pairs as f64).sqrt()
    } else {
        0.0
    };
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
        pairs,
        ratio_mean,
        ratio_low: ratio_mean - half_width,
        ratio_high: ratio_mean + half_width,
        ratio_min: ratios.iter().copied().fold(f64::INFINITY, f64::min),
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

    #[test]
    fn no_overhead_reads_one() {
        let ws = [
            w(Sampling::Off, 100.0),
            w(Sampling::On, 100.0),
            w(Sampling::Off, 100.0),
            w(Sampling::On, 100.0),
            w(Sampling::Off, 100.0),
        ];
        let o = overhead(&ws).unwrap();
        assert_eq!(o.pairs, 2);
        assert!((o.ratio_mean - 1.0).abs() < 1e-12);
        assert!((o.ratio_low - 1.0).abs() < 1e-12 && (o.ratio_high - 1.0).abs() < 1e-12);
    }

    #[test]
    fn a_linear_drift_cancels() {
        // Throughput falls 10 ops/s per window and sampling costs nothing:
        // each "on" window sits exactly between its neighbours.
        let ws: Vec<_> = (0..7)
            .map(|i| {
                let s = if i % 2 == 0 {
                    Sampling::Off
                } else {
                    Sampling::On
                };
                w(s, 200.0 - 10.0 * i as f64)
            })
            .collect();
        let o = overhead(&ws).unwrap();
        assert_eq!(o.pairs, 3);
        assert!((o.ratio_mean - 1.0).abs() < 1e-12, "{o:?}");
        // The pooled means do not cancel the drift: they read the "on"
        // windows as slower only because of where they sit.
        assert!(o.on_ops_per_s > 0.0 && o.off_ops_per_s > 0.0);
    }

    #[test]
    fn a_five_percent_cost_reads_0_95_inside_its_interval() {
        let offs = [100.0, 104.0, 98.0, 101.0];
        let ons = [95.0, 96.5, 94.0];
        let mut ws = vec![w(Sampling::Off, offs[0])];
        for i in 0..3 {
            ws.push(w(Sampling::On, ons[i]));
            ws.push(w(Sampling::Off, offs[i + 1]));
        }
        let o = overhead(&ws).unwrap();
        let expect = [95.0 / 102.0, 96.5 / 101.0, 94.0 / 99.5];
        let mean = expect.iter().sum::<f64>() / 3.0;
        assert!((o.ratio_mean - mean).abs() < 1e-12);
        assert!(o.ratio_low < mean && mean < o.ratio_high);
        let min = expect.iter().copied().fold(f64::INFINITY, f64::min);
        assert!((o.ratio_min - min).abs() < 1e-12);
        assert!(
            o.ratio_high < 1.0,
            "a consistent 5 % cost is told apart from none: {o:?}"
        );
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

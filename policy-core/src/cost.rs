//! The objective a stop is judged by.
//!
//! Stopping pre-copy at a sync round costs
//!
//! ```text
//! C = T + λ · max(0, D − L)      and is not allowed when D > M
//! ```
//!
//! where T is the total migration time if pre-copy stops there (downtime
//! included), D the downtime, L QEMU's `downtime-limit`, M the hard maximum
//! and λ the downtime weight: how many seconds of migration one second of
//! downtime beyond the limit is worth. λ = ∞ with M = L is QEMU's rule; λ = 0
//! is QEMU's rule at M. Everything here is in milliseconds.

use crate::config::PolicyConfig;
use crate::decision::ForecastPoint;
use crate::normal;

/// Standard deviations below which a downtime forecast counts as certain.
const CERTAIN_SD_MS: f64 = 1e-6;

/// The user's trade-off between migration time and downtime.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Objective {
    /// L: downtime that costs nothing extra, ms.
    pub downtime_limit_ms: f64,
    /// M: downtime never allowed above, ms.
    pub max_downtime_ms: f64,
    /// λ: ms of migration time one ms of downtime beyond L is worth
    /// (may be +∞ here: every stop above L is then infinitely costly).
    pub downtime_weight: f64,
}

impl Objective {
    /// The objective a policy configuration states.
    pub fn from_config(cfg: &PolicyConfig) -> Self {
        Self {
            downtime_limit_ms: cfg.downtime_limit_ms,
            max_downtime_ms: cfg.max_downtime_ms,
            downtime_weight: cfg.downtime_weight,
        }
    }

    /// Downtime beyond the limit, ms (0 when within it).
    pub fn excess_ms(&self, downtime_ms: f64) -> f64 {
        (downtime_ms - self.downtime_limit_ms).max(0.0)
    }

    /// True when a stop with this downtime is allowed (D ≤ M).
    pub fn allows(&self, downtime_ms: f64) -> bool {
        downtime_ms <= self.max_downtime_ms
    }

    /// Cost of a stop whose migration takes `total_time_ms` in all with
    /// `downtime_ms` of downtime; `None` when the downtime exceeds M.
    pub fn cost_ms(&self, total_time_ms: f64, downtime_ms: f64) -> Option<f64> {
        self.allows(downtime_ms)
            .then(|| total_time_ms + self.weighted_excess_ms(downtime_ms))
    }

    /// Cost of a stop ignoring M (what it would cost if it were allowed).
    pub fn unbounded_cost_ms(&self, total_time_ms: f64, downtime_ms: f64) -> f64 {
        total_time_ms + self.weighted_excess_ms(downtime_ms)
    }

    /// λ · max(0, D − L), with 0 (not NaN) when λ = ∞ and D ≤ L.
    fn weighted_excess_ms(&self, downtime_ms: f64) -> f64 {
        let excess = self.excess_ms(downtime_ms);
        if excess > 0.0 {
            self.downtime_weight * excess
        } else {
            0.0
        }
    }

    /// The largest downtime at which a stop costs no more than `budget_ms`,
    /// for a migration that completes at `completion_ms` wherever its last
    /// bytes fall (sending on before a stop moves bytes out of the
    /// downtime, not the end): L + (budget − completion) / λ, unbounded at
    /// λ = 0, L at λ = ∞; `None` when even a stop within L costs more.
    pub fn affordable_downtime_ms(&self, completion_ms: f64, budget_ms: f64) -> Option<f64> {
        let slack_ms = budget_ms - completion_ms;
        if slack_ms.is_nan() || slack_ms < 0.0 {
            return None;
        }
        let weight = self.downtime_weight;
        Some(if weight.is_infinite() {
            self.downtime_limit_ms
        } else if weight > 0.0 {
            self.downtime_limit_ms + slack_ms / weight
        } else {
            f64::INFINITY
        })
    }

    /// Expected cost of planning to stop at a sync `at_ms` from now whose
    /// downtime is forecast as Normal(`mean_ms`, `sd_ms`): the stop is taken
    /// when its downtime turns out ≤ `allowed_ms` (M, or M less headroom),
    /// and otherwise the plan fails and costs `failed_ms` (what continuing
    /// from there is worth, e.g. the cost of stopping now plus the wait).
    /// Closed form over the truncated normal; finite λ only.
    pub fn expected_cost_ms(
        &self,
        at_ms: f64,
        mean_ms: f64,
        sd_ms: f64,
        allowed_ms: f64,
        failed_ms: f64,
    ) -> f64 {
        let limit = self.downtime_limit_ms;
        let weight = self.downtime_weight;
        if sd_ms.is_nan() || sd_ms <= CERTAIN_SD_MS {
            return if mean_ms <= allowed_ms {
                at_ms + mean_ms + weight * (mean_ms - limit).max(0.0)
            } else {
                failed_ms
            };
        }
        let z = |x: f64| (x - mean_ms) / sd_ms;
        let b = z(allowed_ms);
        let p_allowed = normal::cdf(b);
        // E[D; D ≤ A] = μΦ(b) − σφ(b)
        let downtime_part = mean_ms * p_allowed - sd_ms * normal::pdf(b);
        // E[D − L; L < D ≤ A] = (μ − L)(Φ(b) − Φ(a)) − σ(φ(b) − φ(a))
        let excess_part = if allowed_ms > limit {
            let a = z(limit);
            (mean_ms - limit) * (p_allowed - normal::cdf(a))
                - sd_ms * (normal::pdf(b) - normal::pdf(a))
        } else {
            0.0
        };
        at_ms * p_allowed
            + downtime_part
            + weight * excess_part.max(0.0)
            + (1.0 - p_allowed) * failed_ms
    }
}

/// The cheapest plan "continue, then stop at forecast point h".
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BestWait {
    /// Its expected cost, ms (+∞ when there is no point to wait for).
    pub expected_cost_ms: f64,
    /// Its expected downtime meets the limit.
    pub within_limit: bool,
}

impl Objective {
    /// The cheapest of the plans "continue, then stop at `points[h]`" seen
    /// from a sync `elapsed_ms` into the migration: each point's downtime
    /// is Normal, its mean the point's pending bytes at `ms_per_byte`, its
    /// spread the point's interval read as ±`z` standard deviations. A
    /// plan whose stop turns out above `allowed_ms` has lost the stop that
    /// fits now as well: it costs `stop_cost_ms` (stopping now) plus the
    /// wait plus `refit_ms`, the time until a stop fits again.
    #[allow(clippy::too_many_arguments)]
    pub fn best_wait(
        &self,
        points: &[ForecastPoint],
        elapsed_ms: f64,
        ms_per_byte: f64,
        z: f64,
        allowed_ms: f64,
        stop_cost_ms: f64,
        refit_ms: f64,
    ) -> BestWait {
        let mut best = BestWait {
            expected_cost_ms: f64::INFINITY,
            within_limit: false,
        };
        for p in points {
            let mean_ms = p.pending_bytes * ms_per_byte;
            let sd_ms = (p.pending_hi_bytes - p.pending_lo_bytes) * ms_per_byte / (2.0 * z);
            let expected = self.expected_cost_ms(
                elapsed_ms + p.offset_ms,
                mean_ms,
                sd_ms,
                allowed_ms,
                stop_cost_ms + p.offset_ms + refit_ms,
            );
            if expected < best.expected_cost_ms {
                best = BestWait {
                    expected_cost_ms: expected,
                    within_limit: mean_ms <= self.downtime_limit_ms,
                };
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn objective(weight: f64) -> Objective {
        Objective {
            downtime_limit_ms: 300.0,
            max_downtime_ms: 1000.0,
            downtime_weight: weight,
        }
    }

    #[test]
    fn cost_is_time_plus_weighted_excess_and_forbidden_above_the_maximum() {
        let o = objective(10.0);
        assert_eq!(o.cost_ms(5000.0, 200.0), Some(5000.0));
        assert_eq!(o.cost_ms(5000.0, 400.0), Some(6000.0));
        assert_eq!(o.cost_ms(5000.0, 1000.0), Some(12000.0));
        assert_eq!(o.cost_ms(5000.0, 1000.1), None);
    }

    #[test]
    fn the_special_cases_are_qemus_rule() {
        // λ = 0: only time counts (QEMU's rule at M picks the first stop ≤ M).
        assert_eq!(objective(0.0).cost_ms(3000.0, 900.0), Some(3000.0));
        // λ = ∞: any excess is infinitely costly, none costs the time.
        let inf = objective(f64::INFINITY);
        assert_eq!(inf.cost_ms(3000.0, 250.0), Some(3000.0));
        assert_eq!(inf.cost_ms(3000.0, 301.0), Some(f64::INFINITY));
    }

    #[test]
    fn the_affordable_downtime_spends_the_budget_on_excess_downtime() {
        // 500 ms of slack at λ = 10 buys 50 ms beyond the 300 ms limit.
        let o = objective(10.0);
        assert_eq!(o.affordable_downtime_ms(10_000.0, 10_500.0), Some(350.0));
        // No slack: only a stop within the limit; less: none at all.
        assert_eq!(o.affordable_downtime_ms(10_000.0, 10_000.0), Some(300.0));
        assert_eq!(o.affordable_downtime_ms(10_000.0, 9_999.0), None);
        assert_eq!(o.affordable_downtime_ms(10_000.0, f64::NAN), None);
        // λ = 0: any downtime; λ = ∞: the limit.
        assert_eq!(
            objective(0.0).affordable_downtime_ms(1.0, 2.0),
            Some(f64::INFINITY)
        );
        assert_eq!(
            objective(f64::INFINITY).affordable_downtime_ms(1.0, 2.0),
            Some(300.0)
        );
        // An infinite budget (nothing to wait for) affords any downtime.
        assert_eq!(
            o.affordable_downtime_ms(1.0, f64::INFINITY),
            Some(f64::INFINITY)
        );
    }

    #[test]
    fn expected_cost_matches_the_certain_case_as_the_spread_vanishes() {
        let o = objective(10.0);
        let certain = o.expected_cost_ms(1000.0, 500.0, 0.0, 900.0, 1e9);
        let nearly = o.expected_cost_ms(1000.0, 500.0, 1e-3, 900.0, 1e9);
        assert!((certain - (1000.0 + 500.0 + 2000.0)).abs() < 1e-9);
        assert!((certain - nearly).abs() < 1e-3, "{certain} vs {nearly}");
        // A certain stop above what is allowed fails.
        assert_eq!(o.expected_cost_ms(1000.0, 950.0, 0.0, 900.0, 7.0), 7.0);
    }

    #[test]
    fn the_best_wait_is_the_cheapest_point_and_none_costs_infinity() {
        let o = objective(10.0);
        let point = |pending_bytes: f64, offset_ms: f64| ForecastPoint {
            pending_bytes,
            pending_lo_bytes: pending_bytes,
            pending_hi_bytes: pending_bytes,
            offset_ms,
            dirty_rate_bytes_per_s: 0.0,
        };
        // 1 ms per byte: 500 ms of downtime in 1 s, or 250 in 2 s.
        let points = [point(500.0, 1000.0), point(250.0, 2000.0)];
        let best = o.best_wait(&points, 0.0, 1.0, 1.28, 900.0, 1e9, 0.0);
        assert_eq!(best.expected_cost_ms, 2250.0);
        assert!(best.within_limit);
        let none = o.best_wait(&[], 0.0, 1.0, 1.28, 900.0, 1e9, 0.0);
        assert_eq!(none.expected_cost_ms, f64::INFINITY);
        assert!(!none.within_limit);
    }

    #[test]
    fn expected_cost_matches_a_numeric_integral() {
        let o = objective(10.0);
        let (at, mean, sd, allowed, failed) = (2000.0, 600.0, 200.0, 900.0, 9000.0);
        let closed = o.expected_cost_ms(at, mean, sd, allowed, failed);
        // Midpoint rule over ±10 σ.
        let steps = 200_000;
        let (lo, hi) = (mean - 10.0 * sd, mean + 10.0 * sd);
        let dx = (hi - lo) / steps as f64;
        let numeric: f64 = (0..steps)
            .map(|i| {
                let d = lo + (i as f64 + 0.5) * dx;
                let density = normal::pdf((d - mean) / sd) / sd;
                let cost = if d <= allowed {
                    at + d + 10.0 * (d - 300.0).max(0.0)
                } else {
                    failed
                };
                cost * density * dx
            })
            .sum();
        assert!((closed - numeric).abs() < 0.5, "{closed} vs {numeric}");
    }
}

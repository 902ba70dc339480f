//! What a migration started at a given moment would cost, from a forecast
//! of the dirty rate: the physics of pre-copy rounds (each round sends what
//! the one before left, at the link's bandwidth, while the guest dirties at
//! the forecast rate, saturating its working set) under the stop objective
//! the policy itself uses.

use kairos_policy_core::cost::Objective;

/// Rounds a predicted migration is followed for.
const MAX_ROUNDS: usize = 64;

/// A piecewise-constant touch rate (bytes/s of page writes) from "now"
/// on: `rates_bytes_per_s[i]` holds over `[i·step_s, (i + 1)·step_s)`, the
/// last one for ever after.
#[derive(Debug, Clone, PartialEq)]
pub struct RatePath {
    /// Length of each piece, s.
    pub step_s: f64,
    /// The rate in each piece, bytes/s (≥ 0).
    pub rates_bytes_per_s: Vec<f64>,
}

impl RatePath {
    /// Bytes the guest touches between `from_s` and `to_s` (from now).
    pub fn integral(&self, from_s: f64, to_s: f64) -> f64 {
        if to_s <= from_s || self.rates_bytes_per_s.is_empty() {
            return 0.0;
        }
        let last = self.rates_bytes_per_s.len() - 1;
        let mut total = 0.0;
        let mut t = from_s.max(0.0);
        while t < to_s {
            let i = ((t / self.step_s).floor() as usize).min(last);
            let piece_end = if i == last {
                to_s
            } else {
                ((i + 1) as f64 * self.step_s).min(to_s)
            };
            total += self.rates_bytes_per_s[i] * (piece_end - t);
            t = piece_end.max(t + 1e-9);
        }
        total
    }
}

/// What the prediction needs to know about the guest and the link.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MigrationModel {
    /// Bytes the first (bulk) round puts on the wire: the guest's nonzero
    /// memory, a zero page costing only its header.
    pub bulk_bytes: f64,
    /// The guest's writable working set, bytes (≤ RAM).
    pub wws_bytes: f64,
    /// Link bandwidth, bytes/s.
    pub bandwidth_bytes_per_s: f64,
    /// Device state and the vCPUs' stop and start, added to every
    /// downtime, ms.
    pub switchover_ms: f64,
}

impl MigrationModel {
    /// The touch rate (bytes/s of page writes, repeats included) behind a
    /// rate of distinct bytes per 1 s window: the inverse of
    /// `Self::distinct` over one second. A window that saturated the
    /// working set is read as nearly all of it touched.
    pub fn touch_rate(&self, distinct_per_s: f64) -> f64 {
        if self.wws_bytes <= 0.0 {
            return 0.0;
        }
        let fraction = (distinct_per_s / self.wws_bytes).clamp(0.0, 0.999);
        -self.wws_bytes * (1.0 - fraction).ln()
    }

    /// Distinct bytes dirtied by `touched` bytes of uniform touches over
    /// the working set: W·(1 − e^(−touched/W)).
    fn distinct(&self, touched: f64) -> f64 {
        if self.wws_bytes <= 0.0 {
            return 0.0;
        }
        self.wws_bytes * (1.0 - (-touched / self.wws_bytes).exp())
    }

    /// The cost, ms, of the cheapest allowed stop of a migration started
    /// `start_s` from now under `objective` (total time from its start plus
    /// the weighted excess downtime), or None when no round within
    /// `MAX_ROUNDS` fits the maximum downtime.
    pub fn cost_ms(&self, path: &RatePath, start_s: f64, objective: &Objective) -> Option<f64> {
        let bandwidth = self.bandwidth_bytes_per_s;
        if bandwidth.is_nan() || bandwidth <= 0.0 {
            return None;
        }
        let mut t = start_s;
        let mut elapsed_s = 0.0;
        let mut pending = self.bulk_bytes;
        let mut best: Option<f64> = None;
        for _ in 0..MAX_ROUNDS {
            let round_s = pending / bandwidth;
            pending = self.distinct(path.integral(t, t + round_s));
            t += round_s;
            elapsed_s += round_s;
            let downtime_ms = pending / bandwidth * 1000.0 + self.switchover_ms;
            if let Some(cost) = objective.cost_ms(elapsed_s * 1000.0 + downtime_ms, downtime_ms) {
                best = Some(best.map_or(cost, |b| b.min(cost)));
            }
            // A later stop costs at least the time already spent.
            if best.is_some_and(|b| elapsed_s * 1000.0 >= b) || round_s < 1e-6 {
                break;
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::objective;
    use super::*;

    fn model() -> MigrationModel {
        MigrationModel {
            bulk_bytes: 1e9,
            wws_bytes: 300e6,
            bandwidth_bytes_per_s: 125e6,
            switchover_ms: 20.0,
        }
    }

    #[test]
    fn the_integral_follows_the_pieces() {
        let p = RatePath {
            step_s: 10.0,
            rates_bytes_per_s: vec![1.0, 3.0],
        };
        assert_eq!(p.integral(0.0, 10.0), 10.0);
        assert_eq!(p.integral(5.0, 15.0), 5.0 + 15.0);
        assert_eq!(p.integral(20.0, 30.0), 30.0);
    }

    #[test]
    fn touch_rate_inverts_distinct() {
        let m = model();
        for touched in [1e6, 1e8, 5e8] {
            let back = m.touch_rate(m.distinct(touched));
            assert!((back - touched).abs() / touched < 1e-9, "{touched} {back}");
        }
    }

    #[test]
    fn an_idle_guest_costs_one_bulk_copy() {
        let p = RatePath {
            step_s: 5.0,
            rates_bytes_per_s: vec![0.0],
        };
        let cost = model().cost_ms(&p, 0.0, &objective()).unwrap();
        // 8 s of bulk copy, nothing left, the switch-over.
        assert!((cost - 8020.0).abs() < 1.0, "{cost}");
    }

    #[test]
    fn starting_in_a_trough_costs_less_than_in_a_burst() {
        // 30 s hot (300 MB/s), 30 s quiet, repeated.
        let rates: Vec<f64> = (0..24)
            .map(|i| if (i / 6) % 2 == 0 { 300e6 } else { 1e6 })
            .collect();
        let p = RatePath {
            step_s: 5.0,
            rates_bytes_per_s: rates,
        };
        let hot = model().cost_ms(&p, 0.0, &objective());
        let quiet = model().cost_ms(&p, 30.0, &objective()).unwrap();
        assert!(hot.is_none_or(|h| h > quiet + 5000.0), "{hot:?} {quiet}");
    }

    #[test]
    fn a_guest_dirtying_faster_than_the_link_never_fits() {
        let p = RatePath {
            step_s: 5.0,
            rates_bytes_per_s: vec![2e9],
        };
        assert_eq!(model().cost_ms(&p, 0.0, &objective()), None);
    }
}

//! How good `predictive`'s forecasts were, in hindsight, along one
//! migration that never stopped: one-step and h-step errors of the pending
//! bytes and of the dirty rate, the coverage of the prediction intervals,
//! and how often a "no convergence" verdict was right.
//!
//! The steady-phase figure flatters: most rounds of a long migration are
//! steady, and no decision hangs on them. So the rounds that decide are
//! scored apart: the one-step forecasts made in the [`DECIDING_ROUNDS`]
//! rounds before the first stop `predictive` makes along the rounds, and
//! those whose target is the first round of a new phase.
//!
//! Errors are scored within steady phases: a forecast made at sync i for
//! sync i + h counts when the rounds from i − 1 (the round the newest rate
//! sample came from) to i + h lie in one phase of the workload. The caller
//! says what a phase is: the simulator knows its program's phases; for a
//! recorded trace, [`change_segments`] splits it where a change detector on
//! the dirty rate fires.

use kairos_policy_core::phase::PageHinkley;
use kairos_policy_core::policies::qemu_rule_holds;
use kairos_policy_core::{
    build_policy, ConfigError, Decision, PolicyConfig, PolicyKind, Reason, RoundObservation,
};
use serde::{Deserialize, Serialize};

/// Page-Hinkley settings of [`change_segments`] (as the policy's own
/// detector, on the log of the observed dirty rate).
const SEGMENT_DRIFT: f64 = 0.1;
const SEGMENT_THRESHOLD: f64 = 1.5;
/// Floor under the dirty rate before its logarithm, bytes/s.
const LOG_RATE_FLOOR: f64 = 1e5;
/// The rounds before a stop whose forecasts decided it.
pub const DECIDING_ROUNDS: usize = 3;

/// Absolute and symmetric percentage errors, and interval coverage, over
/// the forecasts scored at one horizon.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ErrorStats {
    /// Forecasts scored.
    pub count: u64,
    /// Mean absolute percentage error, % (NaN, written null, when none
    /// was scored).
    #[serde(deserialize_with = "nan_if_null")]
    pub mape_pct: f64,
    /// Symmetric MAPE (2|f − a| / (|f| + |a|)), %.
    #[serde(deserialize_with = "nan_if_null")]
    pub smape_pct: f64,
    /// Share of actual values inside the forecast's interval, % (pending
    /// bytes only; NaN where there is no interval).
    #[serde(deserialize_with = "nan_if_null")]
    pub coverage_pct: f64,
}

/// JSON has no NaN: serde_json writes it as null; read null back as NaN.
fn nan_if_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

#[derive(Debug, Clone, Copy, Default)]
struct Accumulator {
    count: u64,
    ape: f64,
    sape: f64,
    covered: u64,
    with_interval: u64,
}

impl ErrorStats {
    /// The scores of `self` and `other` together, each weighted by its
    /// count (coverage too: every pending-bytes forecast has an interval).
    pub fn merged(self, other: ErrorStats) -> ErrorStats {
        let n = self.count + other.count;
        if n == 0 {
            return ErrorStats::default();
        }
        let mean = |a: f64, b: f64| {
            let part = |x: f64, c: u64| if c == 0 { 0.0 } else { x * c as f64 };
            (part(a, self.count) + part(b, other.count)) / n as f64
        };
        ErrorStats {
            count: n,
            mape_pct: mean(self.mape_pct, other.mape_pct),
            smape_pct: mean(self.smape_pct, other.smape_pct),
            coverage_pct: mean(self.coverage_pct, other.coverage_pct),
        }
    }
}

impl Accumulator {
    fn add(&mut self, forecast: f64, actual: f64, interval: Option<(f64, f64)>) {
        if !(forecast.is_finite() && actual.is_finite()) || actual <= 0.0 {
            return;
        }
        self.count += 1;
        self.ape += (forecast - actual).abs() / actual;
        self.sape += 2.0 * (forecast - actual).abs() / (forecast.abs() + actual.abs());
        if let Some((lo, hi)) = interval {
            self.with_interval += 1;
            self.covered += u64::from(lo <= actual && actual <= hi);
        }
    }

    fn stats(&self) -> ErrorStats {
        let n = self.count as f64;
        ErrorStats {
            count: self.count,
            mape_pct: 100.0 * self.ape / n,
            smape_pct: 100.0 * self.sape / n,
            coverage_pct: 100.0 * self.covered as f64 / self.with_interval as f64,
        }
    }
}

/// Forecast quality along one migration.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ForecastQuality {
    /// The h of the h-step scores.
    pub horizon_rounds: usize,
    /// Pending bytes, one step ahead, steady phases.
    pub pending_1: ErrorStats,
    /// Pending bytes, h steps ahead, steady phases.
    pub pending_h: ErrorStats,
    /// Pending bytes, one step ahead, every round (phase changes included).
    pub pending_1_all: ErrorStats,
    /// Pending bytes, one step ahead, forecast in the [`DECIDING_ROUNDS`]
    /// rounds before the first stop `predictive` makes (phase changes
    /// included: these are the forecasts the stop rested on).
    #[serde(default)]
    pub pending_1_deciding: ErrorStats,
    /// Pending bytes, one step ahead, of the first round of each new phase
    /// (the forecast made in the old one).
    #[serde(default)]
    pub pending_1_change: ErrorStats,
    /// Dirty rate (bytes newly dirty at a sync over its round), one step.
    pub dirty_rate_1: ErrorStats,
    /// Dirty rate, h steps.
    pub dirty_rate_h: ErrorStats,
    /// Rounds where `predictive` declared that nothing within the horizon
    /// fits the maximum downtime.
    pub no_convergence_verdicts: u64,
    /// Of those, how many were right: no sync within the horizon after it
    /// had a downtime within the maximum (less headroom).
    pub no_convergence_right: u64,
}

/// The observed dirty rate of a round: its newly dirty bytes over its
/// length, bytes/s (None for the first round).
fn observed_dirty_rate(previous: &RoundObservation, obs: &RoundObservation) -> Option<f64> {
    let dt_s = obs.elapsed_ms.checked_sub(previous.elapsed_ms)? as f64 / 1000.0;
    (dt_s > 0.0).then(|| obs.dirtied_pages as f64 * obs.page_size_bytes as f64 / dt_s)
}

/// Phase segments of a recorded trace: a Page-Hinkley test on the log of
/// the observed dirty rate; each alarm starts a new segment.
pub fn change_segments(rounds: &[RoundObservation]) -> Vec<u64> {
    let mut detector = PageHinkley::new(SEGMENT_DRIFT, SEGMENT_THRESHOLD);
    let mut segment = 0;
    let mut out = Vec::with_capacity(rounds.len());
    for (i, obs) in rounds.iter().enumerate() {
        if let Some(rate) = i
            .checked_sub(1)
            .and_then(|p| observed_dirty_rate(&rounds[p], obs))
        {
            if detector.update((rate + LOG_RATE_FLOOR).ln()) {
                segment += 1;
            }
        }
        out.push(segment);
    }
    out
}

/// The rounds a migration under any policy compared here would still be
/// running: up to and including the first where QEMU's rule at
/// `downtime_limit_ms` holds (a never-stop run goes on long after, through
/// near-empty rounds no decision depends on).
pub fn while_running(rounds: &[RoundObservation], downtime_limit_ms: f64) -> &[RoundObservation] {
    let end = rounds
        .iter()
        .skip(1)
        .position(|o| qemu_rule_holds(o, downtime_limit_ms))
        .map_or(rounds.len(), |i| i + 2);
    &rounds[..end]
}

/// Score `predictive`'s forecasts along `rounds` (a migration that never
/// stopped), `segments[i]` naming the phase round i is in; `horizon`
/// is the h of the h-step scores (≤ the configured horizon).
pub fn forecast_quality(
    rounds: &[RoundObservation],
    segments: &[u64],
    cfg: &PolicyConfig,
    horizon: usize,
) -> Result<ForecastQuality, ConfigError> {
    let horizon = horizon.clamp(1, cfg.forecast.horizon_rounds);
    let mut policy = build_policy(PolicyKind::Predictive, cfg)?;
    let decisions: Vec<Decision> = rounds.iter().map(|o| policy.observe(o)).collect();
    let allowed_ms = cfg.max_downtime_ms * (1.0 - cfg.downtime_headroom_fraction);
    let steady = |from: usize, to: usize| {
        from >= 1 && to < segments.len() && segments[from - 1] == segments[to]
    };

    let (mut p1, mut ph, mut p1_all, mut r1, mut rh) = Default::default();
    let (mut deciding, mut change): (Accumulator, Accumulator) = Default::default();
    let first_stop = decisions.iter().zip(rounds).position(|(d, o)| {
        crate::outcome::acted_on(d, o) == kairos_policy_core::Action::StopAndCopy
    });
    let decides = |i: usize| first_stop.is_some_and(|s| i < s && i + DECIDING_ROUNDS >= s);
    let (mut verdicts, mut right) = (0, 0);
    for (i, d) in decisions.iter().enumerate() {
        if d.reason == Reason::NoConvergenceForecast {
            verdicts += 1;
            let reached = rounds
                .iter()
                .skip(i + 1)
                .take(cfg.forecast.horizon_rounds)
                .any(|o| o.implied_downtime_ms() <= allowed_ms);
            right += u64::from(!reached);
        }
        for (h, acc_p, acc_r) in [(1, &mut p1, &mut r1), (horizon, &mut ph, &mut rh)] {
            let (Some(point), Some(actual)) = (d.forecast.points().get(h - 1), rounds.get(i + h))
            else {
                continue;
            };
            let interval = Some((point.pending_lo_bytes, point.pending_hi_bytes));
            let pending = actual.pending_bytes as f64;
            if h == 1 {
                Accumulator::add(&mut p1_all, point.pending_bytes, pending, interval);
                if decides(i) {
                    deciding.add(point.pending_bytes, pending, interval);
                }
                if segments
                    .get(i + 1)
                    .is_some_and(|next| Some(next) != segments.get(i))
                {
                    change.add(point.pending_bytes, pending, interval);
                }
            }
            if steady(i, i + h) {
                let acc_p: &mut Accumulator = acc_p;
                acc_p.add(point.pending_bytes, pending, interval);
                if let Some(rate) = observed_dirty_rate(&rounds[i + h - 1], actual) {
                    let acc_r: &mut Accumulator = acc_r;
                    acc_r.add(point.dirty_rate_bytes_per_s, rate, None);
                }
            }
        }
    }
    Ok(ForecastQuality {
        horizon_rounds: horizon,
        pending_1: p1.stats(),
        pending_h: ph.stats(),
        pending_1_all: p1_all.stats(),
        pending_1_deciding: deciding.stats(),
        pending_1_change: change.stats(),
        dirty_rate_1: r1.stats(),
        dirty_rate_h: rh.stats(),
        no_convergence_verdicts: verdicts,
        no_convergence_right: right,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steady_rounds(n: u64) -> Vec<RoundObservation> {
        // A guest dirtying 20 000 pages per 0.64 s round, QEMU-shaped.
        (1..=n)
            .map(|round| RoundObservation {
                round,
                elapsed_ms: round * 640,
                dirtied_pages: if round == 1 { 0 } else { 20_000 },
                pending_bytes: if round == 1 { 1 << 30 } else { 81_920_000 },
                sent_bytes: round * 80_000_000,
                bandwidth_bytes_per_s: 125e6,
                page_size_bytes: 4096,
                ram_bytes: 1 << 30,
            })
            .collect()
    }

    #[test]
    fn a_steady_guest_is_forecast_exactly_and_covered() {
        let rounds = steady_rounds(30);
        let segments = vec![0; rounds.len()];
        let q = forecast_quality(&rounds, &segments, &PolicyConfig::default(), 3).unwrap();
        assert!(q.pending_1.count > 20, "{q:?}");
        assert!(q.pending_1.mape_pct < 1.0, "{q:?}");
        assert!(q.pending_h.mape_pct < 1.0, "{q:?}");
        assert!(q.dirty_rate_1.mape_pct < 5.0, "{q:?}");
        assert!(q.pending_1.coverage_pct > 90.0, "{q:?}");
    }

    #[test]
    fn forecasts_across_a_phase_boundary_are_left_out_of_the_steady_scores() {
        let mut rounds = steady_rounds(30);
        for r in rounds.iter_mut().skip(15) {
            r.dirtied_pages = 2_000;
            r.pending_bytes = 8_192_000 + 40_000_000;
        }
        let all_one = vec![0; rounds.len()];
        let split: Vec<u64> = (0..rounds.len() as u64)
            .map(|i| u64::from(i >= 15))
            .collect();
        let cfg = PolicyConfig::default();
        let blind = forecast_quality(&rounds, &all_one, &cfg, 3).unwrap();
        let aware = forecast_quality(&rounds, &split, &cfg, 3).unwrap();
        assert!(aware.pending_1.count < blind.pending_1.count);
        assert!(
            aware.pending_1.mape_pct < blind.pending_1.mape_pct,
            "{aware:?} vs {blind:?}"
        );
        assert_eq!(aware.pending_1_all, blind.pending_1_all);
    }

    #[test]
    fn the_rounds_before_the_stop_and_at_a_change_are_scored_apart() {
        // Steady above the maximum (no stop fits), then the guest calms
        // below the limit: the stop is there.
        let mut rounds = steady_rounds(30);
        for r in rounds.iter_mut().skip(1).take(14) {
            r.pending_bytes = 150_000_000;
        }
        for r in rounds.iter_mut().skip(15) {
            r.dirtied_pages = 2_000;
            r.pending_bytes = 20_000_000;
        }
        let split: Vec<u64> = (0..rounds.len() as u64)
            .map(|i| u64::from(i >= 15))
            .collect();
        let q = forecast_quality(&rounds, &split, &PolicyConfig::default(), 3).unwrap();
        // One change, forecast from the old phase: far off.
        assert_eq!(q.pending_1_change.count, 1, "{q:?}");
        assert!(q.pending_1_change.mape_pct > 20.0, "{q:?}");
        // Three forecasts decided the stop, the last across the change.
        assert_eq!(q.pending_1_deciding.count, DECIDING_ROUNDS as u64, "{q:?}");
        assert!(
            q.pending_1_deciding.mape_pct > q.pending_1.mape_pct,
            "{q:?}"
        );
        // Merging weighs by count.
        let m = q.pending_1.merged(q.pending_1_change);
        assert_eq!(m.count, q.pending_1.count + 1);
        assert!(m.mape_pct > q.pending_1.mape_pct && m.mape_pct < q.pending_1_change.mape_pct);
        assert_eq!(ErrorStats::default().merged(ErrorStats::default()).count, 0);
    }

    #[test]
    fn scores_with_nothing_scored_read_back_from_json() {
        let none = ErrorStats::default().merged(ErrorStats::default());
        let empty = Accumulator::default().stats();
        let text = serde_json::to_string(&empty).unwrap();
        assert!(text.contains("null"), "{text}");
        let back: ErrorStats = serde_json::from_str(&text).unwrap();
        assert_eq!(back.count, 0);
        assert!(back.mape_pct.is_nan());
        assert_eq!(none.count, 0);
    }

    #[test]
    fn scoring_ends_where_qemus_rule_would_have_stopped() {
        let mut rounds = steady_rounds(30);
        rounds[12].pending_bytes = 1_000_000;
        assert_eq!(while_running(&rounds, 300.0).len(), 13);
        assert_eq!(while_running(&rounds[..5], 300.0).len(), 5);
    }

    #[test]
    fn the_change_detector_splits_a_step_in_the_dirty_rate() {
        let mut rounds = steady_rounds(30);
        for r in rounds.iter_mut().skip(15) {
            r.dirtied_pages = 500;
        }
        let segments = change_segments(&rounds);
        assert_eq!(segments[10], segments[5]);
        assert_ne!(segments[25], segments[5]);
        assert!(segments[14..20].windows(2).filter(|w| w[0] != w[1]).count() == 1);
    }
}

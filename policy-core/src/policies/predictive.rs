//! Kairos's own policy: forecast the dirty rate, project the pending bytes of
//! the next rounds with an interval, and stop where the expected cost is
//! lowest.
//!
//! The series forecast is the guest's page-touch rate, recovered from each
//! round's dirtied bytes through a saturation model of the writable working
//! set (WWS): a round of T seconds dirties W·(1 − e^(−rate·T/W)) unique bytes,
//! W being the largest set any recent round dirtied. That rate does not
//! depend on how long the round was, which the raw dirtied/T does.
//!
//! The objective is the user's ([`crate::cost`]): stopping costs
//! T + λ·max(0, D − L), and a stop with D above the maximum is not allowed.
//!
//! Rules, in order (see `docs/design.md`):
//! 1. QEMU's rule holds → stop (never later than `qemu`).
//! 2. A safety cap is reached → stop if the stop fits the maximum, else
//!    abort (never a stop above what the user accepts).
//! 3. No rate sample yet → continue (warm-up; the bulk round gives the
//!    first, so the first decision is at the first sync after it; being a
//!    lower bound, that sample is replaced by the first full round's).
//! 4. Stopping now fits the hard maximum (less headroom): compare its cost
//!    with the expected cost of stopping at each forecast round instead
//!    (the wait counted, the forecast's spread counted, and a plan whose
//!    stop turns out above the maximum costing what stopping now would, plus
//!    the wait). Continue if some later stop is expected to be cheaper
//!    (`converging` when it is expected within the limit, `trough-ahead`
//!    otherwise); stop otherwise (`convergence-point`, or `trough-now` at the
//!    bottom of a detected cycle).
//! 5. Stopping now exceeds the maximum: if the optimistic (lower) forecast
//!    reaches it within the horizon → continue; after
//!    `non_convergence_confirm_rounds` rounds where it does not, declare
//!    non-convergence and escalate / stop at the best point / keep going.

use super::{qemu_rule_holds, PolicyKind, RoundRule, GIB_BYTES};
use crate::config::{ForecastConfig, NonConvergenceAction, PolicyConfig};
use crate::cost::Objective;
use crate::decision::{Action, Decision, Forecast, ForecastPoint, Reason, THROTTLE_MAX_SLEEP_NS};
use crate::forecast::ensemble::Ensemble;
use crate::forecast::ring::Ring;
use crate::observation::RoundObservation;
use crate::period::PeriodDetector;
use crate::phase::PageHinkley;

/// Shortest round the projection assumes, in seconds: a sync round costs at
/// least the bitmap sync itself.
const MIN_ROUND_S: f64 = 0.005;
/// Rounds over which the writable working set is the largest dirtied set.
const WWS_WINDOW_ROUNDS: usize = 16;
/// The fraction of the working set the largest recent round is taken to
/// have dirtied: the WWS estimate is that round over this, so a round that
/// saturated what it could see still has a finite touch rate, and a steady
/// saturated guest is forecast to dirty exactly what it did. Rounds that
/// reach it are saturated: their touch rate is only a lower bound.
const MAX_SATURATION: f64 = 0.95;
/// The highest throttle any projection assumes (QEMU caps at 99 %).
const MAX_THROTTLE: f64 = 0.99;
/// Rounds ahead within which a throttle must make a stop fit.
const THROTTLE_ROUNDS: usize = 2;
/// Steps of the bisection that sizes a throttle (to 0.01 %).
const THROTTLE_BISECTION_STEPS: u32 = 14;
/// The time slice of QEMU's CPU throttle (`CPU_THROTTLE_TIMESLICE_NS` in
/// migration/cpu-throttle.c), ms: at a throttle `p` every vCPU runs this
/// long and then sleeps `p / (1 - p)` times as long, so the sleep is a
/// guest stall the application sees like downtime.
const THROTTLE_TIMESLICE_MS: f64 = 10.0;
/// The bound QEMU keeps the policy's throttle sleeps within by shortening
/// the slice ([`THROTTLE_MAX_SLEEP_NS`]), ms.
const THROTTLE_MAX_SLEEP_MS: f64 = THROTTLE_MAX_SLEEP_NS as f64 / 1e6;

/// How long each vCPU sleep lasts at throttle `p` (fraction), ms.
fn throttle_sleep_ms(p: f64) -> f64 {
    let p = p.clamp(0.0, MAX_THROTTLE);
    (THROTTLE_TIMESLICE_MS * p / (1.0 - p)).min(THROTTLE_MAX_SLEEP_MS)
}

/// What a throttle must bring pending down to, read off which end of the
/// projection.
#[derive(Clone, Copy)]
struct Target {
    /// Pending bytes a stop fits in.
    bytes: f64,
    /// The projection's expected value or an end of its interval.
    level: fn(&ForecastPoint) -> f64,
}

/// The highest throttle (fraction, whole percent) whose vCPU sleeps are no
/// longer than `max_stall_ms`: a throttle must not stall the guest longer
/// than the downtime the user accepts, or it is a worse pause than the
/// stop-and-copy it avoids. With sleeps bounded by
/// [`THROTTLE_MAX_SLEEP_NS`] every throttle qualifies from 99 ms on; below
/// that QEMU's 10 ms slice decides (90 % sleeps 90 ms).
fn stall_bounded_throttle(max_stall_ms: f64) -> f64 {
    let stall_ms = max_stall_ms.max(0.0);
    if stall_ms >= throttle_sleep_ms(MAX_THROTTLE) {
        return MAX_THROTTLE;
    }
    (100.0 * stall_ms / (stall_ms + THROTTLE_TIMESLICE_MS)).floor() / 100.0
}

/// Largest |ln(actual / projected)| round length the bias correction
/// takes from one round (a factor of e either way).
const MAX_LOG_BIAS: f64 = 1.0;
/// Floor added to the dirty rate (GiB/s) before taking its log for the
/// change detector, so idle phases don't send it to −∞.
const LOG_RATE_FLOOR_GIB_S: f64 = 1e-4;

/// The forecast-driven convergence policy.
#[derive(Debug, Clone, Copy)]
pub struct PredictiveRule {
    forecast_cfg: ForecastConfig,
    /// Two-sided normal quantile for the configured interval level.
    z: f64,
    ensemble: Ensemble,
    change: PageHinkley,
    period: PeriodDetector,
    previous: Option<RoundObservation>,
    /// The one-step pending forecast made at the previous sync, bytes.
    forecast_pending_bytes: Option<f64>,
    /// Exponentially weighted mean of the squared relative error of those
    /// one-step pending forecasts: what the projection itself gets wrong
    /// (round lengths, the carry, the saturation model), on top of the
    /// rate forecast's own error.
    pending_rel_sq_error: f64,
    /// One-step pending forecasts scored so far.
    pending_scored: u32,
    /// The length, ms, the projection gave the round now under way.
    forecast_round_ms: Option<f64>,
    /// Exponentially weighted mean of ln(actual / projected round length):
    /// QEMU's rounds include syncs, rate-limit waits and the remainder it
    /// sends before syncing, which pending/bandwidth does not see; the
    /// projection's round lengths are scaled by its exponential.
    round_log_bias: f64,
    /// Bytes dirtied per round, recent rounds; their maximum is the WWS.
    dirtied_history: Ring<WWS_WINDOW_ROUNDS>,
    /// Pending bytes at the last sync that were not newly dirtied: what the
    /// previous round left unsent. QEMU 10 syncs once the remainder drops
    /// below its threshold, so this is about the threshold there, and 0
    /// where rounds drain completely.
    carry_bytes: f64,
    /// The latest round's dirtied bytes over its length (every touch a new
    /// page): the lowest touch rate consistent with it, bytes/s.
    raw_rate_bytes_per_s: f64,
    /// The latest round saturated the estimated working set, so its touch
    /// rate is only a lower bound.
    saturated: bool,
    rate_samples: u32,
    no_convergence_streak: u32,
    /// The throttle in force since the last sync (decided then), as a
    /// fraction of the guest's CPU time: rates observed under it are scaled
    /// back to the guest's own pace.
    throttle: f64,
    /// How many times its own pace the guest could dirty with all of its
    /// CPU time (κ ≥ 1): under a throttle `p` it dirties at
    /// min(1, κ·(1 − p)) of its pace. 1 (a guest whose writing is bound
    /// by its CPU, cut in proportion) until a throttled round shows it cut
    /// less: a writer that needs little CPU per page keeps its pace under
    /// any throttle short of starving it.
    dirty_headroom: f64,
    /// Consecutive syncs at which no throttle made a stop fit while one
    /// was in force: it is released only once that is confirmed, as
    /// escalation is (`non_convergence_confirm_rounds`).
    release_streak: u32,
}

impl PredictiveRule {
    /// A fresh policy for `cfg` (validated by the caller).
    pub fn new(cfg: &PolicyConfig) -> Self {
        let level = cfg.forecast.interval_level;
        let z = crate::normal::quantile(0.5 + level / 2.0);
        Self {
            forecast_cfg: cfg.forecast,
            z: if z.is_finite() { z } else { 1.2816 },
            ensemble: Ensemble::new(&cfg.forecast),
            change: PageHinkley::new(cfg.forecast.change_drift, cfg.forecast.change_threshold),
            period: PeriodDetector::default(),
            previous: None,
            forecast_pending_bytes: None,
            pending_rel_sq_error: 0.0,
            pending_scored: 0,
            forecast_round_ms: None,
            round_log_bias: 0.0,
            dirtied_history: Ring::default(),
            carry_bytes: 0.0,
            raw_rate_bytes_per_s: 0.0,
            saturated: false,
            rate_samples: 0,
            no_convergence_streak: 0,
            throttle: 0.0,
            dirty_headroom: 1.0,
            release_streak: 0,
        }
    }

    /// The share of its own pace the guest dirties at under `throttle`.
    fn throttled_pace(&self, throttle: f64) -> f64 {
        (self.dirty_headroom * (1.0 - throttle.clamp(0.0, MAX_THROTTLE))).min(1.0)
    }

    /// Learn [`Self::dirty_headroom`] from a round run under a throttle:
    /// it touched pages at `observed_touch_rate`, against the pace forecast
    /// for it; the latest throttled round decides, so a throttle that bit
    /// harder than the last one showed is believed at once (QEMU's
    /// throttle is far from linear in its percentage: its sleeps come in
    /// slices as long as a round at high percentages).
    fn learn_headroom(&mut self, observed_touch_rate: f64) {
        if self.throttle <= 0.0 || !self.ensemble.ready() {
            return;
        }
        let pace_rate = self.ensemble.forecast(1).mean * GIB_BYTES;
        if !(pace_rate > 0.0 && observed_touch_rate.is_finite()) {
            return;
        }
        let cut = (observed_touch_rate / pace_rate).min(1.0);
        let free = 1.0 - self.throttle.min(MAX_THROTTLE);
        self.dirty_headroom = (cut / free).max(1.0);
    }

    /// Regime changes detected so far.
    pub fn regime_changes(&self) -> u64 {
        self.change.changes()
    }

    /// Score the one-step pending forecast made at the previous sync.
    fn score_pending(&mut self, obs: &RoundObservation) {
        let Some(forecast) = self.forecast_pending_bytes.take() else {
            return;
        };
        if forecast <= 0.0 {
            return;
        }
        let rel = (obs.pending_bytes as f64 - forecast) / forecast;
        let e2 = rel * rel;
        self.pending_rel_sq_error = if self.pending_scored == 0 {
            e2
        } else {
            let decay = self.forecast_cfg.error_decay;
            decay * e2 + (1.0 - decay) * self.pending_rel_sq_error
        };
        self.pending_scored = self.pending_scored.saturating_add(1);
    }

    /// Score the projected length of the round that just ended.
    fn score_round_length(&mut self, obs: &RoundObservation) {
        let (Some(projected_ms), Some(previous)) = (self.forecast_round_ms.take(), self.previous)
        else {
            return;
        };
        let actual_ms = obs.elapsed_ms.saturating_sub(previous.elapsed_ms) as f64;
        if projected_ms > 0.0 && actual_ms > 0.0 {
            let log_ratio = (actual_ms / projected_ms)
                .ln()
                .clamp(-MAX_LOG_BIAS, MAX_LOG_BIAS);
            let decay = self.forecast_cfg.error_decay;
            self.round_log_bias = decay * log_ratio + (1.0 - decay) * self.round_log_bias;
        }
    }

    fn learn(&mut self, obs: &RoundObservation) {
        // The first sync after the bulk round counts only pages dirtied
        // after the bulk round sent them (QEMU counts a page once while it
        // is still to be sent), so the rate it gave is a lower bound: the
        // first full round replaces it, and neither the forecast made from
        // it nor its jump to the guest's real pace are the model's error.
        let after_bulk_sample = self.rate_samples == 1;
        if after_bulk_sample {
            self.forecast_pending_bytes = None;
        }
        self.score_pending(obs);
        self.score_round_length(obs);
        let Some(previous) = self.previous else {
            return;
        };
        let dt_ms = obs.elapsed_ms.saturating_sub(previous.elapsed_ms);
        if dt_ms == 0 {
            return;
        }
        let dirtied_bytes = obs.dirtied_pages as f64 * obs.page_size_bytes as f64;
        let carry = (obs.pending_bytes as f64 - dirtied_bytes).max(0.0);
        self.carry_bytes = carry;
        // What the last round left unsent is still dirty, and in the
        // working set — except after the bulk round, whose remainder is
        // whatever memory it had not reached yet.
        let carry_in_wws = if self.rate_samples == 0 { 0.0 } else { carry };
        self.dirtied_history.push(carry_in_wws + dirtied_bytes);
        let dt_s = dt_ms as f64 / 1000.0;
        let wws = self.wws_bytes();
        // What the guest did under the throttle in force, at its own pace.
        // Under a dirty-rate limit L = pace × (1 − p) (`dirty-limit`) the
        // same scaling holds where the limit binds (κ, learnt first, makes
        // it give back the forecast pace: a round held at a cap shows only
        // that the pace is at least the cap); a guest that calmed down
        // below the limit is read as 1 / (1 − p) times its rate, so the
        // limit is released later than it could be, never re-escalated
        // on a misreading. A guest whose writes come from one of n vCPUs
        // is cut to 1/n of L by QEMU's even split and reads the same way.
        let observed_touch_rate = touch_rate(dirtied_bytes, dt_s, wws, carry_in_wws);
        self.learn_headroom(observed_touch_rate);
        let pace = self.throttled_pace(self.throttle);
        self.raw_rate_bytes_per_s = dirtied_bytes / dt_s / pace;
        let clean = (wws - carry_in_wws).max(dirtied_bytes);
        self.saturated = clean > 0.0 && dirtied_bytes / clean >= MAX_SATURATION * (1.0 - 1e-9);
        let rate_gib_s = observed_touch_rate / pace / GIB_BYTES;
        if !rate_gib_s.is_finite() {
            return;
        }
        if after_bulk_sample {
            self.change.reset();
            self.period.reset();
        }
        let changed = self.change.update((rate_gib_s + LOG_RATE_FLOOR_GIB_S).ln());
        if after_bulk_sample || changed {
            self.ensemble.restart_at(rate_gib_s);
        } else {
            self.ensemble.update(rate_gib_s);
        }
        let period = self.period.update(rate_gib_s);
        self.ensemble.set_period(period);
        self.rate_samples = self.rate_samples.saturating_add(1);
    }

    /// The writable working set: the most bytes any recent round dirtied,
    /// over [`MAX_SATURATION`].
    fn wws_bytes(&self) -> f64 {
        (0..WWS_WINDOW_ROUNDS)
            .filter_map(|age| self.dirtied_history.back(age))
            .fold(0.0, f64::max)
            / MAX_SATURATION
    }

    /// Project pending bytes for the next rounds: round h sends what round
    /// h−1 left (taking pending/bandwidth seconds) while the guest dirties
    /// at the forecast rate. The interval comes from the forecast's scored
    /// error; while it has none, from what one sample allows: at least the
    /// raw rate, at most (for a saturated round, whose rate is only a lower
    /// bound) the whole working set every round.
    fn project(&self, obs: &RoundObservation, horizon: usize, throttle: f64) -> Forecast {
        let mut forecast = Forecast {
            period_rounds: self.period.period() as u32,
            ..Forecast::default()
        };
        if !self.ensemble.ready() {
            return forecast;
        }
        let bandwidth = obs.bandwidth_bytes_per_s;
        let ram = obs.ram_bytes as f64;
        // max-then-min, not clamp: clamp panics when its bounds cross, and
        // nothing here may panic (the input guard keeps RAM ≥ one page).
        let wws = self.wws_bytes().max(obs.page_size_bytes as f64).min(ram);
        let pending = obs.pending_bytes as f64;
        let carry = self.carry_bytes.min(pending);
        // A round sends all but the carry, while the guest dirties pages;
        // its length as QEMU's rounds have turned out to last.
        let stretch = self.round_log_bias.exp();
        let round_s = |pending_now: f64| {
            ((pending_now - carry).max(0.0) / bandwidth * stretch).max(MIN_ROUND_S)
        };
        // Under a throttle the guest touches pages at a share of its pace.
        let pace = self.throttled_pace(throttle);
        let next = |rate: f64, pending_now: f64| {
            (carry + dirtied_in(rate * pace, round_s(pending_now), wws, carry)).min(ram)
        };
        let (mut mean, mut lo, mut hi) = (pending, pending, pending);
        let mut offset_s = 0.0;
        let projection_sd = self.pending_rel_sq_error.sqrt();
        for (h, point) in forecast.points.iter_mut().enumerate().take(horizon) {
            let f = self.ensemble.forecast(h + 1);
            let rate_mean = f.mean.max(0.0) * GIB_BYTES;
            let (rate_lo, rate_hi) = if f.calibrated {
                let spread = self.z * f.sigma * GIB_BYTES;
                (rate_mean - spread, rate_mean + spread)
            } else {
                let lo = self.raw_rate_bytes_per_s.min(rate_mean);
                (lo, 2.0 * rate_mean - lo)
            };
            let rate_hi = if self.saturated {
                f64::INFINITY
            } else {
                rate_hi
            };
            let expected_round_s = round_s(mean);
            offset_s += expected_round_s;
            mean = next(rate_mean, mean);
            lo = next(rate_lo.max(0.0), lo);
            hi = next(rate_hi.max(0.0), hi);
            let projection_spread = self.z * projection_sd * ((h + 1) as f64).sqrt() * mean;
            *point = ForecastPoint {
                pending_bytes: mean,
                pending_lo_bytes: lo.min(mean - projection_spread).max(0.0),
                pending_hi_bytes: hi.max(mean + projection_spread).min(ram),
                offset_ms: offset_s * 1000.0,
                dirty_rate_bytes_per_s: (mean - carry).max(0.0) / expected_round_s,
            };
            if h == 0 {
                forecast.model = f.model;
                forecast.dirty_rate_bytes_per_s = rate_mean;
                forecast.wws_bytes = wws;
            }
        }
        forecast.len = horizon;
        forecast
    }

    /// The expected cost of the cheapest plan "continue, then stop at
    /// forecast round h", ms, and whether that plan's expected downtime
    /// meets the limit. A plan whose stop turns out above `allowed_ms`
    /// costs `stop_cost_ms` plus the wait.
    fn best_wait(
        &self,
        forecast: &Forecast,
        obs: &RoundObservation,
        objective: &Objective,
        allowed_ms: f64,
        stop_cost_ms: f64,
    ) -> (f64, bool) {
        let ms_per_byte = 1000.0 / obs.bandwidth_bytes_per_s;
        let mut best = (f64::INFINITY, false);
        for p in forecast.points() {
            let mean_ms = p.pending_bytes * ms_per_byte;
            let sd_ms = (p.pending_hi_bytes - p.pending_lo_bytes) * ms_per_byte / (2.0 * self.z);
            let expected = objective.expected_cost_ms(
                obs.elapsed_ms as f64 + p.offset_ms,
                mean_ms,
                sd_ms,
                allowed_ms,
                stop_cost_ms + p.offset_ms,
            );
            if expected < best.0 {
                best = (expected, mean_ms <= objective.downtime_limit_ms);
            }
        }
        best
    }

    fn safety_cap_reached(obs: &RoundObservation, cfg: &PolicyConfig) -> bool {
        obs.round >= cfg.max_rounds
            || obs.elapsed_ms >= cfg.max_elapsed_ms
            || obs.sent_bytes as f64 >= cfg.max_sent_ram_multiple * obs.ram_bytes as f64
    }
}

/// Bytes newly found dirty after `duration_s` of uniform page touches at
/// `touch_rate` bytes/s over a working set of `wws` bytes of which `carry`
/// bytes are still dirty (unsent) and so cannot be found newly dirty:
/// (W − C)·(1 − e^(−rate·T/W)). Short rounds see nearly every touch as a
/// new page; long rounds saturate at what of the working set is clean.
pub fn dirtied_in(touch_rate: f64, duration_s: f64, wws: f64, carry: f64) -> f64 {
    if wws <= 0.0 {
        return 0.0;
    }
    (wws - carry).max(0.0) * (1.0 - (-touch_rate * duration_s / wws).exp())
}

/// Inverse of [`dirtied_in`]: the touch rate that newly dirties `dirtied`
/// bytes in `duration_s` over a working set of `wws` bytes with `carry`
/// still dirty. Unlike dirtied/duration it does not depend on how long the
/// round was.
pub fn touch_rate(dirtied: f64, duration_s: f64, wws: f64, carry: f64) -> f64 {
    let clean = (wws - carry).max(dirtied);
    if wws <= 0.0 || duration_s <= 0.0 || clean <= 0.0 {
        return 0.0;
    }
    let fraction = (dirtied / clean).clamp(0.0, MAX_SATURATION);
    -(wws / duration_s) * (1.0 - fraction).ln()
}

impl PredictiveRule {
    /// The smallest throttle (fraction, at most `max`) under which the
    /// projected pending falls to `target_bytes` within
    /// [`THROTTLE_ROUNDS`] rounds, and when it does, ms from now; `max` and
    /// when, if only `max` gets there within `horizon` rounds; `None` when
    /// not even `max` does — a throttle would then cost the guest its CPU
    /// with no stop in sight.
    fn needed_throttle(
        &self,
        obs: &RoundObservation,
        target: Target,
        max: f64,
        horizon: usize,
    ) -> Option<(f64, f64)> {
        let fits = |throttle: f64, rounds: usize| {
            let f = self.project(obs, rounds, throttle);
            f.points()
                .iter()
                .find(|p| (target.level)(p) <= target.bytes)
                .map(|p| p.offset_ms)
        };
        if let Some(at_ms) = fits(0.0, THROTTLE_ROUNDS) {
            return Some((0.0, at_ms));
        }
        let Some(at_max_ms) = fits(max, THROTTLE_ROUNDS) else {
            return fits(max, horizon.max(THROTTLE_ROUNDS)).map(|at_ms| (max, at_ms));
        };
        let (mut lo, mut hi, mut at_ms) = (0.0, max, at_max_ms);
        for _ in 0..THROTTLE_BISECTION_STEPS {
            let mid = 0.5 * (lo + hi);
            match fits(mid, THROTTLE_ROUNDS) {
                Some(t) => {
                    hi = mid;
                    at_ms = t;
                }
                None => lo = mid,
            }
        }
        Some((hi, at_ms))
    }

    /// [`Self::needed_throttle`] within the stall bound (`maxes[0]`) if
    /// one there makes a stop fit, else up to the configured maximum
    /// (`maxes[1]`): a throttle whose sleeps outlast the maximum downtime
    /// is better than a migration that never ends, but only when nothing
    /// gentler gets there.
    fn sized_throttle(
        &self,
        obs: &RoundObservation,
        target: Target,
        maxes: [f64; 2],
        horizon: usize,
    ) -> Option<(f64, f64)> {
        self.needed_throttle(obs, target, maxes[0], horizon)
            .or_else(|| {
                (maxes[1] > maxes[0])
                    .then(|| self.needed_throttle(obs, target, maxes[1], horizon))
                    .flatten()
            })
    }

    /// The throttle in force, re-sized: raised (or kept) to what the
    /// expected projection needs, lowered only as far as the pessimistic
    /// one (the interval's upper end) allows; `None` when no throttle makes
    /// a stop fit. Lowering too far costs a round that does not converge
    /// and a throttle again; keeping it a little long costs a little of the
    /// guest's CPU.
    fn resized_throttle(
        &self,
        obs: &RoundObservation,
        stop_bytes: f64,
        maxes: [f64; 2],
        horizon: usize,
    ) -> Option<f64> {
        let expected = Target {
            bytes: stop_bytes,
            level: |p| p.pending_bytes,
        };
        let (needed, _) = self.sized_throttle(obs, expected, maxes, horizon)?;
        let pessimistic = Target {
            bytes: stop_bytes,
            level: |p| p.pending_hi_bytes,
        };
        let floor = self
            .sized_throttle(obs, pessimistic, maxes, horizon)
            .map_or(self.throttle, |(share, _)| share);
        Some(needed.max(self.throttle.min(floor)))
    }

    /// The throttle as a whole percentage, rounded up so it is enough.
    fn throttle_pct(&self) -> u8 {
        (self.throttle * 100.0 - 1e-9).ceil().clamp(0.0, 99.0) as u8
    }

    /// The throttle as a dirty-rate limit, bytes/s (0: none): the rate the
    /// guest dirties at under it, at its own forecast pace. A limit that
    /// holds less tightly than that shows in the next throttled round as
    /// [`Self::dirty_headroom`], which sizes the next one, as it does for
    /// a CPU throttle.
    fn dirty_limit_bytes_per_s(&self) -> f64 {
        if self.throttle <= 0.0 || !self.ensemble.ready() {
            return 0.0;
        }
        // At least what the latest round showed at the guest's own pace:
        // a forecast below it would starve the guest.
        let pace_rate = (self.ensemble.forecast(1).mean * GIB_BYTES).max(self.raw_rate_bytes_per_s);
        let limit = pace_rate * (1.0 - self.throttle.min(MAX_THROTTLE));
        if limit.is_finite() && limit > 0.0 {
            limit
        } else {
            0.0
        }
    }
}

impl RoundRule for PredictiveRule {
    const KIND: PolicyKind = PolicyKind::Predictive;

    fn decide(&mut self, obs: &RoundObservation, cfg: &PolicyConfig) -> Decision {
        let mut decision = self.decide_pace(obs, cfg);
        if cfg.escalation.limits_dirty_rate() {
            decision.dirty_limit_bytes_per_s = self.dirty_limit_bytes_per_s();
        } else {
            decision.throttle_pct = self.throttle_pct();
        }
        decision
    }

    fn reset(&mut self) {
        self.ensemble = Ensemble::new(&self.forecast_cfg);
        self.change.reset();
        self.period.reset();
        self.previous = None;
        self.forecast_pending_bytes = None;
        self.pending_rel_sq_error = 0.0;
        self.pending_scored = 0;
        self.forecast_round_ms = None;
        self.round_log_bias = 0.0;
        self.dirtied_history.clear();
        self.carry_bytes = 0.0;
        self.raw_rate_bytes_per_s = 0.0;
        self.saturated = false;
        self.rate_samples = 0;
        self.no_convergence_streak = 0;
        self.throttle = 0.0;
        self.dirty_headroom = 1.0;
        self.release_streak = 0;
    }
}

impl PredictiveRule {
    /// The decision, and the throttle it leaves in force (`self.throttle`).
    fn decide_pace(&mut self, obs: &RoundObservation, cfg: &PolicyConfig) -> Decision {
        self.learn(obs);
        self.previous = Some(*obs);
        let allowed_ms = cfg.max_downtime_ms * (1.0 - cfg.downtime_headroom_fraction);
        let max_throttle = f64::from(cfg.max_throttle_pct) / 100.0;
        // The stall bound models QEMU's CPU throttle, whose sleeps are
        // the policy's to bound; dirty-limit's sleeps are its own.
        let throttles = if cfg.escalation.limits_dirty_rate() {
            [max_throttle, max_throttle]
        } else {
            [
                max_throttle.min(stall_bounded_throttle(allowed_ms)),
                max_throttle,
            ]
        };
        // A throttle in force is re-sized every round: raised, kept, lowered,
        // or released once the guest's own pace fits again.
        let horizon = cfg.forecast.horizon_rounds;
        // A stop comes once pending fits the maximum (with its headroom) or
        // QEMU's own threshold, which the policy always honours: with
        // maximum = limit that is the limit, and QEMU's rounds end with
        // about that much still unsent.
        let stop_bytes = obs.threshold_bytes(allowed_ms.max(cfg.downtime_limit_ms));
        if self.throttle > 0.0 && self.ensemble.ready() {
            match self.resized_throttle(obs, stop_bytes, throttles, horizon) {
                Some(throttle) => {
                    self.release_streak = 0;
                    self.throttle = throttle;
                }
                // No throttle makes a stop fit: released once confirmed,
                // so one round's evidence (a clock-paced writer making up
                // the writes the throttle held back, all in one round)
                // does not end a throttle that was working.
                None => {
                    self.release_streak = self.release_streak.saturating_add(1);
                    if self.release_streak >= cfg.non_convergence_confirm_rounds {
                        self.release_streak = 0;
                        self.throttle = 0.0;
                    }
                }
            }
        }
        let forecast = self.project(obs, cfg.forecast.horizon_rounds, self.throttle);
        self.forecast_pending_bytes = forecast.next().map(|p| p.pending_bytes);
        self.forecast_round_ms = forecast.next().map(|p| p.offset_ms);
        let limit_ms = cfg.downtime_limit_ms;
        let decision = |action, reason| Decision {
            action,
            reason,
            downtime_limit_ms: limit_ms,
            forecast,
            stop_cost_ms: f64::NAN,
            wait_cost_ms: f64::NAN,
            throttle_pct: 0,
            dirty_limit_bytes_per_s: 0.0,
        };

        if qemu_rule_holds(obs, limit_ms) {
            return decision(Action::StopAndCopy, Reason::BelowThreshold);
        }
        if Self::safety_cap_reached(obs, cfg) {
            // Out of rounds, time or bytes: stop if the stop fits the
            // maximum (with its headroom), else give up rather than stop
            // above what the user accepts (QEMU goes on under its own rule).
            let action = if obs.implied_downtime_ms() <= allowed_ms {
                Action::StopAndCopy
            } else {
                Action::Abort
            };
            return decision(action, Reason::SafetyCap);
        }
        if (self.rate_samples as usize) < cfg.forecast.min_history_rounds || forecast.len == 0 {
            return decision(Action::Continue, Reason::Warmup);
        }

        let objective = Objective::from_config(cfg);
        let pending = obs.pending_bytes as f64;
        let downtime_ms = obs.implied_downtime_ms();
        let points = forecast.points();
        let min_of =
            |get: fn(&ForecastPoint) -> f64| points.iter().map(get).fold(f64::INFINITY, f64::min);

        if downtime_ms <= allowed_ms {
            self.no_convergence_streak = 0;
            let stop_cost_ms =
                objective.unbounded_cost_ms(obs.elapsed_ms as f64 + downtime_ms, downtime_ms);
            let (wait_cost_ms, within_limit) =
                self.best_wait(&forecast, obs, &objective, allowed_ms, stop_cost_ms);
            let weighed = |action, reason| Decision {
                stop_cost_ms,
                wait_cost_ms,
                ..decision(action, reason)
            };
            if wait_cost_ms < stop_cost_ms {
                let reason = if within_limit {
                    Reason::Converging
                } else {
                    Reason::TroughAhead
                };
                return weighed(Action::Continue, reason);
            }
            let reason = if forecast.period_rounds > 0 && pending <= min_of(|p| p.pending_bytes) {
                Reason::TroughNow
            } else {
                Reason::ConvergencePoint
            };
            return weighed(Action::StopAndCopy, reason);
        }

        if min_of(|p| p.pending_lo_bytes) <= stop_bytes {
            self.no_convergence_streak = 0;
            return decision(Action::Continue, Reason::Converging);
        }
        self.no_convergence_streak = self.no_convergence_streak.saturating_add(1);
        if self.no_convergence_streak < cfg.non_convergence_confirm_rounds {
            return decision(Action::Continue, Reason::NoConvergenceForecast);
        }
        let escalation = cfg.escalation;
        match cfg.non_convergence_action {
            NonConvergenceAction::Escalate
                if escalation.may_throttle() || escalation.may_postcopy() =>
            {
                // What each escalation costs the guest, in seconds of its
                // time: a throttle takes its share of the guest's CPU until
                // a stop fits; post-copy leaves the guest faulting on pages
                // still at the source until the rest has arrived.
                let throttle = escalation
                    .may_throttle()
                    .then(|| {
                        let expected = Target {
                            bytes: stop_bytes,
                            level: |p| p.pending_bytes,
                        };
                        self.sized_throttle(obs, expected, throttles, horizon)
                    })
                    .flatten();
                let throttle_loss_s = throttle.map_or(f64::INFINITY, |(share, fits_in_ms)| {
                    share * fits_in_ms / 1000.0
                });
                let postcopy_loss_s = pending / obs.bandwidth_bytes_per_s;
                let postcopy = escalation.may_postcopy() && postcopy_loss_s < throttle_loss_s;
                // Re-confirm before escalating again, so each escalation gets
                // time to show its effect; a throttle it sets starts afresh.
                self.no_convergence_streak = 0;
                self.release_streak = 0;
                if postcopy {
                    return decision(Action::Escalate, Reason::NoConvergenceForecast);
                }
                let Some((throttle, _)) = throttle else {
                    // No throttle within the stall bound makes a stop fit.
                    self.throttle = 0.0;
                    return decision(Action::Continue, Reason::NoConvergenceForecast);
                };
                self.throttle = throttle;
                Decision {
                    forecast: self.project(obs, cfg.forecast.horizon_rounds, throttle),
                    ..decision(Action::Continue, Reason::Throttling)
                }
            }
            NonConvergenceAction::StopBestEffort if pending <= min_of(|p| p.pending_bytes) => {
                decision(Action::StopAndCopy, Reason::NoConvergenceForecast)
            }
            NonConvergenceAction::Escalate
            | NonConvergenceAction::StopBestEffort
            | NonConvergenceAction::KeepGoing => {
                decision(Action::Continue, Reason::NoConvergenceForecast)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::policies::{build_policy, PolicyKind};
    use crate::{Action, Reason, RoundObservation};

    /// Rounds as QEMU 10 makes them: it syncs once the unsent remainder
    /// drops below its threshold (37.5 MB here), so each sync's pending is
    /// that remainder plus what was newly dirtied — a plateau near 81 MB
    /// that never fits 300 ms (the shape of a real trace of this test-bed).
    fn qemu_style_round(round: u64) -> RoundObservation {
        RoundObservation {
            round,
            elapsed_ms: round * 400,
            dirtied_pages: 12_200,
            pending_bytes: 81_000_000 + (round % 3) * 200_000,
            sent_bytes: round * 50_000_000,
            bandwidth_bytes_per_s: 126e6,
            page_size_bytes: 4096,
            ram_bytes: 1 << 30,
        }
    }

    #[test]
    fn stops_on_a_plateau_with_unsent_carry() {
        let mut policy = build_policy(PolicyKind::Predictive, &PolicyConfig::default()).unwrap();
        let stop = (2..40u64).find_map(|r| {
            let d = policy.observe(&qemu_style_round(r));
            (d.action == Action::StopAndCopy).then_some((r, d.reason))
        });
        let (round, reason) = stop.expect("predictive never stopped on the plateau");
        assert!(round <= 8, "stopped only at round {round}");
        assert_eq!(reason, Reason::ConvergencePoint);
    }

    #[test]
    fn throttle_is_sized_within_the_stall_bound_to_fit_in_two_rounds() {
        // Maximum = limit: the plateau never fits, so escalation throttles.
        let cfg = PolicyConfig {
            max_downtime_ms: 300.0,
            escalation: crate::Escalation::Throttle,
            ..PolicyConfig::default()
        };
        let mut policy = build_policy(PolicyKind::Predictive, &cfg).unwrap();
        let throttled = (2..40u64).find_map(|r| {
            let obs = qemu_style_round(r);
            let d = policy.observe(&obs);
            assert_ne!(
                d.action,
                Action::StopAndCopy,
                "round {r}: nothing fits 300 ms"
            );
            (d.throttle_pct > 0).then_some((obs, d))
        });
        let (obs, d) = throttled.expect("never throttled a plateau that cannot fit");
        let p = f64::from(d.throttle_pct) / 100.0;
        let stall_ms = throttle_sleep_ms(p);
        assert!(stall_ms <= cfg.max_downtime_ms, "{p} sleeps {stall_ms} ms");
        // The forecast under that throttle reaches QEMU's threshold (the
        // limit) within two rounds.
        let stop_bytes = obs.threshold_bytes(cfg.downtime_limit_ms);
        let fit_at = d
            .forecast
            .points()
            .iter()
            .position(|f| f.pending_bytes <= stop_bytes);
        assert!(
            fit_at.is_some_and(|h| h < THROTTLE_ROUNDS),
            "{:?}",
            d.forecast.points()
        );
    }

    #[test]
    fn dirty_limit_escalation_caps_the_rate_a_throttle_would_leave() {
        let config = |escalation| PolicyConfig {
            max_downtime_ms: 300.0,
            escalation,
            ..PolicyConfig::default()
        };
        let mut throttling =
            build_policy(PolicyKind::Predictive, &config(crate::Escalation::Throttle)).unwrap();
        let mut limiting = build_policy(
            PolicyKind::Predictive,
            &config(crate::Escalation::DirtyLimit),
        )
        .unwrap();
        let (round, throttled, limited) = (2..40u64)
            .find_map(|r| {
                let obs = qemu_style_round(r);
                let (t, l) = (throttling.observe(&obs), limiting.observe(&obs));
                (t.throttle_pct > 0).then_some((r, t, l))
            })
            .expect("never throttled a plateau that cannot fit");
        // The same escalation, carried out as a dirty-rate limit instead:
        // no CPU throttle, and a limit at the share of the guest's own
        // forecast pace the throttle would have left it (the throttle is
        // that share rounded up to a whole percent).
        assert_eq!(limited.throttle_pct, 0);
        assert_eq!(throttled.dirty_limit_bytes_per_s, 0.0);
        assert_eq!(limited.reason, Reason::Throttling);
        let kept = limited.dirty_limit_bytes_per_s / limited.forecast.dirty_rate_bytes_per_s;
        let pct = f64::from(throttled.throttle_pct);
        assert!(
            kept >= 1.0 - pct / 100.0 - 1e-9 && kept < 1.0 - (pct - 1.0) / 100.0,
            "kept {kept} of the pace, throttle {pct} %"
        );
        assert_eq!(limited.forecast, throttled.forecast);
        // Rounds held at the limit show only that the guest would write
        // at least that much: the pace the limit is sized from is not read
        // as fallen, and one such round does not release it. (With pending
        // left on its plateau, as here, no limit helps: released once that
        // is confirmed.)
        let pace_bytes_per_s = limited.forecast.dirty_rate_bytes_per_s;
        let mut limit = limited.dirty_limit_bytes_per_s;
        let mut in_force = true;
        for r in round + 1..=round + 4 {
            let obs = qemu_style_round(r);
            let held = RoundObservation {
                dirtied_pages: (limit * 0.4 / 4096.0) as u64,
                elapsed_ms: obs.elapsed_ms,
                ..obs
            };
            let d = limiting.observe(&held);
            if r == round + 1 {
                assert!(d.dirty_limit_bytes_per_s > 0.0, "released at once: {d:?}");
            }
            assert!(
                !in_force || d.forecast.dirty_rate_bytes_per_s >= 0.9 * pace_bytes_per_s,
                "round {r}: pace read as {} of {pace_bytes_per_s}",
                d.forecast.dirty_rate_bytes_per_s
            );
            in_force = d.dirty_limit_bytes_per_s > 0.0;
            if in_force {
                limit = d.dirty_limit_bytes_per_s;
            }
        }
        // Once the guest calms down (a round that fits), the limit goes.
        let calm = RoundObservation {
            dirtied_pages: 100,
            pending_bytes: 1_000_000,
            ..qemu_style_round(round + 5)
        };
        let d = limiting.observe(&calm);
        assert_eq!(d.dirty_limit_bytes_per_s, 0.0, "{d:?}");
    }

    #[test]
    fn stall_bound_follows_the_sleeps_qemu_keeps() {
        // QEMU's 10 ms slice up to 90 % (90 ms sleeps), then sleeps bounded
        // at 99 ms, which 99 % reaches with a 1 ms slice.
        for (p, sleep_ms) in [(0.5, 10.0), (0.9, 90.0), (0.95, 99.0), (0.99, 99.0)] {
            assert!((throttle_sleep_ms(p) - sleep_ms).abs() < 1e-9, "{p}");
        }
        assert_eq!(stall_bounded_throttle(90.0), 0.9);
        assert_eq!(stall_bounded_throttle(50.0), 0.83);
        assert_eq!(stall_bounded_throttle(99.0), 0.99);
        assert_eq!(stall_bounded_throttle(300.0), 0.99);
        assert_eq!(stall_bounded_throttle(0.0), 0.0);
    }

    /// The first syncs of a live migration of hot-wss (96 MiB rewritten at
    /// 300 MiB/s) under QEMU's rule on the test-bed's 1 Gbit/s link: the
    /// bulk round's sync counts only what was dirtied after the bulk round
    /// sent it, then pending plateaus near 84 MB, above 300 ms for ever.
    const HOT_WSS_SYNCS: [(u64, u64, u64, u64, f64); 9] = [
        (1, 4, 0, 1_074_274_304, 125_000_000.0),
        (2, 2521, 24_918, 135_069_696, 119_690_740.0),
        (3, 3368, 15_851, 97_300_480, 111_607_327.0),
        (4, 3888, 12_919, 88_326_144, 123_643_411.0),
        (5, 4356, 13_119, 85_684_224, 126_116_280.0),
        (6, 4772, 11_620, 83_181_568, 123_643_411.0),
        (7, 5192, 12_395, 83_861_504, 119_932_776.0),
        (8, 5612, 12_319, 83_972_096, 123_643_411.0),
        (9, 6036, 12_128, 83_300_352, 125_747_730.0),
    ];

    /// A recorded sync of the test-bed's 1 GiB guest: (round, elapsed ms,
    /// dirtied pages, pending bytes, bandwidth bytes/s).
    fn live_sync(
        &(round, ms, dirtied, pending, bw): &(u64, u64, u64, u64, f64),
    ) -> RoundObservation {
        RoundObservation {
            round,
            elapsed_ms: ms,
            dirtied_pages: dirtied,
            pending_bytes: pending,
            sent_bytes: 0,
            bandwidth_bytes_per_s: bw,
            page_size_bytes: 4096,
            ram_bytes: 1_074_274_304,
        }
    }

    #[test]
    fn a_plateau_after_the_bulk_round_escalates_by_the_fifth_sync() {
        // Maximum = limit, post-copy allowed: operators switch after five
        // syncs blindly; the forecast must see the plateau no later.
        let cfg = PolicyConfig {
            max_downtime_ms: 300.0,
            escalation: crate::Escalation::Postcopy,
            ..PolicyConfig::default()
        };
        let mut policy = build_policy(PolicyKind::Predictive, &cfg).unwrap();
        let escalated_at = HOT_WSS_SYNCS.iter().find_map(|sync| {
            let obs = live_sync(sync);
            let d = policy.observe(&obs);
            assert_ne!(
                d.action,
                Action::StopAndCopy,
                "sync {}: nothing fits",
                obs.round
            );
            (d.action == Action::Escalate).then_some(obs.round)
        });
        let round = escalated_at.expect("never escalated on the plateau");
        assert!(round <= 5, "escalated only at sync {round}");
    }

    /// A live migration of hot-wss with throttle escalation (maximum =
    /// limit = 300 ms): throttled from sync 4 (82 %, then 98-99 %), pending
    /// fell to 60 MB by sync 6; between syncs 6 and 7, still at 99 %, the
    /// guest's clock-paced writer made up the writes the throttle had held
    /// back (5,879 pages in 0.2 s).
    const HOT_WSS_THROTTLED_SYNCS: [(u64, u64, u64, u64, f64); 7] = [
        (1, 4, 0, 1_074_274_304, 125_000_000.0),
        (2, 2526, 24_937, 134_184_960, 117_165_201.0),
        (3, 3357, 15_401, 97_222_656, 115_703_009.0),
        (4, 3881, 13_048, 87_994_368, 126_116_280.0),
        (5, 4372, 13_010, 84_905_984, 116_774_333.0),
        (6, 4886, 6_321, 60_440_576, 115_703_009.0),
        (7, 5092, 5_879, 60_657_664, 126_116_280.0),
    ];

    #[test]
    fn a_catch_up_round_does_not_release_a_working_throttle_at_once() {
        let cfg = PolicyConfig {
            max_downtime_ms: 300.0,
            escalation: crate::Escalation::Throttle,
            ..PolicyConfig::default()
        };
        let mut policy = build_policy(PolicyKind::Predictive, &cfg).unwrap();
        let throttles: Vec<u8> = HOT_WSS_THROTTLED_SYNCS
            .iter()
            .map(|sync| policy.observe(&live_sync(sync)).throttle_pct)
            .collect();
        // Throttled where the recorded run was, and still after the
        // catch-up round: over syncs 5-7 the throttle cut the writer to a
        // quarter of its pace, and releasing it on one round's evidence
        // (as the policy did live, never to throttle again) left that
        // migration running until it was cancelled.
        assert!(throttles[3..6].iter().all(|&p| p > 0), "{throttles:?}");
        assert!(
            throttles[6] >= 90,
            "released after the catch-up round: {throttles:?}"
        );
    }

    #[test]
    fn touch_rate_inverts_dirtied_in() {
        let wws = 200e6;
        for carry in [0.0, 50e6] {
            for rate in [1e6, 5e7, 2e8] {
                for t in [0.01, 0.5, 2.0] {
                    let d = dirtied_in(rate, t, wws, carry);
                    if d / (wws - carry) < MAX_SATURATION {
                        let back = touch_rate(d, t, wws, carry);
                        assert!((back - rate).abs() / rate < 1e-9, "{carry} {rate} {t}");
                    }
                }
            }
        }
    }
}

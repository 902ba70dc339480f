//! The pending path a few rounds ahead: round h sends what round h−1 left
//! (pending/bandwidth seconds, stretched as QEMU's rounds have turned out
//! to last) while the guest dirties its working set at the forecast pace.

use super::calibration::Calibration;
use super::pace::Pace;
use super::working_set::{dirtied_in, WorkingSet};
use crate::decision::{Forecast, ForecastPoint};
use crate::observation::RoundObservation;
use crate::policies::GIB_BYTES;

/// Shortest round the projection assumes, in seconds: a sync round costs at
/// least the bitmap sync itself.
const MIN_ROUND_S: f64 = 0.005;

/// What the projection reads: the pace, the working set, the track record.
#[derive(Clone, Copy)]
pub(super) struct Projector<'a> {
    pub pace: &'a Pace,
    pub working_set: &'a WorkingSet,
    pub calibration: &'a Calibration,
    /// Two-sided normal quantile of the interval.
    pub z: f64,
    /// Where later rounds end, ms of downtime: QEMU syncs once what is
    /// left of the pass is below that much at the bandwidth (its limit,
    /// or where the policy keeps asking).
    pub round_end_ms: f64,
}

impl Projector<'_> {
    /// Pending bytes for the next `horizon` rounds from the sync `obs`,
    /// with the guest at `pace_share` of its own pace (under a throttle).
    /// The interval comes from the forecast's scored error; while it has
    /// none, from what one sample allows: at least the raw rate, at most
    /// (for a saturated round, whose rate is only a lower bound) the whole
    /// working set every round.
    pub fn project(&self, obs: &RoundObservation, horizon: usize, pace_share: f64) -> Forecast {
        let mut forecast = Forecast {
            period_rounds: self.pace.period_rounds() as u32,
            ..Forecast::default()
        };
        if !self.pace.ready() {
            return forecast;
        }
        let bandwidth = obs.bandwidth_bytes_per_s;
        let ram = obs.ram_bytes as f64;
        // max-then-min, not clamp: clamp panics when its bounds cross, and
        // nothing here may panic (the input guard keeps RAM ≥ one page).
        let wws = self
            .working_set
            .wws_bytes()
            .max(obs.page_size_bytes as f64)
            .min(ram);
        let pending = obs.pending_bytes as f64;
        // What later rounds leave unsent: what the last one did, but no
        // more than where rounds end (a round cut short where the policy
        // no longer asks left more).
        let carry = self
            .working_set
            .carry_bytes()
            .min(obs.threshold_bytes(self.round_end_ms))
            .min(pending);
        // A round sends all but the carry, while the guest dirties pages;
        // its length as QEMU's rounds have turned out to last.
        let stretch = self.calibration.round_stretch();
        let round_s = |pending_now: f64| {
            ((pending_now - carry).max(0.0) / bandwidth * stretch).max(MIN_ROUND_S)
        };
        let next = |rate: f64, pending_now: f64| {
            (carry + dirtied_in(rate * pace_share, round_s(pending_now), wws, carry)).min(ram)
        };
        let (mut mean, mut lo, mut hi) = (pending, pending, pending);
        let mut offset_s = 0.0;
        let projection_sd = self.calibration.pending_rel_sd();
        for (h, point) in forecast.points.iter_mut().enumerate().take(horizon) {
            let f = self.pace.forecast(h + 1);
            let rate_mean = f.mean.max(0.0) * GIB_BYTES;
            let (rate_lo, rate_hi) = if f.calibrated {
                let spread = self.z * f.sigma * GIB_BYTES;
                (rate_mean - spread, rate_mean + spread)
            } else {
                let lo = self.working_set.raw_rate_bytes_per_s().min(rate_mean);
                (lo, 2.0 * rate_mean - lo)
            };
            let rate_hi = if self.working_set.saturated() {
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
}

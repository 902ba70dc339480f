//! The throttle escalation: its share of the guest's CPU, sized from the
//! projection, learnt from how hard it bit, and released once nothing it
//! could do makes a stop fit.

use crate::config::PolicyConfig;
use crate::decision::{Forecast, ForecastPoint, THROTTLE_MAX_SLEEP_NS};

/// The highest throttle any projection assumes (QEMU caps at 99 %).
pub(super) const MAX_THROTTLE: f64 = 0.99;
/// Rounds ahead within which a throttle must make a stop fit.
pub(super) const THROTTLE_ROUNDS: usize = 2;
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
pub(super) fn throttle_sleep_ms(p: f64) -> f64 {
    let p = p.clamp(0.0, MAX_THROTTLE);
    (THROTTLE_TIMESLICE_MS * p / (1.0 - p)).min(THROTTLE_MAX_SLEEP_MS)
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

/// What a throttle must bring pending down to, read off which end of the
/// projection.
#[derive(Clone, Copy)]
pub(super) struct Target {
    /// Pending bytes a stop fits in.
    pub bytes: f64,
    /// The projection's expected value or an end of its interval.
    pub level: fn(&ForecastPoint) -> f64,
}

impl Target {
    /// The expected pending reaches `bytes`.
    pub fn expected(bytes: f64) -> Self {
        Self {
            bytes,
            level: |p| p.pending_bytes,
        }
    }

    /// Even the interval's upper end reaches `bytes`.
    fn pessimistic(bytes: f64) -> Self {
        Self {
            bytes,
            level: |p| p.pending_hi_bytes,
        }
    }
}

/// The two throttle ceilings, in the order they are tried: the highest
/// whose sleeps fit the allowed downtime, then the configured maximum.
pub(super) type Ceilings = [f64; 2];

/// The throttle in force and what has been learnt of the guest under it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Throttle {
    /// The share of the guest's CPU time taken since the last sync
    /// (decided then), a fraction: rates observed under it are scaled back
    /// to the guest's own pace.
    share: f64,
    /// How many times its own pace the guest could dirty with all of its
    /// CPU time (κ ≥ 1): under a throttle `p` it dirties at
    /// min(1, κ·(1 − p)) of its pace. 1 (a guest whose writing is bound
    /// by its CPU, cut in proportion) until a throttled round shows it cut
    /// less: a writer that needs little CPU per page keeps its pace under
    /// any throttle short of starving it.
    dirty_headroom: f64,
    /// κ as the previous throttled round showed it, if that round was
    /// throttled: a weaker bite than believed is taken only once two
    /// throttled rounds in a row show it.
    last_headroom: Option<f64>,
    /// Consecutive syncs at which no throttle made a stop fit while one
    /// was in force: it is released only once that is confirmed, as
    /// escalation is (`non_convergence_confirm_rounds`).
    release_streak: u32,
    /// Throttles released because none made a stop fit: each doubles the
    /// confirmation the next escalation waits for ([`Self::backoff`]).
    released: u32,
}

impl Default for Throttle {
    fn default() -> Self {
        Self {
            share: 0.0,
            dirty_headroom: 1.0,
            last_headroom: None,
            release_streak: 0,
            released: 0,
        }
    }
}

/// The most the confirmation before a new escalation is multiplied by
/// after throttles that did not work (2⁴).
const MAX_BACKOFF: u32 = 16;

impl Throttle {
    /// The ceilings for `cfg` with stops allowed up to `allowed_ms`. The
    /// stall bound models QEMU's CPU throttle, whose sleeps are the
    /// policy's to bound; dirty-limit's sleeps are its own.
    pub fn ceilings(cfg: &PolicyConfig, allowed_ms: f64) -> Ceilings {
        let max_throttle = f64::from(cfg.max_throttle_pct) / 100.0;
        if cfg.escalation.limits_dirty_rate() {
            [max_throttle, max_throttle]
        } else {
            [
                max_throttle.min(stall_bounded_throttle(allowed_ms)),
                max_throttle,
            ]
        }
    }

    /// The share in force (0: none).
    pub fn share(&self) -> f64 {
        self.share
    }

    /// True while a throttle is in force.
    pub fn in_force(&self) -> bool {
        self.share > 0.0
    }

    /// The share of its own pace the guest dirties at under `share`.
    pub fn pace_at(&self, share: f64) -> f64 {
        (self.dirty_headroom * (1.0 - share.clamp(0.0, MAX_THROTTLE))).min(1.0)
    }

    /// The share of its own pace the guest dirties at now.
    pub fn pace(&self) -> f64 {
        self.pace_at(self.share)
    }

    /// Learn [`Self::dirty_headroom`] from a round run under the throttle:
    /// it touched pages at `observed_touch_rate`, against `pace_rate`, the
    /// pace forecast for it (`None` before there is one). A throttle that
    /// bit harder than believed is believed at once (QEMU's throttle is
    /// far from linear in its percentage: its sleeps come in slices as long
    /// as a round at high percentages); one that bit less only once two
    /// throttled rounds in a row show it, and then as little less as the
    /// two allow: one round the throttle had barely started in (a write
    /// burst it did not catch, a round cut short by a sync) does not end
    /// the escalation on its own.
    pub fn learn_headroom(&mut self, observed_touch_rate: f64, pace_rate: Option<f64>) {
        let Some(pace_rate) = pace_rate.filter(|_| self.in_force()) else {
            self.last_headroom = None;
            return;
        };
        if !(pace_rate > 0.0 && observed_touch_rate.is_finite()) {
            self.last_headroom = None;
            return;
        }
        let cut = (observed_touch_rate / pace_rate).min(1.0);
        let free = 1.0 - self.share.min(MAX_THROTTLE);
        let shown = (cut / free).max(1.0);
        if shown <= self.dirty_headroom {
            self.dirty_headroom = shown;
        } else if let Some(last) = self.last_headroom {
            self.dirty_headroom = shown.min(last).max(self.dirty_headroom);
        }
        self.last_headroom = Some(shown);
    }

    /// How many times the usual confirmation the next escalation waits
    /// for: doubled by every throttle released because none made a stop
    /// fit, up to [`MAX_BACKOFF`]. A guest the throttle cannot cut is
    /// probed again, less and less often, instead of never: a probe costs
    /// a bounded stall, never probing again costs the migration.
    pub fn backoff(&self) -> u32 {
        1u32.checked_shl(self.released)
            .unwrap_or(MAX_BACKOFF)
            .min(MAX_BACKOFF)
    }

    /// Put `share` in force (a fresh escalation: its release starts over).
    pub fn set(&mut self, share: f64) {
        self.share = share;
        self.release_streak = 0;
    }

    /// Keep the share in force, its release started over (another
    /// escalation was chosen and gets time to show its effect).
    pub fn hold(&mut self) {
        self.release_streak = 0;
    }

    /// Re-size the throttle in force: raised (or kept) to what the
    /// expected projection needs, lowered only as far as the pessimistic
    /// one (the interval's upper end) allows. Lowering too far costs a
    /// round that does not converge and a throttle again; keeping it a
    /// little long costs a little of the guest's CPU. When no throttle
    /// makes a stop fit it is released, once that is confirmed over
    /// `confirm_rounds` syncs, so one round's evidence (a clock-paced
    /// writer making up the writes the throttle held back, all in one
    /// round) does not end a throttle that was working.
    /// `project(pace, rounds)` is the projection at that share of the pace.
    pub fn resize(
        &mut self,
        project: impl Fn(f64, usize) -> Forecast,
        stop_bytes: f64,
        ceilings: Ceilings,
        horizon: usize,
        confirm_rounds: u32,
    ) {
        let resized = self
            .sized(&project, Target::expected(stop_bytes), ceilings, horizon)
            .map(|(needed, _)| {
                let floor = self
                    .sized(&project, Target::pessimistic(stop_bytes), ceilings, horizon)
                    .map_or(self.share, |(share, _)| share);
                needed.max(self.share.min(floor))
            });
        match resized {
            Some(share) => {
                self.release_streak = 0;
                self.share = share;
            }
            None => {
                self.release_streak = self.release_streak.saturating_add(1);
                if self.release_streak >= confirm_rounds {
                    self.release();
                }
            }
        }
    }

    /// Give the throttle up: no throttle makes a stop fit (the one in
    /// force, once that is confirmed, or none sized at an escalation).
    /// What throttled rounds showed of the guest is forgotten (κ back to 1,
    /// a guest cut in proportion), so that the next escalation,
    /// [`Self::backoff`] times later, probes afresh rather than trusting
    /// rounds that may not have shown the throttle's bite.
    pub fn release(&mut self) {
        self.share = 0.0;
        self.release_streak = 0;
        self.dirty_headroom = 1.0;
        self.last_headroom = None;
        self.released = self.released.saturating_add(1);
    }

    /// The smallest throttle within the first ceiling that makes a stop fit
    /// (see [`Self::needed`]), else within the second: a throttle whose
    /// sleeps outlast the maximum downtime is better than a migration that
    /// never ends, but only when nothing gentler gets there. With when the
    /// stop fits, ms from now.
    pub fn sized(
        &self,
        project: &impl Fn(f64, usize) -> Forecast,
        target: Target,
        ceilings: Ceilings,
        horizon: usize,
    ) -> Option<(f64, f64)> {
        self.needed(project, target, ceilings[0], horizon)
            .or_else(|| {
                (ceilings[1] > ceilings[0])
                    .then(|| self.needed(project, target, ceilings[1], horizon))
                    .flatten()
            })
    }

    /// The smallest throttle (fraction, at most `max`) under which the
    /// projected pending reaches the target within [`THROTTLE_ROUNDS`]
    /// rounds, and when it does, ms from now; `max` and when, if only
    /// `max` gets there within `horizon` rounds; `None` when not even
    /// `max` does — a throttle would then cost the guest its CPU with no
    /// stop in sight.
    fn needed(
        &self,
        project: &impl Fn(f64, usize) -> Forecast,
        target: Target,
        max: f64,
        horizon: usize,
    ) -> Option<(f64, f64)> {
        let fits = |share: f64, rounds: usize| {
            let f = project(self.pace_at(share), rounds);
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

    /// The throttle as a whole percentage, rounded up so it is enough.
    pub fn pct(&self) -> u8 {
        (self.share * 100.0 - 1e-9).ceil().clamp(0.0, 99.0) as u8
    }

    /// The throttle as a dirty-rate limit, bytes/s (0: none): the rate the
    /// guest dirties at under it, at its own pace `pace_rate` (the
    /// forecast, `None` before there is one), never below `raw_rate`, what
    /// the latest round showed at that pace (a forecast below it would
    /// starve the guest). A limit that holds less tightly than that shows
    /// in the next throttled round as [`Self::dirty_headroom`], which sizes
    /// the next one, as it does for a CPU throttle.
    pub fn dirty_limit_bytes_per_s(&self, pace_rate: Option<f64>, raw_rate: f64) -> f64 {
        let Some(pace_rate) = pace_rate.filter(|_| self.in_force()) else {
            return 0.0;
        };
        let limit = pace_rate.max(raw_rate) * (1.0 - self.share.min(MAX_THROTTLE));
        if limit.is_finite() && limit > 0.0 {
            limit
        } else {
            0.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn headroom_is_learnt_only_under_a_throttle() {
        let mut t = Throttle::default();
        t.learn_headroom(50.0, Some(100.0));
        assert_eq!(t.pace_at(0.5), 0.5, "learnt with no throttle in force");
        // Under a 75 % throttle the guest kept half its pace: κ = 2, once
        // two rounds in a row show it.
        t.set(0.75);
        t.learn_headroom(50.0, Some(100.0));
        assert!((t.pace() - 0.25).abs() < 1e-12, "one round believed");
        t.learn_headroom(50.0, Some(100.0));
        assert!((t.pace() - 0.5).abs() < 1e-12);
        assert_eq!(t.pace_at(0.0), 1.0, "never above the guest's own pace");
        assert_eq!(t.pct(), 75);
        assert!((t.dirty_limit_bytes_per_s(Some(100.0), 120.0) - 30.0).abs() < 1e-9);
        assert_eq!(t.dirty_limit_bytes_per_s(None, 120.0), 0.0);
    }

    #[test]
    fn a_harder_bite_is_believed_at_once_a_weaker_one_as_two_rounds_allow() {
        let mut t = Throttle::default();
        t.set(0.9);
        // κ = 5, then 3 (harder: at once).
        t.learn_headroom(50.0, Some(100.0));
        t.learn_headroom(50.0, Some(100.0));
        assert!((t.pace() - 0.5).abs() < 1e-12);
        t.learn_headroom(30.0, Some(100.0));
        assert!((t.pace() - 0.3).abs() < 1e-12);
        // Weaker, κ = 8 then 6: the smaller of the two.
        t.learn_headroom(80.0, Some(100.0));
        assert!((t.pace() - 0.3).abs() < 1e-12);
        t.learn_headroom(60.0, Some(100.0));
        assert!((t.pace() - 0.6).abs() < 1e-12);
    }

    #[test]
    fn an_unthrottled_or_unreadable_round_breaks_the_two_in_a_row() {
        for breaker in [f64::NAN, -1.0] {
            let mut t = Throttle::default();
            t.set(0.9);
            t.learn_headroom(50.0, Some(100.0));
            if breaker.is_nan() {
                t.learn_headroom(breaker, Some(100.0));
            } else {
                t.set(0.0);
                t.learn_headroom(50.0, Some(100.0));
                t.set(0.9);
            }
            // One weak round after the break is one round, not two.
            t.learn_headroom(50.0, Some(100.0));
            assert!((t.pace() - 0.1).abs() < 1e-12, "{breaker}: {}", t.pace());
        }
    }

    #[test]
    fn a_released_throttle_forgets_its_bite_and_backs_off() {
        let mut t = Throttle::default();
        assert_eq!(t.backoff(), 1);
        for released in 1..=6u32 {
            t.set(0.9);
            t.learn_headroom(90.0, Some(100.0));
            t.learn_headroom(90.0, Some(100.0));
            assert!(t.pace() > 0.8);
            t.release();
            // Nothing of the rounds before carries over: one weak round
            // under the next throttle is not believed on its own.
            t.set(0.9);
            t.learn_headroom(90.0, Some(100.0));
            assert!((t.pace() - 0.1).abs() < 1e-12, "last round forgotten");
            t.set(0.0);
            assert!((t.pace_at(0.9) - 0.1).abs() < 1e-12, "κ forgotten");
            assert_eq!(t.backoff(), (1 << released).min(MAX_BACKOFF));
        }
    }
}

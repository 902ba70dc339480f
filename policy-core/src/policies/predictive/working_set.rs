//! The writable working set (WWS) as a saturation model: what each round
//! shows of the guest's page touches.
//!
//! A round of T seconds in which the guest touches pages uniformly at
//! `rate` bytes/s over a working set of W bytes newly dirties
//! W·(1 − e^(−rate·T/W)) bytes; W is the largest set any recent round
//! dirtied. The touch rate recovered through that model does not depend on
//! how long the round was, which the raw dirtied/T does.

use crate::forecast::ring::Ring;

/// Rounds over which the writable working set is the largest dirtied set.
const WWS_WINDOW_ROUNDS: usize = 16;
/// The fraction of the working set the largest recent round is taken to
/// have dirtied: the WWS estimate is that round over this, so a round that
/// saturated what it could see still has a finite touch rate, and a steady
/// saturated guest is forecast to dirty exactly what it did. Rounds that
/// reach it are saturated: their touch rate is only a lower bound.
pub(super) const MAX_SATURATION: f64 = 0.95;

/// What the recent rounds showed of the working set.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct WorkingSet {
    /// Bytes dirtied per round, recent rounds; their maximum is the WWS.
    dirtied_history: Ring<WWS_WINDOW_ROUNDS>,
    /// Pending bytes at the last sync that were not newly dirtied: what the
    /// previous round left unsent. QEMU 10 syncs once the remainder drops
    /// below its threshold, so this is about the threshold there, and 0
    /// where rounds drain completely.
    carry_bytes: f64,
    /// The latest round's dirtied bytes over its length (every touch a new
    /// page), at the guest's own pace: the lowest touch rate consistent
    /// with it, bytes/s.
    raw_rate_bytes_per_s: f64,
    /// The latest round saturated the estimated working set, so its touch
    /// rate is only a lower bound.
    saturated: bool,
}

/// One round as the working set saw it.
#[derive(Debug, Clone, Copy)]
pub(super) struct RoundSeen {
    /// Bytes newly dirtied in the round.
    pub dirtied_bytes: f64,
    /// The part of the carry counted in the working set (0 after the bulk
    /// round, whose remainder is memory it had not reached yet).
    pub carry_in_wws_bytes: f64,
    /// The working set after the round, bytes.
    pub wws_bytes: f64,
    /// The touch rate the round shows, bytes/s (under whatever throttle
    /// was in force).
    pub touch_rate_bytes_per_s: f64,
}

impl WorkingSet {
    /// Take in a round of `duration_s` that newly dirtied `dirtied_bytes`
    /// and ended with `pending_bytes` to send; `after_bulk` when it is the
    /// first sync after the bulk copy.
    pub fn observe(
        &mut self,
        dirtied_bytes: f64,
        pending_bytes: f64,
        duration_s: f64,
        after_bulk: bool,
    ) -> RoundSeen {
        let carry = (pending_bytes - dirtied_bytes).max(0.0);
        self.carry_bytes = carry;
        // What the last round left unsent is still dirty, and in the
        // working set — except after the bulk round, whose remainder is
        // whatever memory it had not reached yet.
        let carry_in_wws = if after_bulk { 0.0 } else { carry };
        self.dirtied_history.push(carry_in_wws + dirtied_bytes);
        let wws = self.wws_bytes();
        RoundSeen {
            dirtied_bytes,
            carry_in_wws_bytes: carry_in_wws,
            wws_bytes: wws,
            touch_rate_bytes_per_s: touch_rate(dirtied_bytes, duration_s, wws, carry_in_wws),
        }
    }

    /// Record the round's raw rate at the guest's own pace (`pace`: the
    /// share of it the throttle in force left) and whether it saturated.
    pub fn settle(&mut self, round: &RoundSeen, duration_s: f64, pace: f64) {
        self.raw_rate_bytes_per_s = round.dirtied_bytes / duration_s / pace;
        let clean = (round.wws_bytes - round.carry_in_wws_bytes).max(round.dirtied_bytes);
        self.saturated =
            clean > 0.0 && round.dirtied_bytes / clean >= MAX_SATURATION * (1.0 - 1e-9);
    }

    /// The writable working set: the most bytes any recent round dirtied,
    /// over [`MAX_SATURATION`].
    pub fn wws_bytes(&self) -> f64 {
        (0..WWS_WINDOW_ROUNDS)
            .filter_map(|age| self.dirtied_history.back(age))
            .fold(0.0, f64::max)
            / MAX_SATURATION
    }

    /// What the previous round left unsent, bytes.
    pub fn carry_bytes(&self) -> f64 {
        self.carry_bytes
    }

    /// The latest round's raw rate at the guest's own pace, bytes/s.
    pub fn raw_rate_bytes_per_s(&self) -> f64 {
        self.raw_rate_bytes_per_s
    }

    /// True when the latest round saturated the working set.
    pub fn saturated(&self) -> bool {
        self.saturated
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

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn the_working_set_is_the_largest_recent_round_and_the_bulk_carry_is_not_in_it() {
        let mut ws = WorkingSet::default();
        // After the bulk copy: 900 MB still to send is memory not reached yet.
        let seen = ws.observe(10e6, 910e6, 1.0, true);
        assert_eq!(seen.carry_in_wws_bytes, 0.0);
        assert!((ws.wws_bytes() - 10e6 / MAX_SATURATION).abs() < 1e-3);
        assert_eq!(ws.carry_bytes(), 900e6);
        // A later round's carry is dirty working set, and a round with
        // some still dirty cannot have dirtied all of the set.
        let seen = ws.observe(40e6, 50e6, 1.0, false);
        assert_eq!(seen.carry_in_wws_bytes, 10e6);
        assert!((ws.wws_bytes() - 50e6 / MAX_SATURATION).abs() < 1e-3);
        ws.settle(&seen, 1.0, 1.0);
        assert!(!ws.saturated());
        // The largest round with nothing left over dirtied all it could.
        let seen = ws.observe(80e6, 80e6, 2.0, false);
        ws.settle(&seen, 2.0, 0.5);
        assert!(ws.saturated());
        assert_eq!(ws.raw_rate_bytes_per_s(), 80e6);
    }
}

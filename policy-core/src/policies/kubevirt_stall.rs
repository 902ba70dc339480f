//! KubeVirt VEP 248, stall detection with local-minimum switch-over, in its
//! pre-copy-only, no-workload-disruption mode (KubeVirt's default).
//!
//! Defaults from the VEP's `migration-hyperparameters.md`:
//! `stallProgressTimeout = 40` s, `stallMargin = 4` %, `ewmaAlpha = 0.4`,
//! `precopyPossibleFactor = 1.5`, `patienceWindowDecayFactor = 0.5`,
//! `switchoverTimeout = 60` s, `searchLocalMinima = true`,
//! `completionTimeoutPerGiB = 150` s. `maxDowntimeMs` is the configured hard
//! maximum downtime (the VEP's default is 900 ms). QEMU's own target
//! downtime is `min(maxDowntimeMs, downtime limit)` throughout.

use super::kubevirt_ramp::KUBEVIRT_COMPLETION_TIMEOUT_S_PER_GIB;
use super::{qemu_rule_holds, PolicyKind, RoundRule, GIB_BYTES};
use crate::config::PolicyConfig;
use crate::decision::{Action, Decision, Reason};
use crate::observation::RoundObservation;

/// `stallProgressTimeout`, ms.
pub const STALL_PROGRESS_TIMEOUT_MS: u64 = 40_000;
/// `stallMargin` as a fraction.
pub const STALL_MARGIN: f64 = 0.04;
/// `ewmaAlpha` for the bandwidth estimate.
pub const STALL_EWMA_ALPHA: f64 = 0.4;
/// `precopyPossibleFactor`.
pub const STALL_PRECOPY_POSSIBLE_FACTOR: f64 = 1.5;
/// `patienceWindowDecayFactor`.
pub const STALL_PATIENCE_DECAY: f64 = 0.5;
/// `switchoverTimeout`, ms.
pub const STALL_SWITCHOVER_TIMEOUT_MS: u64 = 60_000;

/// Rounds kept inside the sliding window; older ones fold into the
/// outside-window minimum early (bounds memory on very short rounds).
const WINDOW_CAPACITY: usize = 256;
/// Post-stall remaining-bytes levels kept for relaxation.
const HISTORY_CAPACITY: usize = 64;

/// VEP 248's stall detector.
#[derive(Debug, Clone, Copy)]
pub struct KubevirtStallRule {
    window: [(u64, u64); WINDOW_CAPACITY],
    window_head: usize,
    window_len: usize,
    outside_window_min: Option<u64>,
    bandwidth_ewma: Option<f64>,
    stalled: bool,
    best_remaining_bytes: u64,
    history: [u64; HISTORY_CAPACITY],
    history_len: usize,
    patience_ms: f64,
    relaxation_deadline_ms: f64,
    /// Set once QEMU's target was raised to the maximum ("soft stop").
    switchover_deadline_ms: Option<u64>,
}

impl KubevirtStallRule {
    /// A fresh detector.
    pub fn new(_cfg: &PolicyConfig) -> Self {
        Self {
            window: [(0, 0); WINDOW_CAPACITY],
            window_head: 0,
            window_len: 0,
            outside_window_min: None,
            bandwidth_ewma: None,
            stalled: false,
            best_remaining_bytes: 0,
            history: [0; HISTORY_CAPACITY],
            history_len: 0,
            patience_ms: STALL_PROGRESS_TIMEOUT_MS as f64,
            relaxation_deadline_ms: 0.0,
            switchover_deadline_ms: None,
        }
    }

    fn fold_old_records(&mut self, now_ms: u64) {
        while self.window_len > 0 {
            let (at_ms, remaining) = self.window[self.window_head];
            let full = self.window_len == WINDOW_CAPACITY;
            if at_ms.saturating_add(STALL_PROGRESS_TIMEOUT_MS) > now_ms && !full {
                break;
            }
            self.outside_window_min = Some(
                self.outside_window_min
                    .map_or(remaining, |m| m.min(remaining)),
            );
            self.window_head = (self.window_head + 1) % WINDOW_CAPACITY;
            self.window_len -= 1;
        }
    }

    fn push_record(&mut self, at_ms: u64, remaining: u64) {
        let tail = (self.window_head + self.window_len) % WINDOW_CAPACITY;
        self.window[tail] = (at_ms, remaining);
        self.window_len += 1;
    }

    fn window_min(&self) -> Option<u64> {
        (0..self.window_len)
            .map(|i| self.window[(self.window_head + i) % WINDOW_CAPACITY].1)
            .min()
    }

    fn record_history(&mut self, remaining: u64) {
        if self.history_len < HISTORY_CAPACITY {
            self.history[self.history_len] = remaining;
            self.history_len += 1;
        } else if let Some((i, _)) = self.history.iter().enumerate().max_by_key(|(_, v)| **v) {
            // Full: the largest level would be the last one relaxed to.
            if remaining < self.history[i] {
                self.history[i] = remaining;
            }
        }
    }

    fn pop_lowest_history(&mut self) -> Option<u64> {
        let (i, value) = self.history[..self.history_len]
            .iter()
            .copied()
            .enumerate()
            .min_by_key(|(_, v)| *v)?;
        self.history[i] = self.history[self.history_len - 1];
        self.history_len -= 1;
        Some(value)
    }

    fn near_local_minimum(&self, remaining: u64) -> bool {
        remaining as f64 <= self.best_remaining_bytes as f64 * (1.0 + STALL_MARGIN)
    }

    /// `trySwitchover` of the VEP for the pre-copy-only path.
    fn try_switchover(
        &mut self,
        obs: &RoundObservation,
        bandwidth: f64,
        max_ms: f64,
        limit: f64,
    ) -> Decision {
        let implied_ms = obs.pending_bytes as f64 / bandwidth * 1000.0;
        if implied_ms <= max_ms {
            // QEMU's target becomes the maximum: its rule now holds.
            return Decision::new(Action::StopAndCopy, Reason::StallLocalMinimum, max_ms);
        }
        if implied_ms <= max_ms * STALL_PRECOPY_POSSIBLE_FACTOR {
            self.switchover_deadline_ms =
                Some(obs.elapsed_ms.saturating_add(STALL_SWITCHOVER_TIMEOUT_MS));
            return Decision::new(Action::Continue, Reason::StallLocalMinimum, max_ms);
        }
        Decision::new(Action::Abort, Reason::StallHopeless, limit)
    }
}

impl RoundRule for KubevirtStallRule {
    const KIND: PolicyKind = PolicyKind::KubevirtStall;

    fn decide(&mut self, obs: &RoundObservation, cfg: &PolicyConfig) -> Decision {
        let max_ms = cfg.max_downtime_ms;
        let limit = cfg.downtime_limit_ms.min(max_ms);
        let bandwidth = match self.bandwidth_ewma {
            None => obs.bandwidth_bytes_per_s,
            Some(b) => STALL_EWMA_ALPHA * obs.bandwidth_bytes_per_s + (1.0 - STALL_EWMA_ALPHA) * b,
        };
        self.bandwidth_ewma = Some(bandwidth);
        self.fold_old_records(obs.elapsed_ms);
        let window_min = self.window_min();
        self.push_record(obs.elapsed_ms, obs.pending_bytes);

        if let Some(deadline) = self.switchover_deadline_ms {
            return if qemu_rule_holds(obs, max_ms) {
                Decision::new(Action::StopAndCopy, Reason::StallLocalMinimum, max_ms)
            } else if obs.elapsed_ms > deadline {
                Decision::new(Action::Abort, Reason::CompletionTimeout, max_ms)
            } else {
                Decision::new(Action::Continue, Reason::StallLocalMinimum, max_ms)
            };
        }
        if qemu_rule_holds(obs, limit) {
            return Decision::new(Action::StopAndCopy, Reason::BelowThreshold, limit);
        }
        let gib = obs.ram_bytes as f64 / GIB_BYTES;
        if obs.elapsed_ms as f64 / 1000.0 > KUBEVIRT_COMPLETION_TIMEOUT_S_PER_GIB * gib {
            return Decision::new(Action::Abort, Reason::CompletionTimeout, limit);
        }
        let remaining = obs.pending_bytes;
        let now_ms = obs.elapsed_ms as f64;
        if !self.stalled {
            let Some(outside_min) = self.outside_window_min else {
                return Decision::new(Action::Continue, Reason::AboveThreshold, limit);
            };
            if (remaining as f64) < outside_min as f64 * (1.0 - STALL_MARGIN) {
                return Decision::new(Action::Continue, Reason::AboveThreshold, limit);
            }
            self.stalled = true;
            self.best_remaining_bytes = window_min.map_or(outside_min, |w| w.min(outside_min));
            self.history_len = 0;
            self.patience_ms = STALL_PROGRESS_TIMEOUT_MS as f64;
            self.relaxation_deadline_ms = now_ms + self.patience_ms;
            if self.near_local_minimum(remaining) {
                return self.try_switchover(obs, bandwidth, max_ms, limit);
            }
            return Decision::new(Action::Continue, Reason::AboveThreshold, limit);
        }
        self.record_history(remaining);
        if self.near_local_minimum(remaining) {
            return self.try_switchover(obs, bandwidth, max_ms, limit);
        }
        if now_ms >= self.relaxation_deadline_ms {
            if let Some(level) = self.pop_lowest_history() {
                self.best_remaining_bytes = level;
            }
            self.patience_ms *= STALL_PATIENCE_DECAY;
            self.relaxation_deadline_ms = now_ms + self.patience_ms;
        }
        if self.near_local_minimum(remaining) {
            return self.try_switchover(obs, bandwidth, max_ms, limit);
        }
        Decision::new(Action::Continue, Reason::AboveThreshold, limit)
    }

    fn reset(&mut self) {
        *self = Self::new(&PolicyConfig::default());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(round: u64, elapsed_ms: u64, pending_bytes: u64) -> RoundObservation {
        RoundObservation {
            round,
            elapsed_ms,
            dirtied_pages: pending_bytes / 4096,
            pending_bytes,
            sent_bytes: round * (1 << 28),
            bandwidth_bytes_per_s: 125e6,
            page_size_bytes: 4096,
            ram_bytes: 8 << 30,
        }
    }

    #[test]
    fn switches_over_at_a_local_minimum_after_a_plateau() {
        let cfg = PolicyConfig::default();
        let mut rule = KubevirtStallRule::new(&cfg);
        // Remaining bytes oscillate between 80 and 110 MB every second: a
        // plateau above the 300 ms threshold (37.5 MB), implied ≤ 1000 ms.
        let mut stopped_at = None;
        for r in 1..400u64 {
            let pending = if r % 2 == 0 { 80_000_000 } else { 110_000_000 };
            let d = rule.decide(&obs(r, r * 1000, pending), &cfg);
            if d.stops() {
                stopped_at = Some((r, pending, d.reason));
                break;
            }
        }
        let (round, pending, reason) = stopped_at.expect("stall detector never switched over");
        assert_eq!(reason, Reason::StallLocalMinimum);
        assert_eq!(pending, 80_000_000, "switched at a local maximum");
        assert!(
            round > 40,
            "stall declared before the 40 s window: round {round}"
        );
    }
}

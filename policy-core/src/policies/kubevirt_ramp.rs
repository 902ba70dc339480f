//! KubeVirt VEP 291, dynamic downtime tuning: the allowed downtime starts
//! below QEMU's default and is raised in equal steps up to `maxDowntimeMs`,
//! one step per cooldown once enough iterations have run. Defaults from the
//! VEP: `initialMs = 150`, `steps = 7` (levels from initial to the ceiling,
//! both included), `startAfterIteration = 3`, `cooldownSeconds = 10`. The
//! ceiling is the configured hard maximum downtime. KubeVirt's existing
//! timeouts stay in force: `completionTimeoutPerGiB = 150` s and
//! `progressTimeout = 150` s, both abort.

use super::{qemu_rule_holds, PolicyKind, RoundRule, GIB_BYTES};
use crate::config::PolicyConfig;
use crate::decision::{Action, Decision, Reason};
use crate::observation::RoundObservation;

/// `initialMs`.
pub const RAMP_INITIAL_MS: f64 = 150.0;
/// `steps`: levels from the initial value to the ceiling.
pub const RAMP_LEVELS: u32 = 7;
/// `startAfterIteration`.
pub const RAMP_START_AFTER_ITERATION: u64 = 3;
/// `cooldownSeconds`, in ms.
pub const RAMP_COOLDOWN_MS: u64 = 10_000;
/// KubeVirt `completionTimeoutPerGiB`, s.
pub const KUBEVIRT_COMPLETION_TIMEOUT_S_PER_GIB: f64 = 150.0;
/// KubeVirt `progressTimeout`, ms.
pub const KUBEVIRT_PROGRESS_TIMEOUT_MS: u64 = 150_000;

/// Tracks KubeVirt's legacy progress timeout: remaining bytes must reach a
/// new minimum at least once per timeout.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProgressTimer {
    best_remaining_bytes: Option<u64>,
    best_at_ms: u64,
}

impl ProgressTimer {
    /// Record a round; true when no progress was made for the timeout.
    pub fn expired(&mut self, obs: &RoundObservation, timeout_ms: u64) -> bool {
        if self
            .best_remaining_bytes
            .is_none_or(|best| obs.pending_bytes < best)
        {
            self.best_remaining_bytes = Some(obs.pending_bytes);
            self.best_at_ms = obs.elapsed_ms;
        }
        obs.elapsed_ms.saturating_sub(self.best_at_ms) > timeout_ms
    }
}

/// VEP 291's downtime ramp.
#[derive(Debug, Clone, Copy, Default)]
pub struct KubevirtRampRule {
    /// Current level (0 = initial).
    level: u32,
    /// When the current cooldown started, once the ramp has started.
    cooldown_started_ms: Option<u64>,
    progress: ProgressTimer,
}

impl KubevirtRampRule {
    fn target_ms(&self, ceiling_ms: f64) -> f64 {
        let initial = RAMP_INITIAL_MS.min(ceiling_ms);
        let step = (ceiling_ms - initial) / f64::from(RAMP_LEVELS - 1);
        (initial + step * f64::from(self.level)).min(ceiling_ms)
    }
}

impl RoundRule for KubevirtRampRule {
    const KIND: PolicyKind = PolicyKind::KubevirtRamp;

    fn decide(&mut self, obs: &RoundObservation, cfg: &PolicyConfig) -> Decision {
        if obs.round >= RAMP_START_AFTER_ITERATION {
            match self.cooldown_started_ms {
                None => self.cooldown_started_ms = Some(obs.elapsed_ms),
                Some(start) if obs.elapsed_ms.saturating_sub(start) >= RAMP_COOLDOWN_MS => {
                    self.level = (self.level + 1).min(RAMP_LEVELS - 1);
                    self.cooldown_started_ms = Some(obs.elapsed_ms);
                }
                Some(_) => {}
            }
        }
        let limit_ms = self.target_ms(cfg.max_downtime_ms);
        let gib = obs.ram_bytes as f64 / GIB_BYTES;
        let no_progress = self.progress.expired(obs, KUBEVIRT_PROGRESS_TIMEOUT_MS);
        let (action, reason) = if qemu_rule_holds(obs, limit_ms) {
            (Action::StopAndCopy, Reason::BelowThreshold)
        } else if obs.elapsed_ms as f64 / 1000.0 > KUBEVIRT_COMPLETION_TIMEOUT_S_PER_GIB * gib {
            (Action::Abort, Reason::CompletionTimeout)
        } else if no_progress {
            (Action::Abort, Reason::ProgressTimeout)
        } else {
            (Action::Continue, Reason::AboveThreshold)
        };
        Decision::new(action, reason, limit_ms)
    }

    fn reset(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_run_from_initial_to_ceiling() {
        let mut r = KubevirtRampRule::default();
        assert_eq!(r.target_ms(1050.0), 150.0);
        r.level = 1;
        assert_eq!(r.target_ms(1050.0), 300.0);
        r.level = RAMP_LEVELS - 1;
        assert_eq!(r.target_ms(1050.0), 1050.0);
    }
}

//! Upstream QEMU 10.0's rule: `migration_iteration_run()` completes when
//! `pending_size < s->threshold_size`, with threshold = bandwidth × downtime
//! limit (`migration_update_counters()`).

use super::{qemu_rule_holds, PolicyKind, RoundRule};
use crate::config::PolicyConfig;
use crate::decision::{Action, Decision, Reason};
use crate::observation::RoundObservation;

/// QEMU's own switch-over rule and nothing else.
#[derive(Debug, Clone, Copy, Default)]
pub struct QemuRule;

impl RoundRule for QemuRule {
    const KIND: PolicyKind = PolicyKind::Qemu;

    fn decide(&mut self, obs: &RoundObservation, cfg: &PolicyConfig) -> Decision {
        let (action, reason) = if qemu_rule_holds(obs, cfg.downtime_limit_ms) {
            (Action::StopAndCopy, Reason::BelowThreshold)
        } else {
            (Action::Continue, Reason::AboveThreshold)
        };
        Decision::new(action, reason, cfg.downtime_limit_ms)
    }

    fn reset(&mut self) {}
}

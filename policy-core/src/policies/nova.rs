//! OpenStack Nova's libvirt driver: the allowed downtime is raised in steps
//! over time, and the migration is aborted after a completion timeout.
//!
//! Defaults from `nova/conf/libvirt.py`: `live_migration_downtime = 500` ms,
//! `live_migration_downtime_steps = 10`, `live_migration_downtime_delay = 75`
//! s per GiB, `live_migration_completion_timeout = 800` s per GiB,
//! `live_migration_timeout_action = abort`. The steps follow
//! `nova.virt.libvirt.migration.downtime_steps()`: with data size `D` GiB,
//! step `i` (0..=steps) starts at `delay·D·i` s with downtime
//! `base + offset·i`, `base = downtime/steps`, `offset = (downtime − base)/steps`.
//! Nova floors the RAM it counts at 2 GiB (`_live_migration_data_gb`).

use super::{qemu_rule_holds, PolicyKind, RoundRule, GIB_BYTES};
use crate::config::PolicyConfig;
use crate::decision::{Action, Decision, Reason};
use crate::observation::RoundObservation;

/// `live_migration_downtime`, ms.
pub const NOVA_DOWNTIME_MS: f64 = 500.0;
/// `live_migration_downtime_steps`.
pub const NOVA_DOWNTIME_STEPS: u32 = 10;
/// `live_migration_downtime_delay`, s per GiB.
pub const NOVA_DOWNTIME_DELAY_S_PER_GIB: f64 = 75.0;
/// `live_migration_completion_timeout`, s per GiB.
pub const NOVA_COMPLETION_TIMEOUT_S_PER_GIB: f64 = 800.0;
/// Nova counts at least this much RAM, GiB.
pub const NOVA_MIN_DATA_GIB: f64 = 2.0;

/// Nova's downtime steps and completion timeout.
#[derive(Debug, Clone, Copy, Default)]
pub struct NovaRule;

/// Nova's allowed downtime, ms, at `elapsed_s` for a guest of `data_gib`.
pub fn nova_downtime_ms(elapsed_s: f64, data_gib: f64) -> f64 {
    let steps = f64::from(NOVA_DOWNTIME_STEPS);
    let base = NOVA_DOWNTIME_MS / steps;
    let offset = (NOVA_DOWNTIME_MS - base) / steps;
    let delay_s = (NOVA_DOWNTIME_DELAY_S_PER_GIB * data_gib).floor().max(1.0);
    let step = (elapsed_s / delay_s).floor().clamp(0.0, steps);
    (base + offset * step).floor()
}

impl RoundRule for NovaRule {
    const KIND: PolicyKind = PolicyKind::Nova;

    fn decide(&mut self, obs: &RoundObservation, _cfg: &PolicyConfig) -> Decision {
        let data_gib = (obs.ram_bytes as f64 / GIB_BYTES).max(NOVA_MIN_DATA_GIB);
        let elapsed_s = obs.elapsed_ms as f64 / 1000.0;
        let limit_ms = nova_downtime_ms(elapsed_s, data_gib);
        let (action, reason) = if qemu_rule_holds(obs, limit_ms) {
            (Action::StopAndCopy, Reason::BelowThreshold)
        } else if elapsed_s > NOVA_COMPLETION_TIMEOUT_S_PER_GIB * data_gib {
            (Action::Abort, Reason::CompletionTimeout)
        } else {
            (Action::Continue, Reason::AboveThreshold)
        };
        Decision::new(action, reason, limit_ms)
    }

    fn reset(&mut self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_match_novas_formula_for_two_gib() {
        // delay = 150 s; base 50 ms, offset 45 ms.
        assert_eq!(nova_downtime_ms(0.0, 2.0), 50.0);
        assert_eq!(nova_downtime_ms(149.0, 2.0), 50.0);
        assert_eq!(nova_downtime_ms(150.0, 2.0), 95.0);
        assert_eq!(nova_downtime_ms(1500.0, 2.0), 500.0);
        assert_eq!(nova_downtime_ms(1e9, 2.0), 500.0);
    }
}

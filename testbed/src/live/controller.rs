//! Management-layer policies run by the test-bed, as KubeVirt and Nova run
//! theirs: each sync QEMU recorded is fed to the library's emulation of the
//! policy, and its decision is carried out through QMP — the downtime
//! target it has reached becomes QEMU's `downtime-limit` (so QEMU's own
//! rule switches over at it), a switch-over it decides raises
//! `downtime-limit` to the maximum, and an abort cancels the migration.
//! Like the real ones, it acts on what it polled, a little after the sync.

use anyhow::Result;
use kairos_policy_core::{
    build_policy, Action, ConvergencePolicy, PolicyConfig, PolicyKind, Reason,
};
use serde_json::json;

use super::rounds::QmpRound;
use crate::driver::Monitor;

/// What a controller did to the migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControllerAct {
    /// Nothing.
    None,
    /// It set downtime-limit to this many ms.
    SetLimit(u64),
    /// It cancelled the migration.
    Cancelled,
}

/// A management-layer policy driving one migration.
pub struct Controller {
    policy: Box<dyn ConvergencePolicy>,
    max_downtime_ms: u64,
    limit_ms: u64,
    cancelled: bool,
    /// Set once the policy decided a switch-over QEMU's rule at its target
    /// would not make: the limit stays at the maximum from then on.
    forced: bool,
}

impl Controller {
    /// The controller for `kind`, starting from QEMU's `limit_ms`.
    pub fn new(kind: PolicyKind, cfg: &PolicyConfig, limit_ms: u64) -> Result<Self> {
        Ok(Self {
            policy: build_policy(kind, cfg)?,
            max_downtime_ms: cfg.max_downtime_ms.round() as u64,
            limit_ms,
            cancelled: false,
            forced: false,
        })
    }

    /// The decision's effect on QEMU, given its current downtime-limit.
    fn act(&mut self, round: &QmpRound) -> ControllerAct {
        let decision = self.policy.observe(&round.observation());
        let target_ms = decision.downtime_limit_ms.round().max(1.0) as u64;
        let act = match (decision.action, decision.reason) {
            (Action::Abort, _) => ControllerAct::Cancelled,
            _ if self.forced => ControllerAct::None,
            // Any other switch-over (a stall's local minimum): QEMU's rule
            // at the maximum makes it.
            (Action::StopAndCopy, reason) if reason != Reason::BelowThreshold => {
                self.forced = true;
                if self.max_downtime_ms > self.limit_ms {
                    ControllerAct::SetLimit(self.max_downtime_ms)
                } else {
                    ControllerAct::None
                }
            }
            // The target reached: QEMU's own rule at it switches over.
            _ if target_ms != self.limit_ms => ControllerAct::SetLimit(target_ms),
            _ => ControllerAct::None,
        };
        match act {
            ControllerAct::SetLimit(ms) => self.limit_ms = ms,
            ControllerAct::Cancelled => self.cancelled = true,
            ControllerAct::None => {}
        }
        act
    }

    /// Feed the new syncs and carry out what the policy decides; returns
    /// the last thing it did.
    pub fn feed(&mut self, rounds: &[QmpRound], qmp: &mut dyn Monitor) -> Result<ControllerAct> {
        let mut last = ControllerAct::None;
        for round in rounds {
            if self.cancelled {
                break;
            }
            let act = self.act(round);
            match act {
                ControllerAct::None => continue,
                ControllerAct::SetLimit(ms) => {
                    qmp.execute(
                        "migrate-set-parameters",
                        Some(json!({ "downtime-limit": ms })),
                    )?;
                }
                ControllerAct::Cancelled => {
                    qmp.execute("migrate_cancel", None)?;
                }
            }
            last = act;
        }
        Ok(last)
    }

    /// True once it cancelled the migration.
    pub fn cancelled(&self) -> bool {
        self.cancelled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(observed: u64, time: u64, pending: u64) -> QmpRound {
        QmpRound {
            observed,
            round: observed,
            time,
            dirtied_pages: pending / 4096,
            pending,
            transferred: observed * 100_000_000,
            bandwidth: 125_000_000,
            page_size: 4096,
            ram_size: 1 << 30,
            action: "continue".into(),
            reason: "observing".into(),
            forecast_pending: 0,
            stop_cost: None,
            throttle_percentage: 0,
            sync_below: 0,
        }
    }

    #[test]
    fn the_ramp_raises_qemus_limit_over_time() {
        let cfg = PolicyConfig::default();
        let mut c = Controller::new(PolicyKind::KubevirtRamp, &cfg, 300).unwrap();
        // Hot plateau: 90 MB pending every 0.7 s.
        let acts: Vec<ControllerAct> = (1..=80)
            .map(|i| c.act(&round(i, i * 700, 90_000_000)))
            .collect();
        let limits: Vec<u64> = acts
            .iter()
            .filter_map(|a| match a {
                ControllerAct::SetLimit(ms) => Some(*ms),
                _ => None,
            })
            .collect();
        assert!(!limits.is_empty(), "the ramp never moved QEMU's limit");
        assert!(limits.windows(2).all(|w| w[0] <= w[1]), "{limits:?}");
        assert!(*limits.last().unwrap() <= cfg.max_downtime_ms as u64);
    }
}

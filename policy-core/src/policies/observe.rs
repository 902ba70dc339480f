//! A policy that only observes: it forecasts like `predictive` (so its
//! state shows the forecast) but never asks anything of the migration (no
//! stop, throttle, dirty-rate limit or mid-pass sync); the caller's own
//! rule decides. Used to record the traces the oracle is computed from, and by
//! operators who want to see the forecast before letting it act.

use super::predictive::PredictiveRule;
use super::{PolicyKind, RoundRule};
use crate::config::{Escalation, PolicyConfig};
use crate::decision::{Action, Decision, Reason};
use crate::observation::RoundObservation;

/// Always continue, with `predictive`'s forecast attached.
#[derive(Debug, Clone, Copy)]
pub struct ObserveRule {
    forecaster: PredictiveRule,
}

impl ObserveRule {
    /// A fresh observer for `cfg` (validated by the caller).
    pub fn new(cfg: &PolicyConfig) -> Self {
        Self {
            forecaster: PredictiveRule::new(cfg),
        }
    }
}

impl RoundRule for ObserveRule {
    const KIND: PolicyKind = PolicyKind::Observe;

    fn decide(&mut self, obs: &RoundObservation, cfg: &PolicyConfig) -> Decision {
        // It never acts, so it never throttles either.
        let quiet = PolicyConfig {
            escalation: Escalation::None,
            ..*cfg
        };
        let would = self.forecaster.decide(obs, &quiet);
        Decision {
            action: Action::Continue,
            reason: Reason::Observing,
            throttle_pct: 0,
            dirty_limit_bytes_per_s: 0.0,
            // Nor does it ask QEMU for an earlier sync: QEMU would make
            // one for any policy, and the migration would no longer be
            // the one QEMU's rule alone makes.
            sync_below_ms: 0.0,
            ..would
        }
    }

    fn reset(&mut self) {
        self.forecaster.reset();
    }
}

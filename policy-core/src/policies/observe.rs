//! A policy that only observes: it forecasts like `predictive` (so its
//! state shows the forecast) but never asks to stop; the caller's own rule
//! decides. Used to record the traces the oracle is computed from, and by
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
            ..would
        }
    }

    fn reset(&mut self) {
        self.forecaster.reset();
    }
}

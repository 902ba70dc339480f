//! A policy that never stops: used to record the long trace the oracle is
//! computed from.

use super::{PolicyKind, RoundRule};
use crate::config::PolicyConfig;
use crate::decision::{Action, Decision, Reason};
use crate::observation::RoundObservation;

/// Always continue.
#[derive(Debug, Clone, Copy, Default)]
pub struct NeverStopRule;

impl RoundRule for NeverStopRule {
    const KIND: PolicyKind = PolicyKind::NeverStop;

    fn decide(&mut self, _obs: &RoundObservation, cfg: &PolicyConfig) -> Decision {
        Decision::new(Action::Continue, Reason::NeverStop, cfg.downtime_limit_ms)
    }

    fn reset(&mut self) {}
}

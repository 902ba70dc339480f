//! The input guard in front of every policy's rule.

use super::{ConvergencePolicy, PolicyKind};
use crate::config::PolicyConfig;
use crate::decision::Decision;
use crate::input_guard::{fallback_decision, InputGuard};
use crate::observation::RoundObservation;

/// A policy's decision rule, fed only observations the guard accepted.
pub trait RoundRule: Send {
    /// Which policy this rule implements.
    const KIND: PolicyKind;
    /// Decide on a validated observation.
    fn decide(&mut self, obs: &RoundObservation, cfg: &PolicyConfig) -> Decision;
    /// Forget the migration.
    fn reset(&mut self);
}

/// A rule behind the input guard: invalid rounds get QEMU's own rule.
#[derive(Debug, Clone)]
pub struct Guarded<R> {
    rule: R,
    cfg: PolicyConfig,
    guard: InputGuard,
}

impl<R: RoundRule> Guarded<R> {
    /// Wrap `rule` with configuration `cfg` (already validated).
    pub fn new(rule: R, cfg: &PolicyConfig) -> Self {
        Self {
            rule,
            cfg: *cfg,
            guard: InputGuard::default(),
        }
    }
}

impl<R: RoundRule> ConvergencePolicy for Guarded<R> {
    fn kind(&self) -> PolicyKind {
        R::KIND
    }

    fn observe(&mut self, obs: &RoundObservation) -> Decision {
        match self.guard.check(obs) {
            Ok(()) => self.rule.decide(obs, &self.cfg),
            Err(_) => fallback_decision(obs, self.cfg.downtime_limit_ms),
        }
    }

    fn reset(&mut self) {
        self.guard.reset();
        self.rule.reset();
    }
}

//! Decision policies, all behind [`ConvergencePolicy`].

mod guarded;
pub mod kubevirt_ramp;
pub mod kubevirt_stall;
pub mod nova;
pub mod observe;
pub mod predictive;
pub mod qemu;
pub mod xen;

use crate::config::{ConfigError, PolicyConfig};
use crate::decision::Decision;
use crate::names::names;
use crate::observation::RoundObservation;

pub use guarded::{Guarded, RoundRule};

/// Bytes in a GiB, the unit several operator policies scale their timeouts by.
pub const GIB_BYTES: f64 = (1u64 << 30) as f64;

/// A stop-and-copy policy fed once per dirty-bitmap sync round.
///
/// Implementations do O(1) work and no heap allocation per round, never
/// panic on any input, and answer garbage with QEMU's own rule.
pub trait ConvergencePolicy: Send {
    /// Which policy this is.
    fn kind(&self) -> PolicyKind;
    /// Observe one round and decide.
    fn observe(&mut self, obs: &RoundObservation) -> Decision;
    /// Forget the migration (cancelled, failed or restarted).
    fn reset(&mut self);
}

/// Every policy the library provides.
///
/// The values are those of the C ABI (`KairosPolicyKind`).
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PolicyKind {
    /// Upstream QEMU 10.0: stop when pending < bandwidth × downtime limit.
    Qemu = 0,
    /// Xen's classic libxc pre-copy termination.
    Xen = 1,
    /// OpenStack Nova's progressive downtime steps and completion timeout.
    Nova = 2,
    /// KubeVirt VEP 248 stall detection with local-minimum switch-over.
    KubevirtStall = 3,
    /// KubeVirt VEP 291 dynamic downtime ramp.
    KubevirtRamp = 4,
    /// Kairos: stop where the expected cost (time plus weighted excess
    /// downtime) is lowest, from the online forecast.
    Predictive = 5,
    /// Observes and forecasts, never asks to stop: the caller's own rule
    /// decides (records the trace the oracle is computed from).
    Observe = 6,
}

names!(PolicyKind, "policy" {
    Qemu => "qemu",
    Xen => "xen",
    Nova => "nova",
    KubevirtStall => "kubevirt-stall",
    KubevirtRamp => "kubevirt-ramp",
    Predictive => "predictive",
    Observe => "observe",
});

impl PolicyKind {
    /// The policies compared by `kairos sim --policy all` (all but observe).
    pub const COMPARED: [PolicyKind; 6] = [
        PolicyKind::Qemu,
        PolicyKind::Xen,
        PolicyKind::Nova,
        PolicyKind::KubevirtStall,
        PolicyKind::KubevirtRamp,
        PolicyKind::Predictive,
    ];
}

/// Build a policy after validating `cfg`. This is the only allocation a
/// policy makes.
pub fn build_policy(
    kind: PolicyKind,
    cfg: &PolicyConfig,
) -> Result<Box<dyn ConvergencePolicy>, ConfigError> {
    cfg.validate()?;
    Ok(match kind {
        PolicyKind::Qemu => Box::new(Guarded::new(qemu::QemuRule, cfg)),
        PolicyKind::Xen => Box::new(Guarded::new(xen::XenRule, cfg)),
        PolicyKind::Nova => Box::new(Guarded::new(nova::NovaRule, cfg)),
        PolicyKind::KubevirtStall => Box::new(Guarded::new(
            kubevirt_stall::KubevirtStallRule::new(cfg),
            cfg,
        )),
        PolicyKind::KubevirtRamp => Box::new(Guarded::new(
            kubevirt_ramp::KubevirtRampRule::default(),
            cfg,
        )),
        PolicyKind::Predictive => Box::new(Guarded::new(predictive::PredictiveRule::new(cfg), cfg)),
        PolicyKind::Observe => Box::new(Guarded::new(observe::ObserveRule::new(cfg), cfg)),
    })
}

/// QEMU's switch-over test: nothing pending, or pending below
/// bandwidth × limit.
pub fn qemu_rule_holds(obs: &RoundObservation, downtime_limit_ms: f64) -> bool {
    obs.pending_bytes == 0 || (obs.pending_bytes as f64) < obs.threshold_bytes(downtime_limit_ms)
}

//! Decision policies, all behind [`ConvergencePolicy`].

mod guarded;
pub mod kubevirt_ramp;
pub mod kubevirt_stall;
pub mod never_stop;
pub mod nova;
pub mod predictive;
pub mod qemu;
pub mod xen;

use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, PolicyConfig};
use crate::decision::Decision;
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PolicyKind {
    /// Upstream QEMU 10.0: stop when pending < bandwidth × downtime limit.
    Qemu,
    /// Xen's classic libxc pre-copy termination.
    Xen,
    /// OpenStack Nova's progressive downtime steps and completion timeout.
    Nova,
    /// KubeVirt VEP 248 stall detection with local-minimum switch-over.
    KubevirtStall,
    /// KubeVirt VEP 291 dynamic downtime ramp.
    KubevirtRamp,
    /// Kairos: forecast-driven convergence-point detection.
    Predictive,
    /// Never stops (records the trace the oracle is computed from).
    NeverStop,
}

impl PolicyKind {
    /// Names accepted by [`PolicyKind::from_name`], in comparison order.
    pub const NAMES: [&'static str; 7] = [
        "qemu",
        "xen",
        "nova",
        "kubevirt-stall",
        "kubevirt-ramp",
        "predictive",
        "never-stop",
    ];

    /// The policies compared by `kairos sim --policy all` (all but never-stop).
    pub const COMPARED: [PolicyKind; 6] = [
        PolicyKind::Qemu,
        PolicyKind::Xen,
        PolicyKind::Nova,
        PolicyKind::KubevirtStall,
        PolicyKind::KubevirtRamp,
        PolicyKind::Predictive,
    ];

    /// Stable name.
    pub fn name(self) -> &'static str {
        match self {
            PolicyKind::Qemu => "qemu",
            PolicyKind::Xen => "xen",
            PolicyKind::Nova => "nova",
            PolicyKind::KubevirtStall => "kubevirt-stall",
            PolicyKind::KubevirtRamp => "kubevirt-ramp",
            PolicyKind::Predictive => "predictive",
            PolicyKind::NeverStop => "never-stop",
        }
    }

    /// Parse a policy name.
    pub fn from_name(name: &str) -> Result<Self, ConfigError> {
        match name {
            "qemu" => Ok(PolicyKind::Qemu),
            "xen" => Ok(PolicyKind::Xen),
            "nova" => Ok(PolicyKind::Nova),
            "kubevirt-stall" => Ok(PolicyKind::KubevirtStall),
            "kubevirt-ramp" => Ok(PolicyKind::KubevirtRamp),
            "predictive" => Ok(PolicyKind::Predictive),
            "never-stop" => Ok(PolicyKind::NeverStop),
            other => Err(ConfigError::UnknownPolicy(other.to_string())),
        }
    }
}

impl std::str::FromStr for PolicyKind {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_name(s)
    }
}

impl std::fmt::Display for PolicyKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
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
        PolicyKind::NeverStop => Box::new(Guarded::new(never_stop::NeverStopRule, cfg)),
    })
}

/// QEMU's switch-over test: nothing pending, or pending below
/// bandwidth × limit.
pub fn qemu_rule_holds(obs: &RoundObservation, downtime_limit_ms: f64) -> bool {
    obs.pending_bytes == 0 || (obs.pending_bytes as f64) < obs.threshold_bytes(downtime_limit_ms)
}

//! What a named policy means for a live migration: which QEMU parameters
//! and capabilities it sets, and whether the test-bed itself drives the
//! migration as a management layer would.
//!
//! The names are the comparison's ([`PolicySpec`]), plus `postcopy-after`,
//! which only a live migration can run. Management-layer policies
//! (KubeVirt's ramp and stall detector, Nova's downtime steps) run here, in
//! the test-bed, as their real counterparts do: they read every sync from
//! the patched QEMU and act through QMP (`downtime-limit`,
//! `migrate_cancel`). QEMU itself offers only `off`, `observe` and
//! `predictive`.

use std::fmt;
use std::str::FromStr;

use kairos_eval::baseline::{PolicySpec, SpecError};
use kairos_policy_core::{Escalation, PolicyKind};
use thiserror::Error;

/// Sync rounds after which `postcopy-after` switches to post-copy.
pub const POSTCOPY_AFTER_ROUNDS: u64 = 5;

/// A live policy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LiveSpec {
    /// QEMU's own rule, at the comparison's downtime-limit or at a static
    /// limit of its own (`qemu@MS`).
    Qemu(Option<u64>),
    /// QEMU's rule with the auto-converge capability (and, when true,
    /// `cpu-throttle-tailslow`).
    AutoConverge(bool),
    /// Post-copy after [`POSTCOPY_AFTER_ROUNDS`] rounds, as operators
    /// configure it.
    PostcopyAfter,
    /// Kairos inside the patched QEMU, at the comparison's downtime weight
    /// or at one of its own (`predictive@w=N`).
    Predictive(Option<f64>),
    /// A management-layer policy of the library, run by the test-bed.
    Controller(PolicyKind),
    /// QEMU's rule at a 1 ms limit, recording every sync: the never-stop
    /// migration the oracle is computed from.
    Observe,
}

/// A live policy name that cannot be run.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum LiveSpecError {
    /// Not a name at all.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// A policy that cannot be measured live here.
    #[error("{name}: {why}")]
    NotLive {
        /// The name.
        name: String,
        /// Why.
        why: &'static str,
    },
}

impl FromStr for LiveSpec {
    type Err = LiveSpecError;
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        let not_live = |why| LiveSpecError::NotLive {
            name: name.to_string(),
            why,
        };
        match name {
            "postcopy-after" => return Ok(LiveSpec::PostcopyAfter),
            "dirty-limit" => {
                return Err(not_live(
                    "needs KVM's dirty ring, which this test-bed (TCG) cannot measure",
                ))
            }
            _ => {}
        }
        Ok(match name.parse::<PolicySpec>()? {
            PolicySpec::Library(PolicyKind::Qemu) => LiveSpec::Qemu(None),
            PolicySpec::QemuAt(limit_ms) => LiveSpec::Qemu(Some(limit_ms)),
            PolicySpec::AutoConverge => LiveSpec::AutoConverge(false),
            PolicySpec::AutoConvergeTailslow => LiveSpec::AutoConverge(true),
            PolicySpec::Library(PolicyKind::Predictive) => LiveSpec::Predictive(None),
            PolicySpec::PredictiveWeighted(weight) => LiveSpec::Predictive(Some(weight)),
            PolicySpec::Library(PolicyKind::Observe) => LiveSpec::Observe,
            PolicySpec::Library(
                kind @ (PolicyKind::KubevirtRamp | PolicyKind::KubevirtStall | PolicyKind::Nova),
            ) => LiveSpec::Controller(kind),
            PolicySpec::Library(PolicyKind::Xen) => return Err(not_live(
                "Xen's libxc termination rule has no QEMU counterpart to drive; simulation only",
            )),
        })
    }
}

impl fmt::Display for LiveSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LiveSpec::Qemu(None) => f.write_str("qemu"),
            LiveSpec::Qemu(Some(limit_ms)) => write!(f, "qemu@{limit_ms}"),
            LiveSpec::AutoConverge(false) => f.write_str("auto-converge"),
            LiveSpec::AutoConverge(true) => f.write_str("auto-converge-tailslow"),
            LiveSpec::PostcopyAfter => f.write_str("postcopy-after"),
            LiveSpec::Predictive(None) => f.write_str("predictive"),
            LiveSpec::Predictive(Some(weight)) => write!(f, "predictive@w={weight}"),
            LiveSpec::Controller(kind) => f.write_str(kind.name()),
            LiveSpec::Observe => f.write_str("observe"),
        }
    }
}

impl LiveSpec {
    /// The names `run` and `compare` accept, besides `qemu@MS` and
    /// `predictive@w=N`.
    pub const NAMES: [&'static str; 9] = [
        "qemu",
        "auto-converge",
        "auto-converge-tailslow",
        "postcopy-after",
        "predictive",
        "kubevirt-ramp",
        "kubevirt-stall",
        "nova",
        "observe",
    ];

    /// Capabilities to enable on both sides; `predictive` whose escalation
    /// may switch to post-copy needs `postcopy-ram`.
    pub fn capabilities(self, escalation: Escalation) -> &'static [&'static str] {
        match self {
            LiveSpec::AutoConverge(_) => &["auto-converge"],
            LiveSpec::PostcopyAfter => &["postcopy-ram"],
            LiveSpec::Predictive(_)
                if matches!(escalation, Escalation::Postcopy | Escalation::Auto) =>
            {
                &["postcopy-ram"]
            }
            _ => &[],
        }
    }

    /// The `x-convergence-policy` QEMU runs with: `predictive` for Kairos,
    /// otherwise `observe` (it records every sync and never decides; QEMU's
    /// rule is applied first), or nothing on an unpatched QEMU.
    pub fn qemu_policy(self, patched_qemu: bool) -> Option<&'static str> {
        match (self, patched_qemu) {
            (LiveSpec::Predictive(_), _) => Some("predictive"),
            (_, true) => Some("observe"),
            (_, false) => None,
        }
    }

    /// True when it needs the patched QEMU.
    pub fn needs_patched_qemu(self) -> bool {
        matches!(
            self,
            LiveSpec::Predictive(_) | LiveSpec::Controller(_) | LiveSpec::Observe
        )
    }

    /// The downtime-limit QEMU starts with, ms, given the comparison's.
    pub fn downtime_limit_ms(self, comparison_ms: u64) -> u64 {
        match self {
            LiveSpec::Qemu(Some(limit_ms)) => limit_ms,
            // QEMU syncs when what is left falls below bandwidth ×
            // downtime-limit: at 1 ms, once a round has (nearly) drained;
            // at 0 it would never sync again.
            LiveSpec::Observe => 1,
            _ => comparison_ms,
        }
    }

    /// The downtime weight `predictive` runs with, given the comparison's.
    pub fn downtime_weight(self, comparison: f64) -> f64 {
        match self {
            LiveSpec::Predictive(Some(weight)) => weight,
            _ => comparison,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for name in LiveSpec::NAMES
            .iter()
            .copied()
            .chain(["qemu@1000", "predictive@w=30"])
        {
            let spec: LiveSpec = name.parse().unwrap();
            assert_eq!(spec.to_string(), name);
        }
    }

    #[test]
    fn what_cannot_run_live_says_why() {
        let err = "xen".parse::<LiveSpec>().unwrap_err().to_string();
        assert!(err.contains("simulation only"), "{err}");
        let err = "dirty-limit".parse::<LiveSpec>().unwrap_err().to_string();
        assert!(err.contains("dirty ring"), "{err}");
        assert!("bogus".parse::<LiveSpec>().is_err());
    }

    #[test]
    fn qemu_runs_its_own_rule_and_records() {
        let q: LiveSpec = "qemu@1000".parse().unwrap();
        assert_eq!(q.downtime_limit_ms(300), 1000);
        assert_eq!(q.qemu_policy(true), Some("observe"));
        assert_eq!(q.qemu_policy(false), None);
        let p: LiveSpec = "predictive@w=3".parse().unwrap();
        assert_eq!(p.qemu_policy(false), Some("predictive"));
        assert!(p.needs_patched_qemu());
        assert_eq!(p.downtime_weight(10.0), 3.0);
        assert_eq!(LiveSpec::Observe.downtime_limit_ms(300), 1);
    }
}

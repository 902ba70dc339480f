//! The policies a live run can use: QEMU's own mechanisms and the Kairos
//! library's, each a named configuration of the patched QEMU.

use anyhow::{bail, Result};
use serde_json::{json, Value};

/// Sync rounds after which `postcopy-after` switches to post-copy.
pub const POSTCOPY_AFTER_ROUNDS: u64 = 5;

/// A named migration configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LivePolicy {
    /// Upstream QEMU's rule only (convergence policy off).
    Qemu,
    /// Upstream auto-converge throttling.
    AutoConverge,
    /// Post-copy after a few pre-copy rounds, as operators configure it.
    PostcopyAfter,
    /// A policy of the Kairos library inside the patched QEMU.
    Library(&'static str),
}

impl LivePolicy {
    /// Every name `kairos run --policy` accepts (`never-stop` records the
    /// oracle's trace: it continues until the timeout).
    pub const NAMES: [&'static str; 9] = [
        "qemu",
        "auto-converge",
        "postcopy-after",
        "xen",
        "nova",
        "kubevirt-stall",
        "kubevirt-ramp",
        "predictive",
        "never-stop",
    ];

    /// Parse a name.
    pub fn from_name(name: &str) -> Result<Self> {
        Ok(match name {
            "qemu" => Self::Qemu,
            "auto-converge" => Self::AutoConverge,
            "postcopy-after" => Self::PostcopyAfter,
            "xen" => Self::Library("xen"),
            "nova" => Self::Library("nova"),
            "kubevirt-stall" => Self::Library("kubevirt-stall"),
            "kubevirt-ramp" => Self::Library("kubevirt-ramp"),
            "predictive" => Self::Library("predictive"),
            "never-stop" => Self::Library("never-stop"),
            "dirty-limit" => bail!(
                "dirty-limit needs KVM's dirty ring, which this test-bed (TCG) cannot measure"
            ),
            other => bail!(
                "unknown live policy '{other}' (known: {})",
                Self::NAMES.join(", ")
            ),
        })
    }

    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Qemu => "qemu",
            Self::AutoConverge => "auto-converge",
            Self::PostcopyAfter => "postcopy-after",
            Self::Library(name) => name,
        }
    }

    /// Capabilities to enable on both sides.
    pub fn capabilities(self) -> Vec<&'static str> {
        match self {
            Self::AutoConverge => vec!["auto-converge"],
            Self::PostcopyAfter => vec!["postcopy-ram"],
            _ => vec![],
        }
    }

    /// The x-convergence-policy value. QEMU's own mechanisms run, on the
    /// patched QEMU, with the library's `never-stop` policy as a recorder:
    /// it always answers continue and QEMU's rule is applied before any
    /// decision, so it changes nothing but gives every run a per-round
    /// trace. On the vanilla QEMU: `off`.
    pub fn convergence_policy(self, patched_qemu: bool) -> &'static str {
        match (self, patched_qemu) {
            (Self::Library(name), _) => name,
            (_, true) => "never-stop",
            (_, false) => "off",
        }
    }

    /// migrate-set-capabilities arguments.
    pub fn capabilities_arg(self) -> Option<Value> {
        let caps = self.capabilities();
        (!caps.is_empty()).then(|| {
            json!({ "capabilities": caps.iter().map(|c| json!({"capability": c, "state": true})).collect::<Vec<_>>() })
        })
    }
}

//! Command-line options shared by the subcommands: policy selection and the
//! policy configuration.

use anyhow::{bail, Result};
use clap::Args;
use kairos_policy_core::{NonConvergenceAction, PolicyConfig, PolicyKind};

/// Which policies to run and how they are configured.
#[derive(Debug, Args)]
pub struct PolicyArgs {
    /// Policy name, a comma-separated list, or `all`.
    #[arg(long, default_value = "all")]
    pub policy: String,
    /// Downtime limit given to QEMU, ms.
    #[arg(long, default_value_t = 300.0)]
    pub downtime_limit_ms: f64,
    /// Hard maximum downtime the user accepts, ms.
    #[arg(long, default_value_t = kairos_policy_core::config::DEFAULT_MAX_DOWNTIME_MS)]
    pub max_downtime_ms: f64,
    /// What `predictive` does once it forecasts non-convergence:
    /// escalate, stop-best-effort or keep-going.
    #[arg(long, default_value = "escalate")]
    pub on_non_convergence: String,
}

impl PolicyArgs {
    /// The selected policies, in comparison order.
    pub fn kinds(&self) -> Result<Vec<PolicyKind>> {
        if self.policy == "all" {
            return Ok(PolicyKind::COMPARED.to_vec());
        }
        let mut kinds = Vec::new();
        for name in self
            .policy
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            kinds.push(PolicyKind::from_name(name)?);
        }
        if kinds.is_empty() {
            bail!("--policy names no policy");
        }
        Ok(kinds)
    }

    /// The validated policy configuration.
    pub fn config(&self) -> Result<PolicyConfig> {
        let cfg = PolicyConfig {
            downtime_limit_ms: self.downtime_limit_ms,
            max_downtime_ms: self.max_downtime_ms,
            non_convergence_action: self.on_non_convergence.parse::<NonConvergenceAction>()?,
            ..PolicyConfig::default()
        };
        cfg.validate()?;
        Ok(cfg)
    }
}

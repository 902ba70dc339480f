//! Command-line options shared by `sim` and `replay`: which policies, and
//! the objective and configuration they run under.

use crate::cmd::usage::OrUsage;
use anyhow::Result;
use std::str::FromStr;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::Args;
use kairos_eval::baseline::{parse_list, PolicySpec};
use kairos_policy_core::config::{
    DEFAULT_DOWNTIME_LIMIT_MS, DEFAULT_DOWNTIME_WEIGHT, DEFAULT_MAX_DOWNTIME_MS,
};
use kairos_policy_core::{Escalation, NonConvergenceAction, PolicyConfig};

/// A parser for a closed set of the policy core: its names are the
/// possible values `--help` lists, and anything else is a usage error.
pub fn names_parser<T>(
    all: &'static [T],
    name: fn(T) -> &'static str,
) -> impl TypedValueParser<Value = T>
where
    T: Copy + FromStr + Send + Sync + 'static,
    T::Err: std::error::Error + Send + Sync + 'static,
{
    PossibleValuesParser::new(all.iter().map(|member| name(*member)))
        .try_map(|text| text.parse::<T>())
}

/// Parse one `--policy` list: checked when the command line is read, so a
/// bad name is a usage error (exit 2) naming the known ones.
fn policy_list(text: &str) -> Result<String, String> {
    parse_list(text, DEFAULT_MAX_DOWNTIME_MS)
        .map(|_| text.to_string())
        .map_err(|e| e.to_string())
}

/// Which policies to run and how they are configured.
#[derive(Debug, Args)]
pub struct PolicyArgs {
    /// Policies, comma-separated, or `all`: qemu, qemu@MS (QEMU's rule at a
    /// static downtime-limit of MS), auto-converge, xen, nova,
    /// kubevirt-stall, kubevirt-ramp, predictive, observe. `all` is qemu,
    /// `qemu@<max-downtime-ms>`, auto-converge and the library's policies.
    #[arg(long, default_value = "all", value_name = "NAME[,NAME...]", value_parser = policy_list)]
    pub policy: String,
    /// QEMU's downtime-limit (L), ms.
    #[arg(long, default_value_t = DEFAULT_DOWNTIME_LIMIT_MS, value_name = "MS")]
    pub downtime_limit_ms: f64,
    /// Hard maximum downtime the user accepts (M), ms: no policy of the
    /// library stops above it.
    #[arg(long, default_value_t = DEFAULT_MAX_DOWNTIME_MS, value_name = "MS")]
    pub max_downtime_ms: f64,
    /// Downtime weight λ: seconds of migration time one second of downtime
    /// beyond the limit is worth. A stop costs T + λ·max(0, D − L).
    #[arg(long, default_value_t = DEFAULT_DOWNTIME_WEIGHT, value_name = "λ")]
    pub downtime_weight: f64,
    /// What `predictive` does once it forecasts that nothing will fit the
    /// maximum downtime.
    #[arg(
        long,
        default_value = "escalate",
        value_parser = names_parser(NonConvergenceAction::ALL, NonConvergenceAction::name),
    )]
    pub on_non_convergence: NonConvergenceAction,
    /// What escalation may do once nothing fits the maximum: throttle the
    /// guest by the share the forecast sizes, switch to post-copy (not
    /// simulated), whichever of the two costs the guest less, or cap its
    /// dirty rate at what that throttle would leave (dirty-limit: only
    /// writing phases are slowed).
    #[arg(
        long,
        default_value = "none",
        value_parser = names_parser(Escalation::ALL, Escalation::name),
    )]
    pub escalation: Escalation,
}

impl PolicyArgs {
    /// The selected policies, in comparison order.
    pub fn specs(&self) -> Result<Vec<PolicySpec>> {
        Ok(parse_list(&self.policy, self.max_downtime_ms)?)
    }

    /// The validated policy configuration.
    pub fn config(&self) -> Result<PolicyConfig> {
        let cfg = PolicyConfig {
            downtime_limit_ms: self.downtime_limit_ms,
            max_downtime_ms: self.max_downtime_ms,
            downtime_weight: self.downtime_weight,
            non_convergence_action: self.on_non_convergence,
            escalation: self.escalation,
            ..PolicyConfig::default()
        };
        cfg.validate().or_usage()?;
        Ok(cfg)
    }
}

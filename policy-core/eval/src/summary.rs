//! One line of a comparison — a policy's migration next to the oracle's
//! choice — in the vocabulary every `kairos` command uses (`sim`, `replay`,
//! `run`, `compare`; mapped to QEMU's and virsh's names in
//! `docs/results-format.md`).

use kairos_policy_core::cost::Objective;
use kairos_policy_core::{ConfigError, PolicyConfig, PolicyKind};
use serde::{Deserialize, Serialize};

use crate::baseline::PolicySpec;
use crate::oracle::{oracle_choice, regret, OracleChoice, StopCost};
pub use crate::outcome::MigrationStatus;
use crate::outcome::Outcome;
use crate::replay::{replay, stop_cost};
use crate::sim::workload::Workload;
use crate::sim::{simulate, SimConfig, SyncModel};
use crate::trace::TraceRow;

/// A policy's migration of one workload (or trace), its cost under the
/// comparison's objective, and the oracle's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// Workload or trace name.
    pub workload: String,
    /// Policy name (`qemu@1000` for QEMU's rule at a static limit).
    pub policy: String,
    /// How it ended.
    pub status: MigrationStatus,
    /// Reason of the last decision.
    pub reason: String,
    /// Sync rounds seen (QEMU's `dirty-sync-count`).
    pub rounds: u64,
    /// Total migration time, ms (QEMU's `total-time`).
    pub total_time_ms: f64,
    /// Downtime, ms (QEMU's `downtime`; null unless completed).
    pub downtime_ms: Option<f64>,
    /// Bytes sent in all (QEMU's `ram.transferred`).
    pub transferred_bytes: u64,
    /// Escalations asked for.
    pub escalations: u32,
    /// Guest work lost to throttling (or a dirty-rate limit) during the migration, %.
    pub app_loss_pct: f64,
    /// λ of the objective the costs are under.
    pub downtime_weight: f64,
    /// Cost of the stop, ms: T + λ·max(0, D − L); null unless it
    /// completed within the maximum ([`Outcome`]: a stop above it failed).
    pub cost_ms: Option<f64>,
    /// False when the downtime exceeded the maximum (the stop was not
    /// allowed: the run failed).
    pub within_max: Option<bool>,
    /// The oracle's stop under the same objective.
    pub oracle: Option<OracleChoice>,
    /// Cost over the oracle's (1 = hindsight-optimal).
    pub regret: Option<f64>,
    /// When the simulator synced (`None`: not a simulation, or one made
    /// before the simulator had a choice, which synced after full passes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_model: Option<SyncModel>,
}

impl RunSummary {
    /// True when stop-and-copy happened.
    pub fn completed(&self) -> bool {
        self.status == MigrationStatus::Completed
    }
}

/// Fill in the cost, the oracle and the regret of a finished run.
fn weigh(
    mut summary: RunSummary,
    objective: &Objective,
    oracle: Option<OracleChoice>,
) -> RunSummary {
    summary.downtime_weight = objective.downtime_weight;
    // A stop above the maximum is a failure: no cost (never summed as a
    // success), flagged by within_max.
    let outcome = Outcome::of(
        summary.status,
        Some(summary.total_time_ms),
        summary.downtime_ms,
        objective,
    );
    summary.cost_ms = outcome.cost_ms();
    if let (true, Some(downtime)) = (summary.completed(), summary.downtime_ms) {
        summary.within_max = Some(objective.allows(downtime));
    }
    summary.oracle = oracle;
    summary.regret = regret(summary.cost_ms, oracle.as_ref());
    summary
}

/// Simulate `workload` under each policy, and, in the full-pass model, the
/// oracle from a never-stop run of the same seed (it ends at the first
/// round meeting the limit: nothing later can cost less).
pub fn simulate_workload(
    workload: &Workload,
    specs: &[PolicySpec],
    policy_cfg: &PolicyConfig,
    sim_cfg: &SimConfig,
) -> Result<Vec<RunSummary>, ConfigError> {
    let objective = Objective::from_config(policy_cfg);
    // Where QEMU syncs mid-pass a policy can stop where the never-stop run
    // never synced: its best stop is no bound there, so none is computed.
    let oracle = match sim_cfg.sync_model {
        SyncModel::FullPass => {
            let mut observer = PolicySpec::Library(PolicyKind::Observe).build(policy_cfg)?;
            let oracle_run = simulate(
                workload,
                observer.as_mut(),
                sim_cfg,
                Some(policy_cfg.downtime_limit_ms),
            );
            let costs: Vec<StopCost> = oracle_run.rounds.iter().map(|r| r.stop_cost).collect();
            oracle_choice(&costs, &objective)
        }
        SyncModel::Threshold => None,
    };
    let mut out = Vec::with_capacity(specs.len());
    for &spec in specs {
        let mut policy = spec.build(policy_cfg)?;
        let run = simulate(workload, policy.as_mut(), sim_cfg, None);
        let summary = RunSummary {
            workload: workload.name.clone(),
            policy: spec.to_string(),
            status: run.status,
            reason: run.reason.name().to_string(),
            rounds: run.rounds.len() as u64,
            total_time_ms: run.total_time_ms,
            downtime_ms: run.downtime_ms,
            transferred_bytes: run.transferred_bytes,
            escalations: run.escalations,
            app_loss_pct: run.app_loss_pct,
            downtime_weight: 0.0,
            cost_ms: None,
            within_max: None,
            oracle: None,
            regret: None,
            sync_model: Some(sim_cfg.sync_model),
        };
        out.push(weigh(summary, &objective, oracle));
    }
    Ok(out)
}

/// Replay a trace under each policy; the oracle is computed on the trace.
pub fn replay_trace(
    name: &str,
    rows: &[TraceRow],
    specs: &[PolicySpec],
    policy_cfg: &PolicyConfig,
) -> Result<Vec<RunSummary>, ConfigError> {
    let objective = Objective::from_config(policy_cfg);
    let costs: Vec<StopCost> = rows.iter().map(stop_cost).collect();
    let oracle = oracle_choice(&costs, &objective);
    let mut out = Vec::with_capacity(specs.len());
    for &spec in specs {
        let mut policy = spec.build(policy_cfg)?;
        let run = replay(rows, policy.as_mut());
        let status = match (run.stop, run.aborted) {
            (Some(_), _) => MigrationStatus::Completed,
            (None, true) => MigrationStatus::Aborted,
            (None, false) => MigrationStatus::TimedOut,
        };
        let summary = RunSummary {
            workload: name.to_string(),
            policy: spec.to_string(),
            status,
            reason: run.reason.name().to_string(),
            rounds: run.rounds,
            total_time_ms: run.stop.map_or(run.last_time_ms, |s| s.total_time_ms),
            downtime_ms: run.stop.map(|s| s.downtime_ms),
            transferred_bytes: run.transferred_bytes,
            escalations: run.escalations,
            app_loss_pct: 0.0,
            downtime_weight: 0.0,
            cost_ms: None,
            within_max: None,
            oracle: None,
            regret: None,
            sync_model: None,
        };
        out.push(weigh(summary, &objective, oracle));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn statuses_round_trip_and_map_qemus() {
        for s in MigrationStatus::ALL {
            assert_eq!(s.name().parse::<MigrationStatus>().unwrap(), s);
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{s}\""));
        }
        assert_eq!(
            MigrationStatus::from_qemu("completed"),
            Some(MigrationStatus::Completed)
        );
        assert_eq!(MigrationStatus::from_qemu("active"), None);
    }

    #[test]
    fn every_completed_run_is_weighed_against_the_oracle() {
        let w = Workload::from_toml(
            "name='w'\nram_mib=512\n[[phase]]\nkind='write'\nseconds=600\nwss_mib=64\nrate_mib_s=200\n",
            Path::new("w.toml"),
        )
        .unwrap();
        let specs = crate::baseline::parse_list("all", 1000.0).unwrap();
        let cfg = PolicyConfig::default();
        let sim_cfg = SimConfig {
            time_cap_s: 60.0,
            ..SimConfig::default()
        };
        let rows = simulate_workload(&w, &specs, &cfg, &sim_cfg).unwrap();
        assert_eq!(rows.len(), specs.len());
        for r in rows.iter().filter(|r| r.completed()) {
            let cost = r.cost_ms.unwrap();
            let oracle = r.oracle.unwrap();
            assert_eq!(r.downtime_weight, cfg.downtime_weight);
            // Without escalation every policy sees the oracle's rounds: its
            // allowed stop cannot beat the oracle.
            if r.escalations == 0 && r.within_max == Some(true) {
                assert!(cost >= oracle.cost_ms - 1e-6, "{r:?}");
                assert!(r.regret.unwrap() >= 1.0 - 1e-9);
            }
        }
    }
}

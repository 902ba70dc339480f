//! One line of a comparison: a policy's run next to the oracle's choice.

use serde::Serialize;

use crate::config::{ConfigError, PolicyConfig};
use crate::oracle::{oracle_choice, OracleChoice, StopCost};
use crate::policies::{build_policy, PolicyKind};
use crate::replay::{replay, stop_cost};
use crate::sim::workload::Workload;
use crate::sim::{simulate, Outcome, SimConfig};
use crate::trace::TraceRow;

/// A policy's migration of one workload (or trace), with the oracle's.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    /// Workload or trace name.
    pub workload: String,
    /// Policy name.
    pub policy: String,
    /// True when stop-and-copy happened.
    pub converged: bool,
    /// How it ended: converged, aborted or timed-out.
    pub outcome: Outcome,
    /// Reason of the last decision.
    pub reason: String,
    /// Sync rounds seen.
    pub rounds: u64,
    /// Total migration time, ms.
    pub total_time_ms: f64,
    /// Downtime, ms (null when it did not converge).
    pub downtime_ms: Option<f64>,
    /// Bytes sent.
    pub sent_bytes: u64,
    /// Escalations asked for.
    pub escalations: u32,
    /// Guest work lost to throttling during the migration, % (simulation).
    pub app_throughput_loss_pct: f64,
    /// The oracle's round.
    pub oracle_round: Option<u64>,
    /// The oracle's total time, ms.
    pub oracle_total_time_ms: Option<f64>,
    /// The oracle's downtime, ms.
    pub oracle_downtime_ms: Option<f64>,
    /// True when the oracle's downtime meets the limit.
    pub oracle_meets_limit: Option<bool>,
    /// Total time over the oracle's, as a ratio (null when not converged).
    pub time_vs_oracle: Option<f64>,
}

fn oracle_fields(summary: &mut RunSummary, oracle: Option<OracleChoice>) {
    summary.oracle_round = oracle.map(|o| o.stop.round);
    summary.oracle_total_time_ms = oracle.map(|o| o.stop.total_time_ms);
    summary.oracle_downtime_ms = oracle.map(|o| o.stop.downtime_ms);
    summary.oracle_meets_limit = oracle.map(|o| o.meets_limit);
    summary.time_vs_oracle = match (summary.converged, oracle) {
        (true, Some(o)) if o.stop.total_time_ms > 0.0 => {
            Some(summary.total_time_ms / o.stop.total_time_ms)
        }
        _ => None,
    };
}

/// Simulate `workload` under each policy, and the oracle from a never-stop
/// run of the same seed.
pub fn simulate_workload(
    workload: &Workload,
    kinds: &[PolicyKind],
    policy_cfg: &PolicyConfig,
    sim_cfg: &SimConfig,
) -> Result<Vec<RunSummary>, ConfigError> {
    let mut never = build_policy(PolicyKind::NeverStop, policy_cfg)?;
    let oracle_run = simulate(
        workload,
        never.as_mut(),
        sim_cfg,
        Some(policy_cfg.downtime_limit_ms),
    );
    let costs: Vec<StopCost> = oracle_run.rounds.iter().map(|r| r.stop_cost).collect();
    let oracle = oracle_choice(&costs, policy_cfg.downtime_limit_ms);
    let mut out = Vec::with_capacity(kinds.len());
    for &kind in kinds {
        let mut policy = build_policy(kind, policy_cfg)?;
        let run = simulate(workload, policy.as_mut(), sim_cfg, None);
        let mut summary = RunSummary {
            workload: workload.name.clone(),
            policy: kind.name().to_string(),
            converged: run.outcome == Outcome::Converged,
            outcome: run.outcome,
            reason: run.reason.as_str().to_string(),
            rounds: run.rounds.len() as u64,
            total_time_ms: run.total_time_ms,
            downtime_ms: run.downtime_ms,
            sent_bytes: run.sent_bytes,
            escalations: run.escalations,
            app_throughput_loss_pct: run.app_throughput_loss_pct,
            oracle_round: None,
            oracle_total_time_ms: None,
            oracle_downtime_ms: None,
            oracle_meets_limit: None,
            time_vs_oracle: None,
        };
        oracle_fields(&mut summary, oracle);
        out.push(summary);
    }
    Ok(out)
}

/// Replay a trace under each policy; the oracle is computed on the trace.
pub fn replay_trace(
    name: &str,
    rows: &[TraceRow],
    kinds: &[PolicyKind],
    policy_cfg: &PolicyConfig,
) -> Result<Vec<RunSummary>, ConfigError> {
    let costs: Vec<StopCost> = rows.iter().map(stop_cost).collect();
    let oracle = oracle_choice(&costs, policy_cfg.downtime_limit_ms);
    let mut out = Vec::with_capacity(kinds.len());
    for &kind in kinds {
        let mut policy = build_policy(kind, policy_cfg)?;
        let run = replay(rows, policy.as_mut());
        let outcome = match (run.stop, run.aborted) {
            (Some(_), _) => Outcome::Converged,
            (None, true) => Outcome::Aborted,
            (None, false) => Outcome::TimedOut,
        };
        let mut summary = RunSummary {
            workload: name.to_string(),
            policy: kind.name().to_string(),
            converged: run.stop.is_some(),
            outcome,
            reason: run.reason.as_str().to_string(),
            rounds: run.rounds,
            total_time_ms: run.stop.map_or(run.last_time_ms, |s| s.total_time_ms),
            downtime_ms: run.stop.map(|s| s.downtime_ms),
            sent_bytes: run.sent_bytes,
            escalations: run.escalations,
            app_throughput_loss_pct: 0.0,
            oracle_round: None,
            oracle_total_time_ms: None,
            oracle_downtime_ms: None,
            oracle_meets_limit: None,
            time_vs_oracle: None,
        };
        oracle_fields(&mut summary, oracle);
        out.push(summary);
    }
    Ok(out)
}

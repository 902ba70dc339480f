//! Trace replay: a recorded per-round trace fed round by round to a policy.
//! Stopping at round i costs downtime pending_i / bandwidth_i and total time
//! time_i + that downtime.

use crate::oracle::StopCost;
use crate::outcome::acted_on;
use crate::trace::TraceRow;
use kairos_policy_core::decision::{Action, Reason};
use kairos_policy_core::policies::ConvergencePolicy;

/// How a replayed migration ended.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReplayRun {
    /// Rounds fed to the policy.
    pub rounds: u64,
    /// The stop, if the policy stopped within the trace.
    pub stop: Option<StopCost>,
    /// True when the policy aborted.
    pub aborted: bool,
    /// Reason of the last decision.
    pub reason: Reason,
    /// Bytes sent, including the final copy when it stopped.
    pub transferred_bytes: u64,
    /// Escalations asked for (a trace cannot act on them: they count as
    /// continue).
    pub escalations: u32,
    /// Time of the last round fed, ms.
    pub last_time_ms: f64,
}

/// What stopping at `row` costs.
pub fn stop_cost(row: &TraceRow) -> StopCost {
    let o = &row.observation;
    let downtime_ms = if o.bandwidth_bytes_per_s > 0.0 && o.bandwidth_bytes_per_s.is_finite() {
        o.pending_bytes as f64 / o.bandwidth_bytes_per_s * 1000.0
    } else {
        f64::INFINITY
    };
    StopCost {
        round: o.round,
        total_time_ms: o.elapsed_ms as f64 + downtime_ms,
        downtime_ms,
    }
}

/// Feed `rows` to `policy` until it stops or aborts, or the trace ends.
pub fn replay(rows: &[TraceRow], policy: &mut dyn ConvergencePolicy) -> ReplayRun {
    let mut run = ReplayRun {
        rounds: 0,
        stop: None,
        aborted: false,
        reason: Reason::Warmup,
        transferred_bytes: 0,
        escalations: 0,
        last_time_ms: 0.0,
    };
    for row in rows {
        let decision = policy.observe(&row.observation);
        run.rounds += 1;
        run.reason = decision.reason;
        run.transferred_bytes = row.observation.sent_bytes;
        run.last_time_ms = row.observation.elapsed_ms as f64;
        match acted_on(&decision, &row.observation) {
            Action::StopAndCopy => {
                run.stop = Some(stop_cost(row));
                run.transferred_bytes = row
                    .observation
                    .sent_bytes
                    .saturating_add(row.observation.pending_bytes);
                break;
            }
            Action::Abort => {
                run.aborted = true;
                break;
            }
            Action::Escalate => run.escalations += 1,
            Action::Continue | Action::Fallback => {}
        }
    }
    run
}

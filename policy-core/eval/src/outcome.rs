//! How a run ended and how every page counts it, and what the migration
//! does with a decision: the leaf the simulator, replay, forecast quality,
//! the live test-bed and the reports share (it imports none of them).
//!
//! A run *succeeds* only when it stopped and its downtime fitted the
//! maximum M the user accepts: a stop above M is a failure however short
//! the migration was, as is a run that never stopped. Only a success has a
//! cost; a failure is charged a stated cap when a sum needs a number.

use kairos_policy_core::cost::Objective;
use kairos_policy_core::decision::{Action, Decision};
use kairos_policy_core::names::UnknownName;
use kairos_policy_core::observation::RoundObservation;
use kairos_policy_core::policies::qemu_rule_holds;
use serde::{Deserialize, Serialize};

/// How a migration ended (QEMU's `status` where it has one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MigrationStatus {
    /// Stop-and-copy happened and the destination runs.
    Completed,
    /// The policy aborted the migration.
    Aborted,
    /// The time cap (`--timeout-s`, `--time-cap-s`) was reached first.
    TimedOut,
    /// QEMU reported the migration failed.
    Failed,
    /// The migration was cancelled.
    Cancelled,
    /// It completed, but the guest found pages that were wrong.
    MemoryCorrupted,
}

impl MigrationStatus {
    /// Every status, in declaration order.
    pub const ALL: [MigrationStatus; 6] = [
        MigrationStatus::Completed,
        MigrationStatus::Aborted,
        MigrationStatus::TimedOut,
        MigrationStatus::Failed,
        MigrationStatus::Cancelled,
        MigrationStatus::MemoryCorrupted,
    ];

    /// Its name, as in JSON and tables.
    pub fn name(self) -> &'static str {
        match self {
            MigrationStatus::Completed => "completed",
            MigrationStatus::Aborted => "aborted",
            MigrationStatus::TimedOut => "timed-out",
            MigrationStatus::Failed => "failed",
            MigrationStatus::Cancelled => "cancelled",
            MigrationStatus::MemoryCorrupted => "memory-corrupted",
        }
    }

    /// The status a QEMU `query-migrate` status string maps to, if it is
    /// final.
    pub fn from_qemu(status: &str) -> Option<Self> {
        match status {
            "completed" => Some(MigrationStatus::Completed),
            "failed" => Some(MigrationStatus::Failed),
            "cancelled" => Some(MigrationStatus::Cancelled),
            _ => None,
        }
    }
}

impl std::fmt::Display for MigrationStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for MigrationStatus {
    type Err = UnknownName;
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|s| s.name() == name)
            .ok_or_else(|| UnknownName {
                set: "status",
                name: name.to_string(),
                known: Self::ALL.map(Self::name).join(", "),
            })
    }
}

/// What the migration does with a decision: its action, except that a
/// fallback (the policy could not judge the round) is QEMU's own rule at
/// the decision's limit.
pub fn acted_on(decision: &Decision, obs: &RoundObservation) -> Action {
    match decision.action {
        Action::Fallback if qemu_rule_holds(obs, decision.downtime_limit_ms) => Action::StopAndCopy,
        Action::Fallback => Action::Continue,
        action => action,
    }
}

/// A run as the pages count it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Outcome {
    /// It stopped within the maximum: its cost T + λ·max(0, D − L), ms.
    Within {
        /// The cost, ms.
        cost_ms: f64,
    },
    /// It stopped, but its downtime exceeded the maximum: a failure.
    AboveMaximum {
        /// The downtime, ms.
        downtime_ms: f64,
    },
    /// It did not stop (timed out, aborted, failed, cancelled) or the
    /// guest's memory came out wrong.
    Unfinished(MigrationStatus),
}

impl Outcome {
    /// How a run with `status`, total time and downtime counts under
    /// `objective`.
    pub fn of(
        status: MigrationStatus,
        total_time_ms: Option<f64>,
        downtime_ms: Option<f64>,
        objective: &Objective,
    ) -> Self {
        match (status, total_time_ms, downtime_ms) {
            (MigrationStatus::Completed, Some(t), Some(d)) if t.is_finite() && d.is_finite() => {
                match objective.cost_ms(t, d) {
                    Some(cost_ms) => Outcome::Within { cost_ms },
                    None => Outcome::AboveMaximum { downtime_ms: d },
                }
            }
            // Completed without figures cannot be judged: not a success.
            (MigrationStatus::Completed, _, _) => Outcome::Unfinished(MigrationStatus::Failed),
            (other, _, _) => Outcome::Unfinished(other),
        }
    }

    /// The cost of a success; None for a failure.
    pub fn cost_ms(self) -> Option<f64> {
        match self {
            Outcome::Within { cost_ms } => Some(cost_ms),
            _ => None,
        }
    }

    /// The cost, or `failure_ms` for a failure (what a sum over runs
    /// charges a run that did not succeed: say which cap on the page).
    pub fn charged_ms(self, failure_ms: f64) -> f64 {
        self.cost_ms().unwrap_or(failure_ms)
    }

    /// True for a stop within the maximum.
    pub fn succeeded(self) -> bool {
        matches!(self, Outcome::Within { .. })
    }

    /// Its name in tables: `within`, `above-maximum`, or the status.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Within { .. } => "within",
            Outcome::AboveMaximum { .. } => "above-maximum",
            Outcome::Unfinished(status) => status.name(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn objective() -> Objective {
        Objective {
            downtime_limit_ms: 300.0,
            max_downtime_ms: 1000.0,
            downtime_weight: 10.0,
        }
    }

    #[test]
    fn a_stop_above_the_maximum_is_a_failure() {
        let o = objective();
        let done = MigrationStatus::Completed;
        assert_eq!(
            Outcome::of(done, Some(5000.0), Some(400.0), &o),
            Outcome::Within { cost_ms: 6000.0 }
        );
        assert_eq!(
            Outcome::of(done, Some(5000.0), Some(1000.0), &o).cost_ms(),
            Some(12000.0)
        );
        let above = Outcome::of(done, Some(3000.0), Some(1009.0), &o);
        assert_eq!(
            above,
            Outcome::AboveMaximum {
                downtime_ms: 1009.0
            }
        );
        assert!(!above.succeeded());
        assert_eq!(above.charged_ms(120_000.0), 120_000.0);
        assert_eq!(above.name(), "above-maximum");
    }

    #[test]
    fn runs_that_did_not_stop_or_cannot_be_judged_fail() {
        let o = objective();
        let timed_out = Outcome::of(MigrationStatus::TimedOut, Some(1.0), None, &o);
        assert_eq!(timed_out, Outcome::Unfinished(MigrationStatus::TimedOut));
        assert_eq!(timed_out.name(), "timed-out");
        assert_eq!(
            Outcome::of(MigrationStatus::Completed, None, Some(10.0), &o),
            Outcome::Unfinished(MigrationStatus::Failed)
        );
        assert_eq!(
            Outcome::of(MigrationStatus::Completed, Some(f64::NAN), Some(10.0), &o).cost_ms(),
            None
        );
        assert_eq!(
            Outcome::of(MigrationStatus::MemoryCorrupted, Some(1.0), Some(1.0), &o).cost_ms(),
            None
        );
    }
}

//! The statistics of a comparison, computed once: per cell (workload ×
//! policy) the medians of its runs, their cost under each downtime weight,
//! the oracle's cost under the same weight, the regret, and whether a
//! baseline dominates the cell. Reports and plots read these.

pub use kairos_eval::cell_stats::{dominates, median};
use kairos_eval::oracle::OracleChoice;
use kairos_eval::outcome::Outcome;
use kairos_policy_core::cost::Objective;
use serde::{Deserialize, Serialize};

use crate::live::oracle::LiveOracle;
use crate::live::run::LiveResult;

/// The smallest and largest finite values.
pub fn spread(values: impl IntoIterator<Item = f64>) -> Option<(f64, f64)> {
    values
        .into_iter()
        .filter(|x| x.is_finite())
        .fold(None, |acc, x| match acc {
            None => Some((x, x)),
            Some((lo, hi)) => Some((lo.min(x), hi.max(x))),
        })
}

/// The cost of one run under `objective`: None unless it completed within
/// the maximum ([`Outcome`]: a stop above it is a failure, never a cost).
pub fn run_cost_ms(run: &LiveResult, objective: &Objective) -> Option<f64> {
    Outcome::of(run.status, run.total_time_ms, run.downtime_ms, objective).cost_ms()
}

/// One cell of the comparison under one downtime weight.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellStats {
    /// Workload.
    pub workload: String,
    /// Policy.
    pub policy: String,
    /// The downtime weight λ the costs are under.
    pub downtime_weight: f64,
    /// Runs in the cell.
    pub runs: usize,
    /// Runs that completed with the guest's memory intact.
    pub completed: usize,
    /// Median total time of the completed runs, ms.
    pub total_time_ms: Option<f64>,
    /// Smallest and largest total time, ms.
    pub total_time_min_ms: Option<f64>,
    /// Largest total time, ms.
    pub total_time_max_ms: Option<f64>,
    /// Median downtime, ms.
    pub downtime_ms: Option<f64>,
    /// Largest downtime, ms.
    pub downtime_max_ms: Option<f64>,
    /// Median longest guest stall, ms.
    pub guest_pause_ms: Option<f64>,
    /// Median bytes sent.
    pub transferred_bytes: Option<f64>,
    /// Median application throughput loss, %.
    pub app_loss_pct: Option<f64>,
    /// Median cost of the runs that completed within the maximum, under
    /// λ, ms.
    pub cost_ms: Option<f64>,
    /// Runs whose downtime exceeded the maximum.
    pub over_max: usize,
    /// The oracle's cost under λ, ms.
    pub oracle_cost_ms: Option<f64>,
    /// Median cost over the oracle's.
    pub regret: Option<f64>,
    /// Baselines that dominate this cell (both > 5 % faster and > 30 ms
    /// less downtime, in medians).
    pub dominated_by: Vec<String>,
}

/// The statistics of every (workload, policy) cell under `objective`.
pub fn cells(
    workloads: &[String],
    policies: &[String],
    results: &[LiveResult],
    oracles: &[LiveOracle],
    objective: &Objective,
) -> Vec<CellStats> {
    let mut out = Vec::new();
    for w in workloads {
        let oracle: Option<OracleChoice> = oracles
            .iter()
            .find(|o| &o.workload == w)
            .and_then(|o| o.choice(objective));
        let start = out.len();
        for p in policies {
            let cell: Vec<&LiveResult> = results
                .iter()
                .filter(|r| &r.workload == w && &r.policy == p)
                .collect();
            let ok: Vec<&LiveResult> = cell.iter().copied().filter(|r| r.completed()).collect();
            let col = |get: fn(&LiveResult) -> Option<f64>| -> Vec<f64> {
                ok.iter().filter_map(|r| get(r)).collect()
            };
            let times = spread(col(|r| r.total_time_ms));
            let cost = median(ok.iter().filter_map(|r| run_cost_ms(r, objective)));
            let oracle_cost = oracle.map(|o| o.cost_ms);
            out.push(CellStats {
                workload: w.clone(),
                policy: p.clone(),
                downtime_weight: objective.downtime_weight,
                runs: cell.len(),
                completed: ok.len(),
                total_time_ms: median(col(|r| r.total_time_ms)),
                total_time_min_ms: times.map(|t| t.0),
                total_time_max_ms: times.map(|t| t.1),
                downtime_ms: median(col(|r| r.downtime_ms)),
                downtime_max_ms: spread(col(|r| r.downtime_ms)).map(|d| d.1),
                guest_pause_ms: median(col(|r| r.guest_pause_ms)),
                transferred_bytes: median(col(|r| r.transferred_bytes.map(|b| b as f64))),
                app_loss_pct: median(col(|r| r.app_loss_pct)),
                cost_ms: cost,
                over_max: ok
                    .iter()
                    .filter(|r| r.downtime_ms.is_some_and(|d| !objective.allows(d)))
                    .count(),
                oracle_cost_ms: oracle_cost,
                regret: match (cost, oracle_cost) {
                    (Some(c), Some(o)) if o > 0.0 && o.is_finite() => Some(c / o),
                    _ => None,
                },
                dominated_by: Vec::new(),
            });
        }
        // Dominance within the workload, on medians of completed runs.
        let snapshot: Vec<(String, Option<f64>, Option<f64>)> = out[start..]
            .iter()
            .map(|c| (c.policy.clone(), c.total_time_ms, c.downtime_ms))
            .collect();
        for cell in &mut out[start..] {
            let (Some(t0), Some(d0)) = (cell.total_time_ms, cell.downtime_ms) else {
                continue;
            };
            cell.dominated_by = snapshot
                .iter()
                .filter(|(p, _, _)| p != &cell.policy)
                .filter_map(|(p, t, d)| match (t, d) {
                    (Some(t), Some(d)) if dominates(*t, *d, t0, d0) => Some(p.clone()),
                    _ => None,
                })
                .collect();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(policy: &str, total_ms: f64, downtime_ms: f64) -> LiveResult {
        LiveResult::completed_for_test("w", policy, total_ms, downtime_ms)
    }

    #[test]
    fn spreads() {
        assert_eq!(spread([3.0, 1.0, 2.0]), Some((1.0, 3.0)));
        assert_eq!(spread(std::iter::empty()), None);
    }

    #[test]
    fn costs_regret_and_dominance_per_cell() {
        let objective = Objective {
            downtime_limit_ms: 300.0,
            max_downtime_ms: 1000.0,
            downtime_weight: 10.0,
        };
        let results = vec![
            run("a", 4000.0, 800.0),
            run("a", 5000.0, 700.0),
            run("a", 6000.0, 900.0),
            run("b", 3000.0, 250.0),
            run("c", 3900.0, 780.0),
        ];
        let cells = cells(
            &["w".into()],
            &["a".into(), "b".into(), "c".into()],
            &results,
            &[],
            &objective,
        );
        let a = &cells[0];
        assert_eq!((a.runs, a.completed), (3, 3));
        assert_eq!(a.total_time_ms, Some(5000.0));
        assert_eq!(a.downtime_ms, Some(800.0));
        // Costs 9000, 9000, 12000 → median 9000.
        assert_eq!(a.cost_ms, Some(9000.0));
        assert_eq!(a.regret, None, "no oracle, no regret");
        assert_eq!(a.dominated_by, vec!["b".to_string()]);
        // c is 22 % faster than a but only 20 ms less downtime: no dominance.
        assert!(!cells[2].dominated_by.contains(&"a".to_string()));
        assert!(cells[1].dominated_by.is_empty());
    }
}

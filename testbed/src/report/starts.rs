//! Live runs grouped by start rule (`kairos starts`): per workload and
//! rule, the median and 90th percentile of total time, downtime and cost,
//! the wait counted in the cost — what docs/advise.md's live section and
//! `kairos starts`' closing table show.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use kairos_policy_core::cost::Objective;

use crate::live::run::LiveResult;
use crate::live::start::StartRule;

/// The objective a run was made under (its own limit, maximum and λ).
fn run_objective(run: &LiveResult) -> Objective {
    Objective {
        downtime_limit_ms: run.downtime_limit_ms as f64,
        max_downtime_ms: run.max_downtime_ms as f64,
        downtime_weight: run.downtime_weight,
    }
}

/// A run's cost, ms: T + λ·max(0, D − L) — a stop above the maximum
/// counted as if it were allowed, as the simulated judgement of the advice
/// counts it — plus ω × the wait on its start rule; None when it did not
/// complete. `objective` stands in for a run that does not record its own.
pub fn start_cost_ms(run: &LiveResult, objective: &Objective) -> Option<f64> {
    if !run.completed() {
        return None;
    }
    let objective = if run.downtime_limit_ms > 0 {
        run_objective(run)
    } else {
        *objective
    };
    let (total, downtime) = (run.total_time_ms?, run.downtime_ms?);
    let wait_ms = run.start.map_or(0.0, |s| s.wait_weight * s.wait_s * 1000.0);
    Some(objective.unbounded_cost_ms(total, downtime) + wait_ms)
}

/// Median and 90th percentile of a set of values (a missing one, a run
/// that did not complete, counts as the worst).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    /// Median (None: infinite).
    pub median: Option<f64>,
    /// 90th percentile (None: infinite).
    pub p90: Option<f64>,
}

impl Spread {
    /// The spread of `values` (None: infinite); None when there are none.
    pub fn of(values: impl Iterator<Item = Option<f64>>) -> Option<Self> {
        let mut v: Vec<f64> = values.map(|x| x.unwrap_or(f64::INFINITY)).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        // The same rank rule as the simulated judgement (nearest rank).
        let at = |q: f64| {
            let i = ((q * (v.len() - 1) as f64).round() as usize).min(v.len() - 1);
            Some(v[i]).filter(|x| x.is_finite())
        };
        Some(Self {
            median: at(0.5),
            p90: at(0.9),
        })
    }
}

/// One workload under one start rule.
#[derive(Debug, Clone, PartialEq)]
pub struct StartsCell {
    /// Workload.
    pub workload: String,
    /// Start rule.
    pub rule: StartRule,
    /// Runs.
    pub runs: usize,
    /// Of them, completed.
    pub completed: usize,
    /// Total time, ms.
    pub total_time_ms: Spread,
    /// Downtime, ms.
    pub downtime_ms: Spread,
    /// Cost with the wait, ms.
    pub cost_ms: Spread,
    /// Median wait on the rule, s.
    pub wait_s: f64,
}

/// Every cell of a start campaign.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StartsTable {
    /// By workload, then rule.
    pub cells: Vec<StartsCell>,
}

impl StartsTable {
    /// Group `runs` (those that record their start) by workload and rule.
    pub fn of(runs: &[LiveResult], objective: &Objective) -> Self {
        let mut groups: BTreeMap<(String, usize), Vec<&LiveResult>> = BTreeMap::new();
        for r in runs {
            let Some(start) = r.start else { continue };
            let rank = [StartRule::Now, StartRule::Advised, StartRule::Alma]
                .iter()
                .position(|&x| x == start.rule)
                .unwrap_or(usize::MAX);
            groups
                .entry((r.workload.clone(), rank))
                .or_default()
                .push(r);
        }
        let cells = groups
            .into_iter()
            .filter_map(|((workload, _), runs)| {
                let rule = runs[0].start?.rule;
                let mut waits: Vec<f64> = runs
                    .iter()
                    .filter_map(|r| r.start.map(|s| s.wait_s))
                    .collect();
                waits.sort_by(f64::total_cmp);
                let completed = || runs.iter().filter(|r| r.completed());
                Some(StartsCell {
                    workload,
                    rule,
                    runs: runs.len(),
                    completed: completed().count(),
                    total_time_ms: Spread::of(
                        runs.iter()
                            .map(|r| r.total_time_ms.filter(|_| r.completed())),
                    )?,
                    downtime_ms: Spread::of(
                        runs.iter().map(|r| r.downtime_ms.filter(|_| r.completed())),
                    )?,
                    cost_ms: Spread::of(runs.iter().map(|r| start_cost_ms(r, objective)))?,
                    wait_s: waits.get(waits.len() / 2).copied().unwrap_or(0.0),
                })
            })
            .collect();
        Self { cells }
    }

    /// The cell of `workload` under `rule`.
    #[cfg(test)]
    pub fn cell(&self, workload: &str, rule: StartRule) -> Option<&StartsCell> {
        self.cells
            .iter()
            .find(|c| c.workload == workload && c.rule == rule)
    }

    /// The table as Markdown.
    pub fn markdown(&self) -> String {
        let s = |ms: Option<f64>| ms.map_or("∞".to_string(), |m| format!("{:.1}", m / 1000.0));
        let d = |ms: Option<f64>| ms.map_or("∞".to_string(), |m| format!("{m:.0}"));
        let mut out = String::new();
        out.push_str(
            "| workload | start | runs (completed) | total time s: median / p90 | downtime ms | cost s (wait included) | median wait s |\n\
             |---|---|---|---|---|---|---|\n",
        );
        for c in &self.cells {
            let _ = writeln!(
                out,
                "| {} | {} | {} ({}) | {} / {} | {} / {} | {} / {} | {:.0} |",
                c.workload,
                match c.rule {
                    StartRule::Now => "random moment",
                    StartRule::Advised => "advised",
                    StartRule::Alma => "ALMA-style",
                },
                c.runs,
                c.completed,
                s(c.total_time_ms.median),
                s(c.total_time_ms.p90),
                d(c.downtime_ms.median),
                d(c.downtime_ms.p90),
                s(c.cost_ms.median),
                s(c.cost_ms.p90),
                c.wait_s
            );
        }
        out
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::live::start::StartRecord;

    /// A completed run of `workload` started by `rule` (for tests).
    pub(crate) fn started(
        workload: &str,
        rule: StartRule,
        total_ms: f64,
        downtime_ms: f64,
        wait_s: f64,
    ) -> LiveResult {
        let mut r = LiveResult::completed_for_test(workload, "predictive", total_ms, downtime_ms);
        r.start = Some(StartRecord {
            rule,
            delay_s: 3.0,
            profile_s: 240.0,
            wait_s,
            first_wait_s: wait_s,
            rechecks: 0,
            verdict: None,
            wait_weight: 0.1,
        });
        r
    }

    #[test]
    fn the_cost_counts_the_excess_and_the_weighed_wait() {
        let objective = Objective::from_config(&Default::default());
        // 10 s, 400 ms against L = 300 ms at λ = 10, 20 s waited at ω = 0.1.
        let r = started("w", StartRule::Advised, 10_000.0, 400.0, 20.0);
        assert_eq!(
            start_cost_ms(&r, &objective),
            Some(10_000.0 + 1_000.0 + 2_000.0)
        );
        let mut failed = r.clone();
        failed.status = kairos_eval::outcome::MigrationStatus::Failed;
        assert_eq!(start_cost_ms(&failed, &objective), None);
    }

    #[test]
    fn runs_group_by_workload_and_rule() {
        let objective = Objective::from_config(&Default::default());
        let runs = vec![
            started("a", StartRule::Now, 10_000.0, 100.0, 0.0),
            started("a", StartRule::Now, 20_000.0, 100.0, 0.0),
            started("a", StartRule::Now, 30_000.0, 100.0, 0.0),
            started("a", StartRule::Advised, 5_000.0, 100.0, 10.0),
            started("b", StartRule::Alma, 7_000.0, 100.0, 0.0),
        ];
        let t = StartsTable::of(&runs, &objective);
        assert_eq!(t.cells.len(), 3);
        let now = t.cell("a", StartRule::Now).unwrap();
        assert_eq!((now.runs, now.cost_ms.median), (3, Some(20_000.0)));
        let advised = t.cell("a", StartRule::Advised).unwrap();
        assert_eq!(advised.cost_ms.median, Some(6_000.0));
        assert_eq!(advised.wait_s, 10.0);
        assert!(t.markdown().contains("| b | ALMA-style | 1 (1) |"));
    }

    #[test]
    fn an_incomplete_run_is_the_worst() {
        let s = Spread::of([Some(1.0), None, Some(3.0)].into_iter()).unwrap();
        assert_eq!(s.median, Some(3.0));
        assert_eq!(s.p90, None);
        assert_eq!(Spread::of(std::iter::empty()), None);
    }
}

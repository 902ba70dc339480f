//! The simulated comparison page: every policy and baseline on the
//! workload catalogue at each downtime weight, the goal checks, and the
//! forecast's quality (steady rounds beside the rounds that decide).
//!
//! In simulation the oracle is exact (the cheapest allowed stop of a
//! never-stop run of the same seed), so "× oracle" is a bound here.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::{bail, Result};
use kairos_eval::cell_stats::{dominates, MAX_ORACLE_RATIO};
use kairos_eval::forecast_quality::{ErrorStats, DECIDING_ROUNDS};
use kairos_eval::summary::{MigrationStatus, RunSummary};

use super::record::{sim_stamp, QualityLine, SimRecord};

/// What the page is rendered with besides the runs.
#[derive(Debug, Clone)]
pub struct SimPage<'a> {
    /// The stored runs.
    pub records: &'a [SimRecord],
    /// Where the runs are, as the page names it.
    pub source: &'a str,
    /// The Pareto plots' file names (relative to the page), listed.
    pub plots: &'a [String],
}

const KAIROS: &str = "predictive";

fn fmt(v: Option<f64>, scale: f64, digits: usize) -> String {
    v.map_or("-".into(), |v| format!("{:.*}", digits, v / scale))
}

fn completed(r: &RunSummary) -> bool {
    r.status == MigrationStatus::Completed
}

fn run_dominates(b: &RunSummary, k: &RunSummary) -> bool {
    match (b.downtime_ms, k.downtime_ms) {
        (Some(db), Some(dk)) => dominates(b.total_time_ms, db, k.total_time_ms, dk),
        _ => false,
    }
}

struct Check {
    weight: f64,
    workload: String,
    status: MigrationStatus,
    within_max: bool,
    dominated: Vec<String>,
    cheaper: Vec<String>,
    regret: Option<f64>,
}

fn quality_cell(e: &ErrorStats) -> String {
    if e.count == 0 {
        "-".into()
    } else {
        format!("{:.1}", e.mape_pct)
    }
}

/// Render the page.
pub fn render(page: &SimPage<'_>) -> Result<String> {
    // weight (bits, ordered) → runs in the order they were simulated.
    let mut by_weight: BTreeMap<u64, Vec<&RunSummary>> = BTreeMap::new();
    let mut quality: BTreeMap<u64, Vec<&QualityLine>> = BTreeMap::new();
    for r in page.records {
        if let Some(s) = &r.summary {
            by_weight
                .entry(s.downtime_weight.to_bits())
                .or_default()
                .push(s);
        }
        if let Some(q) = &r.quality {
            quality
                .entry(q.downtime_weight.to_bits())
                .or_default()
                .push(q);
        }
    }
    if by_weight.is_empty() {
        bail!("no simulated runs");
    }
    let (commits, dates) = sim_stamp(page.records);
    let mut md = String::new();
    writeln!(md, "# Simulated comparison of the policies\n")?;
    writeln!(
        md,
        "**Code:** {}. **Runs:** made {}, stored in `{}`; this page is rendered from them by `kairos report sim` (`bash scripts/results-sim.sh` makes the runs, the plots and the page).\n",
        commits,
        dates,
        page.source
    )?;
    writeln!(
        md,
        "`kairos sim --suite testbed/workloads --policy all --downtime-weight λ --forecast-quality --json` for each λ (seed 1, 1 Gbit/s with ±5 % per-round noise, L = 300 ms, M = 1000 ms, 600 s cap; a workload's `migrate_at_s` starts the migration mid-program). `all` is QEMU's rule at L (`qemu`) and at M (`qemu@1000`), auto-converge, and the library's policies. Cost = T + λ·max(0, D − L); the oracle is the cheapest allowed stop of a never-stop run of the same seed; × oracle = cost / oracle's cost. `>max`: the stop's downtime exceeded M — a failure, with no cost. Throttling baselines (auto-converge, escalating policies) change the guest, so they can come out below the oracle, which is computed without throttling.\n"
    )?;
    let mut checks = Vec::new();
    for (bits, rows) in &by_weight {
        let weight = f64::from_bits(*bits);
        writeln!(md, "## λ = {weight}\n")?;
        writeln!(md, "| workload | policy | status | rounds | total s | downtime ms | transferred MiB | app loss % | cost s | × oracle | dominated by | reason |")?;
        writeln!(md, "|---|---|---|---|---|---|---|---|---|---|---|---|")?;
        let mut workloads: Vec<&str> = Vec::new();
        for r in rows {
            if !workloads.contains(&r.workload.as_str()) {
                workloads.push(&r.workload);
            }
        }
        for wl in workloads {
            let group: Vec<&RunSummary> =
                rows.iter().copied().filter(|r| r.workload == wl).collect();
            let done: Vec<&RunSummary> = group.iter().copied().filter(|r| completed(r)).collect();
            for r in &group {
                let over = if r.within_max == Some(false) {
                    " >max"
                } else {
                    ""
                };
                let dom: Vec<&str> = if completed(r) {
                    done.iter()
                        .filter(|b| !std::ptr::eq(**b, *r) && run_dominates(b, r))
                        .map(|b| b.policy.as_str())
                        .collect()
                } else {
                    Vec::new()
                };
                writeln!(
                    md,
                    "| {wl} | {} | {} | {} | {} | {}{over} | {} | {} | {} | {} | {} | {} |",
                    r.policy,
                    r.status,
                    r.rounds,
                    fmt(Some(r.total_time_ms), 1000.0, 1),
                    fmt(r.downtime_ms, 1.0, 0),
                    fmt(Some(r.transferred_bytes as f64), 1_048_576.0, 0),
                    fmt(Some(r.app_loss_pct), 1.0, 1),
                    fmt(r.cost_ms, 1000.0, 2),
                    fmt(r.regret, 1.0, 2),
                    if dom.is_empty() {
                        "-".to_string()
                    } else {
                        dom.join(", ")
                    },
                    r.reason
                )?;
            }
            let Some(k) = group.iter().find(|r| r.policy == KAIROS) else {
                continue;
            };
            let baselines: Vec<&&RunSummary> = done
                .iter()
                .filter(|b| b.policy != KAIROS && b.within_max != Some(false))
                .collect();
            let cheaper = baselines
                .iter()
                .filter(|b| match (k.cost_ms, b.cost_ms) {
                    (None, _) => true,
                    (Some(kc), Some(bc)) => bc < kc - 1e-6,
                    (Some(_), None) => false,
                })
                .map(|b| b.policy.clone())
                .collect();
            let dominated = if completed(k) {
                baselines
                    .iter()
                    .filter(|b| run_dominates(b, k))
                    .map(|b| b.policy.clone())
                    .collect()
            } else {
                Vec::new()
            };
            checks.push(Check {
                weight,
                workload: wl.to_string(),
                status: k.status,
                within_max: k.within_max != Some(false),
                dominated,
                cheaper,
                regret: k.regret,
            });
        }
        writeln!(md)?;
    }

    writeln!(md, "## Goal checks\n")?;
    writeln!(md, "Per weight and workload: `predictive` completes within the maximum; is not dominated by any baseline (none both > 5 % faster and > 30 ms less downtime); costs no more than any baseline whose stop was allowed; and costs ≤ {MAX_ORACLE_RATIO}× the oracle's. A workload whose never-stop run has no stop within M has no oracle (`-`).\n")?;
    writeln!(md, "| λ | workload | completed within M | not dominated | cost ≤ every baseline | × oracle ≤ {MAX_ORACLE_RATIO} |")?;
    writeln!(md, "|---|---|---|---|---|---|")?;
    let mut met = 0;
    for c in &checks {
        let ok_regret = c.regret.is_some_and(|r| r <= MAX_ORACLE_RATIO);
        let reg = c.regret.map_or("-".to_string(), |r| {
            format!("{} ({r:.2})", if ok_regret { "yes" } else { "NO" })
        });
        let list = |v: &[String]| {
            if v.is_empty() {
                "yes".to_string()
            } else {
                format!("NO: {}", v.join(", "))
            }
        };
        let finished = c.status == MigrationStatus::Completed && c.within_max;
        if finished
            && c.dominated.is_empty()
            && c.cheaper.is_empty()
            && (c.regret.is_none() || ok_regret)
        {
            met += 1;
        }
        let status = if c.status == MigrationStatus::Completed && !c.within_max {
            "NO: above the maximum".to_string()
        } else if finished {
            "yes".to_string()
        } else {
            format!("NO: {}", c.status)
        };
        writeln!(
            md,
            "| {} | {} | {status} | {} | {} | {reg} |",
            c.weight,
            c.workload,
            list(&c.dominated),
            list(&c.cheaper)
        )?;
    }
    writeln!(
        md,
        "\nAll goals met in {met} of {} (weight, workload) pairs. The misses and why they happen: docs/design.md (\"The policies\", *What it cannot know*).\n",
        checks.len()
    )?;

    if !quality.is_empty() {
        writeln!(md, "## Forecast quality\n")?;
        writeln!(md, "`predictive`'s forecasts along each workload's never-stop run (the same seed), scored while a migration at L would still be running. *Steady*: forecasts whose rounds lie within one phase of the program. *Deciding*: the one-step forecasts made in the {DECIDING_ROUNDS} rounds before the first stop `predictive` makes along the run (phase changes included) — the ones a stop rests on. *Change*: the one-step forecast of each phase's first round. MAPE in %, coverage of the interval in %.\n")?;
        for (bits, lines) in &quality {
            writeln!(md, "### λ = {}\n", f64::from_bits(*bits))?;
            writeln!(md, "| workload | steady scored | pending 1-step | pending 3-step | coverage 1-step | dirty rate 1-step | deciding: n, pending 1-step, coverage | change: n, pending 1-step | all rounds, pending 1-step | no-convergence verdicts right |")?;
            writeln!(md, "|---|---|---|---|---|---|---|---|---|---|")?;
            let (mut steady, mut deciding, mut change) = (
                ErrorStats::default(),
                ErrorStats::default(),
                ErrorStats::default(),
            );
            for l in lines {
                let q = &l.forecast_quality;
                steady = steady.merged(q.pending_1);
                deciding = deciding.merged(q.pending_1_deciding);
                change = change.merged(q.pending_1_change);
                let coverage = |e: &ErrorStats| {
                    if e.count == 0 {
                        "-".to_string()
                    } else {
                        format!("{:.0}", e.coverage_pct)
                    }
                };
                writeln!(
                    md,
                    "| {} | {} | {} | {} | {} | {} | {}, {}, {} | {}, {} | {} | {}/{} |",
                    l.workload,
                    q.pending_1.count,
                    quality_cell(&q.pending_1),
                    quality_cell(&q.pending_h),
                    coverage(&q.pending_1),
                    quality_cell(&q.dirty_rate_1),
                    q.pending_1_deciding.count,
                    quality_cell(&q.pending_1_deciding),
                    coverage(&q.pending_1_deciding),
                    q.pending_1_change.count,
                    quality_cell(&q.pending_1_change),
                    quality_cell(&q.pending_1_all),
                    q.no_convergence_right,
                    q.no_convergence_verdicts
                )?;
            }
            writeln!(
                md,
                "\nOver the suite: steady one-step pending MAPE {} % ({} forecasts); on the deciding rounds {} % ({}); at phase changes {} % ({}).\n",
                quality_cell(&steady),
                steady.count,
                quality_cell(&deciding),
                deciding.count,
                quality_cell(&change),
                change.count
            )?;
        }
    }
    writeln!(md, "## Cost of a decision\n\nMeasured by criterion, not here: `bash scripts/bench-compare.sh` (per-round decision time before and after a change, as ratios in one run).\n")?;
    if !page.plots.is_empty() {
        writeln!(md, "## Pareto plots (λ = 10)\n")?;
        writeln!(
            md,
            "{}\n",
            page.plots
                .iter()
                .map(|p| format!("[{}]({p})", p.rsplit('/').next().unwrap_or(p)))
                .collect::<Vec<_>>()
                .join(", ")
        )?;
    }
    Ok(md)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::record::RECORD_FORMAT;

    fn run(
        workload: &str,
        policy: &str,
        total_ms: f64,
        downtime_ms: f64,
        cost_ms: Option<f64>,
    ) -> SimRecord {
        let summary: RunSummary = serde_json::from_value(serde_json::json!({
            "workload": workload, "policy": policy, "status": "completed",
            "reason": "below-threshold", "rounds": 4, "total_time_ms": total_ms,
            "downtime_ms": downtime_ms, "transferred_bytes": 1_048_576u64,
            "escalations": 0, "app_loss_pct": 0.0, "downtime_weight": 10.0,
            "cost_ms": cost_ms, "within_max": downtime_ms <= 1000.0,
            "oracle": null, "regret": cost_ms.map(|c| c / 4000.0),
        }))
        .unwrap();
        SimRecord {
            format: RECORD_FORMAT,
            set: "catalogue".into(),
            code_commit: "abc".into(),
            made_unix_s: 0,
            summary: Some(summary),
            quality: None,
        }
    }

    #[test]
    fn goal_checks_count_a_stop_above_the_maximum_as_a_miss() {
        let records = vec![
            run("a", "qemu", 9000.0, 250.0, Some(9000.0)),
            run("a", "predictive", 4200.0, 400.0, Some(5200.0)),
            run("b", "qemu", 3000.0, 200.0, Some(3000.0)),
            // predictive stops above the maximum on b: no cost, a miss.
            run("b", "predictive", 2000.0, 1200.0, None),
        ];
        let md = render(&SimPage {
            records: &records,
            source: "sim.jsonl.gz",
            plots: &[],
        })
        .unwrap();
        assert!(md.contains("**Code:** `abc`"), "{md}");
        assert!(
            md.contains("| b | predictive | completed | 4 | 2.0 | 1200 >max |"),
            "{md}"
        );
        assert!(
            md.contains("| 10 | a | yes | yes | yes | NO (1.30) |"),
            "{md}"
        );
        assert!(
            md.contains("| 10 | b | NO: above the maximum | yes | NO: qemu | - |"),
            "{md}"
        );
        assert!(md.contains("All goals met in 0 of 2"), "{md}");
    }
}

//! The page of what `kairos advise`'s sampling costs the guest: one row
//! per closed-loop benchmark from its stored `kairos profile --overhead`
//! run, the fit made there (`kairos_eval::advise::overhead`), the goal
//! checked here.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use anyhow::{bail, Result};
use kairos_eval::advise::overhead::THROUGHPUT_GOAL;

use super::record::{utc_date, OverheadRecord};

/// How a workload's run meets the goal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Met {
    /// The whole interval is at or above it.
    Interval,
    /// Only the estimate is (or there is no interval).
    Estimate,
    /// Neither.
    No,
}

impl Met {
    fn of(record: &OverheadRecord) -> Self {
        let o = &record.report.overhead;
        if o.ratio_low.is_some_and(|lo| lo >= THROUGHPUT_GOAL) {
            Met::Interval
        } else if o.ratio >= THROUGHPUT_GOAL {
            Met::Estimate
        } else {
            Met::No
        }
    }

    fn name(self) -> &'static str {
        match self {
            Met::Interval => "yes",
            Met::Estimate => "on the estimate",
            Met::No => "no",
        }
    }
}

/// Render the page from the stored runs.
pub fn render(records: &[OverheadRecord], source: &str, command: &str) -> Result<String> {
    if records.is_empty() {
        bail!("no overhead runs");
    }
    let join = |set: BTreeSet<String>| set.into_iter().collect::<Vec<_>>().join(", ");
    let commits = join(
        records
            .iter()
            .map(|r| format!("`{}`", r.report.code_commit))
            .collect(),
    );
    let dates = join(
        records
            .iter()
            .map(|r| utc_date(r.report.finished_unix_s))
            .collect(),
    );
    let windows = join(
        records
            .iter()
            .map(|r| format!("{} s", r.report.window_s))
            .collect(),
    );
    let accels = join(records.iter().map(|r| r.report.accel.clone()).collect());
    let mut md = String::new();
    writeln!(md, "# What `kairos advise` costs the guest it samples\n")?;
    writeln!(
        md,
        "**Code:** {commits}. **Runs:** {} made {dates}, stored in `{source}`; this page is rendered from them by `kairos report overhead` (`{command}` makes the runs and the page).\n",
        records.len()
    )?;
    writeln!(
        md,
        "`kairos profile --workload W --overhead` boots the guest with a closed-loop benchmark (it runs as fast as it can, so anything taken from the guest shows as lost throughput), runs one window it throws away, then alternates windows without and with `advise`'s sampling: off, on, off, …, off. In an \"on\" window it samples exactly as `kairos advise` does: `calc-dirty-rate` back to back in 1 s windows (the 5 s window `advise` takes every 30th sample, which samples less often, does not fall in a window this short, so this is the heavier case), and the vCPU threads' CPU time at the start and end. The benchmark's own once-a-second reports give its throughput per window; the first two reports of each window are left out, as they may cover time before it. The ratio is `exp(β₂)` of a least-squares fit of ln(throughput) = β₀ + β₁·window + β₂·sampled over all windows, so a drift over the run is not read as overhead, with the 95 % Student-t interval of β₂; the worst window is one sampled window over the mean of its two neighbours. Window length: {windows}; accelerator: {accels}; one vCPU.\n"
    )?;
    writeln!(
        md,
        "Goal: throughput while sampled ≥ {:.0} % of without. \"yes\" when the whole interval is at or above it, \"on the estimate\" when only the estimate is, \"no\" otherwise.\n",
        100.0 * THROUGHPUT_GOAL
    )?;
    writeln!(md, "| workload | windows | sampled ÷ not (drift removed) | 95 % interval | worst window | ops/s without | ops/s with | goal met |")?;
    writeln!(md, "|---|---|---|---|---|---|---|---|")?;
    for r in records {
        let o = &r.report.overhead;
        let interval = match (o.ratio_low, o.ratio_high) {
            (Some(lo), Some(hi)) => format!("{:.1}–{:.1} %", 100.0 * lo, 100.0 * hi),
            _ => "—".to_string(),
        };
        writeln!(
            md,
            "| {} | {} × {} s | {:.1} % | {interval} | {:.1} % | {:.1} | {:.1} | {} |",
            r.report.workload,
            2 * o.pairs + 1,
            r.report.window_s,
            100.0 * o.ratio,
            100.0 * o.ratio_min,
            o.off_ops_per_s,
            o.on_ops_per_s,
            Met::of(r).name()
        )?;
    }
    let count = |m: Met| records.iter().filter(|r| Met::of(r) == m).count();
    writeln!(
        md,
        "\nGoal met on {}/{} workloads with the whole interval above it, and on {} more on the estimate alone.",
        count(Met::Interval),
        records.len(),
        count(Met::Estimate)
    )?;
    let conditions: BTreeSet<&str> = records
        .iter()
        .filter_map(|r| r.conditions.as_deref())
        .collect();
    if !conditions.is_empty() {
        writeln!(md, "\n## This run\n")?;
        for c in conditions {
            writeln!(md, "{c}\n")?;
        }
    }
    Ok(md)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile_overhead::OverheadReport;
    use crate::report::record::RECORD_FORMAT;
    use kairos_eval::advise::overhead::Overhead;

    fn record(workload: &str, ratio: f64, low: Option<f64>) -> OverheadRecord {
        OverheadRecord {
            format: RECORD_FORMAT,
            report: OverheadReport {
                workload: workload.into(),
                accel: "tcg".into(),
                window_s: 20.0,
                mode: "page-sampling".into(),
                overhead: Overhead {
                    pairs: 5,
                    ratio,
                    ratio_low: low,
                    ratio_high: low.map(|l| 2.0 * ratio - l),
                    ratio_min: ratio - 0.02,
                    off_ops_per_s: 100.0,
                    on_ops_per_s: 100.0 * ratio,
                },
                code_commit: "abc".into(),
                finished_unix_s: 1_796_515_200,
            },
            conditions: None,
        }
    }

    #[test]
    fn the_goal_is_judged_on_the_interval_then_the_estimate() {
        let records = [
            record("fio", 0.99, Some(0.975)),
            record("redis", 0.98, Some(0.95)),
            record("ycsb-a", 0.96, None),
        ];
        let md = render(&records, "runs.jsonl.gz", "bash x.sh").unwrap();
        assert!(md
            .contains("| fio | 11 × 20 s | 99.0 % | 97.5–100.5 % | 97.0 % | 100.0 | 99.0 | yes |"));
        assert!(md.contains("| redis | 11 × 20 s | 98.0 % | 95.0–101.0 % |"));
        assert!(md.contains("| on the estimate |"));
        assert!(md.contains("| ycsb-a | 11 × 20 s | 96.0 % | — |"));
        assert!(md
            .contains("Goal met on 1/3 workloads with the whole interval above it, and on 1 more"));
        assert!(md.contains("**Code:** `abc`"));
        assert!(render(&[], "x", "y").is_err());
    }
}

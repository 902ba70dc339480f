//! The written results of a comparison: `runs.csv` (one row per run),
//! `summary.csv` (one row per cell and downtime weight, from
//! [`super::stats`]) and `summary.md` (the same cells as tables, the
//! oracle's stop, and the forecast quality of each workload). CSV goes
//! through the csv crate, so any text is quoted as it must be.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use kairos_eval::forecast_quality::ForecastQuality;
use kairos_policy_core::cost::Objective;
use serde::Serialize;

use super::stats::{run_cost_ms, CellStats};
use crate::live::oracle::LiveOracle;
use crate::live::run::LiveResult;

/// Bytes in a MiB: tables and plots use MiB throughout.
pub const MIB: f64 = 1048576.0;

/// A workload's forecast quality, from its never-stop trace.
#[derive(Debug, Clone, Serialize)]
pub struct WorkloadQuality {
    /// Workload.
    pub workload: String,
    /// The scores.
    pub quality: ForecastQuality,
}

/// Write `runs.csv`: every run, with its cost under each objective.
pub fn write_runs_csv(path: &Path, results: &[LiveResult], objectives: &[Objective]) -> Result<()> {
    let mut w =
        csv::Writer::from_path(path).with_context(|| format!("creating {}", path.display()))?;
    let mut header: Vec<String> = [
        "workload",
        "policy",
        "status",
        "total_time_ms",
        "downtime_ms",
        "paused_ms",
        "guest_pause_ms",
        "transferred_bytes",
        "rounds",
        "app_loss_pct",
        "reason",
        "link",
        "start_wait_s",
    ]
    .map(String::from)
    .to_vec();
    header.extend(
        objectives
            .iter()
            .map(|o| format!("cost_ms_w{}", o.downtime_weight)),
    );
    w.write_record(&header)?;
    let num = |v: Option<f64>| v.map_or(String::new(), |x| format!("{x:.1}"));
    for r in results {
        let mut row = vec![
            r.workload.clone(),
            r.policy.clone(),
            r.status.name().to_string(),
            num(r.total_time_ms),
            num(r.downtime_ms),
            num(r.paused_ms),
            num(r.guest_pause_ms),
            r.transferred_bytes.map_or(String::new(), |b| b.to_string()),
            r.rounds.map_or(String::new(), |b| b.to_string()),
            num(r.app_loss_pct),
            r.reason.clone().unwrap_or_default(),
            r.link.clone(),
            num(r.start_wait_s),
        ];
        row.extend(objectives.iter().map(|o| num(run_cost_ms(r, o))));
        w.write_record(&row)?;
    }
    w.flush()?;
    Ok(())
}

/// One row of `summary.csv`.
#[derive(Debug, Serialize)]
struct SummaryRow<'a> {
    workload: &'a str,
    policy: &'a str,
    downtime_weight: f64,
    runs: usize,
    completed: usize,
    total_time_ms: Option<f64>,
    total_time_min_ms: Option<f64>,
    total_time_max_ms: Option<f64>,
    downtime_ms: Option<f64>,
    downtime_max_ms: Option<f64>,
    guest_pause_ms: Option<f64>,
    transferred_bytes: Option<f64>,
    app_loss_pct: Option<f64>,
    cost_ms: Option<f64>,
    over_max: usize,
    oracle_cost_ms: Option<f64>,
    regret: Option<f64>,
    dominated_by: String,
}

/// Write `summary.csv`: one row per cell and downtime weight.
pub fn write_summary_csv(path: &Path, cells: &[CellStats]) -> Result<()> {
    let mut w =
        csv::Writer::from_path(path).with_context(|| format!("creating {}", path.display()))?;
    for c in cells {
        w.serialize(SummaryRow {
            workload: &c.workload,
            policy: &c.policy,
            downtime_weight: c.downtime_weight,
            runs: c.runs,
            completed: c.completed,
            total_time_ms: c.total_time_ms,
            total_time_min_ms: c.total_time_min_ms,
            total_time_max_ms: c.total_time_max_ms,
            downtime_ms: c.downtime_ms,
            downtime_max_ms: c.downtime_max_ms,
            guest_pause_ms: c.guest_pause_ms,
            transferred_bytes: c.transferred_bytes,
            app_loss_pct: c.app_loss_pct,
            cost_ms: c.cost_ms,
            over_max: c.over_max,
            oracle_cost_ms: c.oracle_cost_ms,
            regret: c.regret,
            dominated_by: c.dominated_by.join(" "),
        })?;
    }
    w.flush()?;
    Ok(())
}

fn fmt(v: Option<f64>, scale: f64, digits: usize) -> String {
    v.map_or_else(|| "-".to_string(), |x| format!("{:.*}", digits, x / scale))
}

/// The Markdown summary: a table per downtime weight, the oracle's stop in
/// each, and the forecast quality of each workload.
pub fn summary_markdown(
    workloads: &[String],
    cells_by_weight: &[(Objective, Vec<CellStats>)],
    oracles: &[LiveOracle],
    quality: &[WorkloadQuality],
) -> Result<String> {
    let mut md = String::new();
    for (objective, cells) in cells_by_weight {
        writeln!(
            md,
            "### λ = {}: cost = T + {}·max(0, D − {:.0} ms); stops above {:.0} ms not allowed\n",
            objective.downtime_weight,
            objective.downtime_weight,
            objective.downtime_limit_ms,
            objective.max_downtime_ms
        )?;
        md.push_str("| workload | policy | completed | total s (median [min–max]) | downtime ms (median / max) | guest pause ms | transferred MiB | app loss % | cost s | × oracle | dominated by |\n|---|---|---|---|---|---|---|---|---|---|---|\n");
        for w in workloads {
            if let Some(o) = oracles.iter().find(|o| &o.workload == w) {
                match o.choice(objective) {
                    Some(c) => writeln!(
                        md,
                        "| {w} | *oracle* (round {} of a {:.0} s never-stop run) | | {:.1} | {:.0} | | | | {:.2} | 1.00 | |",
                        c.stop.round,
                        o.trace_s,
                        c.stop.total_time_ms / 1000.0,
                        c.stop.downtime_ms,
                        c.cost_ms / 1000.0
                    )?,
                    None => writeln!(
                        md,
                        "| {w} | *oracle*: no stop of the {:.0} s never-stop run fits {:.0} ms (lowest {:.0} ms) | | | | | | | | | |",
                        o.trace_s, objective.max_downtime_ms, o.lowest_downtime_ms
                    )?,
                }
            }
            for c in cells.iter().filter(|c| &c.workload == w) {
                let total = match (c.total_time_ms, c.total_time_min_ms, c.total_time_max_ms) {
                    (Some(m), Some(lo), Some(hi)) => {
                        format!("{:.1} [{:.1}–{:.1}]", m / 1000.0, lo / 1000.0, hi / 1000.0)
                    }
                    _ => "-".to_string(),
                };
                let over = if c.over_max > 0 {
                    format!(" ({} over max)", c.over_max)
                } else {
                    String::new()
                };
                writeln!(
                    md,
                    "| {w} | {} | {}/{} | {total} | {} / {}{over} | {} | {} | {} | {} | {} | {} |",
                    c.policy,
                    c.completed,
                    c.runs,
                    fmt(c.downtime_ms, 1.0, 0),
                    fmt(c.downtime_max_ms, 1.0, 0),
                    fmt(c.guest_pause_ms, 1.0, 0),
                    fmt(c.transferred_bytes, MIB, 0),
                    fmt(c.app_loss_pct, 1.0, 1),
                    fmt(c.cost_ms, 1000.0, 2),
                    fmt(c.regret, 1.0, 2),
                    if c.dominated_by.is_empty() {
                        "-".to_string()
                    } else {
                        c.dominated_by.join(", ")
                    }
                )?;
            }
        }
        md.push('\n');
    }
    if !quality.is_empty() {
        md.push_str("### Forecast quality along each workload's never-stop run (`predictive`, steady phases)\n\n| workload | scored | pending 1-step MAPE % | pending 3-step MAPE % | 80 % interval coverage % | dirty rate 1-step MAPE % | no-convergence verdicts right |\n|---|---|---|---|---|---|---|\n");
        for q in quality {
            let s = &q.quality;
            writeln!(
                md,
                "| {} | {} | {:.1} | {:.1} | {:.0} | {:.1} | {}/{} |",
                q.workload,
                s.pending_1.count,
                s.pending_1.mape_pct,
                s.pending_h.mape_pct,
                s.pending_1.coverage_pct,
                s.dirty_rate_1.mape_pct,
                s.no_convergence_right,
                s.no_convergence_verdicts
            )?;
        }
    }
    Ok(md)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_what_needs_quoting() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("summary.csv");
        let cell = CellStats {
            workload: "a,b".into(),
            policy: "qemu".into(),
            downtime_weight: 10.0,
            runs: 1,
            completed: 1,
            total_time_ms: Some(1.0),
            total_time_min_ms: Some(1.0),
            total_time_max_ms: Some(1.0),
            downtime_ms: Some(1.0),
            downtime_max_ms: Some(1.0),
            guest_pause_ms: None,
            transferred_bytes: None,
            app_loss_pct: None,
            cost_ms: Some(1.0),
            over_max: 0,
            oracle_cost_ms: None,
            regret: None,
            dominated_by: vec!["x".into(), "y".into()],
        };
        write_summary_csv(&path, &[cell]).unwrap();
        let mut r = csv::Reader::from_path(&path).unwrap();
        let rec = r.records().next().unwrap().unwrap();
        assert_eq!(&rec[0], "a,b");
        assert_eq!(&rec[17], "x y");
    }
}

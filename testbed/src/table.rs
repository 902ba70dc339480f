//! Output of comparison results: a readable table or JSON lines.

use kairos_eval::summary::RunSummary;
use kairos_policy_core::{Decision, RoundObservation};

/// Bytes in a MiB: tables and plots use MiB throughout.
const MIB: f64 = 1048576.0;

/// Collects a command's results: JSON lines are printed as they come (so a
/// long run shows progress), the table once at the end.
pub struct Report {
    json: bool,
    rows: Vec<RunSummary>,
}

impl Report {
    /// A report in JSON lines (`json`) or as a table.
    pub fn new(json: bool) -> Self {
        Self {
            json,
            rows: Vec::new(),
        }
    }

    /// Add the runs of one workload or trace.
    pub fn add(&mut self, rows: Vec<RunSummary>) -> anyhow::Result<()> {
        if self.json {
            print_json(&rows)?;
        }
        self.rows.extend(rows);
        Ok(())
    }

    /// Print the table (table mode only).
    pub fn finish(self) {
        if !self.json {
            print_table(&self.rows);
        }
    }
}

/// Print one JSON object per line.
pub fn print_json(rows: &[RunSummary]) -> anyhow::Result<()> {
    for row in rows {
        println!("{}", serde_json::to_string(row)?);
    }
    Ok(())
}

fn opt(v: Option<f64>, scale: f64, digits: usize) -> String {
    v.map_or_else(|| "-".to_string(), |x| format!("{:.*}", digits, x / scale))
}

/// Print an aligned table, one row per run.
pub fn print_table(rows: &[RunSummary]) {
    let header = [
        "workload",
        "policy",
        "status",
        "rounds",
        "total_s",
        "downtime_ms",
        "transferred_MiB",
        "app_loss_%",
        "cost_s",
        "oracle_cost_s",
        "regret",
        "reason",
    ];
    let body: Vec<[String; 12]> = rows
        .iter()
        .map(|r| {
            let over = if r.within_max == Some(false) {
                " >max"
            } else {
                ""
            };
            [
                r.workload.clone(),
                r.policy.clone(),
                r.status.to_string(),
                r.rounds.to_string(),
                format!("{:.1}", r.total_time_ms / 1000.0),
                format!("{}{over}", opt(r.downtime_ms, 1.0, 0)),
                format!("{:.0}", r.transferred_bytes as f64 / 1048576.0),
                format!("{:.1}", r.app_loss_pct),
                opt(r.cost_ms, 1000.0, 2),
                opt(r.oracle.map(|o| o.cost_ms), 1000.0, 2),
                opt(r.regret, 1.0, 2),
                r.reason.clone(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &body {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(header.to_vec());
    for row in &body {
        line(row.iter().map(String::as_str).collect());
    }
}

/// Print every round of a run to standard error: what the policy saw,
/// what it forecast, the costs it weighed, and what it said.
pub fn print_explain<'a>(
    label: &str,
    rounds: impl Iterator<Item = (&'a RoundObservation, &'a Decision)>,
) {
    eprintln!("== {label}");
    eprintln!("round  time_s  pending_MiB  rate_MiB/s  next_MiB[lo..hi]      stop_cost_s  wait_cost_s  sync_below_ms  model           action         reason");
    let seconds = |ms: f64| {
        if ms.is_nan() {
            "-".to_string()
        } else {
            format!("{:.2}", ms / 1000.0)
        }
    };
    for (o, d) in rounds {
        let next = d.forecast.next().map_or_else(
            || "-".to_string(),
            |p| {
                format!(
                    "{:.1}[{:.1}..{:.1}]",
                    p.pending_bytes / MIB,
                    p.pending_lo_bytes / MIB,
                    p.pending_hi_bytes / MIB
                )
            },
        );
        eprintln!(
            "{:>5}  {:>6.2}  {:>11.1}  {:>10.1}  {:<20}  {:>11}  {:>11}  {:>13}  {:<14}  {:<13}  {}",
            o.round,
            o.elapsed_ms as f64 / 1000.0,
            o.pending_bytes as f64 / MIB,
            d.forecast.dirty_rate_bytes_per_s / MIB,
            next,
            seconds(d.stop_cost_ms),
            seconds(d.wait_cost_ms),
            if d.sync_below_ms > 0.0 {
                format!("{:.0}", d.sync_below_ms)
            } else {
                "-".to_string()
            },
            d.forecast.model.name(),
            d.action.name(),
            d.reason.name()
        );
    }
}

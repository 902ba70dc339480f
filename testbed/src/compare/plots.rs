//! The plots of a comparison, per workload: pending after each sync for
//! each policy's first run (its stop marked), the time/downtime trade-off
//! (the never-stop run's frontier, each policy's medians, the oracle at
//! each weight), and the never-stop run with `predictive`'s one-round-ahead
//! forecast band. A plot that cannot be drawn is reported and skipped: the
//! runs are kept.

use std::path::{Path, PathBuf};

use anyhow::Result;
use kairos_eval::trace::read_trace_file;
use kairos_policy_core::cost::Objective;
use kairos_policy_core::PolicyConfig;

use super::report::MIB;
use super::stats::CellStats;
use crate::live::oracle::{forecast_along, LiveOracle};
use crate::live::run::LiveResult;
use crate::plot::{pareto_frontier, plot_forecast, plot_pareto, plot_series, ParetoPoint, Series};

/// Everything a workload's plots are drawn from.
pub struct WorkloadPlots<'a> {
    /// Workload.
    pub workload: &'a str,
    /// Every run of the comparison.
    pub results: &'a [LiveResult],
    /// Its cells under the first downtime weight (for medians).
    pub cells: &'a [CellStats],
    /// Its oracle, if the never-stop run gave one.
    pub oracle: Option<&'a LiveOracle>,
    /// The objectives of the comparison.
    pub objectives: &'a [Objective],
    /// The policy configuration (for the forecast band).
    pub cfg: &'a PolicyConfig,
}

/// Draw the plots of one workload into `dir`; returns those written.
pub fn draw(dir: &Path, p: &WorkloadPlots) -> Vec<PathBuf> {
    let mut written = Vec::new();
    let mut keep = |path: PathBuf, result: Result<()>| match result {
        Ok(()) => written.push(path),
        Err(e) => eprintln!("plot {}: {e:#}", path.display()),
    };
    let w = p.workload;
    let series = pending_series(p);
    if !series.is_empty() {
        let path = dir.join(format!("{w}-pending.png"));
        let r = plot_series(
            &path,
            &format!("{w}: pending after each sync (x = stop)"),
            "pending, MiB",
            &series,
        );
        keep(path, r);
    }
    if let Some(oracle) = p.oracle {
        let path = dir.join(format!("{w}-pareto.png"));
        let r = pareto(&path, p, oracle);
        keep(path, r);
        let path = dir.join(format!("{w}-forecast.png"));
        let stops: Vec<(String, (f64, f64))> = series
            .iter()
            .filter_map(|s| s.stop.map(|pt| (s.label.clone(), pt)))
            .collect();
        let r = forecast(&path, p, oracle, &stops);
        keep(path, r);
    }
    written
}

/// Pending MiB over time for each policy's first run with a trace.
fn pending_series(p: &WorkloadPlots) -> Vec<Series> {
    let mut series = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for r in p.results.iter().filter(|r| r.workload == p.workload) {
        if seen.contains(&r.policy.as_str()) {
            continue;
        }
        let Some(rows) = r.trace.as_ref().and_then(|t| read_trace_file(t).ok()) else {
            continue;
        };
        seen.push(&r.policy);
        let points: Vec<(f64, f64)> = rows
            .iter()
            .skip(1) // round 1 is all of RAM
            .map(|row| {
                (
                    row.observation.elapsed_ms as f64 / 1000.0,
                    row.observation.pending_bytes as f64 / MIB,
                )
            })
            .collect();
        let stop = r.completed().then(|| points.last().copied()).flatten();
        series.push(Series {
            label: r.policy.clone(),
            points,
            stop,
        });
    }
    series
}

fn pareto(path: &Path, p: &WorkloadPlots, oracle: &LiveOracle) -> Result<()> {
    let stops: Vec<(f64, f64)> = oracle
        .stops
        .iter()
        .map(|s| (s.downtime_ms, s.total_time_ms / 1000.0))
        .collect();
    let points: Vec<ParetoPoint> = p
        .cells
        .iter()
        .filter(|c| c.workload == p.workload)
        .filter_map(|c| {
            Some(ParetoPoint {
                label: c.policy.clone(),
                downtime_ms: c.downtime_ms?,
                total_s: c.total_time_ms? / 1000.0,
            })
        })
        .collect();
    // The oracle at each weight; the last one drawn is labelled with all.
    let choices: Vec<(f64, ParetoPoint)> = p
        .objectives
        .iter()
        .filter_map(|o| {
            oracle.choice(o).map(|c| {
                (
                    o.downtime_weight,
                    ParetoPoint {
                        label: String::new(),
                        downtime_ms: c.stop.downtime_ms,
                        total_s: c.stop.total_time_ms / 1000.0,
                    },
                )
            })
        })
        .collect();
    let label = format!(
        "oracle at λ = {}",
        choices
            .iter()
            .map(|(w, _)| w.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let oracle_point = choices.last().map(|(_, pt)| ParetoPoint {
        label,
        downtime_ms: pt.downtime_ms,
        total_s: pt.total_s,
    });
    let mut all_points = points;
    for (w, pt) in choices.iter().take(choices.len().saturating_sub(1)) {
        all_points.push(ParetoPoint {
            label: format!("oracle at λ = {w}"),
            downtime_ms: pt.downtime_ms,
            total_s: pt.total_s,
        });
    }
    plot_pareto(
        path,
        &format!(
            "{}: total time against downtime (medians; frontier: the never-stop run's stops)",
            p.workload
        ),
        &pareto_frontier(&stops),
        &all_points,
        oracle_point.as_ref(),
    )
}

fn forecast(
    path: &Path,
    p: &WorkloadPlots,
    oracle: &LiveOracle,
    stops: &[(String, (f64, f64))],
) -> Result<()> {
    let rows = read_trace_file(&oracle.trace)?;
    // Round 1 is all of RAM: it would flatten the rest.
    let along: Vec<_> = forecast_along(&rows, p.cfg)?.into_iter().skip(1).collect();
    let mut marks: Vec<(String, (f64, f64))> = stops.to_vec();
    if let Some(objective) = p.objectives.first() {
        if let Some(c) = oracle.choice(objective) {
            if let Some(row) = rows.iter().find(|r| r.observation.round == c.stop.round) {
                marks.push((
                    format!("oracle at λ = {}", objective.downtime_weight),
                    (
                        row.observation.elapsed_ms as f64 / 1000.0,
                        row.observation.pending_bytes as f64 / MIB,
                    ),
                ));
            }
        }
    }
    plot_forecast(
        path,
        &format!(
            "{}: never-stop migration, predictive's forecast band, stops",
            oracle.workload
        ),
        &along,
        &marks,
    )
}

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
    // The oracle at each weight; weights whose oracle is the same stop share
    // one marker (the last marker is drawn as the oracle's triangle).
    let mut markers = oracle_markers(p.objectives.iter().filter_map(|o| {
        oracle.choice(o).map(|c| {
            (
                o.downtime_weight,
                c.stop.downtime_ms,
                c.stop.total_time_ms / 1000.0,
            )
        })
    }));
    let oracle_point = markers.pop();
    let mut all_points = points;
    all_points.extend(markers);
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

/// One Pareto marker per distinct oracle stop, labelled with every downtime
/// weight whose oracle chose it, in the order the weights came:
/// `(weight, downtime_ms, total_s)` in, markers out.
fn oracle_markers(choices: impl Iterator<Item = (f64, f64, f64)>) -> Vec<ParetoPoint> {
    let mut groups: Vec<(Vec<f64>, f64, f64)> = Vec::new();
    for (weight, downtime_ms, total_s) in choices {
        match groups
            .iter_mut()
            .find(|(_, d, t)| *d == downtime_ms && *t == total_s)
        {
            Some((weights, _, _)) => weights.push(weight),
            None => groups.push((vec![weight], downtime_ms, total_s)),
        }
    }
    groups
        .into_iter()
        .map(|(weights, downtime_ms, total_s)| ParetoPoint {
            label: format!(
                "oracle at λ = {}",
                weights
                    .iter()
                    .map(|w| w.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            downtime_ms,
            total_s,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::oracle_markers;

    #[test]
    fn weights_with_the_same_oracle_stop_share_one_marker() {
        let markers =
            oracle_markers([(3.0, 810.0, 3.6), (10.0, 810.0, 3.6), (30.0, 745.0, 5.2)].into_iter());
        let labels: Vec<&str> = markers.iter().map(|m| m.label.as_str()).collect();
        assert_eq!(labels, ["oracle at λ = 3, 10", "oracle at λ = 30"]);
        assert_eq!((markers[1].downtime_ms, markers[1].total_s), (745.0, 5.2));
    }

    #[test]
    fn no_oracle_no_marker() {
        assert!(oracle_markers(std::iter::empty()).is_empty());
    }
}

//! `kairos sim`: the pre-copy simulator over one workload or a suite.

use crate::cmd::usage::bail_usage;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use kairos_eval::baseline::PolicySpec;
use kairos_eval::forecast_quality::{forecast_quality, while_running, ForecastQuality};
use kairos_eval::oracle::StopCost;
use kairos_eval::sim::workload::{suite_files, Workload};
use kairos_eval::sim::{simulate, SimConfig, SimRun, SyncModel};
use kairos_eval::summary::{simulate_workload, RunSummary};
use kairos_eval::trace::{TraceWriter, TracedDecision};
use kairos_policy_core::{PolicyConfig, PolicyKind};
use serde::Serialize;

use crate::cli_policy::PolicyArgs;
use crate::plot::{pareto_frontier, plot_pareto, ParetoPoint};
use crate::table;

/// Arguments of `kairos sim`.
#[derive(Debug, Args)]
pub struct SimArgs {
    /// One workload program (TOML).
    #[arg(long, conflicts_with = "suite", required_unless_present = "suite")]
    pub workload: Option<PathBuf>,
    /// A directory of workload programs (every *.toml in it).
    #[arg(long)]
    pub suite: Option<PathBuf>,
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// Seed of the guest's page choices and the bandwidth noise.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Link bandwidth, Mbit/s (QEMU's max-bandwidth).
    #[arg(long, default_value_t = 1000.0)]
    pub bandwidth_mbit: f64,
    /// Relative per-round bandwidth noise (uniform ±).
    #[arg(long, default_value_t = 0.05)]
    pub bandwidth_jitter: f64,
    /// Seconds the workload runs before the migration starts (default: the
    /// workload's own `migrate_at_s`, else 0).
    #[arg(long, value_name = "S")]
    pub warmup_s: Option<f64>,
    /// Give up a migration after this long, seconds (also the oracle's cap).
    #[arg(long, default_value_t = 600.0)]
    pub time_cap_s: f64,
    /// When the simulated QEMU syncs its dirty bitmap: after each whole
    /// pass (the oracle is exact), or as QEMU 10 does, once what is left of
    /// the pass falls below its threshold (stops mid-pass; no oracle).
    #[arg(long, value_enum, default_value_t = SyncArg::FullPass)]
    pub sync: SyncArg,
    /// Also write each workload's never-stop per-round trace here (CSV, the
    /// replay format).
    #[arg(long)]
    pub trace_dir: Option<PathBuf>,
    /// Print every round of every run (what the policy saw, said and
    /// forecast, and the costs it weighed) to standard error.
    #[arg(long)]
    pub explain: bool,
    /// Also score `predictive`'s forecasts along each workload's never-stop
    /// run (one-step and h-step errors in steady phases, interval
    /// coverage, no-convergence verdicts), printed after the table (or as
    /// JSON lines with "forecast_quality").
    #[arg(long)]
    pub forecast_quality: bool,
    /// Write a Pareto plot per workload here (downtime against total time:
    /// the never-stop run's stops, each policy's, the oracle's).
    #[arg(long, value_name = "DIR")]
    pub plot_dir: Option<PathBuf>,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `--sync`: the simulator's [`SyncModel`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SyncArg {
    /// A sync after each whole pass.
    FullPass,
    /// A sync once the rest of the pass is below QEMU's threshold (QEMU 10).
    Threshold,
}

impl From<SyncArg> for SyncModel {
    fn from(arg: SyncArg) -> Self {
        match arg {
            SyncArg::FullPass => SyncModel::FullPass,
            SyncArg::Threshold => SyncModel::Threshold,
        }
    }
}

impl SimArgs {
    fn sim_config(&self) -> Result<SimConfig> {
        if !(self.bandwidth_mbit.is_finite() && self.bandwidth_mbit > 0.0) {
            bail_usage!("--bandwidth-mbit must be > 0, got {}", self.bandwidth_mbit);
        }
        if !(0.0..0.9).contains(&self.bandwidth_jitter) {
            bail_usage!(
                "--bandwidth-jitter must be in [0, 0.9), got {}",
                self.bandwidth_jitter
            );
        }
        if let Some(w) = self.warmup_s.filter(|w| !(w.is_finite() && *w >= 0.0)) {
            bail_usage!("--warmup-s must be >= 0, got {w}");
        }
        if !(self.time_cap_s.is_finite() && self.time_cap_s > 0.0) {
            bail_usage!("--time-cap-s must be > 0, got {}", self.time_cap_s);
        }
        Ok(SimConfig {
            bandwidth_bytes_per_s: self.bandwidth_mbit * 1e6 / 8.0,
            bandwidth_jitter: self.bandwidth_jitter,
            seed: self.seed,
            warmup_s: self.warmup_s.unwrap_or(0.0),
            time_cap_s: self.time_cap_s,
            sync_model: self.sync.into(),
        })
    }

    fn workload_files(&self) -> Result<Vec<PathBuf>> {
        match (&self.workload, &self.suite) {
            (Some(file), None) => Ok(vec![file.clone()]),
            (None, Some(dir)) => Ok(suite_files(dir)?),
            _ => bail_usage!("give exactly one of --workload FILE or --suite DIR"),
        }
    }
}

fn write_trace(
    dir: &Path,
    workload: &Workload,
    sim_cfg: &SimConfig,
    args: &SimArgs,
) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(format!("{}.observe.csv", workload.name));
    let run = never_stop_run(workload, &args.policy.config()?, sim_cfg)?;
    let file =
        std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    let mut writer = TraceWriter::new(std::io::BufWriter::new(file))?;
    for r in &run.rounds {
        writer.write(
            &r.observation,
            &TracedDecision {
                action: r.decision.action.name(),
                reason: r.decision.reason.name(),
                throttle_pct: r.decision.throttle_pct,
                sync_below_ms: r.decision.sync_below_ms,
            },
        )?;
    }
    writer.finish()?;
    Ok(path)
}

/// A migration of `workload` that never stops (up to the time cap), under
/// the observing policy: the oracle's rounds, the forecasts' truth.
fn never_stop_run(workload: &Workload, cfg: &PolicyConfig, sim_cfg: &SimConfig) -> Result<SimRun> {
    let mut observer = PolicySpec::Library(PolicyKind::Observe).build(cfg)?;
    Ok(simulate(workload, observer.as_mut(), sim_cfg, None))
}

fn explain(
    workload: &Workload,
    specs: &[PolicySpec],
    sim_cfg: &SimConfig,
    cfg: &PolicyConfig,
) -> Result<()> {
    for &spec in specs {
        let mut policy = spec.build(cfg)?;
        let run = simulate(workload, policy.as_mut(), sim_cfg, None);
        table::print_explain(
            &format!("{} / {spec}", workload.name),
            run.rounds.iter().map(|r| (&r.observation, &r.decision)),
        );
    }
    Ok(())
}

/// `--forecast-quality`'s line for one workload.
#[derive(Debug, Serialize)]
struct QualityLine<'a> {
    workload: &'a str,
    /// The weight `predictive` decided under (its deciding rounds depend
    /// on it).
    downtime_weight: f64,
    forecast_quality: ForecastQuality,
}

fn quality(
    workload: &Workload,
    cfg: &PolicyConfig,
    sim_cfg: &SimConfig,
) -> Result<ForecastQuality> {
    let run = never_stop_run(workload, cfg, sim_cfg)?;
    let all: Vec<_> = run.rounds.iter().map(|r| r.observation).collect();
    let rounds = while_running(&all, cfg.downtime_limit_ms);
    let segments: Vec<u64> = run.rounds.iter().map(|r| r.phase_serial).collect();
    Ok(forecast_quality(rounds, &segments[..rounds.len()], cfg, 3)?)
}

fn print_quality(lines: &[QualityLine]) {
    println!();
    println!("forecast quality along each never-stop run (predictive; steady phases; MAPE %, interval coverage %):");
    println!(
        "{:<18} {:>6} {:>10} {:>10} {:>9} {:>9} {:>9} {:>11}",
        "workload", "scored", "pending_1", "pending_3", "cover_1", "rate_1", "rate_3", "no-conv ok"
    );
    for l in lines {
        let q = &l.forecast_quality;
        println!(
            "{:<18} {:>6} {:>10.1} {:>10.1} {:>9.0} {:>9.1} {:>9.1} {:>11}",
            l.workload,
            q.pending_1.count,
            q.pending_1.mape_pct,
            q.pending_h.mape_pct,
            q.pending_1.coverage_pct,
            q.dirty_rate_1.mape_pct,
            q.dirty_rate_h.mape_pct,
            format!("{}/{}", q.no_convergence_right, q.no_convergence_verdicts)
        );
    }
}

fn pareto(
    dir: &Path,
    workload: &Workload,
    rows: &[RunSummary],
    cfg: &PolicyConfig,
    sim_cfg: &SimConfig,
) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let run = never_stop_run(workload, cfg, sim_cfg)?;
    let stops: Vec<(f64, f64)> = run
        .rounds
        .iter()
        .skip(1)
        .map(|r| {
            let StopCost {
                total_time_ms,
                downtime_ms,
                ..
            } = r.stop_cost;
            (downtime_ms, total_time_ms / 1000.0)
        })
        .collect();
    let points: Vec<ParetoPoint> = rows
        .iter()
        .filter_map(|r| {
            r.downtime_ms.map(|d| ParetoPoint {
                label: r.policy.clone(),
                downtime_ms: d,
                total_s: r.total_time_ms / 1000.0,
            })
        })
        .collect();
    let oracle = rows.iter().find_map(|r| r.oracle).map(|o| ParetoPoint {
        label: format!("oracle at λ = {}", cfg.downtime_weight),
        downtime_ms: o.stop.downtime_ms,
        total_s: o.stop.total_time_ms / 1000.0,
    });
    let path = dir.join(format!("{}-pareto.png", workload.name));
    plot_pareto(
        &path,
        &format!(
            "{} (simulated): total time against downtime, L = {:.0} ms, M = {:.0} ms",
            workload.name, cfg.downtime_limit_ms, cfg.max_downtime_ms
        ),
        &pareto_frontier(&stops),
        &points,
        oracle.as_ref(),
    )?;
    Ok(path)
}

/// Run `kairos sim`.
pub fn run(args: &SimArgs) -> Result<()> {
    let specs = args.policy.specs()?;
    let policy_cfg = args.policy.config()?;
    let sim_cfg = args.sim_config()?;
    let files = args.workload_files()?;
    // Parse everything first: a bad file stops the run before any work.
    let workloads = files
        .iter()
        .map(|f| Workload::from_file(f).map_err(anyhow::Error::from))
        .collect::<Result<Vec<_>>>()?;
    let mut report = table::Report::new(args.json);
    let mut qualities = Vec::new();
    for (i, workload) in workloads.iter().enumerate() {
        if workloads.len() > 1 {
            eprintln!("[{}/{}] {}", i + 1, workloads.len(), workload.name);
        }
        let sim_cfg = SimConfig {
            warmup_s: args.warmup_s.or(workload.migrate_at_s).unwrap_or(0.0),
            ..sim_cfg
        };
        if let Some(dir) = &args.trace_dir {
            let path = write_trace(dir, workload, &sim_cfg, args)?;
            eprintln!("  trace: {}", path.display());
        }
        if args.explain {
            explain(workload, &specs, &sim_cfg, &policy_cfg)?;
        }
        let rows = simulate_workload(workload, &specs, &policy_cfg, &sim_cfg)?;
        if let Some(dir) = &args.plot_dir {
            let path = pareto(dir, workload, &rows, &policy_cfg, &sim_cfg)?;
            eprintln!("  plot: {}", path.display());
        }
        report.add(rows)?;
        if args.forecast_quality {
            let line = QualityLine {
                workload: &workload.name,
                downtime_weight: policy_cfg.downtime_weight,
                forecast_quality: quality(workload, &policy_cfg, &sim_cfg)?,
            };
            if args.json {
                println!("{}", serde_json::to_string(&line)?);
            }
            qualities.push(line);
        }
    }
    report.finish();
    if args.forecast_quality && !args.json {
        print_quality(&qualities);
    }
    Ok(())
}

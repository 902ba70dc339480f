//! `kairos compare`: the matrix of real migrations (workloads × policies ×
//! repeats), each workload's oracle from a never-stop migration, costs and
//! regret under each downtime weight, and the reports and plots.
//!
//! Split by job: this module runs the matrix; [`store`] keeps every
//! finished run (resumable); [`stats`] computes the cells once; [`report`]
//! writes the CSV and Markdown; [`plots`] draws.

pub(crate) mod order;
mod plots;
mod report;
mod stats;
pub(crate) mod store;

use crate::cmd::usage::{bail_usage, OrUsage};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use kairos_eval::forecast_quality::{change_segments, forecast_quality, while_running};
use kairos_eval::sim::workload::suite_files;
use kairos_eval::trace::read_trace_file;
use kairos_policy_core::cost::Objective;
use kairos_policy_core::PolicyConfig;

use crate::cmd::live_options::{workload_name, LiveArgs, WorkloadRef};
use crate::live::interrupt;
use crate::live::oracle::{oracle_from_trace, LiveOracle};
use crate::live::run::{run_migration, unix_now_s, LiveResult, CODE_COMMIT};
use crate::live::spec::LiveSpec;
use report::WorkloadQuality;
use store::Store;

/// The policies every comparison should hold (the project's rule: QEMU's
/// rule at the limit and at the maximum, auto-converge, KubeVirt's ramp
/// and stall detector, and Kairos).
pub const DEFAULT_POLICIES: &str =
    "qemu,qemu@max,auto-converge,kubevirt-ramp,kubevirt-stall,predictive";

/// Arguments of `kairos compare`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  kairos compare --suite phase-change,hot-wss --repeat 3
  kairos compare --suite testbed/workloads --policies qemu,qemu@max,predictive \\
      --downtime-weights 3,10,30 --out build/compare-all")]
pub struct CompareArgs {
    /// A directory of workload programs, or a comma-separated list of
    /// workload names or benchmarks.
    #[arg(long)]
    pub suite: String,
    /// Comma-separated live policies (`qemu@max` is QEMU's rule at
    /// --max-downtime-ms; `predictive` runs once per downtime weight).
    #[arg(long, default_value = DEFAULT_POLICIES, value_name = "NAME[,NAME...]")]
    pub policies: String,
    /// Downtime weights λ the costs are reported under, comma-separated.
    #[arg(long, default_value = "10", value_name = "λ[,λ...]")]
    pub downtime_weights: String,
    /// Migrations per cell.
    #[arg(long, default_value_t = 3)]
    pub repeat: u32,
    /// Output directory (finished runs there are not run again).
    #[arg(long, default_value = "build/compare")]
    pub out: PathBuf,
    /// Length of each workload's never-stop migration, from which its
    /// oracle is computed, seconds; 0: no oracle.
    #[arg(long, default_value_t = 60.0, value_name = "S")]
    pub oracle_s: f64,
    /// The order of the runs: `interleaved` makes one run of every cell
    /// per pass, in an order drawn from --order-seed, so no cell's repeats
    /// run back to back; `cell-by-cell` makes each cell's repeats in a row.
    #[arg(long, value_enum, default_value_t = RunOrder::Interleaved)]
    pub order: RunOrder,
    /// Seed of the interleaved order (the same seed, the same order: a
    /// resumed campaign keeps it).
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub order_seed: u64,
    /// Resume a campaign whose runs were made by another commit's code
    /// (each run records its own; a table then mixes them).
    #[arg(long)]
    pub allow_mixed_commits: bool,
    #[command(flatten)]
    pub live: LiveArgs,
}

impl CompareArgs {
    /// The downtime weights, checked.
    fn weights(&self) -> Result<Vec<f64>> {
        let weights: Vec<f64> = self
            .downtime_weights
            .split(',')
            .map(|w| {
                w.trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|x| x.is_finite() && *x >= 0.0)
                    .with_context(|| format!("--downtime-weights: '{w}' is not a number >= 0"))
            })
            .collect::<Result<_>>()
            .or_usage()?;
        if weights.is_empty() {
            bail_usage!("--downtime-weights names no weight");
        }
        Ok(weights)
    }

    /// The policies, with `qemu@max` resolved and `predictive` expanded to
    /// one cell per weight when there are several.
    fn specs(&self, weights: &[f64]) -> Result<Vec<LiveSpec>> {
        let mut specs = Vec::new();
        for name in self
            .policies
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            let name = if name == "qemu@max" {
                format!("qemu@{}", self.live.max_downtime_ms)
            } else {
                name.to_string()
            };
            let spec: LiveSpec =
                crate::cmd::live_options::live_spec(&name).map_err(anyhow::Error::msg)?;
            match spec {
                LiveSpec::Predictive(None) if weights.len() > 1 => {
                    specs.extend(weights.iter().map(|w| LiveSpec::Predictive(Some(*w))));
                }
                LiveSpec::Predictive(None) => specs.push(LiveSpec::Predictive(Some(weights[0]))),
                other => specs.push(other),
            }
        }
        if specs.is_empty() {
            bail_usage!("--policies names no policy");
        }
        Ok(specs)
    }

    fn workloads(&self) -> Result<Vec<WorkloadRef>> {
        let root = &self.live.root;
        if Path::new(&self.suite).is_dir() {
            suite_files(Path::new(&self.suite))?
                .iter()
                .map(|f| workload_name(&f.display().to_string(), root))
                .collect()
        } else {
            self.suite
                .split(',')
                .map(|w| workload_name(w.trim(), root))
                .collect()
        }
    }
}

/// Progress of the matrix: position, time spent, and an estimate of what is
/// left from the runs made so far (kept runs cost nothing).
struct Progress {
    total: usize,
    position: usize,
    started: Instant,
    runs_made: u32,
    run_time: Duration,
}

impl Progress {
    fn new(total: usize) -> Self {
        Self {
            total,
            position: 0,
            started: Instant::now(),
            runs_made: 0,
            run_time: Duration::ZERO,
        }
    }

    fn next(&mut self) -> String {
        self.position += 1;
        self.label()
    }

    fn ran(&mut self, took: Duration) {
        self.runs_made += 1;
        self.run_time += took;
    }

    /// `[5/60, 3m10s, ~40m00s left]`.
    fn label(&self) -> String {
        let minutes = |d: Duration| {
            let s = d.as_secs();
            format!("{}m{:02}s", s / 60, s % 60)
        };
        let left = (self.runs_made > 0).then(|| {
            let per_run = self.run_time / self.runs_made;
            let remaining = self.total.saturating_sub(self.position) as u32;
            format!(", ~{} left", minutes(per_run * remaining))
        });
        format!(
            "[{}/{}, {}{}]",
            self.position,
            self.total,
            minutes(self.started.elapsed()),
            left.unwrap_or_default()
        )
    }
}

/// What one cell run said, for the progress line.
fn outcome(r: &LiveResult) -> String {
    format!(
        "{} in {}, downtime {}",
        r.status,
        r.total_time_ms
            .map_or("-".into(), |t| format!("{:.1} s", t / 1000.0)),
        r.downtime_ms.map_or("-".into(), |d| format!("{d:.0} ms"))
    )
}

/// The order of a comparison's runs ([`order`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RunOrder {
    /// One run of every cell per pass, in a seeded random order.
    Interleaved,
    /// Each cell's repeats one after the other.
    CellByCell,
}

/// Run `kairos compare`.
pub fn run(args: &CompareArgs) -> Result<()> {
    let weights = args.weights()?;
    let specs = args.specs(&weights)?;
    let workload_refs = args.workloads()?;
    let workloads: Vec<String> = workload_refs.iter().map(|w| w.name.clone()).collect();
    if args.repeat == 0 || workloads.is_empty() {
        bail_usage!("nothing to run: give workloads and --repeat >= 1");
    }
    if !(args.oracle_s.is_finite() && args.oracle_s >= 0.0) {
        bail_usage!("--oracle-s must be >= 0");
    }
    let cfg = args.live.policy_config()?;
    args.live.prepare()?;
    let store = store::open_announced(
        &args.out,
        CODE_COMMIT,
        args.allow_mixed_commits,
        unix_now_s(),
    )?;

    let with_oracle = args.oracle_s > 0.0;
    let total = workloads.len() * (specs.len() * args.repeat as usize + usize::from(with_oracle));
    let mut progress = Progress::new(total);
    let mut results: Vec<LiveResult> = Vec::new();
    let mut oracles: Vec<LiveOracle> = Vec::new();
    let mut failures: Vec<String> = Vec::new();
    let mut attempt = |name: String,
                       label: String,
                       progress: &mut Progress,
                       job: &mut dyn FnMut() -> Result<()>|
     -> Result<()> {
        let started = Instant::now();
        match job() {
            Ok(()) => {
                progress.ran(started.elapsed());
                Ok(())
            }
            Err(e) if interrupt::is_interruption(&e) => Err(e),
            Err(e) => {
                // Any other failure is reported and the matrix goes on (a
                // rerun retries the run).
                eprintln!("{label} {name}: FAILED: {e:#}");
                failures.push(format!("{name}: {e:#}"));
                Ok(())
            }
        }
    };
    // The oracles first (one never-stop run per workload), then the cells.
    if with_oracle {
        for workload in &workload_refs {
            let label = progress.next();
            let name = format!("{workload}__oracle");
            if let Some(o) = store.load::<LiveOracle>(&name) {
                eprintln!("{label} {name}: done before, kept");
                oracles.push(o);
            } else {
                attempt(name.clone(), label.clone(), &mut progress, &mut || {
                    if let Some(o) = record_oracle(args, workload, &store, &name, &label)? {
                        oracles.push(o);
                    }
                    Ok(())
                })?;
            }
        }
    }
    let cells: Vec<(&WorkloadRef, LiveSpec)> = workload_refs
        .iter()
        .flat_map(|w| specs.iter().map(move |&spec| (w, spec)))
        .collect();
    let jobs = match args.order {
        RunOrder::Interleaved => order::interleaved(cells.len(), args.repeat, args.order_seed),
        RunOrder::CellByCell => order::cell_by_cell(cells.len(), args.repeat),
    };
    for job in jobs {
        let (workload, spec) = cells[job.cell];
        let i = job.repeat;
        let label = progress.next();
        // '=' would break QEMU's option parsing of the paths.
        let name = format!("{workload}__{spec}__{i}").replace('=', "");
        if let Some(mut r) = store.load::<LiveResult>(&name) {
            eprintln!("{label} {name}: done before, kept");
            if !r.rescore_from_logs(&store.work_dir(&name)) {
                eprintln!(
                    "{label} {name}: its guest logs do not give the migration's start; \
                     app loss as stored"
                );
            }
            results.push(r);
            continue;
        }
        eprintln!("{label} {name}: running");
        attempt(name.clone(), label, &mut progress, &mut || {
            let run_cfg = args.live.config(workload, spec, store.work_dir(&name))?;
            let result = run_migration(&run_cfg)?;
            store.save(&name, &result)?;
            eprintln!("{} {name}: {}", progress_label_now(&name), outcome(&result));
            results.push(result);
            Ok(())
        })?;
    }

    let policies: Vec<String> = specs.iter().map(ToString::to_string).collect();
    let objectives: Vec<Objective> = weights
        .iter()
        .map(|&w| Objective {
            downtime_weight: w,
            ..Objective::from_config(&cfg)
        })
        .collect();
    let cells_by_weight: Vec<(Objective, Vec<stats::CellStats>)> = objectives
        .iter()
        .map(|o| {
            (
                *o,
                stats::cells(&workloads, &policies, &results, &oracles, o),
            )
        })
        .collect();
    let quality = forecast_qualities(&oracles, &cfg);
    report::write_runs_csv(&args.out.join("runs.csv"), &results, &objectives)?;
    let all_cells: Vec<stats::CellStats> = cells_by_weight
        .iter()
        .flat_map(|(_, c)| c.iter().cloned())
        .collect();
    report::write_summary_csv(&args.out.join("summary.csv"), &all_cells)?;
    let md = report::summary_markdown(&workloads, &cells_by_weight, &oracles, &quality)?;
    std::fs::write(args.out.join("summary.md"), &md)?;
    std::fs::write(
        args.out.join("quality.json"),
        serde_json::to_string_pretty(&quality)?,
    )?;
    println!("{md}");

    let plot_dir = args.out.join("plots");
    std::fs::create_dir_all(&plot_dir)?;
    for w in &workloads {
        let drawn = plots::draw(
            &plot_dir,
            &plots::WorkloadPlots {
                workload: w,
                results: &results,
                cells: &cells_by_weight[0].1,
                oracle: oracles.iter().find(|o| &o.workload == w),
                objectives: &objectives,
                cfg: &cfg,
            },
        );
        for p in drawn {
            eprintln!("plot: {}", p.display());
        }
    }
    eprintln!(
        "raw runs: {}\nsummary: {}, {} and {}",
        store.dir().display(),
        args.out.join("runs.csv").display(),
        args.out.join("summary.csv").display(),
        args.out.join("summary.md").display()
    );
    if !failures.is_empty() {
        bail!(
            "{} of {total} runs failed (not in the summary; run again to retry them):\n  {}",
            failures.len(),
            failures.join("\n  ")
        );
    }
    Ok(())
}

/// The progress prefix for a line printed from inside a run (the shared
/// counter is borrowed by the matrix loop).
fn progress_label_now(name: &str) -> String {
    format!("[{name}]")
}

/// Forecast quality along each oracle's never-stop trace, while a
/// migration at the comparison's limit would still be running, phases
/// split by the change detector.
fn forecast_qualities(oracles: &[LiveOracle], cfg: &PolicyConfig) -> Vec<WorkloadQuality> {
    oracles
        .iter()
        .filter_map(|o| {
            let rows = read_trace_file(&o.trace).ok()?;
            let all: Vec<_> = rows.iter().map(|r| r.observation).collect();
            let rounds = while_running(&all, cfg.downtime_limit_ms);
            let segments = change_segments(rounds);
            let quality = forecast_quality(rounds, &segments, cfg, 3).ok()?;
            Some(WorkloadQuality {
                workload: o.workload.clone(),
                quality,
            })
        })
        .collect()
}

/// The oracle of `workload`: its never-stop migration (QEMU's rule at a
/// 1 ms limit, recording every sync; kept like any other run) and what its
/// trace says. None, with a message, when the trace gives no oracle: the
/// policies' runs still count.
fn record_oracle(
    args: &CompareArgs,
    workload: &WorkloadRef,
    store: &Store,
    name: &str,
    label: &str,
) -> Result<Option<LiveOracle>> {
    eprintln!(
        "{label} {name}: never-stop migration for {:.0} s (QEMU downtime-limit 1 ms)",
        args.oracle_s
    );
    let mut cfg = args
        .live
        .config(workload, LiveSpec::Observe, store.work_dir(name))?;
    cfg.timeout_s = args.oracle_s;
    let run = run_migration(&cfg).with_context(|| format!("{workload} / never-stop"))?;
    let Some(trace) = run.trace.as_ref() else {
        eprintln!("{label} {name}: no trace came back; no oracle for {workload}");
        return Ok(None);
    };
    match oracle_from_trace(&workload.name, trace) {
        Ok(o) => {
            store.save(name, &o)?;
            eprintln!(
                "{label} {name}: {} syncs in {:.0} s, lowest reachable downtime {:.0} ms",
                o.trace_rounds, o.trace_s, o.lowest_downtime_ms
            );
            Ok(Some(o))
        }
        Err(e) => {
            eprintln!("{label} {name}: {e:#}; no oracle for {workload}");
            Ok(None)
        }
    }
}

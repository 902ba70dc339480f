//! `kairos compare`: the matrix of real migrations, resumable, with a raw
//! JSON file per run, a CSV summary, a Markdown table of medians with each
//! cell's regret to the workload's oracle, and PNG plots.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use kairos_eval::sim::workload::suite_files;

use crate::cmd_run::{workload_name, LiveArgs};
use crate::live::oracle::{forecast_along, oracle_from_trace, LiveOracle};
use crate::live::policy::LivePolicy;
use crate::live::run::{run_migration, LiveResult};
use crate::plot::{plot_bars, plot_forecast, plot_series, Series};
use kairos_eval::trace::read_trace_file;

/// Arguments of `kairos compare`.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// A directory of workload programs, or a comma-separated list of
    /// workload names.
    #[arg(long)]
    pub suite: String,
    /// Comma-separated policies.
    #[arg(long, default_value = "qemu,auto-converge,predictive")]
    pub policies: String,
    /// Migrations per cell.
    #[arg(long, default_value_t = 3)]
    pub repeat: u32,
    /// Output directory (finished cells there are not run again).
    #[arg(long, default_value = "build/compare")]
    pub out: PathBuf,
    /// Length of each workload's never-stop migration, from which its
    /// oracle is computed, seconds; 0: no oracle.
    #[arg(long, default_value_t = 60.0)]
    pub oracle_s: f64,
    #[command(flatten)]
    pub live: LiveArgs,
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

fn spread(v: &[f64]) -> Option<(f64, f64)> {
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    lo.is_finite().then_some((lo, hi))
}

/// Progress of the matrix: position, time spent, and an estimate of what is
/// left from the runs made so far (kept cells cost nothing).
struct Progress {
    total: usize,
    position: usize,
    started: std::time::Instant,
    runs_made: u32,
    run_time: std::time::Duration,
}

impl Progress {
    fn new(total: usize) -> Self {
        Self {
            total,
            position: 0,
            started: std::time::Instant::now(),
            runs_made: 0,
            run_time: std::time::Duration::ZERO,
        }
    }

    fn next(&mut self) {
        self.position += 1;
    }

    fn ran(&mut self, took: std::time::Duration) {
        self.runs_made += 1;
        self.run_time += took;
    }

    /// `[5/60, 3m10s, ~40m left]`.
    fn label(&self) -> String {
        let minutes = |d: std::time::Duration| {
            let s = d.as_secs();
            format!("{}m{:02}s", s / 60, s % 60)
        };
        let left = (self.runs_made > 0).then(|| {
            let per_run = self.run_time / self.runs_made;
            let remaining = (self.total + 1).saturating_sub(self.position) as u32;
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

/// Run `kairos compare`.
pub fn run(args: &CompareArgs) -> Result<()> {
    let root = &args.live.root;
    let workloads: Vec<String> = if std::path::Path::new(&args.suite).is_dir() {
        suite_files(std::path::Path::new(&args.suite))?
            .iter()
            .map(|f| workload_name(&f.display().to_string(), root))
            .collect::<Result<_>>()?
    } else {
        args.suite
            .split(',')
            .map(|w| workload_name(w.trim(), root))
            .collect::<Result<_>>()?
    };
    let policies: Vec<LivePolicy> = args
        .policies
        .split(',')
        .map(|p| LivePolicy::from_name(p.trim()))
        .collect::<Result<_>>()?;
    if args.repeat == 0 || workloads.is_empty() || policies.is_empty() {
        bail!("nothing to run: give workloads, policies and --repeat >= 1");
    }
    if !(args.oracle_s.is_finite() && args.oracle_s >= 0.0) {
        bail!("--oracle-s must be >= 0");
    }
    args.live.prepare()?;
    let runs_dir = args.out.join("runs");
    std::fs::create_dir_all(&runs_dir)
        .with_context(|| format!("creating {}", runs_dir.display()))?;

    let with_oracle = args.oracle_s > 0.0;
    let total =
        workloads.len() * (policies.len() * args.repeat as usize + usize::from(with_oracle));
    let mut progress = Progress::new(total);
    let mut results: Vec<LiveResult> = Vec::new();
    let mut oracles: Vec<LiveOracle> = Vec::new();
    let mut failures: Vec<String> = Vec::new();
    for workload in &workloads {
        if with_oracle {
            progress.next();
            let label = progress.label();
            let started = std::time::Instant::now();
            match oracle_for(args, workload, &runs_dir, &label) {
                Ok(Some(o)) => oracles.push(o),
                Ok(None) => {}
                Err(e) if crate::live::interrupt::check().is_err() => return Err(e),
                Err(e) => {
                    eprintln!("{label} {workload}__oracle: FAILED: {e:#}");
                    failures.push(format!("{workload}__oracle: {e:#}"));
                }
            }
            progress.ran(started.elapsed());
        }
        for &policy in &policies {
            for i in 1..=args.repeat {
                progress.next();
                let done = progress.label();
                let name = format!("{workload}__{}__{i}", policy.name());
                let json_path = runs_dir.join(format!("{name}.json"));
                if let Ok(text) = std::fs::read_to_string(&json_path) {
                    if let Ok(r) = serde_json::from_str::<LiveResult>(&text) {
                        eprintln!("{done} {name}: done before, kept");
                        results.push(r);
                        continue;
                    }
                }
                eprintln!("{done} {name}: running");
                let started = std::time::Instant::now();
                let cfg = args.live.config(workload, policy, runs_dir.join(&name))?;
                let result = match run_migration(&cfg) {
                    Ok(result) => result,
                    // Ctrl-C stops the matrix; any other failure is reported
                    // and the matrix goes on (a rerun retries the cell).
                    Err(e) if crate::live::interrupt::check().is_err() => return Err(e),
                    Err(e) => {
                        eprintln!("{} {name}: FAILED: {e:#}", progress.label());
                        failures.push(format!("{name}: {e:#}"));
                        continue;
                    }
                };
                let tmp = json_path.with_extension("json.tmp");
                std::fs::write(&tmp, serde_json::to_string_pretty(&result)?)?;
                std::fs::rename(&tmp, &json_path)?;
                progress.ran(started.elapsed());
                eprintln!(
                    "{} {name}: {} in {:.1} s, downtime {} ms",
                    progress.label(),
                    result.status,
                    result.total_time_ms.unwrap_or(f64::NAN) / 1000.0,
                    result.downtime_ms.map_or("-".into(), |d| format!("{d:.0}"))
                );
                results.push(result);
            }
        }
    }
    write_summary(args, &workloads, &policies, &results, &oracles)?;
    write_plots(args, &workloads, &policies, &results, &oracles);
    if !failures.is_empty() {
        bail!(
            "{} of {total} runs failed (not in the summary; run again to retry them):\n  {}",
            failures.len(),
            failures.join("\n  ")
        );
    }
    Ok(())
}

/// The oracle of `workload`: its never-stop migration (run once, kept like
/// any other run) and what its trace says. None, with a message, when the
/// trace gives no oracle: the policies' runs still count.
fn oracle_for(
    args: &CompareArgs,
    workload: &str,
    runs_dir: &std::path::Path,
    progress: &str,
) -> Result<Option<LiveOracle>> {
    let name = format!("{workload}__oracle");
    let json_path = runs_dir.join(format!("{name}.json"));
    if let Ok(text) = std::fs::read_to_string(&json_path) {
        if let Ok(o) = serde_json::from_str::<LiveOracle>(&text) {
            eprintln!("{progress} {name}: done before, kept");
            return Ok(Some(o));
        }
    }
    eprintln!(
        "{progress} {name}: never-stop migration for {:.0} s (QEMU downtime-limit 1 ms)",
        args.oracle_s
    );
    let mut cfg = args.live.config(
        workload,
        LivePolicy::Library("never-stop"),
        runs_dir.join(&name),
    )?;
    // QEMU syncs when what is left to send falls below bandwidth ×
    // downtime-limit: at 1 ms, once a round has (nearly) drained; at 0 it
    // would never sync again.
    cfg.downtime_limit_ms = 1;
    cfg.timeout_s = args.oracle_s;
    let run = run_migration(&cfg).with_context(|| format!("{workload} / never-stop"))?;
    let Some(trace) = run.trace.as_ref() else {
        eprintln!("{progress} {name}: no trace came back; no oracle for {workload}");
        return Ok(None);
    };
    match oracle_from_trace(workload, trace) {
        Ok(o) => {
            let tmp = json_path.with_extension("json.tmp");
            std::fs::write(&tmp, serde_json::to_string_pretty(&o)?)?;
            std::fs::rename(&tmp, &json_path)?;
            if let Some(c) = o.choice(&args.objective()) {
                eprintln!(
                    "{progress} {name}: best stop at round {} ({:.1} s, downtime {:.0} ms, cost {:.1} s)",
                    c.stop.round,
                    c.stop.total_time_ms / 1000.0,
                    c.stop.downtime_ms,
                    c.cost_ms / 1000.0,
                );
            }
            eprintln!(
                "{progress} {name}: lowest reachable downtime {:.0} ms",
                o.lowest_downtime_ms
            );
            Ok(Some(o))
        }
        Err(e) => {
            eprintln!("{progress} {name}: {e:#}; no oracle for {workload}");
            Ok(None)
        }
    }
}

/// Per workload: pending bytes over time for each policy's first run (from
/// its per-round trace, the stop marked), and median total time per policy.
/// A plot that cannot be drawn is reported and skipped: the runs are kept.
fn write_plots(
    args: &CompareArgs,
    workloads: &[String],
    policies: &[LivePolicy],
    results: &[LiveResult],
    oracles: &[LiveOracle],
) {
    let dir = args.out.join("plots");
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("plots: {e}");
        return;
    }
    for w in workloads {
        let mut series = Vec::new();
        let mut bars = Vec::new();
        for p in policies {
            let cell: Vec<&LiveResult> = results
                .iter()
                .filter(|r| &r.workload == w && r.policy == p.name())
                .collect();
            if let Some(first) = cell.first() {
                if let Some(rows) = first.trace.as_ref().and_then(|t| read_trace_file(t).ok()) {
                    let points: Vec<(f64, f64)> = rows
                        .iter()
                        .skip(1) // round 1 is all of RAM
                        .map(|r| {
                            (
                                r.observation.elapsed_ms as f64 / 1000.0,
                                r.observation.pending_bytes as f64 / 1e6,
                            )
                        })
                        .collect();
                    let stop = if first.converged {
                        points.last().copied()
                    } else {
                        None
                    };
                    series.push(Series {
                        label: p.name().to_string(),
                        points,
                        stop,
                    });
                }
            }
            let times: Vec<f64> = cell
                .iter()
                .filter(|r| r.converged)
                .filter_map(|r| r.total_time_ms)
                .map(|t| t / 1000.0)
                .collect();
            if let Some(m) = median(times) {
                bars.push((p.name().to_string(), m));
            }
        }
        if let Some(o) = oracles.iter().find(|o| &o.workload == w) {
            let png = dir.join(format!("{w}-forecast.png"));
            let stops: Vec<(String, (f64, f64))> = series
                .iter()
                .filter_map(|s| s.stop.map(|p| (s.label.clone(), p)))
                .collect();
            match forecast_plot(args, o, &stops, &png) {
                Ok(()) => eprintln!("plot: {}", png.display()),
                Err(e) => eprintln!("plot {}: {e:#}", png.display()),
            }
        }
        let pending_png = dir.join(format!("{w}-pending.png"));
        let time_png = dir.join(format!("{w}-total-time.png"));
        let drawn = [
            (!series.is_empty()).then(|| {
                plot_series(
                    &pending_png,
                    &format!("{w}: pending after each sync (x = stop)"),
                    "pending, MB",
                    &series,
                )
            }),
            (!bars.is_empty()).then(|| {
                plot_bars(
                    &time_png,
                    &format!("{w}: median total migration time (converged runs)"),
                    "seconds",
                    &bars,
                )
            }),
        ];
        for (result, path) in drawn.into_iter().zip([&pending_png, &time_png]) {
            match result {
                Some(Ok(())) => eprintln!("plot: {}", path.display()),
                Some(Err(e)) => eprintln!("plot {}: {e:#}", path.display()),
                None => {}
            }
        }
    }
}

/// The never-stop trace's pending bytes and dirty rate with `predictive`'s
/// one-round-ahead forecast band, the oracle's stop and each policy's.
fn forecast_plot(
    args: &CompareArgs,
    oracle: &LiveOracle,
    stops: &[(String, (f64, f64))],
    png: &std::path::Path,
) -> Result<()> {
    let rows = read_trace_file(&oracle.trace)?;
    let cfg = kairos_policy_core::PolicyConfig {
        downtime_limit_ms: args.live.downtime_limit_ms as f64,
        max_downtime_ms: args.live.max_downtime_ms as f64,
        ..Default::default()
    };
    // Round 1 is all of RAM: it would flatten the rest.
    let along: Vec<_> = forecast_along(&rows, &cfg)?.into_iter().skip(1).collect();
    let oracle_point = rows
        .iter()
        .find(|r| {
            r.observation.round
                == oracle
                    .choice(&at_max_objective(args))
                    .map_or(0, |c| c.stop.round)
        })
        .map(|r| {
            (
                r.observation.elapsed_ms as f64 / 1000.0,
                r.observation.pending_bytes as f64 / 1e6,
            )
        });
    let mut marks: Vec<(String, (f64, f64))> = stops.to_vec();
    if let Some(p) = oracle_point {
        marks.push((format!("oracle (≤ {} ms)", args.live.max_downtime_ms), p));
    }
    plot_forecast(
        png,
        &format!(
            "{}: never-stop migration, predictive's forecast band, stops",
            oracle.workload
        ),
        &along,
        &marks,
    )
}

fn write_summary(
    args: &CompareArgs,
    workloads: &[String],
    policies: &[LivePolicy],
    results: &[LiveResult],
    oracles: &[LiveOracle],
) -> Result<()> {
    let oracle_of = |w: &str| oracles.iter().find(|o| o.workload == w);
    let mut csv = String::from("workload,policy,status,total_time_ms,downtime_ms,guest_pause_ms,sent_bytes,rounds,app_loss_pct,reason,oracle_limit_total_time_ms,oracle_max_total_time_ms,regret_ms\n");
    for r in results {
        let o = |v: Option<f64>| v.map_or(String::new(), |x| format!("{x:.1}"));
        let oracle = oracle_of(&r.workload);
        let oracle_ms = oracle
            .and_then(|o| o.choice(&at_max_objective(args)))
            .map(|c| c.stop.total_time_ms);
        let regret = match (r.converged, r.total_time_ms, oracle_ms) {
            (true, Some(t), Some(o)) => Some(t - o),
            _ => None,
        };
        writeln!(
            csv,
            "{},{},{},{},{},{},{},{},{},{},{},{},{}",
            r.workload,
            r.policy,
            r.status,
            o(r.total_time_ms),
            o(r.downtime_ms),
            o(r.guest_pause_ms),
            r.sent_bytes.map_or(String::new(), |b| b.to_string()),
            r.rounds.map_or(String::new(), |b| b.to_string()),
            o(r.app_loss_pct),
            r.reason.as_deref().unwrap_or(""),
            o(oracle
                .and_then(|o| o.choice(&at_limit_objective(args)))
                .map(|c| c.stop.total_time_ms)),
            o(oracle_ms),
            o(regret)
        )?;
    }
    std::fs::write(args.out.join("summary.csv"), csv)?;

    let mut md = String::from(
        "| workload | policy | converged | total s (median [min–max]) | downtime ms | guest pause ms | sent MiB | app loss % | × oracle ≤ limit | × oracle ≤ max | regret s |\n|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for w in workloads {
        let oracle = oracle_of(w);
        if let Some(o) = oracle {
            for (bound, c) in [
                (
                    args.live.downtime_limit_ms,
                    o.choice(&at_limit_objective(args)),
                ),
                (args.live.max_downtime_ms, o.choice(&at_max_objective(args))),
            ] {
                let Some(c) = c else { continue };
                writeln!(
                    md,
                    "| {w} | *oracle, downtime ≤ {bound} ms* ({:.0} s never-stop trace) | round {} | {:.1} | {:.0}{} | | | | | | |",
                    o.trace_s,
                    c.stop.round,
                    c.stop.total_time_ms / 1000.0,
                    c.stop.downtime_ms,
                    if c.meets_limit { "" } else { " (over the limit)" }
                )?;
            }
        }
        for p in policies {
            let cell: Vec<&LiveResult> = results
                .iter()
                .filter(|r| &r.workload == w && r.policy == p.name())
                .collect();
            let conv = cell.iter().filter(|r| r.converged).count();
            let col = |get: &dyn Fn(&LiveResult) -> Option<f64>, scale: f64, d: usize| {
                let v: Vec<f64> = cell
                    .iter()
                    .filter(|r| r.converged)
                    .filter_map(|r| get(r))
                    .map(|x| x / scale)
                    .collect();
                match (median(v.clone()), spread(&v)) {
                    (Some(m), Some((lo, hi))) => format!("{m:.d$} [{lo:.d$}–{hi:.d$}]"),
                    _ => "-".to_string(),
                }
            };
            let times: Vec<f64> = cell
                .iter()
                .filter(|r| r.converged)
                .filter_map(|r| r.total_time_ms)
                .collect();
            let limit_t = oracle
                .and_then(|o| o.choice(&at_limit_objective(args)))
                .map(|c| c.stop.total_time_ms);
            let max_t = oracle
                .and_then(|o| o.choice(&at_max_objective(args)))
                .map(|c| c.stop.total_time_ms);
            let (x_limit, x_max, regret) = match (limit_t, max_t, median(times)) {
                (Some(l), Some(m), Some(t)) => (
                    format!("{:.2}", t / l),
                    format!("{:.2}", t / m),
                    format!("{:.1}", (t - m) / 1000.0),
                ),
                _ => ("-".into(), "-".into(), "-".into()),
            };
            writeln!(
                md,
                "| {w} | {} | {conv}/{} | {} | {} | {} | {} | {} | {x_limit} | {x_max} | {regret} |",
                p.name(),
                cell.len(),
                col(&|r| r.total_time_ms, 1000.0, 1),
                col(&|r| r.downtime_ms, 1.0, 0),
                col(&|r| r.guest_pause_ms, 1.0, 0),
                col(&|r| r.sent_bytes.map(|b| b as f64), 1048576.0, 0),
                col(&|r| r.app_loss_pct, 1.0, 1),
            )?;
        }
    }
    std::fs::write(args.out.join("summary.md"), &md)?;
    println!("{md}");
    eprintln!(
        "raw runs: {}\nsummary: {} and {}",
        args.out.join("runs").display(),
        args.out.join("summary.csv").display(),
        args.out.join("summary.md").display()
    );
    Ok(())
}

fn at_limit_objective(args: &CompareArgs) -> kairos_policy_core::cost::Objective {
    kairos_policy_core::cost::Objective {
        downtime_limit_ms: args.live.downtime_limit_ms as f64,
        max_downtime_ms: args.live.max_downtime_ms as f64,
        downtime_weight: f64::INFINITY,
    }
}

fn at_max_objective(args: &CompareArgs) -> kairos_policy_core::cost::Objective {
    kairos_policy_core::cost::Objective {
        downtime_weight: 0.0,
        ..at_limit_objective(args)
    }
}

impl CompareArgs {
    fn objective(&self) -> kairos_policy_core::cost::Objective {
        kairos_policy_core::cost::Objective {
            downtime_weight: kairos_policy_core::config::DEFAULT_DOWNTIME_WEIGHT,
            ..at_limit_objective(self)
        }
    }
}

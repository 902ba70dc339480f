//! `kairos compare`: the matrix of real migrations, resumable, with a raw
//! JSON file per run, a CSV summary and a Markdown table of medians.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use kairos_policy_core::sim::workload::suite_files;

use crate::cmd_run::{workload_name, LiveArgs};
use crate::live::policy::LivePolicy;
use crate::live::run::{run_migration, LiveResult};
use crate::plot::{plot_bars, plot_series, Series};
use kairos_policy_core::trace::read_trace_file;

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
    args.live.prepare()?;
    let runs_dir = args.out.join("runs");
    std::fs::create_dir_all(&runs_dir)
        .with_context(|| format!("creating {}", runs_dir.display()))?;

    let total = workloads.len() * policies.len() * args.repeat as usize;
    let mut done = 0;
    let mut results: Vec<LiveResult> = Vec::new();
    for workload in &workloads {
        for &policy in &policies {
            for i in 1..=args.repeat {
                done += 1;
                let name = format!("{workload}__{}__{i}", policy.name());
                let json_path = runs_dir.join(format!("{name}.json"));
                if let Ok(text) = std::fs::read_to_string(&json_path) {
                    if let Ok(r) = serde_json::from_str::<LiveResult>(&text) {
                        eprintln!("[{done}/{total}] {name}: done before, kept");
                        results.push(r);
                        continue;
                    }
                }
                eprintln!("[{done}/{total}] {name}: running");
                let cfg = args.live.config(workload, policy, runs_dir.join(&name))?;
                let result = run_migration(&cfg)
                    .with_context(|| format!("{workload} / {}", policy.name()))?;
                let tmp = json_path.with_extension("json.tmp");
                std::fs::write(&tmp, serde_json::to_string_pretty(&result)?)?;
                std::fs::rename(&tmp, &json_path)?;
                eprintln!(
                    "[{done}/{total}] {name}: {} in {:.1} s, downtime {} ms",
                    result.status,
                    result.total_time_ms.unwrap_or(f64::NAN) / 1000.0,
                    result.downtime_ms.map_or("-".into(), |d| format!("{d:.0}"))
                );
                results.push(result);
            }
        }
    }
    write_summary(args, &workloads, &policies, &results)?;
    write_plots(args, &workloads, &policies, &results);
    Ok(())
}

/// Per workload: pending bytes over time for each policy's first run (from
/// its per-round trace, the stop marked), and median total time per policy.
/// A plot that cannot be drawn is reported and skipped: the runs are kept.
fn write_plots(
    args: &CompareArgs,
    workloads: &[String],
    policies: &[LivePolicy],
    results: &[LiveResult],
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

fn write_summary(
    args: &CompareArgs,
    workloads: &[String],
    policies: &[LivePolicy],
    results: &[LiveResult],
) -> Result<()> {
    let mut csv = String::from("workload,policy,status,total_time_ms,downtime_ms,guest_pause_ms,sent_bytes,rounds,app_loss_pct,reason\n");
    for r in results {
        let o = |v: Option<f64>| v.map_or(String::new(), |x| format!("{x:.1}"));
        writeln!(
            csv,
            "{},{},{},{},{},{},{},{},{},{}",
            r.workload,
            r.policy,
            r.status,
            o(r.total_time_ms),
            o(r.downtime_ms),
            o(r.guest_pause_ms),
            r.sent_bytes.map_or(String::new(), |b| b.to_string()),
            r.rounds.map_or(String::new(), |b| b.to_string()),
            o(r.app_loss_pct),
            r.reason.as_deref().unwrap_or("")
        )?;
    }
    std::fs::write(args.out.join("summary.csv"), csv)?;

    let mut md = String::from(
        "| workload | policy | converged | total s (median [min–max]) | downtime ms | guest pause ms | sent MiB | app loss % |\n|---|---|---|---|---|---|---|---|\n",
    );
    for w in workloads {
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
            writeln!(
                md,
                "| {w} | {} | {conv}/{} | {} | {} | {} | {} | {} |",
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

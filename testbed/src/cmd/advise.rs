//! `kairos advise`: when to start a migration. Live, it samples a running
//! QEMU (any QEMU, patched or not, through its QMP socket) without
//! migrating it, forecasts the guest's dirty rate and advises a start;
//! with `--simulate` it judges that advice on workload programs in the
//! simulator against starting at once (at a random moment) and against the
//! ALMA-style rule.

use crate::cmd::usage::{bail_usage, OrUsage};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Args;
use kairos_eval::advise::evaluate::{evaluate, EvalConfig, WorkloadEval};
use kairos_eval::advise::profile::ProfileSample;
use kairos_eval::advise::{advise, Advice, AdviseConfig};
use kairos_eval::sim::workload::{suite_files, Workload};
use kairos_eval::sim::SimConfig;
use kairos_policy_core::cost::Objective;
use kairos_policy_core::PolicyConfig;

use crate::live::dirty_rate::{self, DirtyRateMode};
use crate::live::interrupt;
use crate::live::qmp::Qmp;
use crate::plot::{plot_advice, AdvicePlot};

const MIB: f64 = 1024.0 * 1024.0;

/// Options of `kairos advise`.
#[derive(Debug, Args)]
pub struct AdviseArgs {
    /// The QMP socket of a running QEMU to sample (a libvirt domain's
    /// monitor socket works too; see docs/advise.md).
    #[arg(long, conflicts_with_all = ["workload", "suite"])]
    pub qmp: Option<PathBuf>,
    /// Judge the advice in the simulator on this workload program.
    #[arg(long, conflicts_with = "suite")]
    pub workload: Option<PathBuf>,
    /// Judge the advice in the simulator on every program in this folder.
    #[arg(long)]
    pub suite: Option<PathBuf>,
    /// Seconds to sample before advising (two cycles of the longest cycle
    /// looked for are needed to see it).
    #[arg(long, default_value_t = 240.0, value_name = "S")]
    pub duration_s: f64,
    /// How far ahead to look for a start, s.
    #[arg(long, default_value_t = 300.0, value_name = "S")]
    pub horizon_s: f64,
    /// The longest cycle to look for, s.
    #[arg(long, default_value_t = 120.0, value_name = "S")]
    pub max_cycle_s: f64,
    /// Link bandwidth the migration will have, Mbit/s.
    #[arg(long, default_value_t = 1000, value_name = "MBIT")]
    pub bandwidth_mbit: u64,
    /// QEMU's downtime-limit (L), ms.
    #[arg(long, default_value_t = 300, value_name = "MS")]
    pub downtime_limit_ms: u64,
    /// Hard maximum downtime (M), ms.
    #[arg(long, default_value_t = 1000, value_name = "MS")]
    pub max_downtime_ms: u64,
    /// Downtime weight λ.
    #[arg(long, default_value_t = kairos_policy_core::config::DEFAULT_DOWNTIME_WEIGHT, value_name = "λ")]
    pub downtime_weight: f64,
    /// ω: seconds of migration one second of waiting before it is worth.
    /// 0.1 (the default): waiting is cheap but not free, as for a
    /// maintenance or a rebalancing that can be scheduled; 1: a second of
    /// waiting costs as much as a second of migration (the guest must
    /// leave soon); 0: waiting is free up to --horizon-s.
    #[arg(long, default_value_t = kairos_eval::advise::DEFAULT_WAIT_WEIGHT, value_name = "ω")]
    pub wait_weight: f64,
    /// Guest RAM, MiB (live: default from query-memory-size-summary).
    #[arg(long, value_name = "MIB")]
    pub ram_mib: Option<u64>,
    /// What the migration's bulk round will put on the wire, MiB: the
    /// guest's nonzero memory (QEMU sends a zero page as a header). It
    /// sets how long the bulk round lasts, and so where in a cycle the
    /// rounds after it fall. Live: the guest's RAM unless given (a
    /// profile cannot see it); in simulation the simulator's own figure.
    #[arg(long, value_name = "MIB")]
    pub bulk_mib: Option<f64>,
    /// calc-dirty-rate mode (live).
    #[arg(long, value_enum, default_value_t = DirtyRateMode::PageSampling)]
    pub mode: DirtyRateMode,
    /// Moments per workload (simulation).
    #[arg(long, default_value_t = 12)]
    pub trials: usize,
    /// Seed of the simulated guests.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Where the plot (and, live, profile.csv) go.
    #[arg(long, default_value = "build/advise")]
    pub out: PathBuf,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

impl AdviseArgs {
    fn policy_config(&self) -> Result<PolicyConfig> {
        let cfg = PolicyConfig {
            downtime_limit_ms: self.downtime_limit_ms as f64,
            max_downtime_ms: self.max_downtime_ms as f64,
            downtime_weight: self.downtime_weight,
            ..PolicyConfig::default()
        };
        cfg.validate()
            .context("--downtime-limit-ms, --max-downtime-ms, --downtime-weight")
            .or_usage()?;
        Ok(cfg)
    }

    fn check(&self) -> Result<()> {
        for (name, v) in [
            ("--duration-s", self.duration_s),
            ("--horizon-s", self.horizon_s),
            ("--max-cycle-s", self.max_cycle_s),
        ] {
            if !(v.is_finite() && v > 0.0) {
                bail_usage!("{name} must be > 0");
            }
        }
        if self.bandwidth_mbit == 0 {
            bail_usage!("--bandwidth-mbit must be > 0");
        }
        if !(self.wait_weight.is_finite() && self.wait_weight >= 0.0) {
            bail_usage!("--wait-weight must be >= 0");
        }
        Ok(())
    }
}

/// Run `kairos advise`.
pub fn run(args: &AdviseArgs) -> Result<()> {
    args.check()?;
    let policy = args.policy_config()?;
    match (&args.qmp, &args.workload, &args.suite) {
        (Some(socket), _, _) => live(args, socket, &policy),
        (None, Some(file), _) => simulated(args, std::slice::from_ref(file), &policy),
        (None, None, Some(dir)) => simulated(args, &suite_files(dir)?, &policy),
        (None, None, None) => bail_usage!("say what to advise on: --qmp SOCKET, or --workload FILE / --suite DIR to judge the advice in simulation"),
    }
}

fn live(args: &AdviseArgs, socket: &std::path::Path, policy: &PolicyConfig) -> Result<()> {
    interrupt::install()?;
    let mut qmp = Qmp::connect(socket, Duration::from_secs(10))
        .with_context(|| format!("connecting to QMP at {}", socket.display()))?;
    let ram_bytes = match args.ram_mib {
        Some(mib) => mib as f64 * MIB,
        None => qmp.execute("query-memory-size-summary", None)?["base-memory"]
            .as_f64()
            .context("query-memory-size-summary gave no base-memory; pass --ram-mib")?,
    };
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let csv_path = args.out.join("profile.csv");
    let mut csv = csv::Writer::from_path(&csv_path)
        .with_context(|| format!("creating {}", csv_path.display()))?;
    let cpu_start = dirty_rate::vcpu_seconds(&mut qmp)?;
    let started = Instant::now();
    let samples = dirty_rate::profile(
        &mut qmp,
        Duration::from_secs_f64(args.duration_s),
        args.mode,
        |s| {
            let _ = csv.serialize(s);
            let _ = csv.flush();
            eprint!(
                "\r[{:>4.0}/{:.0} s] dirty {:>8.1} MiB/s",
                s.t_s,
                args.duration_s,
                s.rate_bytes_per_s() / MIB
            );
        },
    )?;
    eprintln!();
    let cpu_pct = match (cpu_start, dirty_rate::vcpu_seconds(&mut qmp)?) {
        (Some(a), Some(b)) => Some(100.0 * (b - a) / started.elapsed().as_secs_f64()),
        _ => None,
    };
    let mut cfg = advise_config(args, ram_bytes, policy);
    if let Some(mib) = args.bulk_mib {
        if !(mib.is_finite() && mib > 0.0) {
            bail_usage!("--bulk-mib must be a positive number of MiB, not {mib}");
        }
        cfg.bulk_bytes = (mib * MIB).min(ram_bytes);
    }
    let advice = advise(&samples, &cfg);
    let plot = args.out.join("advise.png");
    draw(&plot, "kairos advise", &samples, &advice)?;
    if args.json {
        println!("{}", serde_json::to_string(&advice)?);
    } else {
        print_advice(&advice, cpu_pct);
        println!("profile: {}\nplot: {}", csv_path.display(), plot.display());
    }
    Ok(())
}

fn advise_config(args: &AdviseArgs, ram_bytes: f64, policy: &PolicyConfig) -> AdviseConfig {
    AdviseConfig {
        horizon_s: args.horizon_s,
        max_cycle_s: args.max_cycle_s,
        wait_weight: args.wait_weight,
        ..AdviseConfig::new(
            ram_bytes,
            args.bandwidth_mbit as f64 * 1e6 / 8.0,
            Objective::from_config(policy),
        )
    }
}

fn print_advice(a: &Advice, vcpu_pct: Option<f64>) {
    let secs = |ms: Option<f64>| {
        ms.map_or("does not converge".to_string(), |m| {
            format!("{:.1} s", m / 1000.0)
        })
    };
    match a.verdict {
        kairos_eval::advise::Verdict::Wait => println!(
            "advice: start in {:.0} s (expected cost {} against {} now: {:.1} s less, at least {:.1} s if the rate runs high)",
            a.start_in_s,
            secs(a.advised_cost_ms),
            secs(a.now_cost_ms),
            a.gain_ms / 1000.0,
            a.gain_lo_ms / 1000.0
        ),
        kairos_eval::advise::Verdict::TooUncertain => println!(
            "advice: start now (a later start looks cheaper, but not if the rate runs high: the forecast is too uncertain to wait for it); expected cost {}",
            secs(a.now_cost_ms)
        ),
        kairos_eval::advise::Verdict::TooLittleHistory => println!(
            "advice: start now (too little history to forecast; sample longer with --duration-s)"
        ),
        kairos_eval::advise::Verdict::StartNow => println!(
            "advice: start now (no later start is expected to cost less); expected cost {}",
            secs(a.now_cost_ms)
        ),
    }
    println!(
        "cycle: {}; working set ≈ {:.0} MiB; vCPU busy {}",
        a.period_s
            .map_or("none found".to_string(), |p| format!("{p:.0} s")),
        a.wws_bytes / MIB,
        vcpu_pct.map_or("-".to_string(), |p| format!("{p:.0} %"))
    );
}

fn draw(path: &std::path::Path, title: &str, samples: &[ProfileSample], a: &Advice) -> Result<()> {
    let now = samples.last().map_or(0.0, |s| s.t_s);
    plot_advice(
        path,
        &AdvicePlot {
            history: samples
                .iter()
                .map(|s| (s.t_s - now, s.rate_bytes_per_s() / MIB))
                .collect(),
            forecast: a
                .forecast
                .iter()
                .map(|p| {
                    (
                        p.t_s,
                        p.mean_bytes_per_s / MIB,
                        p.lo_bytes_per_s / MIB,
                        p.hi_bytes_per_s / MIB,
                    )
                })
                .collect(),
            costs: a
                .candidates
                .iter()
                .filter_map(|c| c.cost_ms.map(|m| (c.start_s, m / 1000.0)))
                .collect(),
            advised: (a.start_in_s, a.advised_cost_ms.unwrap_or(0.0) / 1000.0),
            title,
        },
    )
}

fn simulated(args: &AdviseArgs, files: &[PathBuf], policy: &PolicyConfig) -> Result<()> {
    if args.trials == 0 {
        bail_usage!("--trials must be at least 1");
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let mut evals: Vec<WorkloadEval> = Vec::new();
    for file in files {
        let workload = Workload::from_file(file)?;
        let cfg = EvalConfig {
            trials: args.trials,
            history_s: args.duration_s,
            spread_s: if workload.repeat {
                workload.cycle_seconds().max(args.max_cycle_s)
            } else {
                args.max_cycle_s
            },
            sim: SimConfig {
                bandwidth_bytes_per_s: args.bandwidth_mbit as f64 * 1e6 / 8.0,
                seed: args.seed,
                time_cap_s: 600.0,
                ..SimConfig::default()
            },
            policy: *policy,
            horizon_s: args.horizon_s,
            max_cycle_s: args.max_cycle_s,
            wait_weight: args.wait_weight,
        };
        eprintln!("advise: {} ({} moments)", workload.name, args.trials);
        let eval = evaluate(&workload, &cfg)?;
        if args.json {
            println!("{}", serde_json::to_string(&eval)?);
        }
        evals.push(eval);
    }
    if !args.json {
        print_evals(&evals);
    }
    Ok(())
}

fn print_evals(evals: &[WorkloadEval]) {
    let s = |ms: Option<f64>| ms.map_or("∞".to_string(), |m| format!("{:.1}", m / 1000.0));
    println!(
        "{:<18} {:>7} {:>14} {:>14} {:>14} {:>14} {:>9}",
        "workload", "cycle_s", "now med/p90", "advised", "first advice", "alma", "waited"
    );
    for e in evals {
        let waited = e.trials.iter().filter(|t| t.advised_wait_s > 0.0).count();
        println!(
            "{:<18} {:>7} {:>14} {:>14} {:>14} {:>14} {:>6}/{}",
            e.workload,
            e.cycle_s.map_or("-".to_string(), |c| format!("{c:.0}")),
            format!("{}/{}", s(e.now.median_ms), s(e.now.p90_ms)),
            format!("{}/{}", s(e.advised.median_ms), s(e.advised.p90_ms)),
            format!("{}/{}", s(e.first.median_ms), s(e.first.p90_ms)),
            format!("{}/{}", s(e.alma.median_ms), s(e.alma.p90_ms)),
            waited,
            e.trials.len()
        );
    }
}

//! `kairos profile`: the guest running a workload without migration — its
//! CPU, memory and dirty rate over time, as CSV and a PNG.
//!
//! Once a second: QEMU's own dirty-rate measurement (`calc-dirty-rate`,
//! page-sampling mode by default: it hashes a sample of pages per GiB and
//! counts those that changed; dirty-bitmap mode counts the pages of KVM's
//! dirty log and reads 0 under TCG, where that counter is not fed), the
//! source QEMU's CPU use and resident memory (host view), the guest's CPU
//! busy share and used memory (the guest's view, from its console), and the
//! workload's throughput.
//!
//! With `--overhead` it measures instead what that sampling costs the
//! guest: see [`crate::profile_overhead`].

use crate::cmd::usage::bail_usage;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use serde::Serialize;

use crate::cmd::live_options::{workload_name, Accel, Link, LiveArgs};
use crate::live::dirty_rate::{self, DirtyRateMode};
use crate::live::guest_log::{guest_stats, load_samples};
use crate::live::qemu::QemuProcess;
use crate::live::qmp::Qmp;
use crate::plot::plot_panels;

/// How long the guest may take to boot and start its load.
const BOOT_TIMEOUT: Duration = Duration::from_secs(90);

/// Arguments of `kairos profile`.
#[derive(Debug, Args)]
pub struct ProfileArgs {
    /// Workload: a name from testbed/workloads or its .toml file, or a
    /// benchmark (ycsb-a, ycsb-b, sysbench-memory, redis, fio).
    #[arg(long)]
    pub workload: String,
    /// How long to profile after the load started, seconds.
    #[arg(long, default_value_t = 60)]
    pub duration_s: u64,
    /// calc-dirty-rate mode.
    #[arg(long, value_enum, default_value_t = DirtyRateMode::PageSampling)]
    pub mode: DirtyRateMode,
    /// Where profile.csv, profile.png and the logs go
    /// (default build/profile/WORKLOAD).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Guest RAM, MiB [default: the workload program's ram_mib, 1024 for
    /// a benchmark].
    #[arg(long, value_name = "MIB")]
    pub ram_mib: Option<u64>,
    /// Accelerator.
    #[arg(long, value_enum, default_value_t = Accel::Tcg)]
    pub accel: Accel,
    /// Where the QEMU binaries and guest are (the repository root).
    #[arg(long, default_value = ".")]
    pub root: PathBuf,
    /// Measure what sampling costs the guest instead: windows of
    /// --window-s alternate without and with `advise`'s sampling, and the
    /// workload's throughput in each is compared (--duration-s is then
    /// unused).
    #[arg(long)]
    pub overhead: bool,
    /// With --overhead: the length of each window, s.
    #[arg(long, default_value_t = 20, value_name = "S")]
    pub window_s: u64,
    /// With --overhead: sampled windows, each between two unsampled ones.
    #[arg(long, default_value_t = 5)]
    pub pairs: usize,
}

/// One second of the profile (a row of profile.csv).
#[derive(Debug, Clone, Copy, Serialize)]
struct ProfileRow {
    t_s: f64,
    dirty_rate_mib_per_s: Option<f64>,
    qemu_cpu_pct: Option<f64>,
    qemu_rss_mib: Option<f64>,
    guest_cpu_busy_pct: Option<f64>,
    guest_mem_used_mib: Option<f64>,
    ops_per_s: Option<f64>,
}

fn cell(v: Option<f64>) -> String {
    v.map_or(String::new(), |x| format!("{x:.1}"))
}

/// Run `kairos profile`.
pub fn run(args: &ProfileArgs) -> Result<()> {
    let workload = workload_name(&args.workload, &args.root)?;
    if args.duration_s == 0 {
        bail_usage!("--duration-s must be at least 1");
    }
    if args.overhead && args.window_s < 5 {
        bail_usage!("--window-s must be at least 5 with --overhead (two reports of each window are left out)");
    }
    if args.overhead && args.pairs == 0 {
        bail_usage!("--pairs must be at least 1 with --overhead");
    }
    crate::live::interrupt::install()?;
    let live = LiveArgs {
        bandwidth_mbit: 1000,
        downtime_limit_ms: 300,
        max_downtime_ms: 1000,
        downtime_weight: kairos_policy_core::config::DEFAULT_DOWNTIME_WEIGHT,
        escalation: kairos_policy_core::Escalation::None,
        ram_mib: args.ram_mib,
        warmup_s: Some(0.0),
        timeout_s: 1.0,
        vanilla_qemu: false,
        link: Link::Loopback,
        delay_ms: 0.0,
        accel: args.accel,
        root: args.root.clone(),
        start: crate::live::start::StartRule::Now,
        start_delay_s: 0.0,
        profile_s: 0.0,
        max_wait_s: 0.0,
        wait_weight: 0.0,
    };
    live.prepare()?;
    let spec = live.guest(&workload)?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| args.root.join("build/profile").join(&workload.name));
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;

    let mut qemu = QemuProcess::start(&spec, &out, "guest", None, None)?;
    let mut qmp = Qmp::connect(&qemu.qmp_path, Duration::from_secs(20))
        .with_context(|| format!("QEMU did not come up; see {}", qemu.qemu_log.display()))?;
    qemu.wait_for_load(BOOT_TIMEOUT)?;
    if args.overhead {
        let plan = crate::profile_overhead::Plan {
            window: Duration::from_secs(args.window_s),
            pairs: args.pairs,
            mode: args.mode,
        };
        return crate::profile_overhead::run(
            &plan,
            &workload.name,
            args.accel.name(),
            &mut qemu,
            &mut qmp,
            &out,
        );
    }

    let csv_path = out.join("profile.csv");
    let mut csv = csv::Writer::from_path(&csv_path)
        .with_context(|| format!("creating {}", csv_path.display()))?;
    eprintln!(
        "profiling {workload} for {} s (logs: {})",
        args.duration_s,
        out.display()
    );
    let start = Instant::now();
    let mut rows = Vec::new();
    let mut last_cpu = (Instant::now(), qemu.cpu_seconds());
    while start.elapsed().as_secs() < args.duration_s {
        let dirty = dirty_rate::measure(&mut qmp, Duration::from_secs(1), args.mode)?;
        if !qemu.is_running() {
            bail!("QEMU exited; see {}", qemu.qemu_log.display());
        }
        let now = Instant::now();
        let cpu = qemu.cpu_seconds();
        let qemu_cpu_pct = match (last_cpu.1, cpu) {
            (Some(a), Some(b)) => Some(100.0 * (b - a) / (now - last_cpu.0).as_secs_f64()),
            _ => None,
        };
        last_cpu = (now, cpu);
        let stat = guest_stats(&qemu.serial_log).last().copied();
        let row = ProfileRow {
            t_s: start.elapsed().as_secs_f64(),
            dirty_rate_mib_per_s: dirty,
            qemu_cpu_pct,
            qemu_rss_mib: qemu.rss_bytes().map(|b| b as f64 / 1048576.0),
            guest_cpu_busy_pct: stat.map(|s| s.cpu_busy_pct),
            guest_mem_used_mib: stat.map(|s| s.mem_used_mib),
            ops_per_s: load_samples(&qemu.serial_log).last().map(|s| s.ops_per_s),
        };
        csv.serialize(row)?;
        csv.flush()?;
        eprint!(
            "\r[{:>3}/{} s] dirty {:>7} MiB/s  guest cpu {:>5} %  guest mem {:>6} MiB  ops/s {:>9}",
            row.t_s as u64,
            args.duration_s,
            cell(row.dirty_rate_mib_per_s),
            cell(row.guest_cpu_busy_pct),
            cell(row.guest_mem_used_mib),
            cell(row.ops_per_s)
        );
        rows.push(row);
    }
    eprintln!();
    drop(qmp);
    drop(qemu);

    let series = |f: fn(&ProfileRow) -> Option<f64>| -> Vec<(f64, f64)> {
        rows.iter()
            .filter_map(|r| f(r).map(|v| (r.t_s, v)))
            .collect()
    };
    let png = out.join("profile.png");
    plot_panels(
        &png,
        &format!("{workload}: the guest without migration"),
        &[
            ("dirty rate, MiB/s", series(|r| r.dirty_rate_mib_per_s)),
            ("guest CPU busy, %", series(|r| r.guest_cpu_busy_pct)),
            ("guest memory used, MiB", series(|r| r.guest_mem_used_mib)),
            ("workload ops/s", series(|r| r.ops_per_s)),
        ],
    )?;
    println!("{}", csv_path.display());
    println!("{}", png.display());
    Ok(())
}

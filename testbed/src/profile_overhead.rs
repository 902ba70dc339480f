//! `kairos profile --overhead`: what `kairos advise`'s sampling costs the
//! guest. Windows alternate without and with sampling (off, on, off, …,
//! off); in the "on" windows the guest is sampled exactly as `advise`
//! samples it (`calc-dirty-rate` on its 1 s / 5 s schedule, the vCPU
//! threads' CPU time at the start and end); the workload's own reports on
//! the guest console give its throughput in each window, and
//! [`kairos_eval::advise::overhead`] fits the sampled windows' share with
//! the drift over the run removed. One window before the first is run and
//! thrown away (the load has just started); in each window the first
//! [`LAGGING_REPORTS`] reports are left out, as they may cover time before
//! it.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use kairos_eval::advise::overhead::{overhead, Overhead, Sampling, WindowThroughput};
use serde::{Deserialize, Serialize};

use crate::driver::Monitor;
use crate::live::dirty_rate::{self, DirtyRateMode};
use crate::live::guest_log::load_samples;
use crate::live::interrupt;
use crate::live::qemu::QemuProcess;

/// Reports at the start of a window left out: a report is printed a
/// second after the second it covers, and a benchmark behind
/// `kairos-meter` reports what it read in that second about the second
/// before — so the first two reports of a window may cover time before it.
const LAGGING_REPORTS: usize = 2;

/// How the windows are laid out.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Length of each window.
    pub window: Duration,
    /// "On" windows; there are `2 * pairs + 1` windows in all.
    pub pairs: usize,
    /// calc-dirty-rate mode of the "on" windows.
    pub mode: DirtyRateMode,
}

/// One row of overhead.csv.
#[derive(Debug, Serialize)]
struct WindowRow {
    window: usize,
    sampling: Sampling,
    reports: usize,
    mean_ops_per_s: f64,
    dirty_rate_samples: usize,
}

/// What overhead.json holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OverheadReport {
    /// The closed-loop benchmark the guest ran.
    pub workload: String,
    /// The accelerator the guest ran under.
    pub accel: String,
    /// Length of each window, s.
    pub window_s: f64,
    /// calc-dirty-rate mode of the sampled windows.
    pub mode: String,
    /// The fit.
    pub overhead: Overhead,
    /// The commit of the code that made the run.
    pub code_commit: String,
    /// When the run ended, seconds since the Unix epoch.
    pub finished_unix_s: u64,
}

/// Run the windows on a guest whose load already runs, write overhead.csv
/// and overhead.json into `out`, print the result.
pub fn run(
    plan: &Plan,
    workload: &str,
    accel: &str,
    qemu: &mut QemuProcess,
    qmp: &mut dyn Monitor,
    out: &Path,
) -> Result<()> {
    let windows = 2 * plan.pairs + 1;
    eprintln!(
        "overhead of advise's sampling on {workload}: {windows} windows of {} s, alternating without and with, after one thrown away (logs: {})",
        plan.window.as_secs(),
        out.display()
    );
    interrupt::sleep(plan.window)?;
    let csv_path = out.join("overhead.csv");
    let mut csv = csv::Writer::from_path(&csv_path)
        .with_context(|| format!("creating {}", csv_path.display()))?;
    let mut measured = Vec::with_capacity(windows);
    for index in 0..windows {
        let sampling = if index % 2 == 0 {
            Sampling::Off
        } else {
            Sampling::On
        };
        let reports_before = load_samples(&qemu.serial_log).len();
        let started = Instant::now();
        let mut dirty_rate_samples = 0;
        match sampling {
            Sampling::Off => interrupt::sleep(plan.window)?,
            Sampling::On => {
                // What `kairos advise` does around its profile.
                dirty_rate::vcpu_seconds(qmp)?;
                dirty_rate_samples =
                    dirty_rate::profile(qmp, plan.window, plan.mode, |_| {})?.len();
                dirty_rate::vcpu_seconds(qmp)?;
                interrupt::sleep(plan.window.saturating_sub(started.elapsed()))?;
            }
        }
        if !qemu.is_running() {
            bail!("QEMU exited; see {}", qemu.qemu_log.display());
        }
        let reports = load_samples(&qemu.serial_log);
        let inside = reports
            .get(reports_before + LAGGING_REPORTS..)
            .unwrap_or(&[]);
        let mean_ops_per_s = if inside.is_empty() {
            0.0
        } else {
            inside.iter().map(|s| s.ops_per_s).sum::<f64>() / inside.len() as f64
        };
        let w = WindowThroughput {
            sampling,
            reports: inside.len(),
            mean_ops_per_s,
        };
        csv.serialize(WindowRow {
            window: index,
            sampling,
            reports: w.reports,
            mean_ops_per_s,
            dirty_rate_samples,
        })?;
        csv.flush()?;
        eprintln!(
            "[window {}/{windows}] sampling {:<3} {:>3} reports, {:>10.1} ops/s{}",
            index + 1,
            if sampling == Sampling::On {
                "on"
            } else {
                "off"
            },
            w.reports,
            mean_ops_per_s,
            if sampling == Sampling::On {
                format!(", {dirty_rate_samples} dirty-rate samples")
            } else {
                String::new()
            }
        );
        measured.push(w);
    }
    let result = overhead(&measured).context("the windows give no overhead")?;
    let json_path = out.join("overhead.json");
    let report = OverheadReport {
        workload: workload.to_string(),
        window_s: plan.window.as_secs_f64(),
        accel: accel.to_string(),
        mode: plan.mode.qmp_name().to_string(),
        overhead: result,
        code_commit: crate::live::run::CODE_COMMIT.to_string(),
        finished_unix_s: crate::live::run::unix_now_s(),
    };
    std::fs::write(&json_path, serde_json::to_string_pretty(&report)?)
        .with_context(|| format!("writing {}", json_path.display()))?;
    let interval = match (result.ratio_low, result.ratio_high) {
        (Some(lo), Some(hi)) => format!("95 % interval {:.1}–{:.1} %", 100.0 * lo, 100.0 * hi),
        _ => "no interval from one pair".to_string(),
    };
    println!(
        "{workload}: throughput while sampled {:.1} % of without, drift removed ({interval}; worst window {:.1} % of its neighbours; {} pairs of {} s; {:.1} vs {:.1} ops/s pooled)",
        100.0 * result.ratio,
        100.0 * result.ratio_min,
        result.pairs,
        plan.window.as_secs(),
        result.on_ops_per_s,
        result.off_ops_per_s
    );
    println!("{}", csv_path.display());
    println!("{}", json_path.display());
    Ok(())
}

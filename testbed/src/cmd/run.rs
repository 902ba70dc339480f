//! `kairos run`: one guest migrated between two QEMU processes, N times.

use crate::cmd::usage::bail_usage;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use super::live_options::{live_spec, workload_name, LiveArgs};
use crate::live::run::{run_migration, LiveResult};
use crate::live::spec::LiveSpec;

/// Arguments of `kairos run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Workload: a name from testbed/workloads, any workload program file
    /// (.toml, handed to the guest at run time), or a benchmark: ycsb-a,
    /// ycsb-b (memcached with a YCSB-style client), sysbench-memory, redis
    /// (redis-benchmark SETs), fio (random writes).
    #[arg(long)]
    pub workload: String,
    /// Policy: qemu, qemu@MS (QEMU's rule at a static downtime-limit),
    /// auto-converge, postcopy-after, predictive, predictive@w=N,
    /// kubevirt-ramp, kubevirt-stall, nova (run by the test-bed as a
    /// management layer), observe.
    #[arg(long, value_parser = live_spec)]
    pub policy: LiveSpec,
    /// Migrations to run.
    #[arg(long, default_value_t = 1)]
    pub repeat: u32,
    /// Where logs and traces go.
    #[arg(long, default_value = "build/runs")]
    pub out: PathBuf,
    #[command(flatten)]
    pub live: LiveArgs,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Print results as a table.
pub fn print_live_table(rows: &[LiveResult]) {
    println!(
        "{:<16} {:<16} {:<16} {:>8} {:>11} {:>9} {:>7} {:>15} {:>10}  reason",
        "workload",
        "policy",
        "status",
        "total_s",
        "downtime_ms",
        "pause_ms",
        "rounds",
        "transferred_MiB",
        "app_loss_%"
    );
    let f = |v: Option<f64>, scale: f64, d: usize| {
        v.map_or("-".to_string(), |x| format!("{:.*}", d, x / scale))
    };
    for r in rows {
        println!(
            "{:<16} {:<16} {:<16} {:>8} {:>11} {:>9} {:>7} {:>15} {:>10}  {}",
            r.workload,
            r.policy,
            r.status.name(),
            f(r.total_time_ms, 1000.0, 1),
            f(r.downtime_ms, 1.0, 0),
            f(r.guest_pause_ms, 1.0, 0),
            r.rounds.map_or("-".into(), |x| x.to_string()),
            f(r.transferred_bytes.map(|b| b as f64), 1048576.0, 0),
            f(r.app_loss_pct, 1.0, 1),
            r.reason.as_deref().unwrap_or("-")
        );
    }
}

/// Run `kairos run`.
pub fn run(args: &RunArgs) -> Result<()> {
    let policy = args.policy;
    let workload = workload_name(&args.workload, &args.live.root)?;
    if args.repeat == 0 {
        bail_usage!("--repeat must be at least 1");
    }
    args.live.prepare()?;
    let mut rows = Vec::new();
    for i in 1..=args.repeat {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis();
        // '=' would break QEMU's option parsing of the paths.
        let work = args
            .out
            .join(format!("{workload}-{policy}-{stamp}").replace('=', ""));
        eprintln!(
            "[{i}/{}] {workload} / {policy} (logs: {})",
            args.repeat,
            work.display()
        );
        let cfg = args.live.config(&workload, policy, work)?;
        let result = run_migration(&cfg).with_context(|| format!("{workload} / {policy}"))?;
        if args.json {
            println!("{}", serde_json::to_string(&result)?);
        }
        rows.push(result);
    }
    if !args.json {
        print_live_table(&rows);
    }
    Ok(())
}

//! `kairos run`: real migrations of the Kairos guest between two QEMUs.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;
use kairos_eval::sim::workload::Workload;

use crate::live::kvm::hide_dev_kvm;
use crate::live::policy::LivePolicy;
use crate::live::qemu::GuestSpec;
use crate::live::run::{run_migration, LiveResult, RunConfig};

/// Options shared by `kairos run` and `kairos compare`.
#[derive(Debug, Args, Clone)]
pub struct LiveArgs {
    /// Link bandwidth (QEMU's max-bandwidth), Mbit/s.
    #[arg(long, default_value_t = 1000)]
    pub bandwidth_mbit: u64,
    /// QEMU's downtime-limit, ms.
    #[arg(long, default_value_t = 300)]
    pub downtime_limit_ms: u64,
    /// Hard maximum downtime for the convergence policies, ms.
    #[arg(long, default_value_t = 1000)]
    pub max_downtime_ms: u64,
    /// Guest RAM, MiB.
    #[arg(long, default_value_t = 1024)]
    pub ram_mib: u64,
    /// Seconds the workload runs before the migration starts.
    #[arg(long, default_value_t = 8.0)]
    pub warmup_s: f64,
    /// Cancel a migration still running after this long, seconds.
    #[arg(long, default_value_t = 120.0)]
    pub timeout_s: f64,
    /// Use the unpatched QEMU (build/bin-vanilla); only qemu,
    /// auto-converge and postcopy-after then work.
    #[arg(long)]
    pub vanilla_qemu: bool,
    /// Run source and destination in two network namespaces joined by a
    /// veth pair shaped with tc to the bandwidth (instead of loopback), so
    /// the stop-and-copy phase is bounded by the link too.
    #[arg(long)]
    pub netns: bool,
    /// One-way delay of the --netns link, ms (needs tc netem).
    #[arg(long, default_value_t = 0.0)]
    pub delay_ms: f64,
    /// Accelerator: tcg (default; /dev/kvm is hidden) or kvm.
    #[arg(long, default_value = "tcg")]
    pub accel: String,
    /// Where the QEMU binaries, guest and logs are (the repository root).
    #[arg(long, default_value = ".")]
    pub root: PathBuf,
}

impl LiveArgs {
    /// Check the flags and prepare the process (hide /dev/kvm for TCG).
    pub fn prepare(&self) -> Result<()> {
        if self.bandwidth_mbit == 0 {
            bail!("--bandwidth-mbit must be > 0");
        }
        if self.ram_mib < 256 {
            bail!("--ram-mib must be at least 256");
        }
        let warmup_ok = self.warmup_s.is_finite() && self.warmup_s >= 0.0;
        let timeout_ok = self.timeout_s.is_finite() && self.timeout_s > 0.0;
        if !(warmup_ok && timeout_ok) {
            bail!("--warmup-s must be >= 0 and --timeout-s > 0");
        }
        if !(self.delay_ms.is_finite() && self.delay_ms >= 0.0) {
            bail!("--delay-ms must be >= 0");
        }
        crate::live::interrupt::install();
        match self.accel.as_str() {
            "tcg" => hide_dev_kvm(),
            "kvm" => Ok(()),
            other => bail!("--accel must be tcg or kvm, got '{other}'"),
        }
    }

    /// The guest spec for a workload.
    pub fn guest(&self, workload: &str) -> Result<GuestSpec> {
        let bin = if self.vanilla_qemu {
            "build/bin-vanilla"
        } else {
            "build/bin"
        };
        let qemu = self.root.join(bin).join("qemu-system-x86_64");
        let kernel = self.root.join("build/guest/vmlinuz");
        let initrd = self.root.join("build/guest/initrd.img");
        for (path, how) in [
            (
                &qemu,
                if self.vanilla_qemu {
                    "scripts/build-qemu.sh --vanilla"
                } else {
                    "scripts/build-qemu.sh"
                },
            ),
            (&kernel, "scripts/build-guest.sh"),
            (&initrd, "scripts/build-guest.sh"),
        ] {
            if !path.exists() {
                bail!("{} is missing: run {how}", path.display());
            }
        }
        let real = std::fs::canonicalize(&qemu)?;
        let data = real
            .parent()
            .map(|d| d.join("qemu-bundle/usr/local/share/qemu"));
        Ok(GuestSpec {
            qemu,
            data_dirs: data.into_iter().filter(|d| d.exists()).collect(),
            kernel,
            initrd,
            workload: workload.to_string(),
            ram_mib: self.ram_mib,
            accel: self.accel.clone(),
        })
    }

    /// The run configuration of one migration.
    pub fn config(
        &self,
        workload: &str,
        policy: LivePolicy,
        work_dir: PathBuf,
    ) -> Result<RunConfig> {
        if self.vanilla_qemu && matches!(policy, LivePolicy::Library(_)) {
            bail!(
                "policy '{}' needs the patched QEMU (drop --vanilla-qemu)",
                policy.name()
            );
        }
        Ok(RunConfig {
            spec: self.guest(workload)?,
            policy,
            bandwidth_bytes_per_s: self.bandwidth_mbit * 1_000_000 / 8,
            downtime_limit_ms: self.downtime_limit_ms,
            max_downtime_ms: self.max_downtime_ms,
            warmup_s: self.warmup_s,
            timeout_s: self.timeout_s,
            work_dir,
            patched_qemu: !self.vanilla_qemu,
            netns_delay_ms: self.netns.then_some(self.delay_ms),
        })
    }
}

/// Benchmarks the guest runs besides the workload programs: memcached with
/// the YCSB-style client kairos-kv (workloads A and B), sysbench memory,
/// redis-server with redis-benchmark, fio (scripts/build-guest.sh).
pub const BENCHMARKS: [&str; 5] = ["ycsb-a", "ycsb-b", "sysbench-memory", "redis", "fio"];

/// The workload name the guest knows, from a name or a catalogue file.
pub fn workload_name(arg: &str, root: &Path) -> Result<String> {
    if BENCHMARKS.contains(&arg) {
        return Ok(arg.to_string());
    }
    let path = if arg.ends_with(".toml") {
        PathBuf::from(arg)
    } else {
        root.join("testbed/workloads").join(format!("{arg}.toml"))
    };
    if !path.exists() {
        bail!(
            "unknown workload '{arg}': no {} and not a benchmark ({})",
            path.display(),
            BENCHMARKS.join(", ")
        );
    }
    // Parse it here: a bad file is reported by name, not by the guest.
    Workload::from_file(&path)?;
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let in_image = root.join("testbed/workloads").join(format!("{stem}.toml"));
    if !in_image.exists() {
        bail!(
            "{}: the guest image carries only testbed/workloads/*.toml; copy it there and run scripts/build-guest.sh",
            path.display()
        );
    }
    if stem.is_empty() {
        bail!("{}: no file name", path.display());
    }
    Ok(stem)
}

/// Arguments of `kairos run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Workload: a name from testbed/workloads or its .toml file, or a
    /// benchmark: ycsb-a, ycsb-b (memcached with a YCSB-style client),
    /// sysbench-memory, redis (redis-benchmark SETs), fio (random writes).
    #[arg(long)]
    pub workload: String,
    /// Policy: qemu, auto-converge, postcopy-after, xen, nova,
    /// kubevirt-stall, kubevirt-ramp or predictive.
    #[arg(long)]
    pub policy: String,
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
        "{:<16} {:<15} {:<10} {:>8} {:>9} {:>9} {:>7} {:>9} {:>8}  reason",
        "workload",
        "policy",
        "status",
        "total_s",
        "down_ms",
        "pause_ms",
        "rounds",
        "sent_MiB",
        "loss_%"
    );
    let f = |v: Option<f64>, scale: f64, d: usize| {
        v.map_or("-".to_string(), |x| format!("{:.*}", d, x / scale))
    };
    for r in rows {
        println!(
            "{:<16} {:<15} {:<10} {:>8} {:>9} {:>9} {:>7} {:>9} {:>8}  {}",
            r.workload,
            r.policy,
            r.status,
            f(r.total_time_ms, 1000.0, 1),
            f(r.downtime_ms, 1.0, 0),
            f(r.guest_pause_ms, 1.0, 0),
            r.rounds.map_or("-".into(), |x| x.to_string()),
            f(r.sent_bytes.map(|b| b as f64), 1048576.0, 0),
            f(r.app_loss_pct, 1.0, 1),
            r.reason.as_deref().unwrap_or("-")
        );
    }
}

/// Run `kairos run`.
pub fn run(args: &RunArgs) -> Result<()> {
    let policy = LivePolicy::from_name(&args.policy)?;
    let workload = workload_name(&args.workload, &args.live.root)?;
    if args.repeat == 0 {
        bail!("--repeat must be at least 1");
    }
    args.live.prepare()?;
    let mut rows = Vec::new();
    for i in 1..=args.repeat {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis();
        let work = args
            .out
            .join(format!("{workload}-{}-{stamp}", policy.name()));
        eprintln!(
            "[{i}/{}] {workload} / {} (logs: {})",
            args.repeat,
            policy.name(),
            work.display()
        );
        let cfg = args.live.config(&workload, policy, work)?;
        let result =
            run_migration(&cfg).with_context(|| format!("{workload} / {}", policy.name()))?;
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

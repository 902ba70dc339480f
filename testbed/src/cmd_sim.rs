//! `kairos sim`: the pre-copy simulator over one workload or a suite.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;
use kairos_policy_core::policies::{build_policy, PolicyKind};
use kairos_policy_core::sim::workload::{suite_files, Workload};
use kairos_policy_core::sim::{simulate, SimConfig};
use kairos_policy_core::summary::simulate_workload;
use kairos_policy_core::trace::TraceWriter;

use crate::cli_policy::PolicyArgs;
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
    /// Seconds the workload runs before the migration starts.
    #[arg(long, default_value_t = 0.0)]
    pub warmup_s: f64,
    /// Give up a migration after this long, seconds (also the oracle's cap).
    #[arg(long, default_value_t = 600.0)]
    pub time_cap_s: f64,
    /// Also write each workload's never-stop per-round trace here (CSV, the
    /// replay format).
    #[arg(long)]
    pub trace_dir: Option<PathBuf>,
    /// Print every round of every run (what the policy saw, said and
    /// forecast) to standard error.
    #[arg(long)]
    pub explain: bool,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    pub json: bool,
}

impl SimArgs {
    fn sim_config(&self) -> Result<SimConfig> {
        if !(self.bandwidth_mbit.is_finite() && self.bandwidth_mbit > 0.0) {
            bail!("--bandwidth-mbit must be > 0, got {}", self.bandwidth_mbit);
        }
        if !(0.0..0.9).contains(&self.bandwidth_jitter) {
            bail!(
                "--bandwidth-jitter must be in [0, 0.9), got {}",
                self.bandwidth_jitter
            );
        }
        if !(self.warmup_s.is_finite() && self.warmup_s >= 0.0) {
            bail!("--warmup-s must be >= 0, got {}", self.warmup_s);
        }
        if !(self.time_cap_s.is_finite() && self.time_cap_s > 0.0) {
            bail!("--time-cap-s must be > 0, got {}", self.time_cap_s);
        }
        Ok(SimConfig {
            bandwidth_bytes_per_s: self.bandwidth_mbit * 1e6 / 8.0,
            bandwidth_jitter: self.bandwidth_jitter,
            seed: self.seed,
            warmup_s: self.warmup_s,
            time_cap_s: self.time_cap_s,
        })
    }

    fn workload_files(&self) -> Result<Vec<PathBuf>> {
        match (&self.workload, &self.suite) {
            (Some(file), None) => Ok(vec![file.clone()]),
            (None, Some(dir)) => Ok(suite_files(dir)?),
            _ => bail!("give exactly one of --workload FILE or --suite DIR"),
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
    let path = dir.join(format!("{}.never-stop.csv", workload.name));
    let mut policy = build_policy(PolicyKind::NeverStop, &args.policy.config()?)?;
    let run = simulate(workload, policy.as_mut(), sim_cfg, None);
    let file =
        std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    let mut writer = TraceWriter::new(std::io::BufWriter::new(file))?;
    for r in &run.rounds {
        writer.write(
            &r.observation,
            r.decision.action.as_str(),
            r.decision.reason.as_str(),
        )?;
    }
    writer.finish()?;
    Ok(path)
}

fn explain(
    workload: &Workload,
    kinds: &[PolicyKind],
    sim_cfg: &SimConfig,
    args: &SimArgs,
) -> Result<()> {
    for &kind in kinds {
        let mut policy = build_policy(kind, &args.policy.config()?)?;
        let run = simulate(workload, policy.as_mut(), sim_cfg, None);
        eprintln!("== {} / {}", workload.name, kind);
        eprintln!("round  time_s  pending_MB  rate_MB/s  next_MB[lo..hi]        model           action         reason");
        for r in &run.rounds {
            let o = &r.observation;
            let f = &r.decision.forecast;
            let next = f.next().map_or_else(
                || "-".to_string(),
                |p| {
                    format!(
                        "{:.1}[{:.1}..{:.1}]",
                        p.pending_bytes / 1e6,
                        p.pending_lo_bytes / 1e6,
                        p.pending_hi_bytes / 1e6
                    )
                },
            );
            eprintln!(
                "{:>5}  {:>6.2}  {:>10.1}  {:>9.1}  {:<21}  {:<14}  {:<13}  {}",
                o.round,
                o.elapsed_ms as f64 / 1000.0,
                o.pending_bytes as f64 / 1e6,
                f.dirty_rate_bytes_per_s / 1e6,
                next,
                f.model.as_str(),
                r.decision.action.as_str(),
                r.decision.reason.as_str()
            );
        }
    }
    Ok(())
}

/// Run `kairos sim`.
pub fn run(args: &SimArgs) -> Result<()> {
    let kinds = args.policy.kinds()?;
    let policy_cfg = args.policy.config()?;
    let sim_cfg = args.sim_config()?;
    let files = args.workload_files()?;
    // Parse everything first: a bad file stops the run before any work.
    let workloads = files
        .iter()
        .map(|f| Workload::from_file(f).map_err(anyhow::Error::from))
        .collect::<Result<Vec<_>>>()?;
    let mut report = table::Report::new(args.json);
    for (i, workload) in workloads.iter().enumerate() {
        if workloads.len() > 1 {
            eprintln!("[{}/{}] {}", i + 1, workloads.len(), workload.name);
        }
        if let Some(dir) = &args.trace_dir {
            let path = write_trace(dir, workload, &sim_cfg, args)?;
            eprintln!("  trace: {}", path.display());
        }
        if args.explain {
            explain(workload, &kinds, &sim_cfg, args)?;
        }
        report.add(simulate_workload(workload, &kinds, &policy_cfg, &sim_cfg)?)?;
    }
    report.finish();
    Ok(())
}

//! `kairos starts`: start rules compared on live guests. For each
//! workload, migrations started at random moments of its cycle, where
//! `kairos advise` says and where the ALMA-style rule says, all under one
//! stop policy; every run first waits a random delay after the warm-up (a
//! uniform draw over the workload's cycle, seeded by the run's name), so
//! each rule is asked at moments spread over the cycle. Runs are
//! interleaved (one of every cell per pass) and kept (a rerun resumes);
//! `kairos report pack` stores them and `kairos report advise` renders
//! them.

use crate::cmd::usage::bail_usage;
use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;
use kairos_eval::sim::workload::Workload;
use kairos_policy_core::cost::Objective;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::cmd::compare::order;
use crate::cmd::compare::store;
use crate::cmd::live_options::{LiveArgs, WorkloadRef};
use crate::live::interrupt;
use crate::live::run::{run_migration, unix_now_s, LiveResult, CODE_COMMIT};
use crate::live::spec::LiveSpec;
use crate::live::start::{StartPolicy, StartRule};
use crate::report::starts::{start_cost_ms, StartsTable};

/// The span random delays are drawn over for a workload with no cycle
/// (a benchmark, or a program that does not repeat), s: the longest cycle
/// `kairos advise` looks for.
const ACYCLIC_SPAN_S: f64 = 120.0;

/// Arguments of `kairos starts`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  kairos starts --suite periodic,batch-cycle --random 10 --advised 5 --alma 5
  kairos starts --suite gc-cycle --policy predictive --wait-weight 0 --out build/starts")]
pub struct StartsArgs {
    /// Comma-separated workload names, benchmarks or program files.
    #[arg(long)]
    pub suite: String,
    /// The stop policy every migration runs under.
    #[arg(long, default_value = "predictive", value_parser = crate::cmd::live_options::live_spec)]
    pub policy: LiveSpec,
    /// Migrations per workload started at once at a random moment.
    #[arg(long, default_value_t = 10)]
    pub random: u32,
    /// Migrations per workload started where `kairos advise` says.
    #[arg(long, default_value_t = 5)]
    pub advised: u32,
    /// Migrations per workload started where the ALMA-style rule says.
    #[arg(long, default_value_t = 5)]
    pub alma: u32,
    /// Output directory (finished runs there are not run again).
    #[arg(long, default_value = "build/starts")]
    pub out: PathBuf,
    /// Seed of the order of the runs and of their random delays.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub order_seed: u64,
    /// Resume a campaign whose runs were made by another commit's code.
    #[arg(long)]
    pub allow_mixed_commits: bool,
    #[command(flatten)]
    pub live: LiveArgs,
}

/// One cell: a workload under one start rule.
struct Cell<'a> {
    workload: &'a WorkloadRef,
    rule: StartRule,
    runs: u32,
    span_s: f64,
}

/// The span a workload's random delays are drawn over, s: its program's
/// cycle when it repeats, otherwise [`ACYCLIC_SPAN_S`].
fn delay_span_s(workload: &WorkloadRef) -> Result<f64> {
    let Some(file) = &workload.file else {
        return Ok(ACYCLIC_SPAN_S);
    };
    let program = Workload::from_file(file)?;
    Ok(if program.repeat {
        program.cycle_seconds()
    } else {
        ACYCLIC_SPAN_S
    })
}

/// The random delay of the run `name`, s: uniform over `[0, span_s)`,
/// the same for the same seed and name (a resumed campaign keeps it).
fn delay_s(seed: u64, name: &str, span_s: f64) -> f64 {
    let mut hash = seed ^ 0x9e37_79b9_7f4a_7c15;
    for b in name.bytes() {
        hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(hash);
    rng.random_range(0.0..1.0) * span_s
}

/// Run `kairos starts`.
pub fn run(args: &StartsArgs) -> Result<()> {
    if args.random + args.advised + args.alma == 0 {
        bail_usage!("nothing to run: give --random, --advised or --alma >= 1");
    }
    let workloads: Vec<WorkloadRef> = args
        .suite
        .split(',')
        .map(str::trim)
        .filter(|w| !w.is_empty())
        .map(|w| crate::cmd::live_options::workload_name(w, &args.live.root))
        .collect::<Result<_>>()?;
    if workloads.is_empty() {
        bail_usage!("--suite names no workload");
    }
    let policy_cfg = args.live.policy_config()?;
    args.live.prepare()?;
    let store = store::open_announced(
        &args.out,
        CODE_COMMIT,
        args.allow_mixed_commits,
        unix_now_s(),
    )?;
    let mut cells = Vec::new();
    for workload in &workloads {
        let span_s = delay_span_s(workload)?;
        for (rule, runs) in [
            (StartRule::Now, args.random),
            (StartRule::Advised, args.advised),
            (StartRule::Alma, args.alma),
        ] {
            if runs > 0 {
                cells.push(Cell {
                    workload,
                    rule,
                    runs,
                    span_s,
                });
            }
        }
    }
    let most = cells.iter().map(|c| c.runs).max().unwrap_or(0);
    let jobs: Vec<order::Job> = order::interleaved(cells.len(), most, args.order_seed)
        .into_iter()
        .filter(|j| j.repeat <= cells[j.cell].runs)
        .collect();
    let total = jobs.len();
    let mut results: Vec<LiveResult> = Vec::new();
    let mut failures = Vec::new();
    for (position, job) in jobs.iter().enumerate() {
        let cell = &cells[job.cell];
        let name = format!(
            "{}__{}__{}__{}",
            cell.workload,
            args.policy,
            cell.rule.name(),
            job.repeat
        )
        .replace('=', "");
        let label = format!("[{}/{total}]", position + 1);
        if let Some(r) = store.load::<LiveResult>(&name) {
            eprintln!("{label} {name}: done before, kept");
            results.push(r);
            continue;
        }
        let delay = delay_s(args.order_seed, &name, cell.span_s);
        eprintln!("{label} {name}: running (delay {delay:.0} s)");
        let attempt = (|| -> Result<LiveResult> {
            let mut cfg = args
                .live
                .config(cell.workload, args.policy, store.work_dir(&name))?;
            cfg.start_delay_s = delay;
            cfg.start = match cell.rule {
                StartRule::Now => StartPolicy::Now,
                StartRule::Advised => StartPolicy::Advised {
                    profile_s: args.live.profile_s,
                    max_wait_s: args.live.max_wait_s,
                },
                StartRule::Alma => StartPolicy::Alma {
                    profile_s: args.live.profile_s,
                    max_wait_s: args.live.max_wait_s,
                },
            };
            let result = run_migration(&cfg)?;
            store.save(&name, &result)?;
            Ok(result)
        })();
        match attempt {
            Ok(r) => {
                let objective = Objective::from_config(&policy_cfg);
                eprintln!(
                    "{label} {name}: {}, waited {:.0} s, cost {}",
                    r.status,
                    r.start.map_or(0.0, |s| s.wait_s),
                    start_cost_ms(&r, &objective)
                        .map_or("-".to_string(), |c| format!("{:.1} s", c / 1000.0))
                );
                results.push(r);
            }
            Err(e) if interrupt::is_interruption(&e) => return Err(e),
            Err(e) => {
                eprintln!("{label} {name}: FAILED: {e:#}");
                failures.push(format!("{name}: {e:#}"));
            }
        }
    }
    let table = StartsTable::of(&results, &Objective::from_config(&policy_cfg));
    println!("{}", table.markdown());
    eprintln!("raw runs: {}", store.dir().display());
    if !failures.is_empty() {
        bail!(
            "{} of {total} runs failed (run again to retry them):\n  {}",
            failures.len(),
            failures.join("\n  ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_are_seeded_and_spread_over_the_span() {
        let a = delay_s(1, "periodic__predictive__now__1", 20.0);
        assert_eq!(a, delay_s(1, "periodic__predictive__now__1", 20.0));
        assert_ne!(a, delay_s(2, "periodic__predictive__now__1", 20.0));
        let delays: Vec<f64> = (0..200)
            .map(|i| delay_s(7, &format!("w__p__now__{i}"), 60.0))
            .collect();
        assert!(delays.iter().all(|d| (0.0..60.0).contains(d)));
        // Every third of the span is met.
        for third in 0..3 {
            let lo = 20.0 * third as f64;
            assert!(
                delays
                    .iter()
                    .filter(|d| (lo..lo + 20.0).contains(*d))
                    .count()
                    > 40,
                "{third}"
            );
        }
    }
}

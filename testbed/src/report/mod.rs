//! `kairos report`: pages rendered from stored runs, without QEMU.
//!
//! `pack` turns a campaign's run store into the versioned, compressed
//! records the repository keeps ([`record`]); `sweep` renders the live
//! sweep's page from them ([`sweep`]); `--check` renders without writing
//! and fails when the committed page differs (CI).

mod advise;
mod dirty_limit;
mod escalation;
mod evacuate;
mod evacuate_live;
mod frontier;
mod overhead;
mod record;
mod reliability;
mod sim;
pub(crate) mod starts;
mod sweep;

use crate::cmd::usage::{bail_usage, OrUsage};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};

/// Arguments of `kairos report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    #[command(subcommand)]
    pub page: ReportCommand,
}

/// What `kairos report` does.
#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Pack a campaign's run store (OUT/runs of `kairos compare`) into one
    /// compressed file of versioned run records.
    #[command(after_help = "Example:
  kairos report pack --runs build/sweep/out/runs --out docs/results/runs/sweep.jsonl.gz")]
    Pack(PackArgs),
    /// Put packed runs back into a campaign's directory (OUT/runs and
    /// OUT/campaign.json), so a campaign whose machine lost its raw runs
    /// resumes from the ones the repository keeps; runs already there are
    /// kept.
    #[command(after_help = "Example:
  kairos report unpack --records docs/results/runs/sweep.jsonl.gz --out build/sweep/out")]
    Unpack(UnpackArgs),
    /// Render the live sweep's page (predictive against every static limit).
    #[command(after_help = "Examples:
  kairos report sweep --records docs/results/runs/sweep.jsonl.gz --page docs/results-sweep.md
  kairos report sweep --records docs/results/runs/sweep.jsonl.gz --page docs/results-sweep.md --check")]
    Sweep(SweepArgs),
    /// Pack `kairos sim --json` outputs into one compressed file of
    /// versioned records, stamped with this binary's commit (the one that
    /// simulated them).
    #[command(after_help = "Example:
  kairos report pack-sim --sim 7=build/frontier/s7/sim-w3.jsonl --sim 7=build/frontier/s7/sim-w10.jsonl \\
      --out docs/results/runs/frontier.jsonl.gz")]
    PackSim(PackSimArgs),
    /// Render the frontier page (predictive against every static limit on
    /// random programs, simulated).
    #[command(after_help = "Example:
  kairos report frontier --records docs/results/runs/frontier.jsonl.gz --page docs/results-frontier.md --check")]
    Frontier(FrontierArgs),
    /// Render the simulated comparison page (every policy on the
    /// catalogue, goal checks, forecast quality).
    #[command(after_help = "Example:
  kairos report sim --records docs/results/runs/sim.jsonl.gz --page docs/results-sim.md \\
      --plots docs/results-sim --check")]
    Sim(SimArgs),
    /// Render the dirty-limit page (escalation as a throttle against a
    /// dirty-rate limit, simulated; the records' sets are the escalations).
    #[command(after_help = "Example:
  kairos report dirty-limit --records docs/results/runs/dirty-limit-sim.jsonl.gz \\
      --page docs/results-dirty-limit-sim.md --check")]
    DirtyLimit(PageArgs),
    /// Pack a `kairos profile --overhead` campaign (one sub-folder per
    /// workload, each with its overhead.json) into one compressed file of
    /// versioned records.
    #[command(after_help = "Example:
  kairos report pack-overhead --runs build/advise-overhead --out docs/results/runs/advise-overhead.jsonl.gz")]
    PackOverhead(PackOverheadArgs),
    /// Render the page of what `kairos advise`'s sampling costs the guest.
    #[command(after_help = "Example:
  kairos report overhead --records docs/results/runs/advise-overhead.jsonl.gz \\
      --page docs/advise-overhead.md --check")]
    Overhead(OverheadArgs),
    /// Pack the reliability campaign (`kairos soak` runs and the fuzzing
    /// log) into one compressed file of versioned records.
    #[command(after_help = "Example:
  kairos report pack-reliability --soak build/soak --faults build/soak-faults \\
      --fuzz build/fuzz/runs.txt --out docs/results/runs/reliability.jsonl.gz")]
    PackReliability(PackReliabilityArgs),
    /// Render the reliability page (soak, faults, fuzzing).
    #[command(after_help = "Example:
  kairos report reliability --records docs/results/runs/reliability.jsonl.gz \\
      --page docs/reliability.md --check")]
    Reliability(ReliabilityArgs),
    /// Render the escalation page (the strict case: throttle and post-copy
    /// escalation against auto-converge and post-copy after 5 rounds) from
    /// the two campaigns' packed runs (`kairos report pack`).
    #[command(after_help = "Example:
  kairos report escalation --throttle docs/results/runs/escalation-throttle.jsonl.gz \\
      --postcopy docs/results/runs/escalation-postcopy.jsonl.gz --page docs/results-escalation.md --check")]
    Escalation(EscalationArgs),
    /// Pack `kairos advise --workload … --json` evaluations (one file per
    /// wait weight ω) into one compressed file of versioned records.
    #[command(after_help = "Example:
  kairos report pack-advise --eval 0=build/advise-eval/omega-0.jsonl \\
      --eval 0.1=build/advise-eval/omega-0.1.jsonl --held-out web-45s,etl-110s \\
      --code-commit $(git rev-parse HEAD) --out docs/results/runs/advise-sim.jsonl.gz")]
    PackAdvise(PackAdviseArgs),
    /// Render docs/advise.md: the advice judged in simulation and, when
    /// its runs are stored, live (`kairos starts`).
    #[command(after_help = "Example:
  kairos report advise --sim docs/results/runs/advise-sim.jsonl.gz \\
      --live docs/results/runs/advise-live.jsonl.gz --page docs/advise.md --check")]
    Advise(AdviseArgs),
    /// Pack a `kairos evacuate --simulate --json` campaign (DIR/held-out/
    /// and DIR/design/, one HOST.jsonl per host) into one compressed file
    /// of versioned records.
    #[command(after_help = "Example:
  kairos report pack-evacuate --runs build/evacuate --code-commit $(git rev-parse HEAD) \\
      --out docs/results/runs/evacuate-sim.jsonl.gz")]
    PackEvacuate(PackEvacuateArgs),
    /// Render docs/evacuate.md: the evacuation planner against the
    /// operators' fixed concurrencies, simulated.
    #[command(after_help = "Example:
  kairos report evacuate --records docs/results/runs/evacuate-sim.jsonl.gz \\
      --page docs/evacuate.md --check")]
    Evacuate(EvacuateArgs),
    /// Store a live evacuation campaign's reports (`scripts/evacuate-live.sh
    /// --out DIR`) as records.
    PackEvacuateLive(PackEvacuateLiveArgs),
    /// Render docs/evacuate-live.md from the stored live evacuations.
    EvacuateLive(EvacuateLiveArgs),
}

/// Arguments of `kairos report pack-evacuate`.
#[derive(Debug, Args)]
pub struct PackEvacuateArgs {
    /// The campaign's folder: held-out/HOST.jsonl and design/HOST.jsonl,
    /// each the `kairos evacuate --simulate --json` output of one host.
    #[arg(long)]
    pub runs: PathBuf,
    /// The commit of the code that made the evacuations.
    #[arg(long)]
    pub code_commit: String,
    /// The records file to write (gzip JSON lines).
    #[arg(long)]
    pub out: PathBuf,
}

/// Arguments of `kairos report evacuate`.
#[derive(Debug, Args)]
pub struct EvacuateArgs {
    /// The stored evacuations (from `kairos report pack-evacuate`).
    #[arg(long)]
    pub records: PathBuf,
    /// The page to write (or, with --check, to compare).
    #[arg(long)]
    pub page: PathBuf,
    /// The command that makes the records and the page.
    #[arg(long, default_value = "bash scripts/results-evacuate.sh")]
    pub command: String,
    /// Do not write: fail when the page differs from what the records give.
    #[arg(long)]
    pub check: bool,
}

/// Arguments of `kairos report pack-evacuate-live`.
#[derive(Debug, Args)]
pub struct PackEvacuateLiveArgs {
    /// The campaign's directory (`evacuations.tsv` and `runs/rR-PLAN.json`).
    #[arg(long)]
    pub runs: PathBuf,
    /// Where the records go (gzip JSON lines).
    #[arg(long)]
    pub out: PathBuf,
}

/// Arguments of `kairos report evacuate-live`.
#[derive(Debug, Args)]
pub struct EvacuateLiveArgs {
    /// The stored live evacuations (from `kairos report pack-evacuate-live`).
    #[arg(long)]
    pub records: PathBuf,
    /// The page to write (or, with --check, to compare).
    #[arg(long)]
    pub page: PathBuf,
    /// The command that makes the records and the page.
    #[arg(long, default_value = "bash scripts/results-evacuate-live.sh")]
    pub command: String,
    /// Do not write: fail when the page differs from what the records give.
    #[arg(long)]
    pub check: bool,
}

/// Arguments of `kairos report pack-advise`.
#[derive(Debug, Args)]
pub struct PackAdviseArgs {
    /// ω=FILE: a `kairos advise --workload … --json` output made at that
    /// wait weight (repeatable).
    #[arg(long = "eval", value_name = "ω=FILE", required = true)]
    pub evals: Vec<String>,
    /// Comma-separated workloads held out from the advice's design.
    #[arg(long, default_value = "")]
    pub held_out: String,
    /// The commit of the code that made the evaluations.
    #[arg(long)]
    pub code_commit: String,
    /// The records file to write (gzip JSON lines).
    #[arg(long)]
    pub out: PathBuf,
}

/// Arguments of `kairos report advise`.
#[derive(Debug, Args)]
pub struct AdviseArgs {
    /// The simulated judgements (from `kairos report pack-advise`).
    #[arg(long)]
    pub sim: PathBuf,
    /// The live runs (`kairos starts`, packed by `kairos report pack`), if
    /// any.
    #[arg(long)]
    pub live: Option<PathBuf>,
    /// Where the live workloads' programs are (to know their cycles),
    /// comma-separated folders.
    #[arg(
        long,
        default_value = "testbed/workloads,testbed/workloads-held-out/advise"
    )]
    pub programs: String,
    /// The page to write (or, with --check, to compare).
    #[arg(long)]
    pub page: PathBuf,
    /// The command that makes the simulated records and the page.
    #[arg(long, default_value = "bash scripts/results-advise.sh")]
    pub command: String,
    /// The command that makes the live runs.
    #[arg(long, default_value = "bash scripts/results-advise-live.sh start")]
    pub live_command: String,
    /// The runs the live campaign plans: with fewer stored, the page says
    /// it is partial.
    #[arg(long, value_name = "N")]
    pub live_planned_runs: Option<usize>,
    /// Do not write: fail when the page differs from what the records give.
    #[arg(long)]
    pub check: bool,
}

/// Arguments of `kairos report escalation`.
#[derive(Debug, Args)]
pub struct EscalationArgs {
    /// The throttle section's runs (from `kairos report pack`).
    #[arg(long)]
    pub throttle: PathBuf,
    /// The post-copy section's runs (from `kairos report pack`).
    #[arg(long)]
    pub postcopy: PathBuf,
    /// The page to write (or, with --check, to compare).
    #[arg(long)]
    pub page: PathBuf,
    /// The command that makes the runs and the page, as the page names it.
    #[arg(long, default_value = "bash scripts/results-escalation.sh")]
    pub command: String,
    /// Do not write: fail when the page differs from what the records give.
    #[arg(long)]
    pub check: bool,
}

/// Arguments of `kairos report pack-reliability`.
#[derive(Debug, Args)]
pub struct PackReliabilityArgs {
    /// `kairos soak --out` of the long soak (its latest soak-* run); omit
    /// when it was not run.
    #[arg(long)]
    pub soak: Option<PathBuf>,
    /// `kairos soak --out` of the fault hops (its latest soak-* run).
    #[arg(long)]
    pub faults: PathBuf,
    /// scripts/fuzz.sh's log of runs (build/fuzz/runs.txt), if any.
    #[arg(long)]
    pub fuzz: Option<PathBuf>,
    /// The records file to write (gzip JSON lines).
    #[arg(long)]
    pub out: PathBuf,
}

/// Arguments of `kairos report reliability`.
#[derive(Debug, Args)]
pub struct ReliabilityArgs {
    /// The records (from `kairos report pack-reliability`).
    #[arg(long)]
    pub records: PathBuf,
    /// The page to write (or, with --check, to compare).
    #[arg(long)]
    pub page: PathBuf,
    /// The command that makes the runs and the page, as the page names it.
    #[arg(long, default_value = "bash scripts/soak.sh")]
    pub command: String,
    /// Do not write: fail when the page differs from what the records give.
    #[arg(long)]
    pub check: bool,
}

/// Arguments of `kairos report pack-overhead`.
#[derive(Debug, Args)]
pub struct PackOverheadArgs {
    /// The campaign folder (`kairos profile --overhead --out DIR/WORKLOAD`).
    #[arg(long)]
    pub runs: PathBuf,
    /// The records file to write (gzip JSON lines).
    #[arg(long)]
    pub out: PathBuf,
    /// What else ran on the host and how to read the runs (a paragraph the
    /// page prints).
    #[arg(long, value_name = "TEXT")]
    pub conditions: Option<String>,
}

/// Arguments of `kairos report overhead`.
#[derive(Debug, Args)]
pub struct OverheadArgs {
    /// The records (from `kairos report pack-overhead`).
    #[arg(long)]
    pub records: PathBuf,
    /// The page to write (or, with --check, to compare).
    #[arg(long)]
    pub page: PathBuf,
    /// The command that makes the runs and the page, as the page names it.
    #[arg(long, default_value = "bash scripts/results-advise-overhead.sh")]
    pub command: String,
    /// Do not write: fail when the page differs from what the records give.
    #[arg(long)]
    pub check: bool,
}

/// Arguments of a page rendered from records alone.
#[derive(Debug, Args)]
pub struct PageArgs {
    /// The records (from `kairos report pack-sim`).
    #[arg(long)]
    pub records: PathBuf,
    /// The page to write (or, with --check, to compare).
    #[arg(long)]
    pub page: PathBuf,
    /// Do not write: fail when the page differs from what the records give.
    #[arg(long)]
    pub check: bool,
}

/// Arguments of `kairos report sim`.
#[derive(Debug, Args)]
pub struct SimArgs {
    /// The records (from `kairos report pack-sim`).
    #[arg(long)]
    pub records: PathBuf,
    /// The page to write (or, with --check, to compare).
    #[arg(long)]
    pub page: PathBuf,
    /// The directory of the Pareto plots the page links to.
    #[arg(long)]
    pub plots: Option<PathBuf>,
    /// Do not write: fail when the page differs from what the records give.
    #[arg(long)]
    pub check: bool,
}

/// Arguments of `kairos report pack-sim`.
#[derive(Debug, Args)]
pub struct PackSimArgs {
    /// A set's name and one of its `kairos sim --json` outputs (repeat for
    /// every weight and set).
    #[arg(long, required = true, value_name = "SET=FILE")]
    pub sim: Vec<String>,
    /// The records file to write (gzip JSON lines).
    #[arg(long)]
    pub out: PathBuf,
    /// The commit of the code that made the simulated runs [default: this
    /// binary's] (a campaign's own, pinned build).
    #[arg(long, value_name = "COMMIT")]
    pub code_commit: Option<String>,
}

/// Arguments of `kairos report frontier`.
#[derive(Debug, Args)]
pub struct FrontierArgs {
    /// The records (from `kairos report pack-sim`).
    #[arg(long)]
    pub records: PathBuf,
    /// The page to write (or, with --check, to compare).
    #[arg(long)]
    pub page: PathBuf,
    /// What a run that never ends counts in a sum, s (the simulator's time
    /// cap).
    #[arg(long, default_value_t = 600.0, value_name = "S")]
    pub cap_s: f64,
    /// Sets already used to choose between designs (the page says they are
    /// not unseen), comma-separated.
    #[arg(long, default_value = "", value_name = "SET[,SET...]")]
    pub design_sets: String,
    /// The command that makes the runs and the page, as the page names it.
    #[arg(long, default_value = "bash scripts/results-frontier.sh")]
    pub command: String,
    /// The generator of scripts/gen_workloads.py that drew the sets (the
    /// page describes what it draws).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=3))]
    pub generator: u32,
    /// Do not write: fail when the page differs from what the records give.
    #[arg(long)]
    pub check: bool,
}

/// Arguments of `kairos report pack`.
#[derive(Debug, Args)]
pub struct PackArgs {
    /// The run store: a directory of NAME.json results and NAME/trace.csv.
    #[arg(long)]
    pub runs: PathBuf,
    /// The records file to write (gzip JSON lines).
    #[arg(long)]
    pub out: PathBuf,
}

/// Arguments of `kairos report unpack`.
#[derive(Debug, Args)]
pub struct UnpackArgs {
    /// The records (from `kairos report pack`), all of one commit's code.
    #[arg(long)]
    pub records: PathBuf,
    /// The campaign directory (`kairos compare --out`).
    #[arg(long)]
    pub out: PathBuf,
}

/// Arguments of `kairos report sweep`.
#[derive(Debug, Args)]
pub struct SweepArgs {
    /// The records (from `kairos report pack`).
    #[arg(long)]
    pub records: PathBuf,
    /// The page to write (or, with --check, to compare).
    #[arg(long)]
    pub page: PathBuf,
    /// The user's downtime limit L every cost is under, ms.
    #[arg(long, default_value_t = 300.0, value_name = "MS")]
    pub downtime_limit_ms: f64,
    /// What a run that did not succeed is charged, s (the sweep's
    /// --timeout-s: what a user waits before giving up).
    #[arg(long, default_value_t = 120.0, value_name = "S")]
    pub failure_charge_s: f64,
    /// The sweep's programs simulated by the sweep's own code (from
    /// `kairos report pack-sim`; `scripts/sweep.sh pack` makes them): the
    /// page's simulated counterpart. Without it the page says none is
    /// stored.
    #[arg(long, value_name = "FILE")]
    pub simulated: Option<PathBuf>,
    /// Repeats a cell has when the sweep is done (fewer: the page says it
    /// is partial).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..))]
    pub repeats: u16,
    /// Cells the campaign plans (workloads × policies), for a partial
    /// sweep's count [default: those the runs show].
    #[arg(long, value_name = "N")]
    pub planned_cells: Option<usize>,
    /// Do not write: fail when the page differs from what the records give.
    #[arg(long)]
    pub check: bool,
}

/// Run `kairos report`.
pub fn run(args: &ReportArgs) -> Result<()> {
    match &args.page {
        ReportCommand::Pack(a) => pack(a),
        ReportCommand::Unpack(a) => unpack(a),
        ReportCommand::Sweep(a) => sweep_page(a),
        ReportCommand::PackSim(a) => pack_sim(a),
        ReportCommand::Frontier(a) => frontier_page(a),
        ReportCommand::Sim(a) => sim_page(a),
        ReportCommand::DirtyLimit(a) => {
            let records: Vec<record::SimRecord> = record::read(&a.records)?;
            let source = a.records.display().to_string();
            let text = dirty_limit::render(&dirty_limit::DirtyLimitPage {
                records: &records,
                source: &source,
            })?;
            write_or_check(&a.page, &text, a.check)
        }
        ReportCommand::PackOverhead(a) => {
            let records = record::overhead_runs(&a.runs, a.conditions.as_deref())?;
            record::write(&a.out, &records)?;
            eprintln!(
                "packed {} overhead runs into {}",
                records.len(),
                a.out.display()
            );
            Ok(())
        }
        ReportCommand::PackReliability(a) => pack_reliability(a),
        ReportCommand::Escalation(a) => {
            let throttle: Vec<record::RunRecord> = record::read(&a.throttle)?;
            let postcopy: Vec<record::RunRecord> = record::read(&a.postcopy)?;
            let sources = format!("`{}` and `{}`", a.throttle.display(), a.postcopy.display());
            let text = escalation::render(&throttle, &postcopy, &sources, &a.command)?;
            write_or_check(&a.page, &text, a.check)
        }
        ReportCommand::Reliability(a) => {
            let records: Vec<record::ReliabilityRecord> = record::read(&a.records)?;
            let source = a.records.display().to_string();
            let text = reliability::render(&records, &source, &a.command)?;
            write_or_check(&a.page, &text, a.check)
        }
        ReportCommand::PackAdvise(a) => pack_advise(a),
        ReportCommand::Advise(a) => advise_page(a),
        ReportCommand::PackEvacuate(a) => pack_evacuate(a),
        ReportCommand::Evacuate(a) => {
            let records: Vec<evacuate::EvacuateRecord> = record::read(&a.records)?;
            let source = a.records.display().to_string();
            let text = evacuate::render(&records, &source, &a.command)?;
            write_or_check(&a.page, &text, a.check)
        }
        ReportCommand::PackEvacuateLive(a) => {
            let records = evacuate_live::pack(&a.runs)?;
            record::write(&a.out, &records)?;
            eprintln!(
                "packed {} live evacuations into {}",
                records.len(),
                a.out.display()
            );
            Ok(())
        }
        ReportCommand::EvacuateLive(a) => {
            let records: Vec<evacuate_live::EvacuateLiveRecord> = record::read(&a.records)?;
            let source = a.records.display().to_string();
            let text = evacuate_live::render(&records, &source, &a.command)?;
            write_or_check(&a.page, &text, a.check)
        }
        ReportCommand::Overhead(a) => {
            let records: Vec<record::OverheadRecord> = record::read(&a.records)?;
            let source = a.records.display().to_string();
            let text = overhead::render(&records, &source, &a.command)?;
            write_or_check(&a.page, &text, a.check)
        }
    }
}

fn pack_advise(args: &PackAdviseArgs) -> Result<()> {
    let held_out: Vec<&str> = args
        .held_out
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    let now = crate::live::run::unix_now_s();
    let mut records = Vec::new();
    for spec in &args.evals {
        let (omega, path) = spec
            .split_once('=')
            .with_context(|| format!("--eval {spec}: give ω=FILE"))
            .or_usage()?;
        let wait_weight: f64 = omega
            .parse()
            .ok()
            .filter(|w: &f64| w.is_finite() && *w >= 0.0)
            .with_context(|| format!("--eval {spec}: ω must be a number >= 0"))
            .or_usage()?;
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
        for (i, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let eval: kairos_eval::advise::evaluate::WorkloadEval = serde_json::from_str(line)
                .with_context(|| {
                    format!(
                        "{path}: line {} is not a kairos advise --json evaluation",
                        i + 1
                    )
                })?;
            records.push(advise::AdviseSimRecord {
                format: record::RECORD_FORMAT,
                wait_weight,
                held_out: held_out.contains(&eval.workload.as_str()),
                code_commit: args.code_commit.clone(),
                made_unix_s: now,
                eval,
            });
        }
    }
    if records.is_empty() {
        bail!("no evaluations in the --eval files");
    }
    record::write(&args.out, &records)?;
    eprintln!(
        "packed {} evaluations into {}",
        records.len(),
        args.out.display()
    );
    Ok(())
}

/// The link of an evacuation's setup, as the page names it.
fn link_label(setup: &serde_json::Value) -> String {
    let mbit = setup
        .get("bandwidth_mbit")
        .and_then(serde_json::Value::as_f64)
        .unwrap_or(f64::NAN);
    let link = match setup
        .get("per_migration_mbit")
        .and_then(serde_json::Value::as_f64)
    {
        Some(cap) => format!("{mbit} Mbit/s, {cap} per migration"),
        None => format!("{mbit} Mbit/s"),
    };
    let link = match setup.get("setup_s").and_then(serde_json::Value::as_f64) {
        Some(prepare_s) if prepare_s > 0.0 => format!("{link}, {prepare_s} s to prepare each"),
        _ => link,
    };
    let hosts = setup
        .get("hosts")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(1);
    match setup.get("uplink_mbit").and_then(serde_json::Value::as_f64) {
        Some(uplink) if hosts > 1 => {
            format!("rack of {hosts} hosts, {link} each, uplink {uplink} Mbit/s")
        }
        _ => link,
    }
}

fn pack_evacuate(args: &PackEvacuateArgs) -> Result<()> {
    let now = crate::live::run::unix_now_s();
    let mut records = Vec::new();
    for (folder, held_out) in [("held-out", true), ("design", false)] {
        let dir = args.runs.join(folder);
        if !dir.is_dir() {
            continue;
        }
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .map(|e| e.map(|e| e.path()))
            .collect::<std::io::Result<_>>()?;
        files.retain(|f| f.extension().is_some_and(|x| x == "jsonl"));
        files.sort();
        for file in files {
            let host = file
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            for (i, line) in text
                .lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
            {
                let row: evacuate::EvacuationRow =
                    serde_json::from_str(line).with_context(|| {
                        format!(
                            "{}: line {} is not a kairos evacuate --json evacuation",
                            file.display(),
                            i + 1
                        )
                    })?;
                records.push(evacuate::EvacuateRecord {
                    format: record::RECORD_FORMAT,
                    host: host.clone(),
                    held_out,
                    link: link_label(&row.setup),
                    code_commit: args.code_commit.clone(),
                    made_unix_s: now,
                    row,
                });
            }
        }
    }
    if records.is_empty() {
        bail!(
            "no evacuations in {}/held-out or {}/design",
            args.runs.display(),
            args.runs.display()
        );
    }
    record::write(&args.out, &records)?;
    eprintln!(
        "packed {} evacuations into {}",
        records.len(),
        args.out.display()
    );
    Ok(())
}

fn advise_page(args: &AdviseArgs) -> Result<()> {
    let sim: Vec<advise::AdviseSimRecord> = record::read(&args.sim)?;
    let live: Option<Vec<record::RunRecord>> = match &args.live {
        Some(path) if path.exists() => Some(record::read(path)?),
        _ => None,
    };
    let dirs: Vec<PathBuf> = args
        .programs
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .collect();
    let cycle_of = |name: &str| -> Option<f64> {
        let file = dirs
            .iter()
            .map(|d| d.join(format!("{name}.toml")))
            .find(|f| f.exists())?;
        let program = kairos_eval::sim::workload::Workload::from_file(&file).ok()?;
        program.repeat.then(|| program.cycle_seconds())
    };
    let sim_source = args.sim.display().to_string();
    let live_source = args
        .live
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let text = advise::render(&advise::AdvisePage {
        sim: &sim,
        sim_source: &sim_source,
        live: live.as_deref().map(|r| (r, live_source.as_str())),
        live_cycles: &cycle_of,
        command: &args.command,
        live_command: &args.live_command,
        live_planned_runs: args.live_planned_runs,
    })?;
    write_or_check(&args.page, &text, args.check)
}

fn pack_reliability(args: &PackReliabilityArgs) -> Result<()> {
    let soak_record = |soak| record::ReliabilityRecord {
        format: record::RECORD_FORMAT,
        soak: Some(soak),
        fuzz_run: None,
    };
    let mut records = Vec::new();
    if let Some(dir) = &args.soak {
        records.push(soak_record(record::latest_soak(
            dir,
            record::SoakKind::Soak,
        )?));
    }
    records.push(soak_record(record::latest_soak(
        &args.faults,
        record::SoakKind::Faults,
    )?));
    if let Some(log) = &args.fuzz {
        let text =
            std::fs::read_to_string(log).with_context(|| format!("reading {}", log.display()))?;
        records.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(|line| record::ReliabilityRecord {
                    format: record::RECORD_FORMAT,
                    soak: None,
                    fuzz_run: Some(line.to_string()),
                }),
        );
    }
    record::write(&args.out, &records)?;
    eprintln!(
        "packed {} reliability records into {}",
        records.len(),
        args.out.display()
    );
    Ok(())
}

fn pack(args: &PackArgs) -> Result<()> {
    let (records, skipped) = record::from_store(&args.runs)?;
    if records.is_empty() {
        bail!("{}: no run results in it", args.runs.display());
    }
    record::write(&args.out, &records)?;
    let bytes = std::fs::metadata(&args.out).map(|m| m.len()).unwrap_or(0);
    eprintln!(
        "packed {} runs ({} with a trace; {skipped} other files skipped) into {} ({:.1} KiB)",
        records.len(),
        records.iter().filter(|r| r.trace_csv.is_some()).count(),
        args.out.display(),
        bytes as f64 / 1024.0
    );
    Ok(())
}

fn unpack(args: &UnpackArgs) -> Result<()> {
    let records: Vec<record::RunRecord> = record::read(&args.records)?;
    let mut commits: Vec<&str> = records
        .iter()
        .filter_map(|r| r.result.code_commit.as_deref())
        .collect();
    commits.sort_unstable();
    commits.dedup();
    let [commit] = commits[..] else {
        bail!(
            "{}: its runs carry {} commits ({}); a campaign resumes at one",
            args.records.display(),
            commits.len(),
            commits.join(", ")
        );
    };
    let started_unix_s = records
        .iter()
        .filter_map(|r| r.result.finished_unix_s)
        .min()
        .unwrap_or_else(crate::live::run::unix_now_s);
    crate::cmd::compare::store::open_campaign(&args.out, commit, false, started_unix_s)?;
    let done = record::to_store(&records, &args.out.join("runs"))?;
    eprintln!(
        "unpacked {} runs of commit {commit} into {} ({} already there, kept)",
        done.written,
        args.out.display(),
        done.kept
    );
    Ok(())
}

fn pack_sim(args: &PackSimArgs) -> Result<()> {
    let now = crate::live::run::unix_now_s();
    let mut records = Vec::new();
    for spec in &args.sim {
        let Some((set, file)) = spec
            .split_once('=')
            .filter(|(s, f)| !s.is_empty() && !f.is_empty())
        else {
            bail_usage!("--sim '{spec}' is not SET=FILE");
        };
        let (rows, qualities) = record::sim_lines(Path::new(file))?;
        let record = |summary, quality| record::SimRecord {
            format: record::RECORD_FORMAT,
            set: set.to_string(),
            code_commit: args
                .code_commit
                .clone()
                .unwrap_or_else(|| crate::live::run::CODE_COMMIT.to_string()),
            made_unix_s: now,
            summary,
            quality,
        };
        records.extend(rows.into_iter().map(|r| record(Some(r), None)));
        records.extend(qualities.into_iter().map(|q| record(None, Some(q))));
    }
    record::write(&args.out, &records)?;
    eprintln!(
        "packed {} simulated runs into {} ({:.1} KiB)",
        records.len(),
        args.out.display(),
        std::fs::metadata(&args.out).map_or(0, |m| m.len()) as f64 / 1024.0
    );
    Ok(())
}

fn sim_page(args: &SimArgs) -> Result<()> {
    let records: Vec<record::SimRecord> = record::read(&args.records)?;
    // The plots as the page links them: relative to the page's directory.
    let mut plots = Vec::new();
    if let Some(dir) = &args.plots {
        let base = args.page.parent().unwrap_or(Path::new(""));
        for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
            let path = entry?.path();
            if path.extension().is_some_and(|x| x == "png") {
                let rel = path.strip_prefix(base).unwrap_or(&path);
                plots.push(rel.display().to_string());
            }
        }
        plots.sort();
    }
    let source = args.records.display().to_string();
    let text = sim::render(&sim::SimPage {
        records: &records,
        source: &source,
        plots: &plots,
    })?;
    write_or_check(&args.page, &text, args.check)
}

fn frontier_page(args: &FrontierArgs) -> Result<()> {
    if !(args.cap_s.is_finite() && args.cap_s > 0.0) {
        bail_usage!("--cap-s must be > 0");
    }
    let records: Vec<record::SimRecord> = record::read(&args.records)?;
    let design_sets: Vec<String> = args
        .design_sets
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    let source = args.records.display().to_string();
    let text = frontier::render(&frontier::FrontierPage {
        records: &records,
        cap_ms: args.cap_s * 1000.0,
        source: &source,
        command: &args.command,
        design_sets: &design_sets,
        generator: args.generator,
        // The runs are made with the policy's defaults but the maximum.
        stop_ceiling_ms: 1000.0
            * (1.0 - kairos_policy_core::PolicyConfig::default().downtime_headroom_fraction),
    })?;
    write_or_check(&args.page, &text, args.check)
}

fn sweep_page(args: &SweepArgs) -> Result<()> {
    if !(args.failure_charge_s.is_finite() && args.failure_charge_s > 0.0) {
        bail_usage!("--failure-charge-s must be > 0");
    }
    if !(args.downtime_limit_ms.is_finite() && args.downtime_limit_ms > 0.0) {
        bail_usage!("--downtime-limit-ms must be > 0");
    }
    let records: Vec<record::RunRecord> = record::read(&args.records)?;
    let simulated: Vec<record::SimRecord> = match &args.simulated {
        Some(path) => record::read(path)?,
        None => Vec::new(),
    };
    let source = args.records.display().to_string();
    let command = format!(
        "kairos report sweep --records {source} --page {}",
        args.page.display()
    );
    let text = sweep::render(&sweep::SweepPage {
        records: &records,
        downtime_limit_ms: args.downtime_limit_ms,
        failure_charge_ms: args.failure_charge_s * 1000.0,
        source: &source,
        command: &command,
        repeats: usize::from(args.repeats),
        planned_cells: args.planned_cells,
        simulated: &simulated,
    })?;
    write_or_check(&args.page, &text, args.check)
}

/// Write `text` to `page`, or with `check` compare them.
fn write_or_check(page: &Path, text: &str, check: bool) -> Result<()> {
    if check {
        let committed =
            std::fs::read_to_string(page).with_context(|| format!("reading {}", page.display()))?;
        if committed != text {
            bail!(
                "{} differs from what its stored runs give: re-render it (the same command without --check) and commit it",
                page.display()
            );
        }
        eprintln!("{}: matches its stored runs", page.display());
        return Ok(());
    }
    std::fs::write(page, text).with_context(|| format!("writing {}", page.display()))?;
    eprintln!("wrote {}", page.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::link_label;

    #[test]
    fn a_link_is_named_by_its_bandwidth_cap_preparation_and_rack() {
        let plain = serde_json::json!({"bandwidth_mbit": 1000.0, "setup_s": 0.0});
        assert_eq!(link_label(&plain), "1000 Mbit/s");
        let prepared = serde_json::json!({"bandwidth_mbit": 1000.0, "setup_s": 5.0});
        assert_eq!(link_label(&prepared), "1000 Mbit/s, 5 s to prepare each");
        let capped = serde_json::json!({"bandwidth_mbit": 10000.0, "per_migration_mbit": 2500.0});
        assert_eq!(link_label(&capped), "10000 Mbit/s, 2500 per migration");
        let rack = serde_json::json!({"bandwidth_mbit": 1000.0, "hosts": 8, "uplink_mbit": 4000.0});
        assert_eq!(
            link_label(&rack),
            "rack of 8 hosts, 1000 Mbit/s each, uplink 4000 Mbit/s"
        );
    }
}

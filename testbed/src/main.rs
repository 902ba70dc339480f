//! `kairos`: simulate, replay, run and compare live migrations under the
//! Kairos convergence policies, and profile guests.

mod cli_policy;
mod cmd;
mod driver;
mod live;
mod plot;
mod profile_overhead;
mod record;
mod report;
mod table;

use clap::{Parser, Subcommand};

/// Exit status when a run failed (a migration could not be carried out,
/// a file could not be read …).
const EXIT_FAILED: u8 = 1;
/// Exit status for a command line the command cannot run as given (as
/// clap's own errors).
const EXIT_USAGE: u8 = 2;
/// Exit status when Ctrl-C or SIGTERM stopped the command.
const EXIT_INTERRUPTED: u8 = 130;

/// Live VM migration that knows when to stop.
#[derive(Debug, Parser)]
#[command(
    name = "kairos",
    version,
    about,
    after_help = "Exit status: 0 done; 1 a run failed; 2 bad usage; 130 interrupted (Ctrl-C)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Simulate pre-copy migrations of workload programs under policies.
    #[command(after_help = "Examples:
  kairos sim --workload testbed/workloads/hot-wss.toml --policy qemu,qemu@1000,predictive
  kairos sim --suite testbed/workloads --downtime-weight 30 --forecast-quality --json")]
    Sim(cmd::sim::SimArgs),
    /// Replay recorded per-round traces through policies.
    #[command(after_help = "Example:
  kairos replay --trace build/compare/runs/hot-wss__qemu__1/trace.csv --policy all")]
    Replay(cmd::replay::ReplayArgs),
    /// Migrate the Kairos guest between two real QEMU processes.
    #[command(after_help = "Examples:
  kairos run --workload phase-change --policy predictive
  kairos run --workload redis --policy qemu@1000 --repeat 3 --json")]
    Run(cmd::run::RunArgs),
    /// Run a matrix of real migrations (workloads × policies × repeats).
    Compare(cmd::compare::CompareArgs),
    /// Profile the guest without migration: CPU, memory, dirty rate.
    #[command(after_help = "Example:
  kairos profile --workload phase-change --duration-s 60")]
    Profile(cmd::profile::ProfileArgs),
    /// Migrate one guest back and forth many times, each hop verified,
    /// optionally with faults injected mid-migration.
    #[command(after_help = "Examples:
  kairos soak --hops 1000 --ram-mib 512
  kairos soak --hops 5 --ram-mib 512 --fault all --json")]
    Soak(cmd::soak::SoakArgs),
    /// When to start a migration: sample a running QEMU, forecast its
    /// dirty rate, advise a start (or judge that advice in simulation).
    #[command(after_help = "Examples:
  kairos advise --qmp /run/qemu/guest.qmp --duration-s 240
  kairos advise --suite testbed/workloads --trials 12")]
    Advise(cmd::advise::AdviseArgs),
    /// Compare start rules on live guests: migrations started at random
    /// moments, where `kairos advise` says and where the ALMA-style rule
    /// says, under one stop policy.
    #[command(after_help = "Examples:
  kairos starts --suite periodic,batch-cycle --random 10 --advised 5 --alma 5
  kairos starts --suite gc-cycle --wait-weight 0 --out build/starts")]
    Starts(cmd::starts::StartsArgs),
    /// Empty a host: its guests migrated over one shared link, at the
    /// fixed concurrencies operators use (simulated).
    Evacuate(cmd::evacuate::EvacuateArgs),
    /// Follow running QEMUs' migrations in shadow mode (policy `observe`):
    /// each migration's trace (for `kairos replay`) and decision record,
    /// and the figures served in the Prometheus text format.
    #[command(
        after_help = "Runs until Ctrl-C or SIGTERM (exit 0) or --migrations N. Example:
  kairos record --qmp vm1=/run/vm1-record.qmp --out /var/lib/kairos/record --metrics-listen 127.0.0.1:9464"
    )]
    Record(cmd::record::RecordArgs),
    /// Render results pages from stored runs (no QEMU needed), or pack a
    /// campaign's runs for the repository.
    Report(report::ReportArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Sim(args) => cmd::sim::run(&args),
        Command::Replay(args) => cmd::replay::run(&args),
        Command::Run(args) => cmd::run::run(&args),
        Command::Compare(args) => cmd::compare::run(&args),
        Command::Profile(args) => cmd::profile::run(&args),
        Command::Soak(args) => cmd::soak::run(&args),
        Command::Advise(args) => cmd::advise::run(&args),
        Command::Starts(args) => cmd::starts::run(&args),
        Command::Evacuate(args) => cmd::evacuate::run(&args),
        Command::Record(args) => cmd::record::run(&args),
        Command::Report(args) => report::run(&args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("kairos: error: {err:#}");
            if live::interrupt::is_interruption(&err) {
                std::process::ExitCode::from(EXIT_INTERRUPTED)
            } else if cmd::usage::is_usage(&err) {
                std::process::ExitCode::from(EXIT_USAGE)
            } else {
                std::process::ExitCode::from(EXIT_FAILED)
            }
        }
    }
}

//! `kairos`: simulate, replay, run and compare live migrations under the
//! Kairos convergence policies, and profile guests.

mod cli_policy;
mod cmd_compare;
mod cmd_profile;
mod cmd_replay;
mod cmd_run;
mod cmd_sim;
mod live;
mod plot;
mod table;

use clap::{Parser, Subcommand};

/// Live VM migration that knows when to stop.
#[derive(Debug, Parser)]
#[command(name = "kairos", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Simulate pre-copy migrations of workload programs under policies.
    Sim(cmd_sim::SimArgs),
    /// Replay recorded per-round traces through policies.
    Replay(cmd_replay::ReplayArgs),
    /// Migrate the Kairos guest between two real QEMU processes.
    Run(cmd_run::RunArgs),
    /// Run a matrix of real migrations (workloads × policies × repeats).
    Compare(cmd_compare::CompareArgs),
    /// Profile the guest without migration: CPU, memory, dirty rate.
    Profile(cmd_profile::ProfileArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Sim(args) => cmd_sim::run(&args),
        Command::Replay(args) => cmd_replay::run(&args),
        Command::Run(args) => cmd_run::run(&args),
        Command::Compare(args) => cmd_compare::run(&args),
        Command::Profile(args) => cmd_profile::run(&args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("kairos: error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

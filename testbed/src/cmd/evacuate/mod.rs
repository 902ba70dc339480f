//! `kairos evacuate`: empty a host — its guests migrated over one link,
//! in simulation ([`sim`]: every fixed plan operators use against
//! Kairos's planner) or live through libvirt ([`live`]: one plan, the
//! host's running domains moved to another libvirt daemon).

pub mod live;
pub mod sim;

use std::path::PathBuf;

use anyhow::Result;
use clap::{ArgGroup, Args};

use crate::cli_policy::PolicyArgs;

/// Arguments of `kairos evacuate`.
#[derive(Debug, Args)]
#[command(
    group(ArgGroup::new("mode").required(true).args(["simulate", "connect"])),
    after_help = "Examples:
  kairos evacuate --simulate --guests testbed/workloads --policy qemu,predictive
  kairos evacuate --simulate --guests hot-wss.toml,periodic.toml --copies 4 --json
  kairos evacuate --connect qemu:///system --to qemu+ssh://dst/system --policy predictive
  kairos evacuate --connect qemu:///system --to qemu+ssh://dst/system --at-a-time 2 --order random"
)]
pub struct EvacuateArgs {
    /// Simulate the evacuation of workload programs (--guests).
    #[arg(long)]
    pub simulate: bool,
    /// Evacuate live: the libvirt connection URI of the host to empty
    /// (built with the `libvirt` feature).
    #[arg(long, value_name = "URI", requires = "to")]
    pub connect: Option<String>,
    /// Live: the libvirt connection URI of the destination host.
    #[arg(long, value_name = "URI", requires = "connect")]
    pub to: Option<String>,
    /// Live: the domains to move, comma-separated [default: every running
    /// domain of the host].
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "NAME[,NAME...]",
        requires = "connect"
    )]
    pub domains: Vec<String>,
    /// Live: the address the destination receives the migration streams
    /// on (`tcp://ADDR`, a port each from libvirt's range) [default:
    /// libvirt's choice, the destination's hostname].
    #[arg(long, value_name = "ADDR", requires = "connect")]
    pub migrate_host: Option<String>,
    /// Live: how many migrations at a time — Kairos's plan, all, or a
    /// fixed number.
    #[arg(long, default_value = "planned", value_name = "planned|all|N", value_parser = live::at_a_time, requires = "connect")]
    pub at_a_time: live::AtATime,
    /// Live, with a fixed number at a time: the order guests go in.
    #[arg(long, value_enum, default_value = "listed", requires = "connect")]
    pub order: live::Order,
    /// Live: seconds each guest is profiled (all at once) before the plan
    /// is made.
    #[arg(long, default_value_t = 20.0, value_name = "S", requires = "connect")]
    pub profile_s: f64,
    /// Live: where the JSON report goes [default: printed with --json only].
    #[arg(long, value_name = "FILE", requires = "connect")]
    pub report: Option<PathBuf>,
    /// Simulation: the host's guests, workload program files,
    /// comma-separated, or a directory of them (every *.toml).
    #[arg(long, conflicts_with = "connect")]
    pub guests: Option<String>,
    /// Simulation: each program this many times (each copy its own seed).
    #[arg(long, default_value_t = 1, conflicts_with = "connect")]
    pub copies: usize,
    /// Which policy stops each migration (live: one of predictive, the
    /// default there, qemu and qemu@MS; `all` means predictive).
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// The link every migration shares, Mbit/s (live: what the plan
    /// assumes; the link itself is what it is).
    #[arg(long, default_value_t = 1000.0)]
    pub bandwidth_mbit: f64,
    /// The most one migration sends at, Mbit/s (its max-bandwidth, or what
    /// one migration stream can push); the link's when not given.
    #[arg(long, value_name = "MBIT")]
    pub per_migration_mbit: Option<f64>,
    /// Simulation: seconds every guest has run before the evacuation
    /// starts.
    #[arg(
        long,
        default_value_t = 60.0,
        value_name = "S",
        conflicts_with = "connect"
    )]
    pub warmup_s: f64,
    /// Simulation: seconds each migration prepares before it sends (a
    /// management layer starting the destination QEMU; the link idle
    /// meanwhile). Live, the plan measures it on the first migrations.
    #[arg(
        long,
        default_value_t = 0.0,
        value_name = "S",
        conflicts_with = "connect"
    )]
    pub setup_s: f64,
    /// A migration still running this long after its start is cancelled, s.
    #[arg(long, default_value_t = 600.0, value_name = "S")]
    pub time_cap_s: f64,
    /// Seed of the guests (simulation) and of the random order.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Simulation, a rack: the guests dealt to this many hosts in turn
    /// (guest i on host i mod N), each draining over its own link of
    /// --bandwidth-mbit, all through one uplink (--uplink-mbit); each host
    /// plans on its own.
    #[arg(
        long,
        default_value_t = 1,
        value_name = "N",
        conflicts_with = "connect"
    )]
    pub hosts: usize,
    /// Simulation: the rack's uplink every host's migrations cross,
    /// Mbit/s [default: the hosts' links together, so it never binds].
    #[arg(long, value_name = "MBIT", conflicts_with = "connect")]
    pub uplink_mbit: Option<f64>,
    /// Simulation: which kinds of plan to run: the fixed ones operators
    /// use, Kairos's planner, the planner asking each guest's advice.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "fixed,planned,advised",
        conflicts_with = "connect"
    )]
    pub plans: Vec<PlanKind>,
    /// JSON instead of a table (simulation: one object per evacuation;
    /// live: the report).
    #[arg(long)]
    pub json: bool,
}

/// A kind of plan `--plans` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PlanKind {
    /// Every fixed concurrency (1, 2, 4, all) in every baseline order.
    Fixed,
    /// Kairos's planner from each guest's profile.
    Planned,
    /// Kairos's planner asking each waiting guest's advice.
    Advised,
}

/// Run `kairos evacuate`.
pub fn run(args: &EvacuateArgs) -> Result<()> {
    if args.simulate {
        sim::run(args)
    } else {
        live::run(args)
    }
}

//! `kairos evacuate --simulate`: a host emptied in simulation
//! (`kairos_eval::gang`): every guest program given
//! (each looped: a host's guests keep running), the fixed concurrencies
//! operators use (1, 2, 4, all) in the listed order, a random one and
//! shortest predicted first, and Kairos's planner, each guest under each
//! stop policy given; a table (or JSON lines with every guest's migration)
//! of makespan, downtime above the limit, guests above the maximum and
//! guests that did not complete. With `--hosts`, a rack: the guests dealt
//! to several hosts, each draining over its own link through one shared
//! uplink, each host running the plan on its own guests.

use crate::cmd::usage::bail_usage;
use std::path::{Path, PathBuf};

use anyhow::Result;
use kairos_eval::advise::evaluate::bulk_wire_bytes;
use kairos_eval::advise::profile::simulated_profile;
use kairos_eval::gang::baseline::{baseline_schedule, BaselineOrder, Concurrency, GangScore};
use kairos_eval::gang::outlook::SimulatedOutlook;
use kairos_eval::gang::plan::{GuestForecast, PlanLink, Planner};
use kairos_eval::gang::rack::{Rack, RackDispatcher};
use kairos_eval::gang::sim::{simulate_rack, Dispatcher, GangConfig, GangGuest, GangRun};
use kairos_eval::sim::workload::{suite_files, Workload};
use kairos_policy_core::cost::Objective;
use serde::Serialize;

use super::{EvacuateArgs, PlanKind};

/// How an evacuation is scheduled.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
enum Plan {
    /// A fixed number at a time in a baseline's order.
    Fixed {
        concurrency: Concurrency,
        order: BaselineOrder,
    },
    /// Kairos's planner (`kairos_eval::gang::plan`), from each guest's
    /// profile at the start.
    Planned,
    /// The same, asking each waiting guest's advice at every event.
    PlannedAdvised,
}

impl Plan {
    fn at_a_time(self) -> String {
        match self {
            Plan::Fixed { concurrency, .. } => concurrency.name(),
            Plan::Planned | Plan::PlannedAdvised => "planned".to_string(),
        }
    }

    fn order(self) -> String {
        match self {
            Plan::Fixed {
                order: BaselineOrder::AsListed,
                ..
            } => "as listed".to_string(),
            Plan::Fixed {
                order: BaselineOrder::Random(s),
                ..
            } => format!("random (seed {s})"),
            Plan::Fixed {
                order: BaselineOrder::ShortestPredictedFirst,
                ..
            } => "shortest predicted first".to_string(),
            Plan::Planned => "most to lose by waiting first".to_string(),
            Plan::PlannedAdvised => "most to lose by waiting first, by advice".to_string(),
        }
    }
}

/// The host and link an evacuation ran on.
#[derive(Debug, Clone, Serialize)]
struct Setup {
    /// Each guest's program, by index.
    programs: Vec<String>,
    bandwidth_mbit: f64,
    per_migration_mbit: Option<f64>,
    /// Hosts the guests are dealt to (1: one host, one link).
    hosts: usize,
    /// The uplink the hosts share, Mbit/s.
    uplink_mbit: f64,
    warmup_s: f64,
    time_cap_s: f64,
    /// Each migration's preparation before it sends, s.
    setup_s: f64,
    seed: u64,
}

/// One evacuation of the comparison (a line of `--json`).
#[derive(Debug, Clone, Serialize)]
struct Row {
    policy: String,
    plan: Plan,
    /// How many at a time, as the table says it.
    at_a_time: String,
    /// In what order, as the table says it.
    order: String,
    guests: usize,
    score: GangScore,
    /// A lower bound on any plan's makespan, s: every guest's bulk must
    /// cross the link (the sum at the link's bandwidth, each at most at
    /// one migration's).
    bound_s: f64,
    setup: Setup,
    /// Each guest's migration, by index.
    runs: Vec<GangRun>,
}

fn programs(guests: &str) -> Result<Vec<PathBuf>> {
    if Path::new(guests).is_dir() {
        return Ok(suite_files(Path::new(guests))?);
    }
    let files: Vec<PathBuf> = guests
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .collect();
    if files.is_empty() {
        bail_usage!("--guests names no program");
    }
    Ok(files)
}

/// Run `kairos evacuate --simulate`.
pub fn run(args: &EvacuateArgs) -> Result<()> {
    let Some(guests) = args.guests.as_deref() else {
        bail_usage!("--simulate needs --guests (workload program files or a directory of them)");
    };
    if !(args.bandwidth_mbit.is_finite() && args.bandwidth_mbit > 0.0) {
        bail_usage!("--bandwidth-mbit must be > 0");
    }
    if args
        .per_migration_mbit
        .is_some_and(|m| !(m.is_finite() && m > 0.0))
    {
        bail_usage!("--per-migration-mbit must be > 0");
    }
    if args.copies == 0 {
        bail_usage!("--copies must be at least 1");
    }
    if args.hosts == 0 {
        bail_usage!("--hosts must be at least 1");
    }
    if args
        .uplink_mbit
        .is_some_and(|m| !(m.is_finite() && m > 0.0))
    {
        bail_usage!("--uplink-mbit must be > 0");
    }
    for (name, v) in [
        ("--warmup-s", args.warmup_s),
        ("--time-cap-s", args.time_cap_s),
        ("--setup-s", args.setup_s),
    ] {
        if !(v.is_finite() && v >= 0.0) {
            bail_usage!("{name} must be >= 0");
        }
    }
    let cfg = args.policy.config()?;
    let specs = args.policy.specs()?;
    let mut workloads = Vec::new();
    for file in programs(guests)? {
        let mut w = Workload::from_file(&file)?;
        // A host's guests keep running while it is emptied: a program
        // that ends is looped, so a guest waiting its turn never becomes
        // idle (and cheap) merely because its program ran out.
        w.repeat = true;
        for _ in 0..args.copies {
            workloads.push(w.clone());
        }
    }
    let n = workloads.len();
    let gang_cfg = GangConfig {
        link_bytes_per_s: args.bandwidth_mbit * 1e6 / 8.0,
        per_migration_bytes_per_s: args.per_migration_mbit.map(|m| m * 1e6 / 8.0),
        warmup_s: args.warmup_s,
        time_cap_s: args.time_cap_s,
        setup_s: args.setup_s,
    };
    let objective = Objective::from_config(&cfg);
    // What each guest's profile says before the evacuation (the planner's
    // only knowledge of it).
    let forecasts: Vec<GuestForecast> = workloads
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let seed = args.seed.wrapping_add(i as u64);
            let samples = simulated_profile(w, seed, args.warmup_s);
            let ram_bytes = w.ram_mib as f64 * 1048576.0;
            GuestForecast::from_profile(&samples, ram_bytes, bulk_wire_bytes(w, seed))
        })
        .collect();
    let uplink_mbit = args
        .uplink_mbit
        .unwrap_or(args.bandwidth_mbit * args.hosts as f64);
    let rack = Rack::dealt(n, args.hosts, uplink_mbit * 1e6 / 8.0);
    let hosts = rack.hosts();
    // What no plan beats: every guest's bulk across the uplink (at most
    // the hosts' links together), each host's across its link, the
    // largest at one migration's rate.
    let bulk_of = |h: usize| -> f64 {
        (0..n)
            .filter(|&g| rack.host_of[g] == h)
            .map(|g| forecasts[g].bulk_bytes)
            .sum()
    };
    let bulk_total: f64 = forecasts.iter().map(|f| f.bulk_bytes).sum();
    let bulk_largest = forecasts.iter().map(|f| f.bulk_bytes).fold(0.0, f64::max);
    let rack_bytes_per_s = rack
        .uplink_bytes_per_s
        .min(gang_cfg.link_bytes_per_s * hosts as f64);
    let host_bound_s = (0..hosts)
        .map(|h| bulk_of(h) / gang_cfg.link_bytes_per_s)
        .fold(0.0, f64::max);
    let bound_s = (bulk_total / rack_bytes_per_s)
        .max(host_bound_s)
        .max(bulk_largest / gang_cfg.share_bytes_per_s(1));
    let setup = Setup {
        programs: workloads.iter().map(|w| w.name.clone()).collect(),
        bandwidth_mbit: args.bandwidth_mbit,
        per_migration_mbit: args.per_migration_mbit,
        hosts,
        uplink_mbit,
        warmup_s: args.warmup_s,
        time_cap_s: args.time_cap_s,
        setup_s: args.setup_s,
        seed: args.seed,
    };
    // The most guests a host holds: a fixed concurrency at least that is
    // all at once.
    let largest_host = (0..hosts)
        .map(|h| rack.host_of.iter().filter(|&&x| x == h).count())
        .max()
        .unwrap_or(n);
    let mut plans = Vec::new();
    let fixed = if args.plans.contains(&PlanKind::Fixed) {
        Concurrency::USUAL.as_slice()
    } else {
        &[]
    };
    for &concurrency in fixed {
        if matches!(concurrency, Concurrency::Fixed(k) if k >= largest_host) {
            // The same as all at once, which runs.
            continue;
        }
        for order in [
            BaselineOrder::AsListed,
            BaselineOrder::Random(args.seed),
            BaselineOrder::ShortestPredictedFirst,
        ] {
            if concurrency.limit(largest_host) >= largest_host && order != BaselineOrder::AsListed {
                // All at once: the order does not matter.
                continue;
            }
            plans.push(Plan::Fixed { concurrency, order });
        }
    }
    if args.plans.contains(&PlanKind::Planned) {
        plans.push(Plan::Planned);
    }
    if args.plans.contains(&PlanKind::Advised) {
        plans.push(Plan::PlannedAdvised);
    }
    if plans.is_empty() {
        bail_usage!("--plans names no plan");
    }
    let mut rows = Vec::new();
    for spec in &specs {
        // A host's link as the fixed plans' shortest-first order sees it:
        // its even part of the uplink when every host drains at once, if
        // that is less.
        let plan_link = PlanLink {
            link_bytes_per_s: gang_cfg
                .link_bytes_per_s
                .min(rack.uplink_bytes_per_s / hosts as f64),
            per_migration_bytes_per_s: gang_cfg.per_migration_bytes_per_s,
            stop_downtime_s: spec.stop_downtime_ms(&cfg) / 1000.0,
            time_cap_s: gang_cfg.time_cap_s,
            setup_s: gang_cfg.setup_s,
        };
        // The planner knows its host's own link, and is offered at every
        // event what the uplink leaves it (RackDispatcher).
        let host_plan_link = PlanLink {
            link_bytes_per_s: gang_cfg.link_bytes_per_s,
            ..plan_link
        };
        // Each guest's predicted migration alone on the link (the
        // shortest-first baseline's order).
        let predicted_s: Vec<f64> = forecasts
            .iter()
            .map(|f| f.time_at_s(plan_link.share(1), &plan_link))
            .collect();
        for &plan in &plans {
            let guests = workloads
                .iter()
                .enumerate()
                .map(|(i, w)| {
                    Ok(GangGuest {
                        workload: w,
                        policy: spec.build(&cfg)?,
                        seed: args.seed.wrapping_add(i as u64),
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            eprintln!(
                "evacuate: {n} guests, {spec}, {} at a time, {}",
                plan.at_a_time(),
                plan.order()
            );
            // Each host's own plan over its own guests (`here`: their
            // indices in the rack).
            let host_link = gang_cfg.link_bytes_per_s;
            let mut dispatcher =
                RackDispatcher::new(&rack, host_link, |_, here| -> Box<dyn Dispatcher> {
                    match plan {
                        Plan::Fixed { concurrency, order } => {
                            let predicted: Vec<f64> =
                                here.iter().map(|&g| predicted_s[g]).collect();
                            Box::new(baseline_schedule(&predicted, concurrency, order))
                        }
                        Plan::Planned | Plan::PlannedAdvised => {
                            let guests: Vec<(&Workload, u64, f64)> = here
                                .iter()
                                .map(|&g| {
                                    let seed = args.seed.wrapping_add(g as u64);
                                    (&workloads[g], seed, forecasts[g].bulk_bytes)
                                })
                                .collect();
                            let outlook = SimulatedOutlook::new(&guests, args.warmup_s, objective);
                            let mine: Vec<GuestForecast> =
                                here.iter().map(|&g| forecasts[g]).collect();
                            Box::new(
                                Planner::new(mine, host_plan_link)
                                    .with_outlook(Box::new(outlook), plan == Plan::PlannedAdvised),
                            )
                        }
                    }
                });
            let outcome = simulate_rack(guests, &mut dispatcher, &gang_cfg, Some(&rack));
            let row = Row {
                policy: spec.to_string(),
                plan,
                at_a_time: plan.at_a_time(),
                order: plan.order(),
                guests: n,
                score: GangScore::of(&outcome, &objective),
                bound_s,
                setup: setup.clone(),
                runs: outcome.runs.clone(),
            };
            if args.json {
                println!("{}", serde_json::to_string(&row)?);
            }
            rows.push(row);
        }
    }
    if !args.json {
        let header = [
            "policy",
            "at a time",
            "order",
            "makespan s",
            "Σ excess ms",
            "above max",
            "failed",
            "cost s",
        ];
        let body: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                vec![
                    r.policy.clone(),
                    r.plan.at_a_time(),
                    r.plan.order(),
                    format!("{:.1}", r.score.makespan_s),
                    format!("{:.0}", r.score.downtime_excess_ms),
                    r.score.above_max.to_string(),
                    r.score.failed.to_string(),
                    format!("{:.1}", r.score.cost_s),
                ]
            })
            .collect();
        let widths: Vec<usize> = (0..header.len())
            .map(|c| {
                body.iter()
                    .map(|r| r[c].chars().count())
                    .chain([header[c].chars().count()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |cells: Vec<&str>| {
            cells
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect::<Vec<_>>()
                .join("  ")
        };
        println!("{}", line(header.to_vec()));
        for r in &body {
            println!("{}", line(r.iter().map(String::as_str).collect()));
        }
    }
    Ok(())
}

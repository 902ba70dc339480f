//! `kairos evacuate --connect URI --to URI`: a host's running domains
//! moved to another libvirt daemon, as many at a time and in the order the
//! plan says (Kairos's planner from each guest's profile, or a fixed
//! concurrency operators use), each migration stopped by the policy inside
//! the patched QEMU; progress per guest and for the whole evacuation, a
//! JSON report. Needs the `libvirt` feature.

use std::str::FromStr;

use anyhow::Result;
use kairos_eval::gang::baseline::Concurrency;

/// How many migrations run at a time (`--at-a-time`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AtATime {
    /// As Kairos's planner says.
    Planned,
    /// A fixed concurrency.
    Fixed(Concurrency),
}

impl FromStr for AtATime {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "planned" => Ok(AtATime::Planned),
            "all" => Ok(AtATime::Fixed(Concurrency::All)),
            n => match n.parse::<usize>() {
                Ok(k) if k >= 1 => Ok(AtATime::Fixed(Concurrency::Fixed(k))),
                _ => Err(format!(
                    "'{text}': expected planned, all or a number of migrations >= 1"
                )),
            },
        }
    }
}

/// `--at-a-time`'s parser (a usage error names the accepted values).
pub fn at_a_time(text: &str) -> Result<AtATime, String> {
    text.parse()
}

/// The order a fixed concurrency starts guests in (`--order`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Order {
    /// As listed (`--domains`, or libvirt's list).
    Listed,
    /// Shuffled with `--seed`.
    Random,
    /// The shortest predicted migration first.
    ShortestFirst,
}

#[cfg(feature = "libvirt")]
impl Order {
    /// The baseline order it names.
    pub fn baseline(self, seed: u64) -> kairos_eval::gang::baseline::BaselineOrder {
        use kairos_eval::gang::baseline::BaselineOrder;
        match self {
            Order::Listed => BaselineOrder::AsListed,
            Order::Random => BaselineOrder::Random(seed),
            Order::ShortestFirst => BaselineOrder::ShortestPredictedFirst,
        }
    }
}

/// Run `kairos evacuate --connect`.
#[cfg(not(feature = "libvirt"))]
pub fn run(_args: &super::EvacuateArgs) -> Result<()> {
    anyhow::bail!(
        "this kairos was built without libvirt; build it with `cargo build --release \
         --features libvirt` (needs libvirt's headers: Debian's libvirt-dev)"
    )
}

#[cfg(feature = "libvirt")]
pub use with_libvirt::run;

#[cfg(feature = "libvirt")]
mod with_libvirt {
    use std::time::Duration;

    use anyhow::{bail, Context, Result};

    use crate::cmd::usage::bail_usage;
    use kairos_eval::baseline::PolicySpec;
    use kairos_eval::gang::baseline::baseline_schedule;
    use kairos_eval::gang::plan::{GuestForecast, PlanLink, Planner};
    use kairos_eval::gang::sim::Dispatcher;
    use kairos_policy_core::{Escalation, PolicyConfig, PolicyKind};
    use serde::Serialize;
    use serde_json::{json, Map};
    use virt::connect::Connect;
    use virt::sys;

    use super::super::EvacuateArgs;
    use super::{AtATime, Order};
    use crate::driver::libvirt::{DomainMonitor, LibvirtTarget};
    use crate::driver::{Limits, MigrationSettings, Monitor};
    use crate::live::dirty_rate::{DirtyRateMode, Profiler};
    use crate::live::evacuation::{evacuate, Evacuation, GuestMigration};
    use crate::live::interrupt;
    use crate::live::libvirt_guest::LibvirtGuest;
    use crate::live::run::{unix_now_s, CODE_COMMIT};

    /// How often each migration's source is polled.
    const POLL: Duration = Duration::from_millis(250);

    /// What the report says of the evacuation's set-up.
    #[derive(Debug, Serialize)]
    struct Setup {
        source: String,
        destination: String,
        policy: String,
        at_a_time: String,
        order: String,
        bandwidth_mbit: f64,
        per_migration_mbit: Option<f64>,
        profile_s: f64,
        time_cap_s: f64,
        downtime_limit_ms: f64,
        max_downtime_ms: f64,
        downtime_weight: f64,
        code_commit: String,
        finished_unix_s: u64,
    }

    /// A guest as the plan saw it.
    #[derive(Debug, Serialize)]
    struct PlannedGuest {
        name: String,
        ram_bytes: f64,
        forecast: GuestForecast,
        /// Its predicted migration alone on the link, s.
        predicted_alone_s: f64,
    }

    /// The JSON report.
    #[derive(Debug, Serialize)]
    struct Report {
        setup: Setup,
        guests: Vec<PlannedGuest>,
        /// The order the plan would start them in, all waiting (names).
        plan_order: Vec<String>,
        evacuation: Evacuation,
    }

    /// The one policy a live evacuation runs: `predictive`, or QEMU's rule.
    fn live_policy(args: &EvacuateArgs) -> Result<PolicySpec> {
        if args.policy.policy == "all" {
            return Ok(PolicySpec::Library(PolicyKind::Predictive));
        }
        let specs = args.policy.specs()?;
        match specs.as_slice() {
            [spec]
                if matches!(
                    spec,
                    PolicySpec::Library(PolicyKind::Predictive | PolicyKind::Qemu)
                        | PolicySpec::QemuAt(_)
                        | PolicySpec::PredictiveWeighted(_)
                ) =>
            {
                Ok(*spec)
            }
            _ => bail_usage!(
                "--policy: a live evacuation runs one policy that QEMU carries out: \
                 predictive, predictive@w=N, qemu or qemu@MS (not '{}')",
                args.policy.policy
            ),
        }
    }

    /// What every migration sets on its source before it starts.
    fn settings(spec: PolicySpec, cfg: &PolicyConfig, patched: bool) -> Result<MigrationSettings> {
        let own = spec.config(cfg);
        let mut parameters = Map::new();
        parameters.insert(
            "downtime-limit".into(),
            json!(own.downtime_limit_ms.round() as u64),
        );
        let predictive = spec.library_kind() == PolicyKind::Predictive;
        if predictive && !patched {
            bail!("--policy {spec}: the source's QEMU is not the patched one (no x-convergence-policy)");
        }
        if predictive {
            if matches!(own.escalation, Escalation::Postcopy | Escalation::Auto) {
                bail_usage!(
                    "--escalation {}: post-copy through libvirt needs its post-copy flag, which \
                     a live evacuation does not pass yet; use none, throttle or dirty-limit",
                    own.escalation.name()
                );
            }
            parameters.insert("x-convergence-policy".into(), json!("predictive"));
            parameters.insert(
                "x-convergence-max-downtime".into(),
                json!(own.max_downtime_ms.round() as u64),
            );
            parameters.insert(
                "x-convergence-downtime-weight".into(),
                json!(own.downtime_weight.round() as u64),
            );
            parameters.insert(
                "x-convergence-escalation".into(),
                json!(own.escalation.name()),
            );
        } else if patched {
            // It records every sync and decides nothing: QEMU's rule stops.
            parameters.insert("x-convergence-policy".into(), json!("observe"));
        }
        Ok(MigrationSettings {
            capabilities: Vec::new(),
            source_capabilities: Vec::new(),
            parameters,
        })
    }

    /// The running domains to move.
    fn domains(conn: &Connect, wanted: &[String]) -> Result<Vec<DomainMonitor>> {
        let running = conn
            .list_all_domains(sys::VIR_CONNECT_LIST_DOMAINS_ACTIVE)
            .context("listing the host's running domains")?;
        let mut all = Vec::new();
        for domain in running {
            all.push(DomainMonitor::new(domain)?);
        }
        if wanted.is_empty() {
            if all.is_empty() {
                bail!("the host runs no domain: nothing to evacuate");
            }
            all.sort_by(|a, b| a.name().cmp(b.name()));
            return Ok(all);
        }
        let mut chosen = Vec::new();
        for name in wanted {
            let Some(at) = all.iter().position(|m| m.name() == name) else {
                bail_usage!("--domains: '{name}' is not a running domain of the host");
            };
            chosen.push(all.swap_remove(at));
        }
        Ok(chosen)
    }

    /// Profile every guest at once for `profile_s`; each one's samples.
    fn profile_all(
        monitors: &mut [DomainMonitor],
        profile_s: f64,
    ) -> Result<Vec<Vec<kairos_eval::advise::profile::ProfileSample>>> {
        eprintln!(
            "[evacuate] profiling {} guests for {profile_s:.0} s (calc-dirty-rate, all at once)",
            monitors.len()
        );
        std::thread::scope(|scope| {
            let handles: Vec<_> = monitors
                .iter_mut()
                .map(|monitor| {
                    scope.spawn(move || -> Result<Vec<_>> {
                        let mut profiler = Profiler::new(DirtyRateMode::PageSampling);
                        while profiler.elapsed_s() + profiler.next_window().as_secs_f64()
                            <= profile_s
                        {
                            profiler
                                .sample(monitor)
                                .with_context(|| format!("profiling {}", monitor.name()))?;
                        }
                        Ok(profiler.into_samples())
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .map_err(|_| anyhow::anyhow!("a profiling thread panicked"))?
                })
                .collect()
        })
    }

    /// Run `kairos evacuate --connect`.
    pub fn run(args: &EvacuateArgs) -> Result<()> {
        interrupt::install()?;
        // libvirt's default handler prints every error; they come back as
        // values, and a source domain gone after its migration is one.
        virt::error::clear_error_callback();
        let (Some(source_uri), Some(destination_uri)) = (&args.connect, &args.to) else {
            bail_usage!("--connect needs --to (the destination's libvirt URI)");
        };
        for (name, v) in [
            ("--bandwidth-mbit", args.bandwidth_mbit),
            ("--profile-s", args.profile_s),
            ("--time-cap-s", args.time_cap_s),
        ] {
            if !(v.is_finite() && v > 0.0) {
                bail_usage!("{name} must be > 0");
            }
        }
        if args
            .per_migration_mbit
            .is_some_and(|m| !(m.is_finite() && m > 0.0))
        {
            bail_usage!("--per-migration-mbit must be > 0");
        }
        let spec = live_policy(args)?;
        let cfg = args.policy.config()?;
        let own = spec.config(&cfg);
        let source = Connect::open(Some(source_uri))
            .with_context(|| format!("connecting to the source {source_uri}"))?;
        let destination = Connect::open(Some(destination_uri))
            .with_context(|| format!("connecting to the destination {destination_uri}"))?;
        let mut monitors = domains(&source, &args.domains)?;
        // Every guest's QEMU must be the patched one for the policy to run
        // (and for its syncs to be read); a mixed host is refused.
        let mut patched_guests = 0;
        for monitor in &mut monitors {
            let params = monitor
                .execute("query-migrate-parameters", None)
                .with_context(|| format!("{}: reading its migration parameters", monitor.name()))?;
            patched_guests += usize::from(params.get("x-convergence-policy").is_some());
        }
        if patched_guests != 0 && patched_guests != monitors.len() {
            bail!(
                "{} of {} guests run the patched QEMU: evacuate them apart (--domains)",
                patched_guests,
                monitors.len()
            );
        }
        let patched = patched_guests == monitors.len();
        let settings = settings(spec, &cfg, patched)?;

        let samples = profile_all(&mut monitors, args.profile_s)?;
        interrupt::check()?;
        let link = PlanLink {
            link_bytes_per_s: args.bandwidth_mbit * 1e6 / 8.0,
            per_migration_bytes_per_s: args.per_migration_mbit.map(|m| m * 1e6 / 8.0),
            stop_downtime_s: spec.stop_downtime_ms(&cfg) / 1000.0,
            time_cap_s: args.time_cap_s,
            setup_s: 0.0,
        };
        let mut planned = Vec::new();
        for (monitor, samples) in monitors.iter().zip(&samples) {
            let info = monitor
                .domain()
                .info()
                .with_context(|| format!("{}: its memory size", monitor.name()))?;
            let ram_bytes = info.max_mem as f64 * 1024.0;
            // The bulk round sends every page that is not zero; a page the
            // guest never touched is zero and not resident, so the QEMU
            // process's resident memory bounds it (QEMU's own memory
            // included); the whole RAM when libvirt does not tell.
            let resident_bytes = monitor.domain().memory_stats(0).ok().and_then(|stats| {
                stats
                    .iter()
                    .find(|s| s.tag == sys::VIR_DOMAIN_MEMORY_STAT_RSS)
                    .map(|s| s.val as f64 * 1024.0)
            });
            let bulk_bytes = resident_bytes.map_or(ram_bytes, |r| r.min(ram_bytes));
            let forecast = GuestForecast::from_profile(samples, ram_bytes, bulk_bytes);
            planned.push(PlannedGuest {
                name: monitor.name().to_string(),
                ram_bytes,
                forecast,
                predicted_alone_s: forecast.time_at_s(link.share(1), &link),
            });
        }
        let forecasts: Vec<GuestForecast> = planned.iter().map(|g| g.forecast).collect();
        let predicted: Vec<f64> = planned.iter().map(|g| g.predicted_alone_s).collect();
        let (mut dispatcher, at_a_time, order): (Box<dyn Dispatcher>, String, String) =
            match args.at_a_time {
                AtATime::Planned => {
                    let planner = Planner::new(forecasts, link);
                    let order = planner.order();
                    (
                        Box::new(planner),
                        "planned".into(),
                        order
                            .iter()
                            .map(|&g| planned[g].name.clone())
                            .collect::<Vec<_>>()
                            .join(","),
                    )
                }
                AtATime::Fixed(concurrency) => {
                    let schedule =
                        baseline_schedule(&predicted, concurrency, args.order.baseline(args.seed));
                    let order = schedule
                        .order
                        .iter()
                        .map(|&g| planned[g].name.clone())
                        .collect::<Vec<_>>()
                        .join(",");
                    (Box::new(schedule), concurrency.name(), order)
                }
            };
        let order_name = match (args.at_a_time, args.order) {
            (AtATime::Planned, _) => "most to lose by waiting first".to_string(),
            (_, Order::Listed) => "as listed".to_string(),
            (_, Order::Random) => format!("random (seed {})", args.seed),
            (_, Order::ShortestFirst) => "shortest predicted first".to_string(),
        };
        eprintln!(
            "[evacuate] {} guests to {destination_uri}, {at_a_time} at a time, {order_name}: {order}",
            monitors.len()
        );
        let target = LibvirtTarget {
            migrate_uri: args.migrate_host.as_ref().map(|h| format!("tcp://{h}")),
            bandwidth_mib_s: args
                .per_migration_mbit
                .map(|m| ((m * 1e6 / 8.0) / 1048576.0).ceil() as u64),
        };
        let limits = Limits {
            poll: POLL,
            timeout: Duration::from_secs_f64(args.time_cap_s),
        };
        let migrations: Vec<Box<dyn GuestMigration>> = monitors
            .into_iter()
            .map(|monitor| {
                Box::new(LibvirtGuest::new(
                    monitor,
                    &destination,
                    target.clone(),
                    settings.clone(),
                    limits,
                    patched,
                )) as Box<dyn GuestMigration>
            })
            .collect();
        let evacuation = evacuate(migrations, dispatcher.as_mut())?;
        let report = Report {
            setup: Setup {
                source: source_uri.clone(),
                destination: destination_uri.clone(),
                policy: spec.to_string(),
                at_a_time,
                order: order_name,
                bandwidth_mbit: args.bandwidth_mbit,
                per_migration_mbit: args.per_migration_mbit,
                profile_s: args.profile_s,
                time_cap_s: args.time_cap_s,
                downtime_limit_ms: own.downtime_limit_ms,
                max_downtime_ms: own.max_downtime_ms,
                downtime_weight: own.downtime_weight,
                code_commit: CODE_COMMIT.to_string(),
                finished_unix_s: unix_now_s(),
            },
            plan_order: order.split(',').map(str::to_string).collect(),
            guests: planned,
            evacuation,
        };
        let text = serde_json::to_string_pretty(&report)?;
        if let Some(path) = &args.report {
            std::fs::write(path, &text)
                .with_context(|| format!("writing the report {}", path.display()))?;
            eprintln!("[evacuate] report: {}", path.display());
        }
        if args.json {
            println!("{text}");
        } else {
            print_table(&report.evacuation);
        }
        let e = &report.evacuation;
        if e.interrupted {
            return Err(interrupt::Interrupted.into());
        }
        let moved = e.completed();
        if moved < e.guests.len() {
            bail!(
                "{} of {} guests did not arrive intact (see the table and the report)",
                e.guests.len() - moved,
                e.guests.len()
            );
        }
        Ok(())
    }

    fn print_table(e: &Evacuation) {
        println!(
            "{:<24} {:>8} {:>8} {:<17} {:>11} {:>9} {:>6} {:<9} decision",
            "guest", "start_s", "end_s", "status", "downtime_ms", "qemu_dt_ms", "syncs", "verified"
        );
        for g in &e.guests {
            let o = g.outcome.as_ref();
            let f = |v: Option<f64>, d: usize| v.map_or("-".to_string(), |x| format!("{x:.d$}"));
            println!(
                "{:<24} {:>8} {:>8} {:<17} {:>11} {:>9} {:>6} {:<9} {}",
                g.name,
                f(g.start_s, 1),
                f(g.end_s, 1),
                o.map_or("not started", |o| o.status.name()),
                f(o.and_then(|o| o.downtime_ms), 0),
                f(o.and_then(|o| o.qemu_downtime_ms), 0),
                o.and_then(|o| o.rounds)
                    .map_or("-".into(), |r| r.to_string()),
                match o.and_then(|o| o.verified) {
                    Some(true) => "yes",
                    Some(false) => "NO",
                    None => "-",
                },
                o.and_then(|o| o.decision.as_deref()).unwrap_or("-")
            );
        }
        println!(
            "makespan {:.1} s, {} of {} guests moved{}",
            e.makespan_s,
            e.completed(),
            e.guests.len(),
            if e.interrupted { " (interrupted)" } else { "" }
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_a_time_takes_planned_all_or_a_positive_number() {
        assert_eq!("planned".parse::<AtATime>(), Ok(AtATime::Planned));
        assert_eq!(
            "all".parse::<AtATime>(),
            Ok(AtATime::Fixed(Concurrency::All))
        );
        assert_eq!(
            "2".parse::<AtATime>(),
            Ok(AtATime::Fixed(Concurrency::Fixed(2)))
        );
        assert!("0".parse::<AtATime>().is_err());
        assert!("some".parse::<AtATime>().is_err());
    }
}

//! `kairos soak`: one guest migrated back and forth between two QEMU
//! processes in two network namespaces, many times, every hop verified by
//! the guest's own page check; optionally with faults injected mid-migration
//! (each followed by a retry). Reports as it goes (a line per hop, a CSV row
//! per attempt) and ends with the counts and the leaks found.

use crate::cmd::usage::bail_usage;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::cmd::live_options::{workload_name, LiveArgs};
use crate::driver::MigrationSettings;
use crate::live::hop::{open_fds, processes_mentioning, Attempt, Fault, HopSettings, Hopper};
use crate::live::netns::namespaces_exist;
use crate::live::spec::LiveSpec;
use kairos_policy_core::Escalation;

/// Attempts per hop before the soak gives up on it.
const MAX_ATTEMPTS: u32 = 4;

/// Options of `kairos soak`.
#[derive(Debug, Args)]
pub struct SoakArgs {
    /// Migrations (hops) to complete.
    #[arg(long, default_value_t = 1000)]
    pub hops: u64,
    /// Workload: a catalogue name, a workload program file or a benchmark
    /// (default: a program whose phases change within a few hops).
    #[arg(long, default_value = "testbed/soak/soak-512m.toml")]
    pub workload: String,
    /// The convergence policy inside QEMU (x-convergence-policy).
    #[arg(long, default_value = "predictive", value_parser = ["predictive", "observe", "off"])]
    pub policy: String,
    /// Faults to inject, comma-separated, or `all`: kill-destination,
    /// link-down, cancel, set-parameters, pause-source.
    #[arg(long, value_parser = parse_faults, default_value = "")]
    pub fault: FaultList,
    /// Inject the next fault on every N-th hop (the hop then retries).
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub fault_every: u64,
    /// Where logs, `soak.csv` and `summary.json` go.
    #[arg(long, default_value = "build/soak")]
    pub out: PathBuf,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    /// Options shared with `run`.
    #[command(flatten)]
    pub live: LiveArgs,
}

/// The faults `--fault` names.
#[derive(Debug, Clone, Default)]
pub struct FaultList(pub Vec<Fault>);

fn parse_faults(text: &str) -> std::result::Result<FaultList, String> {
    if text.is_empty() {
        return Ok(FaultList::default());
    }
    if text == "all" {
        return Ok(FaultList(Fault::ALL.to_vec()));
    }
    text.split(',')
        .map(|name| Fault::from_str(name.trim(), false))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map(FaultList)
        .map_err(|e| format!("{e}; faults: all, kill-destination, link-down, cancel, set-parameters, pause-source"))
}

/// What a soak found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SoakSummary {
    /// Hops asked for.
    pub hops: u64,
    /// Hops that completed (the guest moved).
    pub completed: u64,
    /// Migration attempts, retries included.
    pub attempts: u64,
    /// Attempts that did not complete (faults injected, or not).
    pub failed_attempts: u64,
    /// Attempts that did not complete although no fault was injected
    /// into them: each is a defect to explain.
    pub unexplained_failures: u64,
    /// Hops that needed a retry.
    pub retried_hops: u64,
    /// Pages the guest found wrong, at the end (its counter migrates with
    /// it, so this counts every hop).
    pub pages_wrong: u64,
    /// Attempts after which the source still had a throttle on.
    pub throttles_left_on: u64,
    /// Attempts during which the policy's state was not fresh.
    pub stale_policy_states: u64,
    /// Faults injected, by name, with how many of them were followed by
    /// a completed retry (or completed themselves).
    pub faults: Vec<FaultCount>,
    /// QEMU processes still alive after the soak ended.
    pub leaked_processes: usize,
    /// File descriptors this process held at the end beyond what it held
    /// after booting the guest (one QEMU, one QMP connection then too).
    pub leaked_fds: i64,
    /// The soak's network namespaces still present after it ended.
    pub leaked_namespaces: bool,
    /// Wall-clock seconds.
    pub wall_s: f64,
    /// The link between the two QEMUs, Mbit/s.
    #[serde(default)]
    pub bandwidth_mbit: u64,
    /// The commit of the code that ran the soak.
    #[serde(default)]
    pub code_commit: String,
    /// When it ended, seconds since the Unix epoch.
    #[serde(default)]
    pub finished_unix_s: u64,
}

impl SoakSummary {
    /// Every hop completed and verified, nothing wrong, nothing leaked.
    pub fn clean(&self) -> bool {
        self.completed == self.hops
            && self.unexplained_failures == 0
            && self.pages_wrong == 0
            && self.throttles_left_on == 0
            && self.stale_policy_states == 0
            && self.leaked_processes == 0
            && self.leaked_fds <= 0
            && !self.leaked_namespaces
            && self.faults.iter().all(|f| f.survived == f.injected)
    }
}

/// One fault's tally.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultCount {
    /// The fault.
    pub fault: Fault,
    /// Times injected.
    pub injected: u64,
    /// Times the hop still completed and verified afterwards.
    pub survived: u64,
}

/// Run `kairos soak`.
pub fn run(args: &SoakArgs) -> Result<()> {
    if args.hops == 0 {
        bail_usage!("--hops must be at least 1");
    }
    if args.fault_every == 0 {
        bail_usage!("--fault-every must be at least 1");
    }
    if args.live.vanilla_qemu && args.policy != "off" {
        bail_usage!(
            "--policy {} needs the patched QEMU (drop --vanilla-qemu)",
            args.policy
        );
    }
    args.live.prepare()?;
    let workload = workload_name(&args.workload, &args.live.root)?;
    let spec = args.live.guest(&workload)?;
    let work = std::path::absolute(&args.out)?.join(format!(
        "soak-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs()
    ));
    let started = Instant::now();
    eprintln!(
        "soak: {} hops of {workload} ({} MiB guest), policy {}, faults {:?} (logs: {})",
        args.hops,
        spec.ram_mib,
        args.policy,
        args.fault.0,
        work.display()
    );
    let mut parameters = serde_json::Map::new();
    parameters.insert(
        "max-bandwidth".into(),
        json!(args.live.bandwidth_mbit * 1_000_000 / 8),
    );
    parameters.insert("downtime-limit".into(), json!(args.live.downtime_limit_ms));
    if !args.live.vanilla_qemu {
        parameters.insert("x-convergence-policy".into(), json!(args.policy));
        parameters.insert(
            "x-convergence-max-downtime".into(),
            json!(args.live.max_downtime_ms),
        );
        parameters.insert(
            "x-convergence-escalation".into(),
            json!(args.live.escalation.name()),
        );
    }
    let settings = HopSettings {
        migration: MigrationSettings {
            capabilities: escalation_capabilities(args.live.vanilla_qemu, args.live.escalation),
            source_capabilities: Vec::new(),
            parameters,
        },
        timeout: Duration::from_secs_f64(args.live.timeout_s),
    };

    let mut hopper = Hopper::boot(spec, args.live.bandwidth_mbit, &work)?;
    let namespaces = hopper.namespaces();
    let csv_path = work.join("soak.csv");
    let mut csv = csv::Writer::from_path(&csv_path)
        .with_context(|| format!("creating {}", csv_path.display()))?;
    // One QEMU, its QMP connection and the CSV open, as at the end.
    let fds_after_boot = open_fds() as i64;
    let mut attempts: Vec<Attempt> = Vec::new();
    let mut completed = 0u64;
    let mut retried = 0u64;
    let mut next_fault = 0usize;
    let mut failure: Option<anyhow::Error> = None;
    for hop in 1..=args.hops {
        let fault = (!args.fault.0.is_empty() && hop % args.fault_every == 0).then(|| {
            let f = args.fault.0[next_fault % args.fault.0.len()];
            next_fault += 1;
            f
        });
        let mut done = false;
        for attempt in 1..=MAX_ATTEMPTS {
            let injected = if attempt == 1 { fault } else { None };
            let result = match hopper.attempt(hop, attempt, &settings, injected) {
                Ok(r) => r,
                Err(e) => {
                    failure = Some(e.context(format!("hop {hop}, attempt {attempt}")));
                    break;
                }
            };
            csv.serialize(CsvRow::from(&result))?;
            csv.flush()?;
            print_attempt(&result, args.hops);
            let moved = result.status == "completed";
            let wrong = result.verify_errors > 0;
            attempts.push(result);
            if wrong {
                failure = Some(anyhow::anyhow!("hop {hop}: the guest found pages wrong"));
                break;
            }
            // A completed hop moved the guest: it ends the hop, clean or
            // not (a defect found is counted, not retried).
            if moved {
                done = true;
                if attempt > 1 {
                    retried += 1;
                }
                break;
            }
        }
        if failure.is_some() {
            break;
        }
        if !done {
            failure = Some(anyhow::anyhow!(
                "hop {hop} did not complete in {MAX_ATTEMPTS} attempts"
            ));
            break;
        }
        completed += 1;
    }
    let fds_at_end = open_fds() as i64;
    // The last hop's page check gets time for a full sweep.
    let final_errors = if failure.is_none() {
        match hopper.final_verify_errors(Duration::from_secs(10)) {
            Ok(n) => n,
            Err(e) => {
                failure = Some(e.context("the guest after the last hop"));
                0
            }
        }
    } else {
        0
    };
    drop(hopper);
    // Give the kernel a moment to reap what was killed.
    std::thread::sleep(Duration::from_millis(500));
    let summary = SoakSummary {
        hops: args.hops,
        completed,
        attempts: attempts.len() as u64,
        failed_attempts: attempts.iter().filter(|a| a.status != "completed").count() as u64,
        unexplained_failures: attempts
            .iter()
            .filter(|a| a.status != "completed" && !a.fault_injected)
            .count() as u64,
        retried_hops: retried,
        pages_wrong: attempts
            .iter()
            .map(|a| a.verify_errors)
            .chain([final_errors])
            .max()
            .unwrap_or(0),
        throttles_left_on: attempts.iter().filter(|a| !a.throttle_released).count() as u64,
        stale_policy_states: attempts.iter().filter(|a| !a.convergence_fresh).count() as u64,
        faults: fault_counts(&attempts),
        leaked_processes: processes_mentioning(&work).len(),
        leaked_fds: fds_at_end - fds_after_boot,
        leaked_namespaces: namespaces_exist(&[&namespaces[0], &namespaces[1]]),
        wall_s: started.elapsed().as_secs_f64(),
        bandwidth_mbit: args.live.bandwidth_mbit,
        code_commit: crate::live::run::CODE_COMMIT.to_string(),
        finished_unix_s: crate::live::run::unix_now_s(),
    };
    let summary_path = work.join("summary.json");
    std::fs::write(&summary_path, serde_json::to_string_pretty(&summary)?)
        .with_context(|| format!("writing {}", summary_path.display()))?;
    if args.json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        print_summary(&summary);
    }
    eprintln!(
        "soak: every attempt in {}, summary in {}",
        csv_path.display(),
        summary_path.display()
    );
    if let Some(e) = failure {
        return Err(e);
    }
    if !summary.clean() {
        bail!("the soak found defects (see {})", summary_path.display());
    }
    Ok(())
}

fn fault_counts(attempts: &[Attempt]) -> Vec<FaultCount> {
    Fault::ALL
        .iter()
        .filter_map(|&fault| {
            let hops: Vec<u64> = attempts
                .iter()
                .filter(|a| a.fault == Some(fault) && a.fault_injected)
                .map(|a| a.hop)
                .collect();
            (!hops.is_empty()).then(|| FaultCount {
                fault,
                injected: hops.len() as u64,
                survived: hops
                    .iter()
                    .filter(|&&h| attempts.iter().any(|a| a.hop == h && a.clean_success()))
                    .count() as u64,
            })
        })
        .collect()
}

/// One row of `soak.csv`: a migration attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CsvRow {
    /// The hop it belongs to.
    pub hop: u64,
    /// Its attempt number within the hop.
    pub attempt: u32,
    /// The fault planned for it (empty: none).
    pub fault: String,
    /// The fault was injected.
    pub fault_injected: bool,
    /// How it ended (QEMU's status).
    pub status: String,
    /// Its total time, ms, when it completed.
    pub total_time_ms: Option<f64>,
    /// Its downtime, ms, when it completed.
    pub downtime_ms: Option<f64>,
    /// Its dirty-bitmap syncs.
    pub rounds: Option<u64>,
    /// The policy's state was fresh throughout.
    pub convergence_fresh: bool,
    /// No throttle was left on the source after it.
    pub throttle_released: bool,
    /// Pages the guest found wrong after it.
    pub verify_errors: u64,
    /// Wall-clock seconds it took.
    pub wall_s: f64,
}

impl From<&Attempt> for CsvRow {
    fn from(a: &Attempt) -> Self {
        Self {
            hop: a.hop,
            attempt: a.attempt,
            fault: a
                .fault
                .and_then(|f| f.to_possible_value())
                .map_or(String::new(), |v| v.get_name().to_string()),
            fault_injected: a.fault_injected,
            status: a.status.clone(),
            total_time_ms: a.total_time_ms,
            downtime_ms: a.downtime_ms,
            rounds: a.rounds,
            convergence_fresh: a.convergence_fresh,
            throttle_released: a.throttle_released,
            verify_errors: a.verify_errors,
            wall_s: a.wall_s,
        }
    }
}

fn print_attempt(a: &Attempt, hops: u64) {
    let fault = a
        .fault
        .filter(|_| a.fault_injected)
        .and_then(|f| f.to_possible_value())
        .map_or(String::new(), |v| format!(" after {}", v.get_name()));
    let mut err = std::io::stderr().lock();
    let _ = writeln!(
        err,
        "[hop {}/{hops}{}] {}{fault} in {} s, downtime {} ms, {} syncs, verify errors {}{}{}",
        a.hop,
        if a.attempt > 1 {
            format!(" retry {}", a.attempt - 1)
        } else {
            String::new()
        },
        a.status,
        a.total_time_ms
            .map_or("-".to_string(), |t| format!("{:.1}", t / 1000.0)),
        a.downtime_ms.map_or("-".to_string(), |d| format!("{d:.0}")),
        a.rounds.map_or("-".to_string(), |r| r.to_string()),
        a.verify_errors,
        if a.throttle_released {
            ""
        } else {
            ", THROTTLE LEFT ON"
        },
        if a.convergence_fresh {
            ""
        } else {
            ", STALE POLICY STATE"
        },
    );
}

fn print_summary(s: &SoakSummary) {
    println!(
        "hops completed {}/{}; attempts {} ({} failed, {} without a fault); hops retried {}",
        s.completed, s.hops, s.attempts, s.failed_attempts, s.unexplained_failures, s.retried_hops
    );
    println!(
        "pages wrong {}; throttles left on {}; stale policy states {}",
        s.pages_wrong, s.throttles_left_on, s.stale_policy_states
    );
    for f in &s.faults {
        println!(
            "fault {:?}: injected {}, survived {}",
            f.fault, f.injected, f.survived
        );
    }
    println!(
        "leaks: processes {}, file descriptors {}, namespaces {}; {:.0} s",
        s.leaked_processes,
        s.leaked_fds,
        if s.leaked_namespaces { "yes" } else { "none" },
        s.wall_s
    );
}

/// The capabilities escalation needs on both sides (post-copy for
/// `postcopy` and `auto`: without it the patched QEMU refuses the
/// migration); none on an unpatched QEMU, which has no escalation.
fn escalation_capabilities(vanilla_qemu: bool, escalation: Escalation) -> Vec<String> {
    if vanilla_qemu {
        Vec::new()
    } else {
        LiveSpec::Predictive(None)
            .capabilities(escalation)
            .iter()
            .map(|c| c.to_string())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn post_copy_escalation_turns_post_copy_on() {
        assert_eq!(
            escalation_capabilities(false, Escalation::Postcopy),
            ["postcopy-ram"]
        );
        assert_eq!(
            escalation_capabilities(false, Escalation::Auto),
            ["postcopy-ram"]
        );
        assert!(escalation_capabilities(false, Escalation::None).is_empty());
        assert!(escalation_capabilities(false, Escalation::Throttle).is_empty());
        assert!(escalation_capabilities(true, Escalation::Postcopy).is_empty());
    }

    #[test]
    fn fault_lists_parse_and_bad_names_are_named() {
        assert!(parse_faults("").unwrap().0.is_empty());
        assert_eq!(parse_faults("all").unwrap().0, Fault::ALL.to_vec());
        assert_eq!(
            parse_faults("cancel,link-down").unwrap().0,
            vec![Fault::Cancel, Fault::LinkDown]
        );
        let err = parse_faults("cancel,unplug").unwrap_err();
        assert!(
            err.contains("unplug") && err.contains("kill-destination"),
            "{err}"
        );
    }

    fn attempt(hop: u64, fault: Option<Fault>, status: &str) -> Attempt {
        Attempt {
            hop,
            attempt: 1,
            fault,
            fault_injected: fault.is_some(),
            status: status.into(),
            total_time_ms: None,
            downtime_ms: None,
            rounds: None,
            convergence_fresh: true,
            throttle_released: true,
            verify_errors: 0,
            wall_s: 0.0,
        }
    }

    #[test]
    fn a_fault_survives_when_its_hop_completes_later() {
        let attempts = vec![
            attempt(1, Some(Fault::Cancel), "cancelled"),
            Attempt {
                attempt: 2,
                ..attempt(1, None, "completed")
            },
            attempt(2, Some(Fault::KillDestination), "failed"),
        ];
        let counts = fault_counts(&attempts);
        assert_eq!(counts.len(), 2);
        assert_eq!(
            (counts[0].fault, counts[0].injected, counts[0].survived),
            (Fault::KillDestination, 1, 0)
        );
        assert_eq!(
            (counts[1].fault, counts[1].injected, counts[1].survived),
            (Fault::Cancel, 1, 1)
        );
    }
}

//! The reliability page: the long soak and the fault hops of `kairos soak`
//! (their summaries and every attempt, stored), and the fuzzing log of the
//! C ABI. Counts are `kairos soak`'s own; the per-hop times are summarised
//! here with the one quantile of `kairos_eval::cell_stats`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use anyhow::{bail, Result};
use kairos_eval::cell_stats::quantile;

use super::record::{utc_date, ReliabilityRecord, SoakKind, SoakRun};
use crate::cmd::soak::{CsvRow, SoakSummary};

fn fmt(v: Option<f64>, digits: usize) -> String {
    v.map_or("-".to_string(), |v| format!("{v:.digits$}"))
}

fn counts_table(md: &mut String, s: &SoakSummary) -> Result<()> {
    writeln!(md, "| what | count |\n|---|---|")?;
    writeln!(md, "| hops completed | {} of {} |", s.completed, s.hops)?;
    writeln!(md, "| migration attempts | {} |", s.attempts)?;
    writeln!(
        md,
        "| attempts that did not complete | {} ({} without a fault injected) |",
        s.failed_attempts, s.unexplained_failures
    )?;
    writeln!(md, "| hops retried | {} |", s.retried_hops)?;
    writeln!(md, "| pages the guest found wrong | {} |", s.pages_wrong)?;
    writeln!(
        md,
        "| throttles left on after a migration | {} |",
        s.throttles_left_on
    )?;
    writeln!(
        md,
        "| attempts with a stale policy state | {} |",
        s.stale_policy_states
    )?;
    writeln!(
        md,
        "| QEMU processes left after the soak | {} |",
        s.leaked_processes
    )?;
    writeln!(
        md,
        "| file descriptors left (end − after boot) | {} |",
        s.leaked_fds
    )?;
    writeln!(
        md,
        "| network namespaces left | {} |",
        if s.leaked_namespaces { "yes" } else { "none" }
    )?;
    writeln!(md, "| wall-clock time | {:.0} min |\n", s.wall_s / 60.0)?;
    Ok(())
}

fn times_table(md: &mut String, attempts: &[CsvRow]) -> Result<()> {
    let done: Vec<&CsvRow> = attempts
        .iter()
        .filter(|a| a.status == "completed")
        .collect();
    let total_s: Vec<f64> = done
        .iter()
        .filter_map(|a| a.total_time_ms)
        .map(|t| t / 1000.0)
        .collect();
    let downtime_ms: Vec<f64> = done.iter().filter_map(|a| a.downtime_ms).collect();
    let max = |v: &[f64]| {
        v.iter()
            .copied()
            .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))))
    };
    writeln!(
        md,
        "| per completed hop | median | 90th percentile | max |\n|---|---|---|---|"
    )?;
    writeln!(
        md,
        "| total time, s | {} | {} | {} |",
        fmt(quantile(total_s.iter().copied(), 0.5), 1),
        fmt(quantile(total_s.iter().copied(), 0.9), 1),
        fmt(max(&total_s), 1)
    )?;
    writeln!(
        md,
        "| downtime, ms | {} | {} | {} |\n",
        fmt(quantile(downtime_ms.iter().copied(), 0.5), 0),
        fmt(quantile(downtime_ms.iter().copied(), 0.9), 0),
        fmt(max(&downtime_ms), 0)
    )?;
    Ok(())
}

fn gbit(mbit: u64) -> String {
    match mbit {
        0 => "a link not recorded".to_string(),
        _ => format!("{} Gbit/s", mbit as f64 / 1000.0),
    }
}

/// Render the page from the stored records.
pub fn render(records: &[ReliabilityRecord], source: &str, command: &str) -> Result<String> {
    let run = |kind: SoakKind| -> Result<Option<&SoakRun>> {
        let runs: Vec<&SoakRun> = records
            .iter()
            .filter_map(|r| r.soak.as_ref())
            .filter(|s| s.kind == kind)
            .collect();
        if runs.len() > 1 {
            bail!("more than one {kind:?} run stored");
        }
        Ok(runs.first().copied())
    };
    let soak = run(SoakKind::Soak)?;
    let Some(faults) = run(SoakKind::Faults)? else {
        bail!("no fault run stored");
    };
    let runs: Vec<&SoakRun> = soak.into_iter().chain([faults]).collect();
    // Runs made before soak stamped its summaries carry no commit or date.
    let commits: BTreeSet<String> = runs
        .iter()
        .map(|r| match r.summary.code_commit.as_str() {
            "" => "not recorded".to_string(),
            c => format!("`{c}`"),
        })
        .collect();
    let dates: BTreeSet<String> = runs
        .iter()
        .map(|r| match r.summary.finished_unix_s {
            0 => "on a date not recorded".to_string(),
            t => utc_date(t),
        })
        .collect();
    let links: BTreeSet<u64> = runs.iter().map(|r| r.summary.bandwidth_mbit).collect();
    let link = match (soak, links.len()) {
        (Some(s), 2) => format!(
            "{} for the soak, {} for the fault hops",
            gbit(s.summary.bandwidth_mbit),
            gbit(faults.summary.bandwidth_mbit)
        ),
        _ => gbit(faults.summary.bandwidth_mbit),
    };
    let join = |set: BTreeSet<String>| set.into_iter().collect::<Vec<_>>().join(", ");
    let mut md = String::new();
    writeln!(md, "# Reliability\n")?;
    writeln!(
        md,
        "**Code:** {}. **Runs:** made {}, stored in `{source}`; this page is rendered from them by `kairos report reliability` (`{command}` makes the runs and the page).\n",
        join(commits),
        join(dates)
    )?;
    writeln!(
        md,
        "One 512 MiB guest (TCG) migrated back and forth between two patched QEMU processes in two network namespaces over a veth pair shaped with tc ({link}), with `x-convergence-policy=predictive` and throttle escalation, its workload program (`testbed/soak/soak-512m.toml`) changing phase every few hops. After every hop `kairos soak` checks that the destination runs, reads the guest's own page check (kairos-load re-reads every page it wrote; its error counter lives in guest memory, so it travels with the guest) from the second report after the hop, that no throttle is left on the source, and that the policy's state was fresh (`convergence.rounds` never ahead of the migration's own `dirty-sync-count`); after the last hop, the guest's check once more after 10 s, and that no QEMU process, file descriptor or namespace is left.\n"
    )?;
    match soak {
        Some(s) => {
            let (asked, done) = (s.summary.hops, s.summary.completed);
            if done < asked {
                writeln!(md, "## Soak: {done} of {asked} hops (stopped early)\n")?;
                writeln!(md, "The run was asked for {asked} hops and ended after {done}; the counts below are everything it did. The full campaign is `bash scripts/soak.sh`.\n")?;
            } else {
                writeln!(md, "## Soak: {asked} hops\n")?;
            }
            counts_table(&mut md, &s.summary)?;
            times_table(&mut md, &s.attempts)?;
        }
        None => {
            writeln!(md, "## Soak\n\n**Not run with these runs.** The 1000-hop soak (`bash scripts/soak.sh`, about two hours) is the campaign that goes with this page; its figures will replace this paragraph.\n")?;
        }
    }
    writeln!(
        md,
        "## Faults: {} hops, a fault in each\n",
        faults.summary.hops
    )?;
    writeln!(md, "Each hop's first attempt gets one fault half-way through its first pass of pre-copy, in turn: the destination QEMU killed (SIGKILL); the link taken down for 2 s and brought back; `migrate_cancel`; `migrate-set-parameters` halving the bandwidth (at once) and changing the policy and the maximum downtime (for the next migration); the source guest paused (`stop`) for 2 s and resumed. An attempt that does not complete is retried on a fresh destination; the source guest must keep running with its memory intact meanwhile.\n")?;
    writeln!(
        md,
        "| fault | injected | survived (the hop completed and verified) |\n|---|---|---|"
    )?;
    for f in &faults.summary.faults {
        let name = serde_json::to_value(f.fault)?
            .as_str()
            .unwrap_or("?")
            .to_string();
        writeln!(md, "| {name} | {} | {} |", f.injected, f.survived)?;
    }
    // What each faulted attempt itself ended as.
    let mut outcomes: BTreeMap<&str, BTreeMap<&str, usize>> = BTreeMap::new();
    for a in faults.attempts.iter().filter(|a| a.fault_injected) {
        *outcomes
            .entry(a.fault.as_str())
            .or_default()
            .entry(a.status.as_str())
            .or_default() += 1;
    }
    let outcome_text: Vec<String> = outcomes
        .iter()
        .map(|(fault, by)| {
            let parts: Vec<String> = by.iter().map(|(s, n)| format!("{s} ×{n}")).collect();
            format!("{fault}: {}", parts.join(", "))
        })
        .collect();
    writeln!(
        md,
        "\nWhat the faulted attempt itself ended as: {}.\n",
        outcome_text.join("; ")
    )?;
    counts_table(&mut md, &faults.summary)?;
    writeln!(md, "The same faults run in CI, one hop each (`scripts/tests/test_qemu.py::test_fault_is_survived`).\n")?;
    writeln!(md, "With libvirt, the fault is the destination daemon killed: `scripts/libvirt-migrate-test.sh` (in CI) kills the destination `libvirtd` (SIGKILL) a second into a `virsh migrate --live` with `predictive`, and asserts that the migration fails, the domain runs on the source with its load reporting and no page wrong, the restarted daemon removes the half-migrated incoming domain, and the retry completes with a fresh policy state (what it measured: [libvirt.md](libvirt.md), section 5).\n")?;
    writeln!(md, "## Fuzzing the C ABI\n")?;
    writeln!(md, "`bash scripts/fuzz.sh` runs the libFuzzer target `ffi/fuzz/fuzz_targets/api_sequence.rs` (cargo fuzz, AddressSanitizer with LeakSanitizer, nightly toolchain): every input is a program of create/observe/state/history/reset/free calls (`kairos::api_stream`, the driver the proptest in `ffi/tests/fuzz_api.rs` also runs). A crash, a leak or a broken contract stops it with the input saved in `build/fuzz/artifacts/`.\n")?;
    let fuzz: Vec<&str> = records
        .iter()
        .filter_map(|r| r.fuzz_run.as_deref())
        .collect();
    if fuzz.is_empty() {
        writeln!(md, "No fuzzing run stored.")?;
    } else {
        writeln!(md, "Every run `scripts/fuzz.sh` recorded, oldest first (exit 0: no crash, no leak; 1: a crash, its input in `artifacts`; 143: stopped by the operator before its end; a crash input is kept as a regression test in `ffi/tests/fuzz_regressions.rs` once fixed):\n")?;
        for line in fuzz {
            writeln!(md, "- {line}")?;
        }
    }
    Ok(md)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::soak::FaultCount;
    use crate::live::hop::Fault;
    use crate::report::record::RECORD_FORMAT;

    fn summary(hops: u64, faults: Vec<FaultCount>) -> SoakSummary {
        SoakSummary {
            hops,
            completed: hops,
            attempts: hops + 1,
            failed_attempts: 1,
            unexplained_failures: 0,
            retried_hops: 1,
            pages_wrong: 0,
            throttles_left_on: 0,
            stale_policy_states: 0,
            faults,
            leaked_processes: 0,
            leaked_fds: 0,
            leaked_namespaces: false,
            wall_s: 600.0,
            bandwidth_mbit: 1000,
            code_commit: "abc".into(),
            finished_unix_s: 1_796_515_200,
        }
    }

    fn attempt(hop: u64, fault: &str, status: &str, total_ms: f64, downtime_ms: f64) -> CsvRow {
        CsvRow {
            hop,
            attempt: 1,
            fault: fault.into(),
            fault_injected: !fault.is_empty(),
            status: status.into(),
            total_time_ms: (status == "completed").then_some(total_ms),
            downtime_ms: (status == "completed").then_some(downtime_ms),
            rounds: Some(5),
            convergence_fresh: true,
            throttle_released: true,
            verify_errors: 0,
            wall_s: 10.0,
        }
    }

    #[test]
    fn faults_and_fuzz_runs_are_laid_out_and_a_missing_soak_is_said() {
        let faults = SoakRun {
            kind: SoakKind::Faults,
            summary: summary(
                1,
                vec![FaultCount {
                    fault: Fault::KillDestination,
                    injected: 1,
                    survived: 1,
                }],
            ),
            attempts: vec![
                attempt(1, "kill-destination", "failed", 0.0, 0.0),
                attempt(1, "", "completed", 4000.0, 300.0),
            ],
        };
        let records = [
            ReliabilityRecord {
                format: RECORD_FORMAT,
                soak: Some(faults),
                fuzz_run: None,
            },
            ReliabilityRecord {
                format: RECORD_FORMAT,
                soak: None,
                fuzz_run: Some("2026-12-01 exit 0".into()),
            },
        ];
        let md = render(&records, "r.jsonl.gz", "bash scripts/soak.sh").unwrap();
        assert!(md.contains("**Not run with these runs.**"));
        assert!(md.contains("| kill-destination | 1 | 1 |"));
        assert!(md.contains("kill-destination: failed ×1."));
        assert!(md.contains("| hops completed | 1 of 1 |"));
        assert!(md.contains("- 2026-12-01 exit 0"));
        assert!(md.contains("(1 Gbit/s)"));
    }

    #[test]
    fn a_soak_gives_its_hop_times_and_without_fault_runs_there_is_no_page() {
        let soak = SoakRun {
            kind: SoakKind::Soak,
            summary: summary(3, vec![]),
            attempts: vec![
                attempt(1, "", "completed", 1000.0, 100.0),
                attempt(2, "", "completed", 2000.0, 200.0),
                attempt(3, "", "completed", 3000.0, 300.0),
            ],
        };
        let only_soak = [ReliabilityRecord {
            format: RECORD_FORMAT,
            soak: Some(soak.clone()),
            fuzz_run: None,
        }];
        assert!(render(&only_soak, "r", "c").is_err());
        let faults = SoakRun {
            kind: SoakKind::Faults,
            ..soak.clone()
        };
        let records = [
            only_soak[0].clone(),
            ReliabilityRecord {
                format: RECORD_FORMAT,
                soak: Some(faults),
                fuzz_run: None,
            },
        ];
        let md = render(&records, "r", "c").unwrap();
        assert!(md.contains("## Soak: 3 hops"));
        // Median 2.0 s, 90th percentile 2.8 s (linear), max 3.0 s.
        assert!(md.contains("| total time, s | 2.0 | 2.8 | 3.0 |"), "{md}");
        assert!(md.contains("| downtime, ms | 200 | 280 | 300 |"));
    }
}

//! The escalation page: the strict case (maximum downtime = limit), where
//! no stop fits and a policy can only slow the guest or leave pre-copy.
//! Two stored live campaigns: `predictive` with throttle escalation against
//! QEMU's rule and auto-converge, and with post-copy escalation against
//! post-copy after 5 rounds. Medians per cell (the total time's with its
//! bootstrap interval), and the escalation issue's goals checked on them;
//! the total-time goal on the interval of the difference (a difference
//! inside it is a tie).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use anyhow::{bail, Result};
use kairos_eval::cell_stats::{bootstrap_interval, median, median_interval, Interval, Verdict};
use kairos_eval::outcome::MigrationStatus;

use super::record::{utc_date, RunRecord};

/// A converged run's downtime may be this much over the limit.
const DOWNTIME_SLACK: f64 = 1.1;
/// `predictive`'s app loss and stall are at most this share of the better
/// auto-converge's.
const SHARE: f64 = 0.5;
/// The auto-converge baselines, the better of which is the bar.
const AUTO_CONVERGE: [&str; 2] = ["auto-converge", "auto-converge-tailslow"];
const KAIROS: &str = "predictive";
/// Seed of the bootstrap resampling (a page renders the same every time).
const BOOTSTRAP_SEED: u64 = 1;

/// The medians of one (workload, policy) cell.
#[derive(Debug, Default, Clone, Copy)]
struct CellMedians {
    runs: usize,
    completed: usize,
    total_s: Option<f64>,
    downtime_ms: Option<f64>,
    downtime_max_ms: Option<f64>,
    /// The longest gap the guest's load generator saw.
    stall_ms: Option<f64>,
    /// STOP to RESUME.
    paused_ms: Option<f64>,
    app_loss_pct: Option<f64>,
    rounds: Option<f64>,
    transferred_mib: Option<f64>,
}

fn cell(runs: &[&RunRecord]) -> CellMedians {
    let done: Vec<_> = runs
        .iter()
        .map(|r| &r.result)
        .filter(|r| r.status == MigrationStatus::Completed)
        .collect();
    CellMedians {
        runs: runs.len(),
        completed: done.len(),
        total_s: median(
            done.iter()
                .filter_map(|r| r.total_time_ms)
                .map(|t| t / 1000.0),
        ),
        downtime_ms: median(done.iter().filter_map(|r| r.downtime_ms)),
        downtime_max_ms: done
            .iter()
            .map(|r| r.downtime_ms.unwrap_or(0.0))
            .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x)))),
        stall_ms: median(done.iter().filter_map(|r| r.guest_pause_ms)),
        paused_ms: median(done.iter().filter_map(|r| r.paused_ms)),
        app_loss_pct: median(runs.iter().filter_map(|r| r.result.app_loss_pct)),
        rounds: median(done.iter().filter_map(|r| r.rounds).map(|n| n as f64)),
        transferred_mib: median(
            done.iter()
                .filter_map(|r| r.transferred_bytes)
                .map(|b| b as f64 / f64::from(1u32 << 20)),
        ),
    }
}

/// (workload, policy) → runs; `predictive@w=…` is `predictive` here (one
/// weight per section).
type Groups<'a> = BTreeMap<(String, String), Vec<&'a RunRecord>>;

fn groups(records: &[RunRecord]) -> Groups<'_> {
    let mut out: Groups<'_> = BTreeMap::new();
    for r in records {
        let policy = if r.result.policy.starts_with(KAIROS) {
            KAIROS.to_string()
        } else {
            r.result.policy.clone()
        };
        out.entry((r.result.workload.clone(), policy))
            .or_default()
            .push(r);
    }
    out
}

/// The total times of a cell's completed runs, s.
fn totals_s(g: &Groups<'_>, workload: &str, policy: &str) -> Vec<f64> {
    g.get(&(workload.to_string(), policy.to_string()))
        .map_or_else(Vec::new, |runs| {
            runs.iter()
                .filter(|r| r.result.status == MigrationStatus::Completed)
                .filter_map(|r| r.result.total_time_ms)
                .map(|t| t / 1000.0)
                .collect()
        })
}

/// The 95 % bootstrap interval of (median of `a` − median of `b`).
fn median_difference(a: &[f64], b: &[f64]) -> Option<Interval> {
    bootstrap_interval(
        &[a, b],
        |g| {
            median(g[0].iter().copied()).unwrap_or(f64::NAN)
                - median(g[1].iter().copied()).unwrap_or(f64::NAN)
        },
        BOOTSTRAP_SEED,
    )
}

fn fmt_interval(i: Option<Interval>, digits: usize) -> String {
    i.map_or(String::new(), |i| {
        format!(" [{:.digits$}, {:.digits$}]", i.lo, i.hi)
    })
}

fn get(g: &Groups<'_>, workload: &str, policy: &str) -> CellMedians {
    g.get(&(workload.to_string(), policy.to_string()))
        .map_or_else(CellMedians::default, |runs| cell(runs))
}

fn workloads(g: &Groups<'_>) -> Vec<String> {
    g.keys()
        .map(|(w, _)| w.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

fn fmt(v: Option<f64>, digits: usize) -> String {
    v.map_or("-".to_string(), |v| format!("{v:.digits$}"))
}

fn at_most(value: Option<f64>, bound: Option<f64>) -> bool {
    matches!((value, bound), (Some(v), Some(b)) if v <= b)
}

fn yes_no(ok: bool) -> &'static str {
    if ok {
        "yes"
    } else {
        "**no**"
    }
}

fn table(md: &mut String, g: &Groups<'_>, policies: &[&str]) -> Result<()> {
    writeln!(md, "| workload | policy | completed | total s [95 % interval of the median] | downtime ms (median / max) | paused ms (STOP to RESUME) | longest guest stall ms | app loss % | syncs | transferred MiB |")?;
    writeln!(md, "|---|---|---|---|---|---|---|---|---|---|")?;
    for w in workloads(g) {
        for &p in policies {
            if !g.contains_key(&(w.clone(), p.to_string())) {
                continue;
            }
            let c = get(g, &w, p);
            let interval = median_interval(&totals_s(g, &w, p), BOOTSTRAP_SEED);
            writeln!(
                md,
                "| {w} | {p} | {}/{} | {}{} | {} / {} | {} | {} | {} | {} | {} |",
                c.completed,
                c.runs,
                fmt(c.total_s, 1),
                fmt_interval(interval, 1),
                fmt(c.downtime_ms, 0),
                fmt(c.downtime_max_ms, 0),
                fmt(c.paused_ms, 0),
                fmt(c.stall_ms, 0),
                fmt(c.app_loss_pct, 1),
                fmt(c.rounds, 0),
                fmt(c.transferred_mib, 0)
            )?;
        }
    }
    writeln!(md)?;
    Ok(())
}

/// The widest spread of app loss between the runs of one cell.
fn app_loss_spread(g: &Groups<'_>) -> Option<(f64, String, String)> {
    let mut widest: Option<(f64, String, String)> = None;
    for ((w, p), runs) in g {
        let losses: Vec<f64> = runs.iter().filter_map(|r| r.result.app_loss_pct).collect();
        if losses.len() < 2 {
            continue;
        }
        let (lo, hi) = losses
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
                (lo.min(x), hi.max(x))
            });
        if widest.as_ref().is_none_or(|(width, _, _)| hi - lo > *width) {
            widest = Some((hi - lo, w.clone(), p.clone()));
        }
    }
    widest
}

fn throttle_checks(md: &mut String, g: &Groups<'_>, limit_ms: f64) -> Result<()> {
    writeln!(md, "| workload | converged, downtime <= limit x 1.1 | total <= better auto-converge (difference of medians, s [95 % interval]) | app loss <= 1/2 | stall <= 1/2 | stall ms: predictive / 1/2 better / no escalation |")?;
    writeln!(md, "|---|---|---|---|---|---|")?;
    let mut below_floor = Vec::new();
    let mut met = 0;
    let names = workloads(g);
    for w in &names {
        let p = get(g, w, KAIROS);
        let bases: Vec<CellMedians> = AUTO_CONVERGE
            .iter()
            .filter(|b| g.contains_key(&(w.clone(), b.to_string())))
            .map(|b| get(g, w, b))
            .collect();
        let best = |f: fn(&CellMedians) -> Option<f64>| {
            bases
                .iter()
                .filter_map(f)
                .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.min(x))))
        };
        let converged = p.runs > 0
            && p.completed == p.runs
            && at_most(p.downtime_max_ms, Some(limit_ms * DOWNTIME_SLACK));
        // Against the auto-converge with the lower median total: met
        // unless predictive's is longer outside the runs' interval.
        let better = AUTO_CONVERGE
            .iter()
            .filter(|b| g.contains_key(&(w.clone(), b.to_string())))
            .filter_map(|b| get(g, w, b).total_s.map(|t| (t, *b)))
            .min_by(|x, y| x.0.total_cmp(&y.0))
            .map(|(_, b)| b);
        let difference =
            better.and_then(|b| median_difference(&totals_s(g, w, KAIROS), &totals_s(g, w, b)));
        let verdict = difference.map(Verdict::of);
        let total = p.total_s.is_some() && verdict.is_some_and(|v| v != Verdict::Dearer);
        let total_cell = match (difference, verdict) {
            (Some(d), Some(v)) => format!(
                "{} ({}: {:+.1} [{:+.1}, {:+.1}])",
                yes_no(total),
                v.name(),
                p.total_s.unwrap_or(0.0) - best(|c| c.total_s).unwrap_or(0.0),
                d.lo,
                d.hi
            ),
            _ => yes_no(total).to_string(),
        };
        // A loss the baseline does not have (<= 0) cannot be halved; then
        // predictive's must not be above it.
        let loss = at_most(
            p.app_loss_pct,
            best(|c| c.app_loss_pct).map(|b| if b > 0.0 { b * SHARE } else { b }),
        );
        let stall_bound = best(|c| c.stall_ms).map(|b| b * SHARE);
        let stall = at_most(p.stall_ms, stall_bound);
        // What the guest saw with no escalation at all (QEMU's rule, which
        // never throttles; a run that timed out counts its whole window).
        let floor = g
            .get(&(w.clone(), "qemu".to_string()))
            .and_then(|runs| median(runs.iter().filter_map(|r| r.result.guest_pause_ms)));
        if !stall && matches!((floor, stall_bound), (Some(f), Some(b)) if b < f) {
            below_floor.push(w.as_str());
        }
        met += usize::from(converged && total && loss && stall);
        writeln!(
            md,
            "| {w} | {} | {} | {} | {} | {} / {} / {} |",
            yes_no(converged),
            total_cell,
            yes_no(loss),
            yes_no(stall),
            fmt(p.stall_ms, 0),
            fmt(stall_bound, 0),
            fmt(floor, 0)
        )?;
    }
    write!(
        md,
        "\nAll four goals met on {met} of {} workloads.",
        names.len()
    )?;
    if !below_floor.is_empty() {
        let listed = match below_floor.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
            _ => below_floor.join(""),
        };
        write!(md, " On {listed} half of the better auto-converge's stall is shorter than the stall the guest shows with no escalation at all (QEMU's rule): escalating only adds stalls, so no escalation can be expected to meet the stall goal there.")?;
    }
    writeln!(md, "\n")?;
    Ok(())
}

fn postcopy_checks(md: &mut String, g: &Groups<'_>) -> Result<()> {
    writeln!(
        md,
        "| workload | switch no later (syncs) | stall no longer |\n|---|---|---|"
    )?;
    let names = workloads(g);
    let mut met = 0;
    for w in &names {
        let p = get(g, w, KAIROS);
        let b = get(g, w, "postcopy-after");
        let sooner = at_most(p.rounds, b.rounds);
        let stall = at_most(p.stall_ms, b.stall_ms);
        met += usize::from(sooner && stall);
        writeln!(
            md,
            "| {w} | {} ({} vs {}) | {} |",
            yes_no(sooner),
            fmt(p.rounds, 1),
            fmt(b.rounds, 1),
            yes_no(stall)
        )?;
    }
    writeln!(
        md,
        "\nBoth goals met on {met} of {} workloads.\n",
        names.len()
    )?;
    Ok(())
}

/// Render the page from the two campaigns' stored runs.
pub fn render(
    throttle: &[RunRecord],
    postcopy: &[RunRecord],
    sources: &str,
    command: &str,
) -> Result<String> {
    if throttle.is_empty() || postcopy.is_empty() {
        bail!(
            "both sections need runs (throttle: {}, post-copy: {})",
            throttle.len(),
            postcopy.len()
        );
    }
    let all: Vec<&RunRecord> = throttle.iter().chain(postcopy).collect();
    let limits: BTreeSet<u64> = all.iter().map(|r| r.result.downtime_limit_ms).collect();
    if limits.len() != 1 {
        bail!("the runs have more than one downtime limit: {limits:?}");
    }
    let limit_ms = limits.into_iter().next().unwrap_or(0);
    let commits: BTreeSet<String> = all
        .iter()
        .map(|r| {
            r.result
                .code_commit
                .as_deref()
                .map_or("not recorded".to_string(), |c| format!("`{c}`"))
        })
        .collect();
    let dates: BTreeSet<String> = all
        .iter()
        .map(|r| {
            r.result
                .finished_unix_s
                .map_or("a date not recorded".to_string(), utc_date)
        })
        .collect();
    let join = |s: BTreeSet<String>| s.into_iter().collect::<Vec<_>>().join(", ");
    let mut md = String::new();
    writeln!(md, "# Measured results: when nothing fits (escalation)\n")?;
    writeln!(md, "**Code:** {}. **Runs:** {} made {}, stored in {sources}; this page is rendered from them by `kairos report escalation` (`{command}` makes the runs and the page); every number below is a median over a cell's runs, the total time's with the 95 % bootstrap interval of that median, and predictive's total time is judged against auto-converge's on the interval of the difference of their medians: a difference inside it is a tie, not a win. Real migrations of the Kairos guest between two QEMUs in network namespaces over a veth pair shaped to 1 Gbit/s, TCG, 1 GiB guest.\n", join(commits), all.len(), join(dates))?;
    writeln!(md, "The strict case: maximum downtime = limit = {limit_ms} ms, so a policy may not trade downtime for time; where the guest dirties faster than the link drains, only slowing the guest or leaving pre-copy ends the migration. *Longest guest stall* is the longest gap the guest's own load generator saw between two operations from the start of the migration to just after the switch-over: vCPU throttle sleeps and post-copy page faults (the downtime itself hardly shows: the guest's clock stops with it, so QEMU's rule, which never throttles, stalls the guest for some 20-40 ms). *Downtime* is QEMU's after a pre-copy switch; after a post-copy one it is *paused*, the time from the source's STOP event to the destination's RESUME (QMP timestamps, one host clock), because QEMU's own figure there leaves out the destination's part and, when it timed the switch at 0 ms, reports the whole post-copy phase instead ('-': runs recorded before the pause was measured). *App loss* is the guest's throughput lost during the migration against the same phase without one, the mean over the migration's seconds (a second that changed phase is left out; negative: a paced load generator made up work a throttle held back).\n")?;
    writeln!(
        md,
        "## 1. Throttle: predictive (`--escalation throttle`) against auto-converge\n"
    )?;
    writeln!(md, "Auto-converge throttles in QEMU's 10 ms slices: at a throttle p each vCPU sleeps p/(1-p) slices at a time, 990 ms at 99 %. Predictive's throttle has its sleeps bounded at 99 ms (`cpu_throttle_set_max_sleep()`, patch 6 of the series: the slice shrinks, down to 1 ms, where a sleep would be longer), for the same share of CPU time. A stall longer than that is then, most likely, one operation of the load generator that needs more CPU time than the vCPU gets between two sleeps (1 ms in every 100 ms at 99 %): a bound on sleeps cannot shorten it, only a lower throttle can. The load generator (`kairos-load`) is paced: each pass of its loop writes every page that fell due since the last pass, then sleeps; under TCG a pass, with the guest kernel's wake-up, needs milliseconds of vCPU time, so at 99 % it spans several 100 ms periods, and the writes it deferred land in the next round.\n")?;
    let g = groups(throttle);
    table(
        &mut md,
        &g,
        &["qemu", "auto-converge", "auto-converge-tailslow", KAIROS],
    )?;
    if let Some((width, w, p)) = app_loss_spread(&g) {
        writeln!(md, "App loss is noisy: the runs of one cell differ by up to {width:.0} percentage points ({w}, {p}), more than most of the differences the goals below weigh.\n")?;
    }
    writeln!(md, "Goals (issue: escalation sized by the forecast):\n")?;
    throttle_checks(&mut md, &g, limit_ms as f64)?;
    writeln!(
        md,
        "## 2. Post-copy: predictive (`--escalation postcopy`) against post-copy after 5 rounds\n"
    )?;
    let g = groups(postcopy);
    table(&mut md, &g, &["postcopy-after", KAIROS])?;
    postcopy_checks(&mut md, &g)?;
    Ok(md)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::record::test_support::live_run;

    fn run(workload: &str, policy: &str, stall_ms: f64, loss: f64, rounds: u64) -> RunRecord {
        live_run(
            workload,
            policy,
            "completed",
            10_000.0,
            310.0,
            serde_json::json!({
                "transferred_bytes": 1u64 << 30, "rounds": rounds,
                "max_downtime_ms": 300, "guest_pause_ms": stall_ms,
                "app_loss_pct": loss,
            }),
        )
    }

    #[test]
    fn goals_are_checked_on_the_medians() {
        let throttle = [
            run("hot-wss", "qemu", 30.0, 0.0, 40),
            run("hot-wss", "auto-converge", 900.0, 20.0, 12),
            run("hot-wss", "auto-converge-tailslow", 700.0, 16.0, 12),
            run("hot-wss", "predictive@w=10", 99.0, 6.0, 8),
            run("hot-wss", "predictive@w=10", 120.0, 8.0, 8),
        ];
        let postcopy = [
            run("hot-wss", "postcopy-after", 200.0, 0.0, 5),
            run("hot-wss", "predictive@w=10", 150.0, 0.0, 4),
        ];
        let md = render(&throttle, &postcopy, "a and b", "bash x.sh").unwrap();
        // 310 ms ≤ 330; 10 s against 10 s, a tie; 7 ≤ 8; 109.5 ≤ 350.
        assert!(
            md.contains(
                "| hot-wss | yes | yes (tie: +0.0 [+0.0, +0.0]) | yes | yes | 110 / 350 / 30 |"
            ),
            "{md}"
        );
        assert!(md.contains("All four goals met on 1 of 1 workloads."));
        assert!(md.contains("| hot-wss | yes (4.0 vs 5.0) | yes |"));
        assert!(md.contains("| hot-wss | predictive | 2/2 | 10.0 [10.0, 10.0] | 310 / 310 |"));
        assert!(md.contains("up to 2 percentage points (hot-wss, predictive)"));
        assert!(render(&throttle, &[], "a", "b").is_err());
    }

    #[test]
    fn a_longer_total_outside_the_interval_misses_the_goal_and_inside_it_ties() {
        let timed = |policy: &str, total_ms: f64| {
            live_run(
                "redis",
                policy,
                "completed",
                total_ms,
                250.0,
                serde_json::json!({"rounds": 5, "max_downtime_ms": 300,
                                   "guest_pause_ms": 10.0, "app_loss_pct": 1.0}),
            )
        };
        let postcopy = [timed("postcopy-after", 5_000.0), timed(KAIROS, 5_000.0)];
        // Every predictive run longer than every auto-converge run: dearer.
        let throttle = [
            timed("auto-converge", 10_000.0),
            timed("auto-converge", 11_000.0),
            timed("auto-converge", 12_000.0),
            timed(KAIROS, 20_000.0),
            timed(KAIROS, 21_000.0),
            timed(KAIROS, 22_000.0),
        ];
        let md = render(&throttle, &postcopy, "a", "b").unwrap();
        assert!(
            md.contains("| redis | yes | **no** (dearer: +10.0 ["),
            "{md}"
        );
        // Runs that overlap: a tie, so the goal is met.
        let throttle = [
            timed("auto-converge", 10_000.0),
            timed("auto-converge", 14_000.0),
            timed("auto-converge", 12_000.0),
            timed(KAIROS, 13_000.0),
            timed(KAIROS, 9_000.0),
            timed(KAIROS, 11_500.0),
        ];
        let md = render(&throttle, &postcopy, "a", "b").unwrap();
        assert!(md.contains("| redis | yes | yes (tie: -0.5 ["), "{md}");
    }
}

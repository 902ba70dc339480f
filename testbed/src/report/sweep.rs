//! The live sweep's page: `predictive` against every static downtime-limit
//! an operator could have set, per downtime weight λ, from stored runs.
//!
//! References that are bounds live: each workload's best static limit in
//! hindsight (the cheapest limit's median, chosen again in every bootstrap
//! resample, so it is biased low: against `predictive`) and the best single
//! static limit for the whole set (chosen on the medians, then held). A
//! run that did not succeed (timed out, aborted, or stopped above the
//! maximum) is charged a stated cap. Differences carry a 95 % bootstrap
//! interval over the repeats; one that holds 0 is a tie.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use anyhow::{bail, Result};
use kairos_eval::cell_stats::{bootstrap_interval, median, median_interval, Interval, Verdict};
use kairos_eval::forecast_quality::{
    change_segments, forecast_quality, ErrorStats, DECIDING_ROUNDS,
};
use kairos_eval::outcome::Outcome;
use kairos_eval::trace::read_trace;
use kairos_policy_core::cost::Objective;
use kairos_policy_core::PolicyConfig;

use super::record::{sim_stamp, utc_date, RunRecord, SimRecord};
use crate::live::spec::LiveSpec;

/// What the page is rendered with besides the runs.
#[derive(Debug, Clone)]
pub struct SweepPage<'a> {
    /// The stored runs.
    pub records: &'a [RunRecord],
    /// The user's downtime limit L, ms (every cost's L).
    pub downtime_limit_ms: f64,
    /// What a run that did not succeed is charged, ms.
    pub failure_charge_ms: f64,
    /// Where the runs are, as the page names it.
    pub source: &'a str,
    /// The command that renders the page, as the page names it.
    pub command: &'a str,
    /// Repeats a cell has when the sweep is done.
    pub repeats: usize,
    /// Cells the campaign plans (workloads × policies), when the runs so
    /// far do not show them all.
    pub planned_cells: Option<usize>,
    /// The sweep's programs simulated by the sweep's own code (`kairos
    /// report pack-sim`), for the simulated counterpart; benchmarks have
    /// none and are left out of it.
    pub simulated: &'a [SimRecord],
}

/// A column of the sweep: QEMU's rule at a static limit, predictive at a
/// weight, or another policy shown beside them.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Column {
    Static(u64),
    Predictive(f64),
    Other,
}

/// The cells under one objective, keyed by (workload, policy).
type Cells = BTreeMap<(String, String), Cell>;

/// Costs of one cell (charged, so failures count) and its failures.
#[derive(Debug, Default, Clone)]
struct Cell {
    charged_ms: Vec<f64>,
    failures: usize,
    above_max: usize,
}

struct Sweep {
    workloads: Vec<String>,
    limits: Vec<u64>,
    weights: Vec<f64>,
    others: Vec<String>,
    max_downtime_ms: f64,
}

fn column(policy: &str) -> Column {
    match policy.parse::<LiveSpec>() {
        Ok(LiveSpec::Qemu(Some(limit_ms))) => Column::Static(limit_ms),
        Ok(LiveSpec::Predictive(Some(w))) => Column::Predictive(w),
        _ => Column::Other,
    }
}

fn shape(records: &[RunRecord]) -> Result<Sweep> {
    let mut workloads = BTreeSet::new();
    let mut limits = BTreeSet::new();
    let mut weights: Vec<f64> = Vec::new();
    let mut others = Vec::new();
    let mut max = BTreeSet::new();
    for r in records {
        workloads.insert(r.result.workload.clone());
        max.insert(r.result.max_downtime_ms);
        match column(&r.result.policy) {
            Column::Static(l) => {
                limits.insert(l);
            }
            Column::Predictive(w) if !weights.contains(&w) => weights.push(w),
            Column::Other if !others.contains(&r.result.policy) => {
                others.push(r.result.policy.clone());
            }
            _ => {}
        }
    }
    if max.len() > 1 {
        bail!("the runs were made under different maxima ({max:?} ms): one page, one maximum");
    }
    let Some(&max_downtime_ms) = max.iter().next() else {
        bail!("no runs");
    };
    if limits.is_empty() || weights.is_empty() {
        bail!(
            "the sweep needs runs of QEMU's rule at static limits (qemu@MS) and of predictive@w=N"
        );
    }
    weights.sort_by(f64::total_cmp);
    others.sort();
    Ok(Sweep {
        workloads: workloads.into_iter().collect(),
        limits: limits.into_iter().collect(),
        weights,
        others,
        max_downtime_ms: max_downtime_ms as f64,
    })
}

/// Cells under one objective, keyed by (workload, column name).
/// `lenient` charges a stop above the maximum its cost as if allowed (to
/// show what the strict count changes), never as a success elsewhere.
fn cells(records: &[RunRecord], objective: &Objective, charge_ms: f64, lenient: bool) -> Cells {
    let mut out = Cells::new();
    for r in records {
        let x = &r.result;
        let outcome = Outcome::of(x.status, x.total_time_ms, x.downtime_ms, objective);
        let cell = out
            .entry((x.workload.clone(), x.policy.clone()))
            .or_default();
        let charged_ms = match (outcome, lenient, x.total_time_ms) {
            (Outcome::AboveMaximum { downtime_ms }, true, Some(t)) => {
                objective.unbounded_cost_ms(t, downtime_ms)
            }
            _ => outcome.charged_ms(charge_ms),
        };
        cell.charged_ms.push(charged_ms);
        if !outcome.succeeded() {
            cell.failures += 1;
        }
        if matches!(outcome, Outcome::AboveMaximum { .. }) {
            cell.above_max += 1;
        }
    }
    out
}

fn secs(ms: f64) -> String {
    format!("{:.1}", ms / 1000.0)
}

fn interval_s(i: Option<Interval>) -> String {
    i.map_or("-".into(), |i| format!("[{}, {}]", secs(i.lo), secs(i.hi)))
}

fn static_name(limit_ms: u64) -> String {
    format!("qemu@{limit_ms}")
}

fn predictive_name(w: f64) -> String {
    LiveSpec::Predictive(Some(w)).to_string()
}

/// One λ's comparison over the workloads every needed cell has runs of.
struct Totals {
    complete: Vec<String>,
    predictive_ms: f64,
    best_single: (u64, f64),
    vs_single: Option<Interval>,
    per_workload_best_ms: f64,
    vs_per_workload: Option<Interval>,
}

fn totals(sweep: &Sweep, cells: &Cells, w: f64, seed: u64) -> Option<Totals> {
    let get = |wl: &str, p: &str| cells.get(&(wl.to_string(), p.to_string()));
    let pred = predictive_name(w);
    let complete: Vec<String> = sweep
        .workloads
        .iter()
        .filter(|wl| {
            get(wl, &pred).is_some()
                && sweep
                    .limits
                    .iter()
                    .all(|l| get(wl, &static_name(*l)).is_some())
        })
        .cloned()
        .collect();
    if complete.is_empty() {
        return None;
    }
    let med = |wl: &str, p: &str| {
        get(wl, p)
            .and_then(|c| median(c.charged_ms.iter().copied()))
            .unwrap_or(f64::NAN)
    };
    let predictive_ms: f64 = complete.iter().map(|wl| med(wl, &pred)).sum();
    let best_single = sweep
        .limits
        .iter()
        .map(|&l| {
            (
                l,
                complete
                    .iter()
                    .map(|wl| med(wl, &static_name(l)))
                    .sum::<f64>(),
            )
        })
        .min_by(|a, b| a.1.total_cmp(&b.1))?;
    let per_workload_best_ms: f64 = complete
        .iter()
        .map(|wl| {
            sweep
                .limits
                .iter()
                .map(|&l| med(wl, &static_name(l)))
                .fold(f64::INFINITY, f64::min)
        })
        .sum();
    // Bootstrap groups: per workload, predictive's cell then every static.
    let stride = 1 + sweep.limits.len();
    let groups: Vec<&[f64]> = complete
        .iter()
        .flat_map(|wl| {
            std::iter::once(pred.clone())
                .chain(sweep.limits.iter().map(|&l| static_name(l)))
                .map(move |p| get(wl, &p).map_or(&[][..], |c| c.charged_ms.as_slice()))
        })
        .collect();
    let single_index = 1 + sweep.limits.iter().position(|&l| l == best_single.0)?;
    let judged = groups.iter().all(|g| g.len() >= MIN_RUNS_FOR_VERDICT);
    let med_of = |g: &Vec<f64>| median(g.iter().copied()).unwrap_or(f64::NAN);
    let vs_single = judged
        .then(|| {
            bootstrap_interval(
                &groups,
                |g| {
                    g.chunks(stride)
                        .map(|c| med_of(&c[0]) - med_of(&c[single_index]))
                        .sum()
                },
                seed,
            )
        })
        .flatten();
    let vs_per_workload = judged
        .then(|| {
            bootstrap_interval(
                &groups,
                |g| {
                    g.chunks(stride)
                        .map(|c| {
                            med_of(&c[0]) - c[1..].iter().map(med_of).fold(f64::INFINITY, f64::min)
                        })
                        .sum()
                },
                seed + 1,
            )
        })
        .flatten();
    Some(Totals {
        complete,
        predictive_ms,
        best_single,
        vs_single,
        per_workload_best_ms,
        vs_per_workload,
    })
}

/// predictive's sum against the best single limit and against each
/// workload's best limit, with the intervals and verdicts.
fn comparison_text(t: &Totals) -> String {
    format!(
        "predictive {} s against the best single limit `{}` {} s: **{}** (difference {} s); against each workload's best limit in hindsight {} s: **{}** (difference {} s).",
        secs(t.predictive_ms),
        static_name(t.best_single.0),
        secs(t.best_single.1),
        verdict_text(t.vs_single),
        interval_s(t.vs_single),
        secs(t.per_workload_best_ms),
        verdict_text(t.vs_per_workload),
        interval_s(t.vs_per_workload),
    )
}

/// Fewer repeats than this in any cell a sum reads: no interval, no
/// verdict (one run says nothing of the noise).
pub const MIN_RUNS_FOR_VERDICT: usize = 3;

fn verdict_text(i: Option<Interval>) -> &'static str {
    i.map_or("not judged (a cell has fewer than 3 runs)", |i| {
        Verdict::of(i).name()
    })
}

/// Render the page.
pub fn render(page: &SweepPage<'_>) -> Result<String> {
    let sweep = shape(page.records)?;
    let mut md = String::new();
    let commits: BTreeMap<&str, usize> = page.records.iter().fold(BTreeMap::new(), |mut m, r| {
        *m.entry(r.result.code_commit.as_deref().unwrap_or("unrecorded"))
            .or_default() += 1;
        m
    });
    let dates: Vec<u64> = page
        .records
        .iter()
        .filter_map(|r| r.result.finished_unix_s)
        .collect();
    let date_range = match (dates.iter().min(), dates.iter().max()) {
        (Some(a), Some(b)) => format!("{} to {}", utc_date(*a), utc_date(*b)),
        _ => "on unrecorded dates".into(),
    };
    writeln!(
        md,
        "# Live sweep: predictive against every static downtime-limit\n"
    )?;
    let stamp: Vec<String> = commits
        .iter()
        .map(|(c, n)| format!("`{c}` ({n} runs)"))
        .collect();
    writeln!(
        md,
        "**Code:** {}. **Runs:** {} made {date_range}, stored in `{}`; this page is rendered from them by `{}`.\n",
        stamp.join(", "),
        page.records.len(),
        page.source,
        page.command
    )?;

    let objectives: Vec<(f64, Objective)> = sweep
        .weights
        .iter()
        .map(|&w| {
            (
                w,
                Objective {
                    downtime_limit_ms: page.downtime_limit_ms,
                    max_downtime_ms: sweep.max_downtime_ms,
                    downtime_weight: w,
                },
            )
        })
        .collect();
    let per_weight: Vec<(f64, Cells, Option<Totals>)> = objectives
        .iter()
        .enumerate()
        .map(|(i, (w, o))| {
            let c = cells(page.records, o, page.failure_charge_ms, false);
            let t = totals(&sweep, &c, *w, 1000 * (i as u64 + 1));
            (*w, c, t)
        })
        .collect();

    if let Some((_, cells, _)) = per_weight.first() {
        let seen =
            sweep.workloads.len() * (sweep.limits.len() + sweep.others.len() + sweep.weights.len());
        let expected = page.planned_cells.unwrap_or(seen).max(seen);
        let full = cells
            .values()
            .filter(|c| c.charged_ms.len() >= page.repeats)
            .count();
        if full < expected {
            writeln!(
                md,
                "**Partial sweep:** {full} of {expected} cells have their {} repeats ({} of {} runs); every figure below is provisional.\n",
                page.repeats,
                page.records.len(),
                expected * page.repeats
            )?;
        }
    }

    // The verdicts first, losses named.
    writeln!(md, "**Verdict** (summed cost over the workloads with runs in every needed cell; 95 % bootstrap interval of the difference over the repeats; an interval holding 0 is a tie):\n")?;
    for (w, _, t) in &per_weight {
        match t {
            None => writeln!(md, "- λ = {w}: no workload has runs in every cell yet.")?,
            Some(t) => writeln!(
                md,
                "- λ = {w} ({} workloads): {}",
                t.complete.len(),
                comparison_text(t)
            )?,
        }
    }
    // What the strict count changes: stops above the maximum at their cost.
    for (i, (w, o)) in objectives.iter().enumerate() {
        let lenient = cells(page.records, o, page.failure_charge_ms, true);
        if let Some(t) = totals(&sweep, &lenient, *w, 1000 * (i as u64 + 1)) {
            writeln!(
                md,
                "- λ = {w}, stops above the maximum counted at their cost as if allowed: {}",
                comparison_text(&t)
            )?;
        }
    }
    writeln!(
        md,
        "\n**How it is counted.** Cost = total time + λ·max(0, downtime − {} ms), in seconds, the median of a cell's repeats. A run that did not succeed — it timed out, was aborted, or stopped with a downtime above the maximum {} ms — is a failure: it has no cost of its own and is charged {} s in the medians and sums (no run above the maximum counts as a success). Static limits run QEMU's own rule at that `downtime-limit`; `predictive@w=λ` runs Kairos with L = {} ms, M = {} ms and its own λ; other policies are shown beside, not bounds.\n",
        page.downtime_limit_ms,
        sweep.max_downtime_ms,
        secs(page.failure_charge_ms),
        page.downtime_limit_ms,
        sweep.max_downtime_ms,
    )?;

    for (w, cells, t) in &per_weight {
        writeln!(md, "## λ = {w}\n")?;
        let mut cols: Vec<String> = sweep.limits.iter().map(|&l| static_name(l)).collect();
        cols.extend(sweep.others.iter().cloned());
        let pred = predictive_name(*w);
        cols.push(pred.clone());
        writeln!(md, "Median cost, s (failures / runs when any run failed); the last columns: predictive's 95 % interval and the workload's best static limit in hindsight.\n")?;
        writeln!(
            md,
            "| workload | {} | predictive interval | best static |",
            cols.join(" | ")
        )?;
        writeln!(md, "|---|{}---|---|", "---|".repeat(cols.len()))?;
        for wl in &sweep.workloads {
            let mut row = format!("| {wl} |");
            for c in &cols {
                let text = match cells.get(&(wl.clone(), c.clone())) {
                    None => "-".to_string(),
                    Some(cell) => {
                        let m = median(cell.charged_ms.iter().copied()).map_or("-".into(), secs);
                        if cell.failures > 0 {
                            format!("{m} ({}/{})", cell.failures, cell.charged_ms.len())
                        } else {
                            m
                        }
                    }
                };
                write!(row, " {text} |")?;
            }
            let pred_interval = cells
                .get(&(wl.clone(), pred.clone()))
                .and_then(|c| median_interval(&c.charged_ms, 7));
            let best = sweep
                .limits
                .iter()
                .filter_map(|&l| {
                    cells
                        .get(&(wl.clone(), static_name(l)))
                        .and_then(|c| median(c.charged_ms.iter().copied()))
                        .map(|m| (l, m))
                })
                .min_by(|a, b| a.1.total_cmp(&b.1));
            write!(
                row,
                " {} | {} |",
                interval_s(pred_interval),
                best.map_or("-".into(), |(l, m)| format!(
                    "{} ({})",
                    static_name(l),
                    secs(m)
                ))
            )?;
            writeln!(md, "{row}")?;
        }
        if let Some(t) = t {
            writeln!(md, "\nSums over the {} complete workloads: predictive {} s; best single limit `{}` {} s; each workload's best limit {} s.\n", t.complete.len(), secs(t.predictive_ms), static_name(t.best_single.0), secs(t.best_single.1), secs(t.per_workload_best_ms))?;
        } else {
            writeln!(md)?;
        }
    }

    simulation_section(&mut md, page, &sweep, &per_weight)?;
    forecast_section(&mut md, page, &sweep)?;

    // Stops above the maximum, by policy (the same under every λ).
    let first = per_weight.first().map(|p| &p.1);
    if let Some(cells) = first {
        let mut by_policy: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
        for ((_, p), c) in cells {
            let e = by_policy.entry(p.as_str()).or_default();
            e.0 += c.above_max;
            e.1 += c.charged_ms.len();
        }
        let above: Vec<String> = by_policy
            .iter()
            .filter(|(_, (a, _))| *a > 0)
            .map(|(p, (a, n))| format!("`{p}` {a} of {n}"))
            .collect();
        writeln!(
            md,
            "## Stops above the maximum\n\n{}\n",
            if above.is_empty() {
                "None: every stop fitted the maximum.".to_string()
            } else {
                format!("Counted as failures above: {}.", above.join(", "))
            }
        )?;
        let runs: Vec<usize> = cells.values().map(|c| c.charged_ms.len()).collect();
        writeln!(
            md,
            "## Coverage\n\n{} cells, {} to {} runs each.",
            runs.len(),
            runs.iter().min().unwrap_or(&0),
            runs.iter().max().unwrap_or(&0)
        )?;
    }
    Ok(md)
}

/// The sign of (predictive − best single static limit), live and in the
/// simulator, over the workloads that are programs: their stored
/// simulated runs (made by the sweep's own code, as the live guest: the
/// same size, the same start, the link and limits of the sweep, a failure
/// charged the same cap).
fn simulation_section(
    md: &mut String,
    page: &SweepPage<'_>,
    sweep: &Sweep,
    per_weight: &[(f64, Cells, Option<Totals>)],
) -> Result<()> {
    // λ (bits) → program → policy → cost (None: did not end within M).
    let mut sim: BTreeMap<u64, BTreeMap<&str, BTreeMap<&str, Option<f64>>>> = BTreeMap::new();
    for run in page.simulated.iter().filter_map(|r| r.summary.as_ref()) {
        sim.entry(run.downtime_weight.to_bits())
            .or_default()
            .entry(run.workload.as_str())
            .or_default()
            .insert(run.policy.as_str(), run.cost_ms);
    }
    let programs: Vec<&str> = sweep
        .workloads
        .iter()
        .map(String::as_str)
        .filter(|w| sim.values().any(|by| by.contains_key(w)))
        .collect();
    let (commits, dates) = sim_stamp(page.simulated);
    writeln!(
        md,
        "## Simulation against live\n\nThe same comparison on the {} workloads that are programs ({}), simulated (1 Gbit/s with ±5 % noise per round, simulator seed 1, the live warm-up, a run that does not end within {} s charged that) by code {} on {}, stored with the live runs, beside the live medians of the same workloads. The sign of predictive − the best single limit should agree.\n",
        programs.len(),
        if programs.is_empty() {
            "none".to_string()
        } else {
            programs.join(", ")
        },
        secs(page.failure_charge_ms),
        if commits.is_empty() { "-".to_string() } else { commits },
        if dates.is_empty() { "-".to_string() } else { dates },
    )?;
    if programs.is_empty() {
        return Ok(());
    }
    writeln!(md, "| λ | simulated: predictive, best single limit, difference | live (same workloads): predictive, best single limit, difference | same sign |")?;
    writeln!(md, "|---|---|---|---|")?;
    for (w, cells, _) in per_weight {
        let Some(by_program) = sim.get(&w.to_bits()) else {
            writeln!(md, "| {w} | no simulated runs stored | - | - |")?;
            continue;
        };
        // Sum per policy over the programs, failures charged the cap; a
        // policy missing for a program is not summed at all.
        let sim_sum = |policy: &str| -> Option<f64> {
            programs
                .iter()
                .map(|prog| {
                    by_program.get(prog)?.get(policy).map(|c| {
                        c.unwrap_or(page.failure_charge_ms)
                            .min(page.failure_charge_ms)
                    })
                })
                .sum()
        };
        let sim_best = sweep
            .limits
            .iter()
            .filter_map(|&l| sim_sum(&static_name(l)).map(|m| (l, m)))
            .min_by(|a, b| a.1.total_cmp(&b.1));
        let sim_pred = sim_sum("predictive");
        let (Some((sim_best, sim_best_ms)), Some(sim_pred_ms)) = (sim_best, sim_pred) else {
            writeln!(md, "| {w} | a policy has no simulated run | - | - |")?;
            continue;
        };
        // Live, over the same workloads (medians, failures charged).
        let med = |wl: &str, p: &str| {
            cells
                .get(&(wl.to_string(), p.to_string()))
                .and_then(|c| median(c.charged_ms.iter().copied()))
        };
        let live_sum = |p: &str| -> Option<f64> { programs.iter().map(|prog| med(prog, p)).sum() };
        let live_pred = live_sum(&predictive_name(*w));
        let live_best = sweep
            .limits
            .iter()
            .filter_map(|&l| live_sum(&static_name(l)).map(|m| (l, m)))
            .min_by(|a, b| a.1.total_cmp(&b.1));
        let sim_diff = sim_pred_ms - sim_best_ms;
        let (live_text, agree) = match (live_pred, live_best) {
            (Some(p), Some((l, m))) => (
                format!(
                    "{} s, `{}` {} s, {:+.1} s",
                    secs(p),
                    static_name(l),
                    secs(m),
                    (p - m) / 1000.0
                ),
                agreement(p - m, sim_diff),
            ),
            _ => ("a cell has no run yet".to_string(), "-"),
        };
        writeln!(
            md,
            "| {w} | {} s, `{}` {} s, {:+.1} s | {live_text} | {agree} |",
            secs(sim_pred_ms),
            static_name(sim_best),
            secs(sim_best_ms),
            sim_diff / 1000.0
        )?;
    }
    writeln!(md)?;
    Ok(())
}

/// Whether the live and simulated differences (predictive − the best
/// single limit) have the same sign; a difference under a millisecond is
/// neither sign, and agrees only with another such.
fn agreement(live_ms: f64, sim_ms: f64) -> &'static str {
    let sign = |d: f64| {
        if d.abs() < 1.0 {
            0
        } else if d < 0.0 {
            -1
        } else {
            1
        }
    };
    if sign(live_ms) == sign(sim_ms) {
        "yes"
    } else {
        "**no**"
    }
}

/// Forecast errors of `predictive` along its own runs' traces, per λ: the
/// steady rounds, the rounds that decided the stop and the rounds that
/// began a new phase (replayed with the run's objective).
fn forecast_section(md: &mut String, page: &SweepPage<'_>, sweep: &Sweep) -> Result<()> {
    writeln!(
        md,
        "## Forecast error where it matters\n\nOne-step error of the pending-bytes forecast (MAPE, %, and the share of actual values inside the forecast's interval) along predictive's own runs, replayed from their traces: in steady phases, in the {DECIDING_ROUNDS} rounds before its stop, and at the first round of each phase change (a change detector on the dirty rate splits the trace).\n"
    )?;
    writeln!(md, "| λ | runs | steady: n, MAPE, in interval | deciding: n, MAPE, in interval | phase change: n, MAPE, in interval |")?;
    writeln!(md, "|---|---|---|---|---|")?;
    let show = |e: ErrorStats| {
        if e.count == 0 {
            "0".to_string()
        } else {
            format!("{}, {:.1}, {:.0} %", e.count, e.mape_pct, e.coverage_pct)
        }
    };
    for &w in &sweep.weights {
        let cfg = PolicyConfig {
            downtime_limit_ms: page.downtime_limit_ms,
            max_downtime_ms: sweep.max_downtime_ms,
            downtime_weight: w,
            ..PolicyConfig::default()
        };
        let name = predictive_name(w);
        let (mut runs, mut steady, mut deciding, mut change) = (
            0,
            ErrorStats::default(),
            ErrorStats::default(),
            ErrorStats::default(),
        );
        for r in page.records.iter().filter(|r| r.result.policy == name) {
            let Some(csv) = &r.trace_csv else { continue };
            let Ok(rows) = read_trace(csv.as_bytes(), std::path::Path::new(&r.name)) else {
                continue;
            };
            let rounds: Vec<_> = rows.iter().map(|row| row.observation).collect();
            let segments = change_segments(&rounds);
            let Ok(q) = forecast_quality(&rounds, &segments, &cfg, 1) else {
                continue;
            };
            runs += 1;
            steady = steady.merged(q.pending_1);
            deciding = deciding.merged(q.pending_1_deciding);
            change = change.merged(q.pending_1_change);
        }
        writeln!(
            md,
            "| {w} | {runs} | {} | {} | {} |",
            show(steady),
            show(deciding),
            show(change)
        )?;
    }
    writeln!(md)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::record::test_support::live_run;

    fn record(
        workload: &str,
        policy: &str,
        status: &str,
        total_ms: f64,
        downtime_ms: f64,
    ) -> RunRecord {
        live_run(
            workload,
            policy,
            status,
            total_ms,
            downtime_ms,
            serde_json::json!({}),
        )
    }

    fn page(records: &[RunRecord]) -> String {
        render(&SweepPage {
            records,
            downtime_limit_ms: 300.0,
            failure_charge_ms: 120_000.0,
            source: "runs.jsonl.gz",
            command: "kairos report sweep",
            repeats: 5,
            planned_cells: None,
            simulated: &[],
        })
        .unwrap()
    }

    #[test]
    fn signs_agree_only_when_both_are_the_same_and_a_tie_is_no_sign() {
        assert_eq!(agreement(-500.0, -2.0), "yes");
        assert_eq!(agreement(500.0, -2.0), "**no**");
        assert_eq!(agreement(0.0, 0.5), "yes");
        assert_eq!(agreement(0.0, 5.0), "**no**");
    }

    #[test]
    fn verdicts_failures_and_stamp() {
        let mut runs = Vec::new();
        for i in 0..5 {
            let jitter = f64::from(i) * 100.0;
            // a: qemu@1000 overshoots the maximum once; qemu@500 is slow.
            runs.push(record(
                "a",
                "qemu@500",
                "completed",
                20_000.0 + jitter,
                400.0,
            ));
            let d = if i == 0 { 1009.0 } else { 900.0 };
            runs.push(record("a", "qemu@1000", "completed", 4000.0 + jitter, d));
            runs.push(record(
                "a",
                "predictive@w=10",
                "completed",
                4100.0 + jitter,
                600.0,
            ));
            // b: qemu@500 best; predictive close to it (inside the noise).
            runs.push(record(
                "b",
                "qemu@500",
                "completed",
                3000.0 + jitter * 4.0,
                300.0,
            ));
            runs.push(record("b", "qemu@1000", "timed-out", 120_000.0, f64::NAN));
            runs.push(record(
                "b",
                "predictive@w=10",
                "completed",
                3100.0 + jitter * 4.0,
                300.0,
            ));
        }
        let md = page(&runs);
        assert!(md.contains("`abc` (30 runs)"), "{md}");
        assert!(md.contains("2026-12-06 to 2026-12-06"), "{md}");
        // The overshoot is a failure, never a success.
        assert!(
            md.contains("Counted as failures above: `qemu@1000` 1 of 10."),
            "{md}"
        );
        // a: qemu@500 20.2 s + 10 × 100 ms; qemu@1000 4.2 s + 10 × 600 ms
        // with its overshoot charged 120 s; predictive 4.2 s + 10 × 300 ms.
        assert!(
            md.contains("| a | 21.2 | 10.3 (1/5) | 7.3 | [7.1, 7.5] | qemu@1000 (10.3) |"),
            "{md}"
        );
        assert!(md.contains("| b | 3.8 | 120.0 (5/5) | 3.9 |"), "{md}");
        // The best single limit is qemu@500 (25.0 s); predictive is cheaper
        // in sum, and than each workload's best limit (a's gap is outside
        // the noise).
        assert!(
            md.contains(
                "predictive 11.2 s against the best single limit `qemu@500` 25.0 s: **cheaper**"
            ),
            "{md}"
        );
        assert!(
            md.contains("each workload's best limit in hindsight 14.1 s: **cheaper**"),
            "{md}"
        );
        // On b alone predictive is 0.1 s dearer, inside the repeats' spread:
        // a tie, not a loss.
        let b: Vec<RunRecord> = runs
            .into_iter()
            .filter(|r| r.result.workload == "b")
            .collect();
        let md = page(&b);
        assert!(
            md.contains("predictive 3.9 s against the best single limit `qemu@500` 3.8 s: **tie**"),
            "{md}"
        );
    }

    #[test]
    fn a_page_needs_static_limits_and_predictive() {
        let runs = vec![record("a", "auto-converge", "completed", 1.0, 1.0)];
        let err = render(&SweepPage {
            records: &runs,
            downtime_limit_ms: 300.0,
            failure_charge_ms: 1.0,
            source: "",
            command: "",
            repeats: 5,
            planned_cells: None,
            simulated: &[],
        })
        .unwrap_err();
        assert!(err.to_string().contains("static limits"), "{err}");
    }
}

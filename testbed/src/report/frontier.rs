//! The frontier page: `predictive` against QEMU's rule at every static
//! limit, on sets of random programs, in simulation (one seeded run per
//! program and policy: the simulator has no noise between repeats).
//!
//! Per set and λ: on how many programs `predictive` is cheaper, as cheap
//! (within 1 ms of cost) or dearer than the program's best static limit in
//! hindsight; the one best static limit for the whole set; the programs
//! where they differ. A run that does not end within the maximum (a stop
//! above it included) has no cost; sums charge it the time cap.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use anyhow::{bail, Result};
use kairos_eval::cell_stats::median;
use kairos_eval::set_regret::{
    set_regret, Goal, ProgramCosts, SetRegret, EASY_ADDED_SHARE_GOAL, EASY_REGRET_SHARE,
    OWN_BEST_RATIO_GOAL, REGRET_SHARE_GOAL,
};
use kairos_eval::sim::SyncModel;
use kairos_eval::summary::{MigrationStatus, RunSummary};

use super::record::{sim_stamp, SimRecord};

/// Costs closer than this are "as cheap", ms.
const SAME_COST_MS: f64 = 1.0;

/// What the page is rendered with besides the runs.
#[derive(Debug, Clone)]
pub struct FrontierPage<'a> {
    /// The stored runs.
    pub records: &'a [SimRecord],
    /// What a run that never ends counts in a sum, ms.
    pub cap_ms: f64,
    /// Where the runs are, as the page names it.
    pub source: &'a str,
    /// The command that makes the runs and the page, as the page names it.
    pub command: &'a str,
    /// Sets that have been used to choose between designs (not unseen).
    pub design_sets: &'a [String],
    /// The generator of `scripts/gen_workloads.py` that drew the sets.
    pub generator: u32,
    /// The highest downtime `predictive` stops at, ms: the maximum less
    /// its headroom. A program only a static limit stopping above it ends
    /// is reported apart as well.
    pub stop_ceiling_ms: f64,
}

/// What a run's regret is measured against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bound {
    /// The exact oracle: the best stop in hindsight of a never-stop run
    /// (the simulator's full-pass model, where stops come only at syncs).
    Oracle,
    /// Each program's best static limit in hindsight: the simulator's
    /// threshold model has no exact oracle (QEMU's rule stops mid-pass,
    /// where a never-stop run never synced), so the bound is the best a
    /// user could have picked for that program, and a rule can go below it.
    OwnBestStatic,
}

impl Bound {
    /// The bound the runs allow; the runs must share one sync model.
    fn of(runs: &[(&str, &RunSummary)]) -> Result<Self> {
        let models: BTreeSet<SyncModel> = runs
            .iter()
            .map(|(_, r)| r.sync_model.unwrap_or(SyncModel::FullPass))
            .collect();
        match models.into_iter().collect::<Vec<_>>().as_slice() {
            [SyncModel::FullPass] => Ok(Self::Oracle),
            [SyncModel::Threshold] => Ok(Self::OwnBestStatic),
            _ => bail!("the runs mix the simulator's sync models (full-pass and threshold); one page takes one"),
        }
    }
}

const KAIROS: &str = "predictive";
const AUTO_CONVERGE: &str = "auto-converge";

fn static_limit_ms(policy: &str) -> Option<u64> {
    policy.strip_prefix("qemu@")?.parse().ok()
}

fn cost_ms(run: &RunSummary) -> Option<f64> {
    run.cost_ms
}

fn fmt_cost(c: Option<f64>) -> String {
    c.map_or("did not end within the maximum".into(), |c| {
        format!("{:.2}", c / 1000.0)
    })
}

fn describe(run: &RunSummary) -> String {
    match (run.status, run.downtime_ms) {
        (MigrationStatus::Completed, Some(d)) => format!(
            "{:.1} s, {d:.0} ms, {} syncs ({})",
            run.total_time_ms / 1000.0,
            run.rounds,
            run.reason
        ),
        _ => format!("{} ({})", run.status, run.reason),
    }
}

/// One λ of one set: program → policy → run.
type Section<'a> = BTreeMap<&'a str, BTreeMap<&'a str, &'a RunSummary>>;

/// What one section found, for the summary table.
struct Found {
    set: String,
    weight: f64,
    ended: usize,
    better: usize,
    worse: usize,
    none: usize,
    worst: Option<f64>,
    fleet_best: String,
    fleet_total_ms: f64,
    mine_total_ms: f64,
    vs_fleet_better: usize,
    vs_fleet_worse: usize,
    /// Regret to the oracle, `None` when no program is counted.
    regret: Option<SetRegret>,
    /// The same without the programs only a stop above the stop ceiling
    /// ends.
    regret_below_ceiling: Option<SetRegret>,
    /// Those programs.
    above_ceiling_only: Vec<String>,
}

fn section(
    md: &mut String,
    set: &str,
    weight: f64,
    by: &Section<'_>,
    cap_ms: f64,
    bound: Bound,
    stop_ceiling_ms: f64,
) -> Result<Found> {
    let statics: Vec<&str> = by
        .values()
        .flat_map(|runs| runs.keys().copied())
        .filter(|p| static_limit_ms(p).is_some())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut statics = statics;
    statics.sort_by_key(|p| static_limit_ms(p));
    if statics.is_empty() {
        bail!("set {set}, λ = {weight}: no static limits (qemu@MS) among the runs");
    }
    let charged =
        |r: Option<&&RunSummary>| r.and_then(|r| cost_ms(r)).map_or(cap_ms, |c| c.min(cap_ms));
    let total = |p: &str| -> f64 { by.values().map(|runs| charged(runs.get(p))).sum() };
    let fleet_best = statics
        .iter()
        .copied()
        .min_by(|a, b| total(a).total_cmp(&total(b)))
        .unwrap_or_default();
    let fleet_total_ms = total(fleet_best);
    struct Row<'a> {
        name: &'a str,
        mine: Option<f64>,
        best: &'a str,
        best_cost: Option<f64>,
        runs: &'a BTreeMap<&'a str, &'a RunSummary>,
    }
    let mut rows = Vec::new();
    for (name, runs) in by {
        let Some(mine_run) = runs.get(KAIROS) else {
            bail!("set {set}, λ = {weight}: program {name} has no predictive run");
        };
        // The cheapest static limit that ended; ties to the lower limit.
        let best = statics
            .iter()
            .copied()
            .filter_map(|p| runs.get(p).and_then(|r| cost_ms(r)).map(|c| (p, c)))
            .min_by(|a, b| a.1.total_cmp(&b.1));
        rows.push(Row {
            name,
            mine: cost_ms(mine_run),
            best: best.map_or("none", |b| b.0),
            best_cost: best.map(|b| b.1),
            runs,
        });
    }
    let ended: Vec<&Row> = rows.iter().filter(|r| r.best_cost.is_some()).collect();
    let none_ended: Vec<&Row> = rows.iter().filter(|r| r.best_cost.is_none()).collect();
    let mine_or_inf = |r: &Row| r.mine.unwrap_or(f64::INFINITY);
    let better: Vec<&Row> = ended
        .iter()
        .copied()
        .filter(|r| mine_or_inf(r) < r.best_cost.unwrap_or(0.0) - SAME_COST_MS)
        .collect();
    let worse: Vec<&Row> = ended
        .iter()
        .copied()
        .filter(|r| mine_or_inf(r) > r.best_cost.unwrap_or(0.0) + SAME_COST_MS)
        .collect();
    let ratios: Vec<f64> = ended
        .iter()
        // A run that did not end counts at the cap, as in every sum.
        .filter_map(|r| Some(r.mine.map_or(cap_ms, |c| c.min(cap_ms)) / r.best_cost?))
        .collect();
    let fleet_cost = |r: &Row| charged(r.runs.get(fleet_best));
    let mine_charged = |r: &Row| r.mine.map_or(cap_ms, |c| c.min(cap_ms));
    let vs_fleet_better = rows
        .iter()
        .filter(|r| mine_charged(r) < fleet_cost(r) - SAME_COST_MS)
        .count();
    let vs_fleet_worse = rows
        .iter()
        .filter(|r| mine_charged(r) > fleet_cost(r) + SAME_COST_MS)
        .count();
    let mine_total_ms: f64 = rows.iter().map(mine_charged).sum();
    let worst = ratios
        .iter()
        .copied()
        .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))));

    let programs: Vec<ProgramCosts> = rows
        .iter()
        .map(|r| ProgramCosts {
            rule_ms: r.mine,
            statics_ms: statics
                .iter()
                .map(|p| r.runs.get(p).and_then(|run| cost_ms(run)))
                .collect(),
            oracle_ms: match bound {
                Bound::Oracle => r
                    .runs
                    .values()
                    .find_map(|run| run.oracle.as_ref().map(|o| o.cost_ms)),
                Bound::OwnBestStatic => r.best_cost,
            },
        })
        .collect();
    // The regret's best single limit, chosen over the programs it counts.
    let regret = set_regret(&programs, cap_ms).map(|(r, i)| (r, statics[i]));
    // Programs where every static limit that ends stops above the ceiling
    // `predictive` keeps: it never takes such a stop, by design.
    let above_ceiling_only: Vec<bool> = rows
        .iter()
        .map(|r| {
            r.best_cost.is_some()
                && statics
                    .iter()
                    .filter_map(|p| r.runs.get(p))
                    .filter(|run| cost_ms(run).is_some())
                    .all(|run| run.downtime_ms.is_some_and(|d| d > stop_ceiling_ms))
        })
        .collect();
    let below_ceiling: Vec<ProgramCosts> = programs
        .iter()
        .zip(&above_ceiling_only)
        .filter(|(_, &above)| !above)
        .map(|(p, _)| p.clone())
        .collect();
    let regret_below_ceiling = set_regret(&below_ceiling, cap_ms).map(|(r, _)| r);
    let above_ceiling_only: Vec<String> = rows
        .iter()
        .zip(&above_ceiling_only)
        .filter(|(_, &above)| above)
        .map(|(r, _)| r.name.to_string())
        .collect();

    writeln!(md, "### λ = {weight}\n")?;
    writeln!(md, "| | programs |\n|---|---|")?;
    writeln!(
        md,
        "| some static limit ends within the maximum | {} |",
        ended.len()
    )?;
    writeln!(
        md,
        "| `predictive` cheaper than the best of them (each program's own, in hindsight) | {} |",
        better.len()
    )?;
    writeln!(
        md,
        "| `predictive` as cheap (within 1 ms of cost) | {} |",
        ended.len() - better.len() - worse.len()
    )?;
    writeln!(md, "| `predictive` dearer | {} |", worse.len())?;
    if let (Some(m), Some(w)) = (median(ratios.iter().copied()), worst) {
        writeln!(
            md,
            "| `predictive`'s cost over that best (a run that did not end at the cap): median / worst | {m:.3} / {w:.3} |"
        )?;
    }
    writeln!(
        md,
        "| no static limit ends within the maximum | {} |\n",
        none_ended.len()
    )?;
    writeln!(
        md,
        "The one static limit that costs least over all {} programs (a run that never ends counted at the {:.0} s cap) is `{fleet_best}`: {:.1} s in all, against `predictive`'s {:.1} s; `predictive` is cheaper than it on {vs_fleet_better} programs and dearer on {vs_fleet_worse}.\n",
        rows.len(),
        cap_ms / 1000.0,
        fleet_total_ms / 1000.0,
        mine_total_ms / 1000.0
    )?;
    if let Some((r, single)) = &regret {
        writeln!(
            md,
            "{}, over the {} programs some static limit ends{}: `predictive` {:.1} s, `{single}` {:.1} s ({:.2}×; goal ≤ {REGRET_SHARE_GOAL}×){}.\n",
            match bound {
                Bound::Oracle => "Regret to the exact oracle (cost over the best stop in hindsight of a never-stop run of the same program)",
                Bound::OwnBestStatic => "Regret to each program's best static limit (cost over that limit's, in hindsight; below zero where `predictive` is cheaper)",
            },
            r.counted,
            if r.no_oracle > 0 {
                format!(" and that have an oracle ({} have none)", r.no_oracle)
            } else {
                String::new()
            },
            r.rule_regret_ms / 1000.0,
            r.best_single_regret_ms / 1000.0,
            r.regret_share(),
            if r.rule_failures > 0 {
                format!("; `predictive` did not end on {} of them (charged the cap)", r.rule_failures)
            } else {
                String::new()
            }
        )?;
    }
    let listed: Vec<&Row> = better
        .iter()
        .chain(&worse)
        .chain(&none_ended)
        .copied()
        .collect();
    if !listed.is_empty() {
        writeln!(
            md,
            "Programs where `predictive` and the best static limit differ, or where none ends:\n"
        )?;
        writeln!(md, "| program | `predictive` cost s | its stop | best static limit | its cost s | its stop | auto-converge cost s (app loss %) |")?;
        writeln!(md, "|---|---|---|---|---|---|---|")?;
        for r in listed {
            let ac = r.runs.get(AUTO_CONVERGE);
            let best_stop = r
                .runs
                .get(r.best)
                .filter(|_| r.best_cost.is_some())
                .map_or("-".to_string(), |run| describe(run));
            writeln!(
                md,
                "| {} | {} | {} | {} | {} | {best_stop} | {} ({}) |",
                r.name,
                fmt_cost(r.mine),
                r.runs
                    .get(KAIROS)
                    .map_or("-".to_string(), |run| describe(run)),
                r.best,
                fmt_cost(r.best_cost),
                ac.map_or("-".to_string(), |run| fmt_cost(cost_ms(run))),
                ac.map_or("-".to_string(), |run| format!("{:.1}", run.app_loss_pct)),
            )?;
        }
        writeln!(md)?;
    }
    Ok(Found {
        set: set.to_string(),
        weight,
        ended: ended.len(),
        better: better.len(),
        worse: worse.len(),
        none: none_ended.len(),
        worst,
        fleet_best: fleet_best.to_string(),
        fleet_total_ms,
        mine_total_ms,
        vs_fleet_better,
        vs_fleet_worse,
        regret: regret.map(|(r, _)| r),
        regret_below_ceiling,
        above_ceiling_only,
    })
}

/// Render the page.
pub fn render(page: &FrontierPage<'_>) -> Result<String> {
    let runs: Vec<(&str, &RunSummary)> = page
        .records
        .iter()
        .filter_map(|r| Some((r.set.as_str(), r.summary.as_ref()?)))
        .collect();
    if runs.is_empty() {
        bail!("no runs");
    }
    let bound = Bound::of(&runs)?;
    // set → weight (as bits, ordered) → program → policy → run.
    let mut sets: BTreeMap<&str, BTreeMap<u64, Section<'_>>> = BTreeMap::new();
    for (set, run) in runs.iter().copied() {
        sets.entry(set)
            .or_default()
            .entry(run.downtime_weight.to_bits())
            .or_default()
            .entry(run.workload.as_str())
            .or_default()
            .insert(run.policy.as_str(), run);
    }
    let (commits, dates) = sim_stamp(page.records);
    let programs_per_set: BTreeSet<usize> = sets
        .values()
        .flat_map(|by_w| by_w.values().map(BTreeMap::len))
        .collect();
    // Seeds in numeric order (7 before 11), other names after, by name.
    let mut set_names: Vec<&str> = sets.keys().copied().collect();
    set_names.sort_by_key(|s| (s.parse::<u64>().map_or(u64::MAX, |n| n), s.to_string()));
    let mut md = String::new();
    writeln!(
        md,
        "# Against every static limit, on programs nobody tuned for\n"
    )?;
    writeln!(
        md,
        "**Code:** {}. **Runs:** {} simulated runs made {}, stored in `{}`; this page is rendered from them by `kairos report frontier` (`{}` makes the runs and the page). Simulation only.\n",
        commits,
        runs.len(),
        dates,
        page.source,
        page.command
    )?;
    let design: Vec<&str> = set_names
        .iter()
        .copied()
        .filter(|s| page.design_sets.iter().any(|d| d == s))
        .collect();
    let held_out: Vec<&str> = set_names
        .iter()
        .copied()
        .filter(|s| !design.contains(s))
        .collect();
    let mut body = String::new();
    let mut found = Vec::new();
    for set in &set_names {
        let by_w = &sets[set];
        writeln!(body, "## Seed {set}\n")?;
        for (bits, by) in by_w {
            found.push(section(
                &mut body,
                set,
                f64::from_bits(*bits),
                by,
                page.cap_ms,
                bound,
                page.stop_ceiling_ms,
            )?);
        }
    }
    let weights: BTreeSet<u64> = found.iter().map(|f| f.weight.to_bits()).collect();
    let merged_of = |sets: &[&str], bits: u64, pick: fn(&Found) -> Option<SetRegret>| {
        let parts: Vec<SetRegret> = found
            .iter()
            .filter(|f| f.weight.to_bits() == bits && sets.contains(&f.set.as_str()))
            .filter_map(pick)
            .collect();
        (!parts.is_empty()).then(|| SetRegret::merged(&parts))
    };
    let merged = |sets: &[&str], bits: u64| merged_of(sets, bits, |f| f.regret);
    let merged_below_ceiling =
        |sets: &[&str], bits: u64| merged_of(sets, bits, |f| f.regret_below_ceiling);
    // Programs only a stop above the ceiling ends, per group of sets (a
    // program counted once over the λs).
    let above_ceiling = |sets: &[&str]| -> BTreeSet<&str> {
        found
            .iter()
            .filter(|f| sets.contains(&f.set.as_str()))
            .flat_map(|f| f.above_ceiling_only.iter().map(String::as_str))
            .collect()
    };
    // The verdict first: the goals on the held-out sets (or on all sets
    // when none is held out), λ by λ, misses named.
    let judged: &[&str] = if held_out.is_empty() {
        &set_names
    } else {
        &held_out
    };
    let misses_of = |merged: &dyn Fn(&[&str], u64) -> Option<SetRegret>| {
        let mut misses = Vec::new();
        for &bits in &weights {
            if let Some(r) = merged(judged, bits) {
                for (goal, met) in r.goals() {
                    if !met {
                        misses.push(format!(
                            "at λ = {} {}",
                            f64::from_bits(bits),
                            goal_miss(goal, &r)
                        ));
                    }
                }
            }
        }
        misses
    };
    let misses = misses_of(&merged);
    let judged_name = if held_out.is_empty() {
        format!("all sets (seeds {}; none held out)", set_names.join(", "))
    } else {
        format!("the held-out sets (seeds {})", held_out.join(", "))
    };
    if misses.is_empty() {
        writeln!(
            md,
            "**Verdict.** On {judged_name}, `predictive` meets every goal at every λ (table at the end).\n"
        )?;
    } else {
        writeln!(
            md,
            "**Verdict.** On {judged_name}, `predictive` misses {} goal{}: {}. The goals and every figure are in the table at the end.\n",
            misses.len(),
            if misses.len() == 1 { "" } else { "s" },
            misses.join("; ")
        )?;
        let judged_above = above_ceiling(judged);
        if !judged_above.is_empty() {
            let misses_below = misses_of(&merged_below_ceiling);
            writeln!(
            md,
            "**Apart from the stops above {:.0} ms.** `predictive` never stops above the maximum less its headroom ({:.0} ms), so that the stop's own bandwidth noise cannot carry it above the maximum. On {} program{} of these sets ({}) every static limit that ends stops above that, and `predictive` does not end. Without {}, `predictive` {}.\n",
            page.stop_ceiling_ms,
            page.stop_ceiling_ms,
            judged_above.len(),
            if judged_above.len() == 1 { "" } else { "s" },
            judged_above.iter().copied().collect::<Vec<_>>().join(", "),
            if judged_above.len() == 1 { "it" } else { "them" },
            if misses_below.is_empty() {
                "meets every goal at every λ".to_string()
            } else {
                format!(
                    "misses {} goal{}: {}",
                    misses_below.len(),
                    if misses_below.len() == 1 { "" } else { "s" },
                    misses_below.join("; ")
                )
            }
        )?;
        }
    }
    writeln!(
        md,
        "**What it asks.** A user can always pick another `downtime-limit`; `predictive` is worth having only where it is at least as cheap as every value they could have picked, on guests it was never tuned on. Sets of {} random workload programs (`scripts/gen_workloads.py --generator {}`, seeds {}; {}; drawn from fixed distributions, never from the catalogue) are simulated under `predictive` and under QEMU's rule at every static limit from 100 to 1000 ms in steps of 100 (1000 ms is the maximum M, so each is a setting the user could have chosen), at L = 300 ms, a 1 Gbit/s link {}, simulator seed 1. Cost = T + λ·max(0, D − L); a run that does not end within M — a stop above M included — counts as failed. *Best static limit* is each program's cheapest static limit, found in hindsight — a bound no single setting reaches; *the best single limit* is the one that costs least over a whole set, also in hindsight (a run that never ends counted at the {:.0} s cap). *Regret* is a run's cost over {} Auto-converge (at L) is shown beside: it changes the guest (its app loss), so it is not a static limit.\n",
        programs_per_set.iter().map(ToString::to_string).collect::<Vec<_>>().join("/"),
        page.generator,
        set_names.join(", "),
        generator_note(page.generator),
        match bound {
            Bound::Oracle => "with ±5 % noise per round, QEMU syncing after each whole pass (`kairos sim --sync full-pass`)",
            Bound::OwnBestStatic => "with ±5 % noise per 100 ms window, QEMU syncing as QEMU 10 does once the rest of a pass is below bandwidth × the limit in force, so its rule stops mid-pass (`kairos sim --sync threshold`)",
        },
        page.cap_ms / 1000.0,
        match bound {
            Bound::Oracle => "the exact oracle's: the best stop in hindsight of a never-stop run of the same program.",
            Bound::OwnBestStatic => "the program's best static limit: with syncs mid-pass a never-stop run's syncs are not the only places a rule can stop, so there is no exact oracle; the best static limit in hindsight is the bound, and `predictive` can go below it.",
        }
    )?;
    if !design.is_empty() {
        writeln!(
            md,
            "**Not unseen:** the sets of seeds {} have been used to choose between designs, so they are not guests the policy was never tuned on.{}\n",
            design.join(", "),
            if held_out.is_empty() {
                String::new()
            } else {
                format!(
                    " The held-out sets (seeds {}) were drawn and run once, with the code above, after the rule was frozen; no variant was tried on them (`testbed/workloads-held-out/SEEDS.toml`).",
                    held_out.join(", ")
                )
            }
        )?;
    }
    md.push_str(&body);
    writeln!(md, "## Summary\n")?;
    writeln!(md, "| seed | λ | some static limit ends | `predictive` cheaper than each program's best | as cheap | dearer | worst × | none ends | best single limit: total s | `predictive` total s | cheaper / dearer than it | regret s: `predictive` / best single |")?;
    writeln!(md, "|---|---|---|---|---|---|---|---|---|---|---|---|")?;
    for f in &found {
        writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} | `{}`: {:.1} | {:.1} | {} / {} | {} |",
            f.set,
            f.weight,
            f.ended,
            f.better,
            f.ended - f.better - f.worse,
            f.worse,
            f.worst.map_or("-".into(), |w| format!("{w:.2}")),
            f.none,
            f.fleet_best,
            f.fleet_total_ms / 1000.0,
            f.mine_total_ms / 1000.0,
            f.vs_fleet_better,
            f.vs_fleet_worse,
            f.regret.map_or("-".into(), |r| format!(
                "{:.1} / {:.1}",
                r.rule_regret_ms / 1000.0,
                r.best_single_regret_ms / 1000.0
            )),
        )?;
    }
    writeln!(md, "\n## Goals\n")?;
    writeln!(
        md,
        "Over the programs some static limit ends within the maximum, sets taken together (each set's best single limit chosen for that set). Goals: summed regret ≤ {REGRET_SHARE_GOAL}× the best single limit's; summed cost ≤ the best single limit's; on programs where that limit's regret is under {:.0} % of its cost, ≤ {:.0} % added on average; cost ≤ {OWN_BEST_RATIO_GOAL}× each program's own best static limit.\n",
        EASY_REGRET_SHARE * 100.0,
        EASY_ADDED_SHARE_GOAL * 100.0
    )?;
    writeln!(md, "| sets | λ | programs | regret s: `predictive` / best single | × | cost s: `predictive` / best single | easy programs: mean added | worst × own best | goals met |")?;
    writeln!(md, "|---|---|---|---|---|---|---|---|---|")?;
    let groups: Vec<(&str, &[&str])> = [
        ("held out", held_out.as_slice()),
        ("design", design.as_slice()),
    ]
    .into_iter()
    .filter(|(_, sets)| !sets.is_empty())
    .collect();
    let mut rows: Vec<(String, &[&str], bool)> = Vec::new();
    for &(name, sets) in &groups {
        rows.push((format!("{name} ({})", sets.join(", ")), sets, false));
        if !above_ceiling(sets).is_empty() {
            rows.push((
                format!(
                    "{name}, without the programs only a stop above {:.0} ms ends",
                    page.stop_ceiling_ms
                ),
                sets,
                true,
            ));
        }
    }
    for (name, sets, below_ceiling) in rows {
        for &bits in &weights {
            let r = if below_ceiling {
                merged_below_ceiling(sets, bits)
            } else {
                merged(sets, bits)
            };
            let Some(r) = r else {
                continue;
            };
            let met: Vec<&str> = r
                .goals()
                .iter()
                .map(|(_, met)| if *met { "yes" } else { "**no**" })
                .collect();
            writeln!(
                md,
                "| {name} | {} | {} | {:.1} / {:.1} | {:.2} | {:.1} / {:.1} | {:+.2} % of {} | {:.2} | {} |",
                f64::from_bits(bits),
                r.counted,
                r.rule_regret_ms / 1000.0,
                r.best_single_regret_ms / 1000.0,
                r.regret_share(),
                r.rule_cost_ms / 1000.0,
                r.best_single_cost_ms / 1000.0,
                r.easy_added_share() * 100.0,
                r.easy,
                r.worst_own_ratio,
                met.join(" / ")
            )?;
        }
    }
    writeln!(
        md,
        "\n(goals met, in order: regret share / cost not above / easy programs / own best.)"
    )?;
    Ok(md)
}

/// What a missed goal was, in words, with its figure.
fn goal_miss(goal: Goal, r: &SetRegret) -> String {
    match goal {
        Goal::RegretShare => format!(
            "its summed regret is {:.2}× the best single limit's (goal ≤ {REGRET_SHARE_GOAL}×)",
            r.regret_share()
        ),
        Goal::CostNotAbove => format!(
            "its summed cost is above the best single limit's ({:.1} s against {:.1} s)",
            r.rule_cost_ms / 1000.0,
            r.best_single_cost_ms / 1000.0
        ),
        Goal::EasyAdded => format!(
            "it adds {:.2} % on average where the best single limit is nearly optimal (goal ≤ {:.0} %)",
            r.easy_added_share() * 100.0,
            EASY_ADDED_SHARE_GOAL * 100.0
        ),
        Goal::OwnBestRatio => format!(
            "its worst cost is {:.2}× a program's own best static limit (goal ≤ {OWN_BEST_RATIO_GOAL}×)",
            r.worst_own_ratio
        ),
    }
}

/// What a generator of `scripts/gen_workloads.py` draws.
fn generator_note(generator: u32) -> &'static str {
    match generator {
        1 => "512 MiB-4 GiB guests, one to four phases of writes, CPU or idle, working sets of 4 MiB to half the RAM written at 2-800 MiB/s, uniform, Zipf or sequential",
        2 => "512 MiB-4 GiB guests, one to four phases of writes, CPU or idle, working sets of 4 MiB to half the RAM written at 2-800 MiB/s, uniform, Zipf, sequential or hot-cold, some growing or shrinking within a phase, and for some programs a link that competing traffic narrows part of the time",
        _ => "512 MiB-4 GiB guests, one to four phases of writes, CPU or idle, working sets of 4 MiB to half the RAM written at 2-800 MiB/s, uniform, Zipf, sequential or hot-cold, some growing or shrinking within a phase, half the write phases touching aligned spans of 8 KiB-2 MiB per write, and for some programs a link that competing traffic narrows part of the time",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::record::RECORD_FORMAT;

    /// A threshold-model run of `workload` under `policy` at λ = 10.
    fn run(workload: &str, policy: &str, downtime_ms: Option<f64>) -> SimRecord {
        let cost_ms = downtime_ms.map(|d| 5_000.0 + 10.0 * (d - 300.0).max(0.0));
        let summary: RunSummary = serde_json::from_value(serde_json::json!({
            "workload": workload, "policy": policy,
            "status": if downtime_ms.is_some() { "completed" } else { "aborted" },
            "reason": "below-threshold", "rounds": 5, "total_time_ms": 5_000.0,
            "downtime_ms": downtime_ms, "transferred_bytes": 1u64,
            "escalations": 0, "app_loss_pct": 0.0, "downtime_weight": 10.0,
            "cost_ms": cost_ms, "within_max": null, "oracle": null, "regret": null,
            "sync_model": "threshold",
        }))
        .unwrap();
        SimRecord {
            format: RECORD_FORMAT,
            set: "9".into(),
            code_commit: "abc".into(),
            made_unix_s: 0,
            summary: Some(summary),
            quality: None,
        }
    }

    fn page(records: &[SimRecord]) -> String {
        render(&FrontierPage {
            records,
            cap_ms: 600_000.0,
            source: "x",
            command: "y",
            design_sets: &[],
            generator: 2,
            stop_ceiling_ms: 900.0,
        })
        .unwrap()
    }

    #[test]
    fn a_program_only_a_stop_above_the_ceiling_ends_is_also_reported_apart() {
        let mut records = vec![
            // Easy: every limit ends, `predictive` as the best.
            run("easy", "predictive", Some(280.0)),
            run("easy", "qemu@300", Some(280.0)),
            run("easy", "qemu@1000", Some(600.0)),
            // Only the 1000 ms limit ends, at 950 ms: above the ceiling.
            run("gamble", "predictive", None),
            run("gamble", "qemu@300", None),
            run("gamble", "qemu@1000", Some(950.0)),
        ];
        let md = page(&records);
        assert!(
            md.contains("Regret to each program's best static limit"),
            "{md}"
        );
        assert!(
            md.contains("**Apart from the stops above 900 ms.**"),
            "{md}"
        );
        assert!(md.contains("On 1 program of these sets (gamble)"), "{md}");
        assert!(
            md.contains("Without it, `predictive` meets every goal"),
            "{md}"
        );
        assert!(
            md.contains(
                "| held out, without the programs only a stop above 900 ms ends | 10 | 1 |"
            ),
            "{md}"
        );
        // Ending at 850 ms is within the ceiling: nothing is set apart.
        records[5] = run("gamble", "qemu@1000", Some(850.0));
        let md = page(&records);
        assert!(!md.contains("Apart from the stops"), "{md}");
        assert!(!md.contains("without the programs only"), "{md}");
    }
}

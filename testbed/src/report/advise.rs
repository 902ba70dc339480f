//! docs/advise.md: `kairos advise` judged in simulation (one table per
//! wait weight ω, from the stored `kairos advise --workload … --json`
//! evaluations) and live (`kairos starts` runs, when stored), each
//! workload checked against the goals of the start-time advice.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use anyhow::{bail, Result};
use kairos_eval::advise::evaluate::{CostStats, WorkloadEval};
use kairos_policy_core::cost::Objective;
use serde::{Deserialize, Serialize};

use super::record::{stamp, RunRecord, Versioned};
use super::starts::{start_cost_ms, Spread, StartsTable};
use crate::live::run::LiveResult;
use crate::live::start::StartRule;
use kairos_eval::cell_stats::{bootstrap_interval, Interval, Verdict as CellVerdict};

/// How the page explains the advice (behaviour, use, judgement).
const PREAMBLE: &str = include_str!("advise_preamble.md");
/// What the tables do not show, and what is not done (no figures: they
/// would go stale when the records change).
const LIMITS: &str = include_str!("advise_limits.md");

/// The advised median must be at most this share of random starts'.
pub const MEDIAN_SHARE: f64 = 0.7;
/// The advised 90th percentile must be at most this share of theirs.
pub const P90_SHARE: f64 = 0.5;
/// On acyclic workloads the advice may cost at most this much more than
/// starting now.
pub const ACYCLIC_SLACK: f64 = 1.05;
/// A program whose cycle is longer than this is not one advise looks for,
/// s (the advice's longest cycle).
pub const MAX_CYCLE_S: f64 = 120.0;

/// One workload's simulated judgement at one ω, as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AdviseSimRecord {
    /// Record format of the writer.
    pub format: u32,
    /// ω the advice and every cost ran with.
    pub wait_weight: f64,
    /// The workload was held out from the advice's design.
    pub held_out: bool,
    /// The commit of the code that made it.
    pub code_commit: String,
    /// When it was packed, seconds since the Unix epoch.
    pub made_unix_s: u64,
    /// The judgement.
    pub eval: WorkloadEval,
}

impl Versioned for AdviseSimRecord {
    fn format(&self) -> u32 {
        self.format
    }
}

/// A goal and whether it was met.
struct Goal {
    name: &'static str,
    met: bool,
    /// Missed, and even the best start in hindsight misses it: the
    /// share that start reaches.
    out_of_reach: Option<f64>,
    /// Live: the runs' interval of the ratio holds the limit (neither met
    /// nor missed).
    undecided: Option<Interval>,
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

/// Seed of the live goals' bootstrap (fixed: the page re-renders the same).
const BOOTSTRAP_SEED: u64 = 27;

/// The `q` quantile of `values` by nearest rank, a run that did not
/// complete (∞) counted as the worst, as the tables count it.
fn rank_quantile(values: &[f64], q: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(((q * (v.len().max(1) - 1) as f64).round() as usize).min(v.len().saturating_sub(1)))
        .copied()
        .unwrap_or(f64::NAN)
}

/// a / b with ∞ read as worse than any cost: ∞/∞ = 1, ∞/x large, x/∞ = 0
/// (the bootstrap keeps finite statistics only).
fn cost_ratio(a: f64, b: f64) -> f64 {
    const WORST: f64 = 1e9;
    match (a.is_finite(), b.is_finite()) {
        (true, true) => a / b,
        (false, false) => 1.0,
        (false, true) => WORST,
        (true, false) => 0.0,
    }
}

/// A live goal "the `q` quantile of `advised` ≤ `limit` × that of
/// `random`", read from the bootstrap interval of the ratio.
fn ratio_goal(name: &'static str, advised: &[f64], random: &[f64], q: f64, limit: f64) -> Goal {
    let interval = bootstrap_interval(
        &[advised, random],
        |g| cost_ratio(rank_quantile(&g[0], q), rank_quantile(&g[1], q)),
        BOOTSTRAP_SEED,
    );
    match interval {
        Some(i) if i.hi <= limit => Goal {
            name,
            met: true,
            out_of_reach: None,
            undecided: None,
        },
        Some(i) if i.lo > limit => Goal {
            name,
            met: false,
            out_of_reach: None,
            undecided: None,
        },
        Some(i) => Goal {
            name,
            met: false,
            out_of_reach: None,
            undecided: Some(i),
        },
        None => Goal {
            name,
            met: false,
            out_of_reach: None,
            undecided: None,
        },
    }
}

/// A live goal "the advised median is no dearer than `other`'s": met
/// unless the interval of the difference lies wholly above 0.
fn not_dearer_goal(name: &'static str, advised: &[f64], other: &[f64]) -> Goal {
    let interval = bootstrap_interval(
        &[advised, other],
        |g| {
            let (a, b) = (rank_quantile(&g[0], 0.5), rank_quantile(&g[1], 0.5));
            if a.is_finite() && b.is_finite() {
                a - b
            } else {
                // ∞ against ∞ ties; ∞ against a cost loses or wins by a
                // finite stand-in.
                cost_ratio(a, b).ln()
            }
        },
        BOOTSTRAP_SEED,
    );
    Goal {
        name,
        met: interval.is_some_and(|i| CellVerdict::of(i) != CellVerdict::Dearer),
        out_of_reach: None,
        undecided: None,
    }
}

/// The cyclic goals from medians and 90th percentiles (None: infinite);
/// `best`, the best start in hindsight where known, says which misses no
/// start could have avoided.
fn cyclic_goals(now: Spread, advised: Spread, alma: Spread, best: Option<Spread>) -> Vec<Goal> {
    let share = |of: Spread, pick: fn(Spread) -> Option<f64>| ratio(pick(of), pick(now));
    let goal = |name, pick: fn(Spread) -> Option<f64>, limit: f64| {
        let met = share(advised, pick).is_some_and(|r| r <= limit);
        let reach = best.and_then(|b| share(b, pick));
        Goal {
            name,
            met,
            out_of_reach: reach.filter(|r| !met && *r > limit),
            undecided: None,
        }
    };
    vec![
        goal("median ≤ 0.7×", |s| s.median, MEDIAN_SHARE),
        goal("p90 ≤ 0.5×", |s| s.p90, P90_SHARE),
        Goal {
            name: "≤ ALMA",
            // To the millisecond, the resolution the advice compares
            // costs at: a difference below it is a tie.
            met: advised
                .median
                .is_some_and(|a| alma.median.is_none_or(|b| a.round() <= b.round())),
            out_of_reach: None,
            undecided: None,
        },
    ]
}

fn marks(goals: &[Goal]) -> String {
    goals
        .iter()
        .map(|g| match (g.met, g.out_of_reach, g.undecided) {
            (true, _, _) => format!("{} yes", g.name),
            (false, _, Some(i)) => {
                format!("{} undecided (interval {:.2}–{:.2}×)", g.name, i.lo, i.hi)
            }
            (false, Some(r), None) => {
                format!("{} **no** (out of reach: best start {r:.2}×)", g.name)
            }
            (false, None, None) => format!("{} **no**", g.name),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn secs(ms: Option<f64>) -> String {
    ms.map_or("∞".to_string(), |m| format!("{:.1}", m / 1000.0))
}

fn spread(c: &CostStats) -> Spread {
    Spread {
        median: c.median_ms,
        p90: c.p90_ms,
    }
}

fn pair(s: Spread) -> String {
    format!("{} / {}", secs(s.median), secs(s.p90))
}

fn is_cyclic(cycle_s: Option<f64>) -> bool {
    cycle_s.is_some_and(|c| c <= MAX_CYCLE_S)
}

/// One ω's table; returns (workloads meeting every goal, workloads).
fn sim_section(out: &mut String, wait_weight: f64, records: &[&AdviseSimRecord]) -> (usize, usize) {
    let _ = writeln!(out, "### ω = {wait_weight}\n");
    out.push_str(
        "| workload | cycle s | now: median / p90 s | advised | first advice only | ALMA-style | best start in hindsight | waited (moved by re-advice) | goals |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    let mut met = 0;
    for r in records {
        let e = &r.eval;
        let goals = if is_cyclic(e.cycle_s) {
            cyclic_goals(
                spread(&e.now),
                spread(&e.advised),
                spread(&e.alma),
                e.best.as_ref().map(spread),
            )
        } else {
            let worst = e
                .trials
                .iter()
                .map(|t| match (t.advised_cost_ms, t.now_cost_ms) {
                    (_, None) => 1.0,
                    (None, Some(_)) => f64::INFINITY,
                    (Some(a), Some(n)) => a / n,
                })
                .fold(1.0, f64::max);
            vec![Goal {
                name: "never > 1.05× now",
                met: worst <= ACYCLIC_SLACK,
                out_of_reach: None,
                undecided: None,
            }]
        };
        met += usize::from(goals.iter().all(|g| g.met));
        let waited = e.trials.iter().filter(|t| t.advised_wait_s > 0.0).count();
        let moved = e
            .trials
            .iter()
            .filter(|t| (t.advised_wait_s - t.first_wait_s).abs() > 1.0)
            .count();
        let _ = writeln!(
            out,
            "| {}{} | {} | {} | {} | {} | {} | {} | {waited}/{} ({moved}) | {} |",
            e.workload,
            if r.held_out { " (held out)" } else { "" },
            e.cycle_s.map_or("-".to_string(), |c| format!("{c:.0}")),
            pair(spread(&e.now)),
            pair(spread(&e.advised)),
            pair(spread(&e.first)),
            pair(spread(&e.alma)),
            e.best.as_ref().map_or("-".to_string(), |b| pair(spread(b))),
            e.trials.len(),
            marks(&goals)
        );
    }
    let _ = writeln!(
        out,
        "\nAll goals met on {met} of {} workloads at ω = {wait_weight}.\n",
        records.len()
    );
    (met, records.len())
}

/// What the page is rendered from.
pub struct AdvisePage<'a> {
    /// The simulated judgements.
    pub sim: &'a [AdviseSimRecord],
    /// Their file, as the page names it.
    pub sim_source: &'a str,
    /// The live runs (`kairos starts`), if any are stored, and their file.
    pub live: Option<(&'a [RunRecord], &'a str)>,
    /// The cycle of each live workload, s (None: it does not repeat).
    pub live_cycles: &'a dyn Fn(&str) -> Option<f64>,
    /// The command that regenerates the simulated records and the page.
    pub command: &'a str,
    /// The command that makes the live runs.
    pub live_command: &'a str,
    /// The runs the live campaign plans, if known (fewer stored: partial).
    pub live_planned_runs: Option<usize>,
}

/// Render the page.
pub fn render(page: &AdvisePage) -> Result<String> {
    if page.sim.is_empty() {
        bail!("no simulated judgements of the advice");
    }
    let mut out = String::from(PREAMBLE);
    out.push_str("\n## Results: simulated\n\n");
    let (commits, dates) = stamp(
        page.sim.iter().map(|r| r.code_commit.as_str()),
        page.sim.iter().map(|r| r.made_unix_s),
    );
    let held_out: BTreeSet<&str> = page
        .sim
        .iter()
        .filter(|r| r.held_out)
        .map(|r| r.eval.workload.as_str())
        .collect();
    let _ = writeln!(
        out,
        "**Code:** {}. Made on {} by `{}`; stored in `{}`. {}Cyclic workloads (a program \
         that repeats within {MAX_CYCLE_S:.0} s) are checked against the cyclic goals \
         (advised median ≤ 0.7 × the median of starts at random moments, 90th percentile \
         ≤ 0.5 ×, median no worse than the ALMA-style rule's, to the millisecond), the others against the \
         acyclic one (never more than 5 % worse than starting now, moment by moment). \
         The best start in hindsight (cyclic programs) is the cheapest of the starts \
         every second over one cycle from the moment (and the rules' own), the wait \
         weighed by ω: no start rule can beat it, and a goal it misses too is marked \
         out of reach. \"Waited\" counts the moments where the advised start was later than now; in \
         brackets, those where a re-advice while waiting moved the start by more than a \
         second.\n",
        commits,
        dates,
        page.command,
        page.sim_source,
        if held_out.is_empty() {
            String::new()
        } else {
            format!(
                "Held out: {} (`testbed/workloads-held-out/advise`, written before any \
                 result of this advice was seen); every other program is from the \
                 catalogue, where the advice was designed. ",
                held_out.iter().copied().collect::<Vec<_>>().join(", ")
            )
        }
    );
    let mut weights: Vec<f64> = page.sim.iter().map(|r| r.wait_weight).collect();
    weights.sort_by(f64::total_cmp);
    weights.dedup();
    for w in weights {
        let records: Vec<&AdviseSimRecord> =
            page.sim.iter().filter(|r| r.wait_weight == w).collect();
        sim_section(&mut out, w, &records);
    }
    out.push_str(&rechecks_paragraph(page.sim));
    out.push_str("\n## Results: live\n\n");
    match page.live {
        None => {
            let _ = writeln!(
                out,
                "No live campaign is stored yet. `{}` makes one (per workload ≥ 10 starts at \
                 random moments, 5 advised, 5 ALMA-style; hours of machine time, never in CI); \
                 `kairos report pack` stores its runs and this page then shows them.\n",
                page.live_command
            );
        }
        Some((records, source)) => live_section(&mut out, records, source, page)?,
    }
    out.push_str(LIMITS);
    Ok(out)
}

/// What re-advising while waiting changed, over every simulated moment.
fn rechecks_paragraph(sim: &[AdviseSimRecord]) -> String {
    let trials = sim.iter().flat_map(|r| r.eval.trials.iter());
    let (mut moved, mut earlier, mut better, mut worse) = (0, 0, 0, 0);
    let mut largest_s: f64 = 0.0;
    for t in trials {
        let shift_s = t.advised_wait_s - t.first_wait_s;
        if shift_s.abs() <= 1.0 {
            continue;
        }
        moved += 1;
        earlier += usize::from(shift_s < 0.0);
        largest_s = largest_s.max(shift_s.abs());
        let cost = |c: Option<f64>| c.unwrap_or(f64::INFINITY);
        let (a, f) = (cost(t.advised_cost_ms), cost(t.first_cost_ms));
        if a < f - 1.0 {
            better += 1;
        } else if a > f + 1.0 {
            worse += 1;
        }
    }
    let all: usize = sim.iter().map(|r| r.eval.trials.len()).sum();
    format!(
        "Re-advising while waiting moved the start by more than a second on {moved} of {all} \
         moments ({earlier} of them earlier; the largest move {largest_s:.0} s): the start \
         then cost less than the first advice's on {better} of them and more on {worse} (the \
         \"first advice only\" column is the same moments without re-advising).\n"
    )
}

fn live_section(
    out: &mut String,
    records: &[RunRecord],
    source: &str,
    page: &AdvisePage,
) -> Result<()> {
    let runs: Vec<LiveResult> = records
        .iter()
        .filter(|r| r.result.start.is_some())
        .map(|r| r.result.clone())
        .collect();
    if runs.is_empty() {
        bail!("{source}: no run records how its start was decided");
    }
    let (commits, dates) = stamp(
        runs.iter()
            .map(|r| r.code_commit.as_deref().unwrap_or("unknown")),
        runs.iter().filter_map(|r| r.finished_unix_s),
    );
    let policies: BTreeSet<&str> = runs.iter().map(|r| r.policy.as_str()).collect();
    let weights: BTreeSet<String> = runs
        .iter()
        .filter_map(|r| r.start.map(|s| s.wait_weight.to_string()))
        .collect();
    let _ = writeln!(
        out,
        "**Code:** {}. Runs finished on {}, made by `{}`, stored in `{source}`; stop \
         policy {}, ω = {}. TCG guests on this 2-core host (timings are TCG's, not KVM's).\n",
        commits,
        dates,
        page.live_command,
        policies.into_iter().collect::<Vec<_>>().join(", "),
        weights.into_iter().collect::<Vec<_>>().join(", "),
    );
    if let Some(planned) = page.live_planned_runs.filter(|&p| runs.len() < p) {
        let _ = writeln!(
            out,
            "**Partial campaign:** {} of the {planned} planned runs are stored; every live \
             figure and goal below is provisional until the campaign is complete.\n",
            runs.len(),
        );
    }
    // The runs carry their own objective; this only stands in for none.
    let fallback = Objective::from_config(&Default::default());
    let table = StartsTable::of(&runs, &fallback);
    out.push_str(&table.markdown());
    out.push_str("\n| workload | cycle s | goals (cost, wait included) |\n|---|---|---|\n");
    let workloads: BTreeSet<&str> = table.cells.iter().map(|c| c.workload.as_str()).collect();
    let mut met = 0;
    for w in &workloads {
        let cycle_s = (page.live_cycles)(w);
        let costs = |rule: StartRule| -> Vec<f64> {
            runs.iter()
                .filter(|r| r.workload == *w && r.start.is_some_and(|s| s.rule == rule))
                .map(|r| start_cost_ms(r, &fallback).unwrap_or(f64::INFINITY))
                .collect()
        };
        let (now, advised, alma) = (
            costs(StartRule::Now),
            costs(StartRule::Advised),
            costs(StartRule::Alma),
        );
        let goals = if now.is_empty() || advised.is_empty() {
            Vec::new()
        } else if is_cyclic(cycle_s) {
            let mut goals = vec![
                ratio_goal("median ≤ 0.7×", &advised, &now, 0.5, MEDIAN_SHARE),
                ratio_goal("p90 ≤ 0.5×", &advised, &now, 0.9, P90_SHARE),
            ];
            if !alma.is_empty() {
                goals.push(not_dearer_goal("≤ ALMA", &advised, &alma));
            }
            goals
        } else {
            vec![ratio_goal(
                "median ≤ 1.05× random",
                &advised,
                &now,
                0.5,
                ACYCLIC_SLACK,
            )]
        };
        met += usize::from(!goals.is_empty() && goals.iter().all(|g| g.met));
        let _ = writeln!(
            out,
            "| {w} | {} | {} |",
            cycle_s.map_or("-".to_string(), |c| format!("{c:.0}")),
            if goals.is_empty() {
                "(no random or no advised runs)".to_string()
            } else {
                marks(&goals)
            }
        );
    }
    let _ = writeln!(
        out,
        "\nAll goals met on {met} of {} workloads live. Live, each goal is read from the \
         runs' 95 % bootstrap interval (the repeats of each rule redrawn): met when the \
         whole interval meets it, missed when none of it does, undecided otherwise; \
         \"≤ ALMA\" is met when the advised median is cheaper or tied. The acyclic goal \
         is checked on medians (a live run's moment cannot be replayed under another \
         rule).\n",
        workloads.len()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_goal_is_met_missed_or_undecided_by_the_runs_interval() {
        let random = [10.0, 11.0, 12.0, 9.0, 10.5, 11.5, 10.0, 9.5, 12.5, 10.0];
        let clearly = [5.0, 5.5, 6.0, 5.2, 5.8];
        assert!(ratio_goal("m", &clearly, &random, 0.5, 0.7).met);
        let not = [9.0, 9.5, 10.0, 9.8, 10.2];
        let g = ratio_goal("m", &not, &random, 0.5, 0.7);
        assert!(!g.met && g.undecided.is_none());
        // Spread across the limit: neither.
        let spread = [3.0, 6.0, 7.0, 8.0, 12.0];
        let g = ratio_goal("m", &spread, &random, 0.5, 0.7);
        assert!(!g.met);
        let i = g
            .undecided
            .unwrap_or_else(|| panic!("undecided: {}", g.met));
        assert!(i.lo <= 0.7 && 0.7 <= i.hi, "{i:?}");
        // Within noise of the other rule: no dearer.
        assert!(not_dearer_goal("a", &not, &[9.9, 9.6, 10.1, 9.7, 10.0]).met);
        assert!(!not_dearer_goal("a", &random, &clearly).met);
    }

    #[test]
    fn a_campaign_with_fewer_runs_than_planned_is_marked_partial() {
        let records: Vec<RunRecord> = [StartRule::Now, StartRule::Advised]
            .into_iter()
            .enumerate()
            .map(|(i, rule)| RunRecord {
                format: crate::report::record::RECORD_FORMAT,
                name: format!("periodic__predictive__{}__1", rule.name()),
                result: crate::report::starts::tests::started(
                    "periodic",
                    rule,
                    5000.0 + 1000.0 * i as f64,
                    250.0,
                    0.0,
                ),
                trace_csv: None,
            })
            .collect();
        let live_with = |planned| -> String {
            let page = AdvisePage {
                sim: &[],
                sim_source: "",
                live: None,
                live_cycles: &|_| Some(20.0),
                command: "",
                live_command: "c",
                live_planned_runs: planned,
            };
            let mut out = String::new();
            live_section(&mut out, &records, "f", &page).unwrap();
            out
        };
        assert!(live_with(Some(140)).contains("**Partial campaign:** 2 of the 140 planned runs"));
        assert!(!live_with(Some(2)).contains("Partial"));
        assert!(!live_with(None).contains("Partial"));
    }
}

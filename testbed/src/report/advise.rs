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
use super::starts::{Spread, StartsTable};
use crate::live::run::LiveResult;
use crate::live::start::StartRule;

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
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
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
        },
    ]
}

fn marks(goals: &[Goal]) -> String {
    goals
        .iter()
        .map(|g| match (g.met, g.out_of_reach) {
            (true, _) => format!("{} yes", g.name),
            (false, Some(r)) => format!("{} **no** (out of reach: best start {r:.2}×)", g.name),
            (false, None) => format!("{} **no**", g.name),
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
    // The runs carry their own objective; this only stands in for none.
    let table = StartsTable::of(&runs, &Objective::from_config(&Default::default()));
    out.push_str(&table.markdown());
    out.push_str("\n| workload | cycle s | goals (cost, wait included) |\n|---|---|---|\n");
    let workloads: BTreeSet<&str> = table.cells.iter().map(|c| c.workload.as_str()).collect();
    let mut met = 0;
    for w in &workloads {
        let cycle_s = (page.live_cycles)(w);
        let cost = |rule| table.cell(w, rule).map(|c| c.cost_ms);
        let goals = match (
            cost(StartRule::Now),
            cost(StartRule::Advised),
            cost(StartRule::Alma),
        ) {
            (Some(now), Some(advised), alma) if is_cyclic(cycle_s) => cyclic_goals(
                now,
                advised,
                alma.unwrap_or(Spread {
                    median: None,
                    p90: None,
                }),
                None,
            ),
            (Some(now), Some(advised), _) => vec![Goal {
                name: "median ≤ 1.05× random",
                met: match (advised.median, now.median) {
                    (Some(a), Some(n)) => a <= ACYCLIC_SLACK * n,
                    (_, None) => true,
                    (None, Some(_)) => false,
                },
                out_of_reach: None,
            }],
            _ => Vec::new(),
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
        "\nAll goals met on {met} of {} workloads live. Live, the acyclic goal is checked \
         on medians (a live run's moment cannot be replayed under another rule).\n",
        workloads.len()
    );
    Ok(())
}

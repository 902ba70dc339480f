//! docs/evacuate.md: emptying a host, simulated — Kairos's planner against
//! the fixed concurrencies operators use, on hosts of random guests, each
//! host's best fixed plan chosen in hindsight; the page rendered from the
//! stored evacuations (`kairos evacuate --simulate --json`, packed by
//! `kairos report pack-evacuate`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

use kairos_eval::cell_stats::median;

use super::record::{stamp, Versioned};

/// The goal: the planned makespan at most this share of the best fixed
/// plan's (in hindsight, per host).
pub const MAKESPAN_GOAL: f64 = 0.7;

/// The page's fixed text before the results.
const PREAMBLE: &str = include_str!("evacuate_preamble.md");
/// The page's fixed text after the results.
const LIMITS: &str = include_str!("evacuate_limits.md");

/// How an evacuation was judged (`kairos_eval::gang::baseline::GangScore`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ScoreView {
    /// From the start to the last migration's end, s.
    pub makespan_s: f64,
    /// Σ downtime above the limit, ms.
    pub downtime_excess_ms: f64,
    /// Guests whose downtime went above the maximum.
    pub above_max: usize,
    /// Guests whose migration did not complete.
    pub failed: usize,
}

/// One evacuation, as `kairos evacuate --json` printed it (the plan, the
/// host and every guest's migration kept verbatim).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EvacuationRow {
    /// Every guest's stop policy.
    pub policy: String,
    /// The plan (`"planned"`, `"planned-advised"` or a fixed one).
    pub plan: serde_json::Value,
    /// How many at a time, as the command's table says it.
    pub at_a_time: String,
    /// In what order, as the command's table says it.
    pub order: String,
    /// Guests on the host.
    pub guests: usize,
    /// How it went.
    pub score: ScoreView,
    /// A lower bound on any plan's makespan, s.
    pub bound_s: f64,
    /// The host and link.
    pub setup: serde_json::Value,
    /// Each guest's migration.
    pub runs: serde_json::Value,
}

impl EvacuationRow {
    fn is_planned(&self) -> bool {
        self.plan == serde_json::Value::String("planned".into())
    }

    fn is_advised(&self) -> bool {
        self.plan == serde_json::Value::String("planned-advised".into())
    }

    fn is_fixed(&self) -> bool {
        self.plan.get("fixed").is_some()
    }

    fn is_shortest_first(&self) -> bool {
        self.order == "shortest predicted first"
    }

    /// The order plans are preferred in: fewer failures, then the cost.
    fn key(&self) -> (usize, f64) {
        (self.score.failed, self.score.makespan_s)
    }

    /// Hosts of the rack it emptied (1: one host, one link).
    fn hosts(&self) -> u64 {
        self.setup
            .get("hosts")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(1)
    }

    fn label(&self) -> String {
        format!("{} at a time, {}", self.at_a_time, self.order)
    }
}

/// One evacuation as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EvacuateRecord {
    /// Record format of the writer.
    pub format: u32,
    /// The host's name in the campaign.
    pub host: String,
    /// The host's programs were held out from the planner's design.
    pub held_out: bool,
    /// The link, as the campaign names it.
    pub link: String,
    /// The commit of the code that made it.
    pub code_commit: String,
    /// When it was packed, seconds since the Unix epoch.
    pub made_unix_s: u64,
    /// The evacuation.
    pub row: EvacuationRow,
}

impl Versioned for EvacuateRecord {
    fn format(&self) -> u32 {
        self.format
    }
}

/// One host under one policy: its plans judged.
struct HostCase<'a> {
    host: &'a str,
    link: &'a str,
    held_out: bool,
    policy: &'a str,
    guests: usize,
    bound_s: f64,
    best_fixed: &'a EvacuationRow,
    best_shortest: Option<&'a EvacuationRow>,
    /// OpenStack Nova's default: one at a time, as listed.
    nova_default: Option<&'a EvacuationRow>,
    planned: &'a EvacuationRow,
    advised: Option<&'a EvacuationRow>,
}

impl HostCase<'_> {
    fn ratio(&self) -> f64 {
        self.planned.score.makespan_s / self.best_fixed.score.makespan_s.max(1e-9)
    }

    /// Planned no worse than the best fixed plan in failures, guests above
    /// the maximum and downtime above the limit.
    fn no_worse(&self) -> bool {
        let (p, b) = (&self.planned.score, &self.best_fixed.score);
        p.failed <= b.failed
            && p.above_max <= b.above_max
            && p.downtime_excess_ms <= b.downtime_excess_ms + 1.0
    }

    fn goal_met(&self) -> bool {
        self.no_worse() && self.ratio() <= MAKESPAN_GOAL
    }

    /// Even a plan at the bound could not meet the goal.
    fn out_of_reach(&self) -> bool {
        self.bound_s > MAKESPAN_GOAL * self.best_fixed.score.makespan_s
    }
}

fn cases(records: &[EvacuateRecord]) -> Result<Vec<HostCase<'_>>> {
    let mut by_host: BTreeMap<(&str, &str, &str), Vec<&EvacuateRecord>> = BTreeMap::new();
    for r in records {
        by_host
            .entry((r.host.as_str(), r.link.as_str(), r.row.policy.as_str()))
            .or_default()
            .push(r);
    }
    let mut out = Vec::new();
    for ((host, link, policy), rows) in by_host {
        let best = |pred: &dyn Fn(&EvacuationRow) -> bool| {
            rows.iter()
                .map(|r| &r.row)
                .filter(|r| pred(r))
                .min_by(|a, b| {
                    a.key()
                        .0
                        .cmp(&b.key().0)
                        .then(a.key().1.total_cmp(&b.key().1))
                })
        };
        let (Some(best_fixed), Some(planned)) = (
            best(&|r: &EvacuationRow| r.is_fixed()),
            best(&|r: &EvacuationRow| r.is_planned()),
        ) else {
            bail!("{host} ({link}, {policy}): no fixed plan or no planned evacuation stored");
        };
        out.push(HostCase {
            host,
            link,
            held_out: rows[0].held_out,
            policy,
            guests: planned.guests,
            bound_s: planned.bound_s,
            best_fixed,
            best_shortest: best(&|r: &EvacuationRow| r.is_shortest_first()),
            nova_default: best(&|r: &EvacuationRow| {
                r.is_fixed() && r.at_a_time == "1" && r.order == "as listed"
            }),
            planned,
            advised: best(&|r: &EvacuationRow| r.is_advised()),
        });
    }
    Ok(out)
}

fn goal_lines(out: &mut String, cases: &[&HostCase<'_>], which: &str) {
    let mut policies: Vec<&str> = cases.iter().map(|c| c.policy).collect();
    policies.sort_unstable();
    policies.dedup();
    for policy in policies {
        let mine: Vec<&&HostCase<'_>> = cases.iter().filter(|c| c.policy == policy).collect();
        let met = mine.iter().filter(|c| c.goal_met()).count();
        let no_worse = mine.iter().filter(|c| c.no_worse()).count();
        let out_of_reach = mine.iter().filter(|c| c.out_of_reach()).count();
        let ratios: Vec<f64> = mine.iter().map(|c| c.ratio()).collect();
        let (lo, hi) = ratios
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &r| {
                (l.min(r), h.max(r))
            });
        let above_max: usize = mine.iter().map(|c| c.planned.score.above_max).sum();
        let against_nova: Vec<f64> = mine
            .iter()
            .filter_map(|c| {
                c.nova_default
                    .filter(|n| n.score.failed >= c.planned.score.failed)
                    .map(|n| c.planned.score.makespan_s / n.score.makespan_s.max(1e-9))
            })
            .collect();
        let advice_same = mine
            .iter()
            .filter(|c| {
                c.advised.is_some_and(|a| {
                    (a.score.makespan_s - c.planned.score.makespan_s).abs()
                        <= 0.01 * c.planned.score.makespan_s
                })
            })
            .count();
        let _ = writeln!(
            out,
            "- {which}, every guest under `{policy}`: the goal (makespan ≤ {MAKESPAN_GOAL}× the best fixed plan, no worse in failures, guests above the maximum and downtime above the limit) met on **{met} of {}** hosts; planned no worse than the best fixed plan in those three on {no_worse}; planned / best fixed makespan median **{:.2}** (from {lo:.2} to {hi:.2}); against Nova's default (one at a time, as listed; hosts where it failed no fewer guests: {}) median **{:.2}**; guests above their maximum under the plan: {above_max}; hosts where even the bound is above {MAKESPAN_GOAL}× the best fixed plan (the goal out of reach): {out_of_reach}; the advice changed the planned makespan by more than 1 % on {} hosts.",
            mine.len(),
            median(ratios.iter().copied()).unwrap_or(f64::NAN),
            against_nova.len(),
            median(against_nova.iter().copied()).unwrap_or(f64::NAN),
            mine.len() - advice_same,
        );
    }
}

fn score_cell(r: &EvacuationRow) -> String {
    let s = &r.score;
    let mut cell = format!("{:.1}", s.makespan_s);
    if s.failed > 0 {
        let _ = write!(cell, ", {} failed", s.failed);
    }
    if s.above_max > 0 {
        let _ = write!(cell, ", {} above max", s.above_max);
    }
    cell
}

/// Render the page from `records` (stored in `source`, made by `command`).
pub fn render(records: &[EvacuateRecord], source: &str, command: &str) -> Result<String> {
    if records.is_empty() {
        bail!("no evacuations stored");
    }
    let cases = cases(records)?;
    let mut out = String::from(PREAMBLE);
    let (commits, dates) = stamp(
        records.iter().map(|r| r.code_commit.as_str()),
        records.iter().map(|r| r.made_unix_s),
    );
    let _ = writeln!(
        out,
        "\n## Results\n\nCode {commits}, simulated on {dates}; {} evacuations of {} hosts, stored in `{source}`; regenerated by `{command}`.\n",
        records.len(),
        cases
            .iter()
            .map(|c| (c.host, c.link))
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
    );
    let is_rack = |c: &HostCase<'_>| c.planned.hosts() > 1;
    let held_out: Vec<&HostCase<'_>> = cases.iter().filter(|c| c.held_out && !is_rack(c)).collect();
    let racks: Vec<&HostCase<'_>> = cases.iter().filter(|c| c.held_out && is_rack(c)).collect();
    let design: Vec<&HostCase<'_>> = cases.iter().filter(|c| !c.held_out).collect();
    out.push_str("### Goals\n\n");
    if held_out.is_empty() {
        out.push_str("- No held-out host is stored: the goals are not measured.\n");
    } else {
        goal_lines(&mut out, &held_out, "Held-out hosts");
    }
    if !racks.is_empty() {
        goal_lines(
            &mut out,
            &racks,
            "Held-out racks (each host planning its own guests, one uplink)",
        );
    }
    if !design.is_empty() {
        goal_lines(
            &mut out,
            &design,
            "Design hosts (the planner was chosen on them)",
        );
    }
    out.push_str(
        "\n### Per host\n\nMakespan in seconds (failures and guests above the maximum beside it). *Bound*: no plan can end sooner (every guest's bulk must cross the link). *Best fixed*: the best of the operators' plans (1, 2, 4 or all at a time; as listed, random, or shortest predicted first) in hindsight — fewest failures, then shortest. *Planned / best*: below 1, the plan was faster.\n\n",
    );
    out.push_str("| host | set | link | guests | policy | bound | best fixed | its makespan | best shortest-first | planned | planned / best | planned, with advice |\n|---|---|---|---:|---|---:|---|---:|---:|---:|---:|---:|\n");
    for c in &cases {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | `{}` | {:.1} | {} | {} | {} | {} | {:.2}{} | {} |",
            c.host,
            if c.held_out { "held out" } else { "design" },
            c.link,
            c.guests,
            c.policy,
            c.bound_s,
            c.best_fixed.label(),
            score_cell(c.best_fixed),
            c.best_shortest.map_or("–".to_string(), score_cell),
            score_cell(c.planned),
            c.ratio(),
            if c.goal_met() { " ✓" } else { "" },
            c.advised.map_or("–".to_string(), score_cell),
        );
    }
    out.push('\n');
    out.push_str(LIMITS);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(plan: serde_json::Value, order: &str, makespan_s: f64, failed: usize) -> EvacuationRow {
        EvacuationRow {
            policy: "predictive".into(),
            plan,
            at_a_time: "1".into(),
            order: order.into(),
            guests: 8,
            score: ScoreView {
                makespan_s,
                downtime_excess_ms: 0.0,
                above_max: 0,
                failed,
            },
            bound_s: 30.0,
            setup: serde_json::Value::Null,
            runs: serde_json::Value::Null,
        }
    }

    fn record(host: &str, held_out: bool, row: EvacuationRow) -> EvacuateRecord {
        EvacuateRecord {
            format: 1,
            host: host.into(),
            held_out,
            link: "1 Gbit/s".into(),
            code_commit: "abc".into(),
            made_unix_s: 1_796_533_424,
            row,
        }
    }

    #[test]
    fn the_best_fixed_plan_has_the_fewest_failures_then_the_shortest_makespan() {
        let fixed = |m, f| row(serde_json::json!({"fixed": {}}), "as listed", m, f);
        let records = vec![
            record("h1", true, fixed(40.0, 1)),
            record("h1", true, fixed(60.0, 0)),
            record("h1", true, fixed(50.0, 0)),
            record("h1", true, row("planned".into(), "p", 34.0, 0)),
            record("h2", true, fixed(100.0, 0)),
            record("h2", true, row("planned".into(), "p", 90.0, 0)),
        ];
        let cases = cases(&records).unwrap();
        assert_eq!(cases.len(), 2);
        assert_eq!(cases[0].best_fixed.score.makespan_s, 50.0);
        assert!(cases[0].goal_met(), "34 / 50 = 0.68");
        assert!(!cases[1].goal_met(), "90 / 100");
        let page = render(&records, "x.jsonl.gz", "cmd").unwrap();
        assert!(page.contains("met on **1 of 2** hosts"), "{page}");
        assert!(page.contains("median **0.79**"), "{page}");
    }

    #[test]
    fn racks_are_judged_apart_from_hosts() {
        let rack = |mut r: EvacuationRow| {
            r.setup = serde_json::json!({"hosts": 8, "uplink_mbit": 4000.0});
            r
        };
        let records = vec![
            record(
                "h",
                true,
                row(serde_json::json!({"fixed": {}}), "as listed", 100.0, 0),
            ),
            record("h", true, row("planned".into(), "p", 60.0, 0)),
            record(
                "r",
                true,
                rack(row(serde_json::json!({"fixed": {}}), "as listed", 100.0, 0)),
            ),
            record("r", true, rack(row("planned".into(), "p", 90.0, 0))),
        ];
        let page = render(&records, "x.jsonl.gz", "cmd").unwrap();
        assert!(page.contains("- Held-out hosts, every guest under `predictive`: the goal (makespan ≤ 0.7× the best fixed plan, no worse in failures, guests above the maximum and downtime above the limit) met on **1 of 1**"), "{page}");
        assert!(page.contains("- Held-out racks (each host planning its own guests, one uplink), every guest under `predictive`: the goal (makespan ≤ 0.7× the best fixed plan, no worse in failures, guests above the maximum and downtime above the limit) met on **0 of 1**"), "{page}");
    }

    #[test]
    fn a_plan_with_more_failures_does_not_meet_the_goal() {
        let records = vec![
            record(
                "h",
                true,
                row(serde_json::json!({"fixed": {}}), "as listed", 600.0, 0),
            ),
            record("h", true, row("planned".into(), "p", 100.0, 1)),
        ];
        let cases = cases(&records).unwrap();
        assert!(!cases[0].goal_met());
    }

    #[test]
    fn a_host_without_a_plan_is_an_error() {
        let records = vec![record(
            "h",
            true,
            row(serde_json::json!({"fixed": {}}), "as listed", 60.0, 0),
        )];
        assert!(render(&records, "x", "c").is_err());
    }
}

//! docs/evacuate-live.md: hosts emptied live through libvirt — Kairos's
//! plan against the fixed concurrencies operators use, each plan run from
//! freshly booted guests several times, interleaved; the page rendered
//! from the stored reports (`kairos evacuate --connect … --report`, packed
//! by `kairos report pack-evacuate-live` from `scripts/evacuate-live.sh`'s
//! output).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use kairos_eval::cell_stats::median;

use super::record::{stamp, Versioned, RECORD_FORMAT};

/// The goal: the planned median makespan at most this share of the best
/// fixed plan's.
pub const MAKESPAN_GOAL: f64 = 0.8;
/// Repeats a plan needs for its cell to count.
pub const MIN_REPEATS: usize = 5;

/// One live evacuation as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EvacuateLiveRecord {
    /// Record format of the writer.
    pub format: u32,
    /// Which repeat of the campaign it was (1-based).
    pub repeat: u32,
    /// Its place in the campaign's run order (0-based).
    pub sequence: u32,
    /// The plan as `--at-a-time` named it (`planned`, `1`, `2`, `all`).
    pub plan: String,
    /// The exit status of `kairos evacuate` (0: every guest arrived
    /// intact).
    pub exit_status: i32,
    /// The report `kairos evacuate --report` wrote, verbatim.
    pub report: serde_json::Value,
}

impl Versioned for EvacuateLiveRecord {
    fn format(&self) -> u32 {
        self.format
    }
}

impl EvacuateLiveRecord {
    fn makespan_s(&self) -> Option<f64> {
        self.report["evacuation"]["makespan_s"].as_f64()
    }

    fn guests(&self) -> &[serde_json::Value] {
        self.report["evacuation"]["guests"]
            .as_array()
            .map_or(&[], Vec::as_slice)
    }

    /// Guests that arrived with their page check clean (or none to make).
    fn moved(&self) -> usize {
        self.guests()
            .iter()
            .filter(|g| g["outcome"]["status"] == "completed" && g["outcome"]["verified"] != false)
            .count()
    }

    fn verified(&self) -> usize {
        self.guests()
            .iter()
            .filter(|g| g["outcome"]["verified"] == true)
            .count()
    }

    /// Σ of the guests' downtimes as libvirt measured them, s.
    fn downtime_sum_s(&self) -> f64 {
        self.guests()
            .iter()
            .filter_map(|g| g["outcome"]["downtime_ms"].as_f64())
            .sum::<f64>()
            / 1000.0
    }

    fn code_commit(&self) -> &str {
        self.report["setup"]["code_commit"].as_str().unwrap_or("?")
    }

    fn finished_unix_s(&self) -> u64 {
        self.report["setup"]["finished_unix_s"]
            .as_u64()
            .unwrap_or(0)
    }
}

/// Pack a campaign's reports (`DIR/runs/rR-PLAN.json`, in the order of
/// `DIR/evacuations.tsv`) into records.
pub fn pack(dir: &Path) -> Result<Vec<EvacuateLiveRecord>> {
    let index = dir.join("evacuations.tsv");
    let text =
        std::fs::read_to_string(&index).with_context(|| format!("reading {}", index.display()))?;
    let mut records = Vec::new();
    for (sequence, line) in text.lines().filter(|l| !l.trim().is_empty()).enumerate() {
        let fields: Vec<&str> = line.split('\t').collect();
        let [repeat, plan, _makespan, exit_status] = fields[..] else {
            bail!(
                "{}: line {} is not R, PLAN, MAKESPAN, RC",
                index.display(),
                sequence + 1
            );
        };
        let repeat: u32 = repeat
            .parse()
            .with_context(|| format!("{}: repeat '{repeat}'", index.display()))?;
        let exit_status: i32 = exit_status
            .parse()
            .with_context(|| format!("{}: exit status '{exit_status}'", index.display()))?;
        let file = dir.join("runs").join(format!("r{repeat}-{plan}.json"));
        let report: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?,
        )
        .with_context(|| format!("{}: not a kairos evacuate report", file.display()))?;
        if report["evacuation"]["makespan_s"].as_f64().is_none() {
            bail!("{}: no evacuation.makespan_s in it", file.display());
        }
        records.push(EvacuateLiveRecord {
            format: RECORD_FORMAT,
            repeat,
            sequence: sequence as u32,
            plan: plan.to_string(),
            exit_status,
            report,
        });
    }
    if records.is_empty() {
        bail!("{}: no evacuation listed", index.display());
    }
    Ok(records)
}

/// One plan's evacuations summed up.
struct PlanCell<'a> {
    plan: &'a str,
    runs: Vec<&'a EvacuateLiveRecord>,
}

impl PlanCell<'_> {
    fn makespans(&self) -> Vec<f64> {
        self.runs.iter().filter_map(|r| r.makespan_s()).collect()
    }

    fn median_makespan_s(&self) -> f64 {
        median(self.makespans()).unwrap_or(f64::NAN)
    }

    fn range_s(&self) -> (f64, f64) {
        let m = self.makespans();
        (
            m.iter().copied().fold(f64::INFINITY, f64::min),
            m.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        )
    }

    /// Evacuations in which a guest did not arrive intact.
    fn failed(&self) -> usize {
        self.runs
            .iter()
            .filter(|r| r.exit_status != 0 || r.moved() < r.guests().len())
            .count()
    }

    fn is_fixed(&self) -> bool {
        self.plan != "planned"
    }

    fn label(&self) -> String {
        if self.is_fixed() {
            format!("{} at a time", self.plan)
        } else {
            "Kairos's plan".to_string()
        }
    }
}

/// Render the page.
pub fn render(records: &[EvacuateLiveRecord], source: &str, command: &str) -> Result<String> {
    if records.is_empty() {
        bail!("no live evacuations to render");
    }
    let mut by_plan: BTreeMap<&str, Vec<&EvacuateLiveRecord>> = BTreeMap::new();
    for r in records {
        by_plan.entry(r.plan.as_str()).or_default().push(r);
    }
    let cells: Vec<PlanCell> = by_plan
        .into_iter()
        .map(|(plan, runs)| PlanCell { plan, runs })
        .collect();
    let (commits, dates) = stamp(
        records.iter().map(EvacuateLiveRecord::code_commit),
        records.iter().map(EvacuateLiveRecord::finished_unix_s),
    );
    let first = &records[0].report;
    let guests: Vec<String> = first["guests"]
        .as_array()
        .map(|g| {
            g.iter()
                .map(|x| {
                    format!(
                        "{} ({:.0} MiB)",
                        x["name"].as_str().unwrap_or("?"),
                        x["ram_bytes"].as_f64().unwrap_or(0.0) / 1048576.0
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let mut page = String::new();
    writeln!(
        page,
        "<!-- Rendered by `kairos report evacuate-live` from the stored evacuations; edit testbed/src/report/evacuate_live.rs, not this page. -->"
    )?;
    page.push_str(PREAMBLE);
    writeln!(
        page,
        "\n## Results\n\nCode {commits}, run on {dates}; {} evacuations stored in `{source}`; regenerated by `{command}`.\n",
        records.len()
    )?;
    writeln!(
        page,
        "Guests: {}; policy `{}`; link {} Mbit/s (as the plan assumed it); each guest profiled {} s before the plan.\n",
        guests.join(", "),
        first["setup"]["policy"].as_str().unwrap_or("?"),
        first["setup"]["bandwidth_mbit"].as_f64().unwrap_or(0.0),
        first["setup"]["profile_s"].as_f64().unwrap_or(0.0),
    )?;
    writeln!(page, "| plan | evacuations | makespan s, median [min–max] | Σ downtime s (libvirt), median | guests moved intact | page checks clean |")?;
    writeln!(page, "|---|---:|---|---:|---:|---:|")?;
    for c in &cells {
        let (lo, hi) = c.range_s();
        let downtimes: Vec<f64> = c.runs.iter().map(|r| r.downtime_sum_s()).collect();
        let moved: usize = c.runs.iter().map(|r| r.moved()).sum();
        let verified: usize = c.runs.iter().map(|r| r.verified()).sum();
        let total: usize = c.runs.iter().map(|r| r.guests().len()).sum();
        writeln!(
            page,
            "| {} | {} | {:.1} [{lo:.1}–{hi:.1}] | {:.1} | {moved} of {total} | {verified} of {total} |",
            c.label(),
            c.runs.len(),
            c.median_makespan_s(),
            median(downtimes).unwrap_or(f64::NAN),
        )?;
    }
    page.push_str("\n### Goal\n\n");
    page.push_str(&goal_text(&cells));
    page.push_str("\n### Each evacuation, in the order run\n\n");
    writeln!(
        page,
        "| # | repeat | plan | makespan s | Σ downtime s | moved | order started |"
    )?;
    writeln!(page, "|---:|---:|---|---:|---:|---:|---|")?;
    let mut ordered: Vec<&EvacuateLiveRecord> = records.iter().collect();
    ordered.sort_by_key(|r| r.sequence);
    for r in ordered {
        let mut started: Vec<(f64, &str)> = r
            .guests()
            .iter()
            .filter_map(|g| Some((g["start_s"].as_f64()?, g["name"].as_str()?)))
            .collect();
        started.sort_by(|a, b| a.0.total_cmp(&b.0));
        writeln!(
            page,
            "| {} | {} | {} | {} | {:.1} | {} of {} | {} |",
            r.sequence + 1,
            r.repeat,
            r.plan,
            r.makespan_s().map_or("-".into(), |m| format!("{m:.1}")),
            r.downtime_sum_s(),
            r.moved(),
            r.guests().len(),
            started
                .iter()
                .map(|(t, n)| format!("{n} {t:.0} s"))
                .collect::<Vec<_>>()
                .join(", ")
        )?;
    }
    page.push_str(LIMITS);
    Ok(page)
}

/// The goal's line: the plan against the best fixed plan in hindsight
/// (fewest failed evacuations, then the lowest median makespan); a
/// difference inside the two plans' ranges is a tie.
fn goal_text(cells: &[PlanCell]) -> String {
    let planned = cells.iter().find(|c| !c.is_fixed());
    let best = cells.iter().filter(|c| c.is_fixed()).min_by(|a, b| {
        a.failed()
            .cmp(&b.failed())
            .then(a.median_makespan_s().total_cmp(&b.median_makespan_s()))
    });
    let (Some(p), Some(b)) = (planned, best) else {
        return "Not judged: the campaign holds no planned evacuation or no fixed one.\n".into();
    };
    let ratio = p.median_makespan_s() / b.median_makespan_s();
    let (p_lo, p_hi) = p.range_s();
    let (b_lo, b_hi) = b.range_s();
    let overlap = p_lo <= b_hi && b_lo <= p_hi;
    let enough = p.runs.len() >= MIN_REPEATS && b.runs.len() >= MIN_REPEATS;
    let met = enough && p.failed() == 0 && ratio <= MAKESPAN_GOAL && !overlap;
    format!(
        "Goal: Kairos's plan's median makespan ≤ {MAKESPAN_GOAL}× the best fixed plan's (in hindsight: {}, median {:.1} s), every guest intact, ≥ {MIN_REPEATS} repeats each: **{}** — planned / best = {ratio:.2} ({}; {} of {} planned evacuations with a guest not intact).\n",
        b.label(),
        b.median_makespan_s(),
        if met { "met" } else { "not met" },
        if overlap {
            "the two plans' makespan ranges overlap: a tie"
        } else if ratio < 1.0 {
            "the plan's whole range below the best fixed plan's"
        } else {
            "the plan's whole range above the best fixed plan's"
        },
        p.failed(),
        p.runs.len()
    )
}

/// The page's fixed text before the results.
const PREAMBLE: &str = include_str!("evacuate_live_preamble.md");
/// The page's fixed text after the results.
const LIMITS: &str = include_str!("evacuate_live_limits.md");

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(sequence: u32, plan: &str, makespan_s: f64, intact: bool) -> EvacuateLiveRecord {
        EvacuateLiveRecord {
            format: RECORD_FORMAT,
            repeat: sequence / 2 + 1,
            sequence,
            plan: plan.into(),
            exit_status: if intact { 0 } else { 1 },
            report: json!({
                "setup": { "code_commit": "abc", "finished_unix_s": 1_765_000_000u64,
                           "policy": "predictive", "bandwidth_mbit": 1000.0, "profile_s": 20.0 },
                "guests": [{ "name": "vm1", "ram_bytes": 536870912.0 }],
                "evacuation": { "makespan_s": makespan_s, "interrupted": false, "guests": [
                    { "name": "vm1", "start_s": 0.0, "end_s": makespan_s, "outcome": {
                        "status": if intact { "completed" } else { "failed" },
                        "downtime_ms": 300.0, "verified": intact } }
                ] }
            }),
        }
    }

    #[test]
    fn the_goal_needs_the_repeats_a_clear_margin_and_every_guest() {
        let mut records = Vec::new();
        for i in 0..5 {
            records.push(record(2 * i, "planned", 10.0 + i as f64 / 2.0, true));
            records.push(record(2 * i + 1, "all", 20.0 + i as f64 / 2.0, true));
        }
        let page = render(&records, "x.jsonl.gz", "cmd").unwrap();
        assert!(page.contains("**met**"), "{page}");
        assert!(page.contains("planned / best = 0.52"), "{page}");

        // Overlapping ranges are a tie, whatever the medians say.
        let mut tie = records.clone();
        tie.push(record(10, "all", 11.5, true));
        let page = render(&tie, "x", "cmd").unwrap();
        assert!(
            page.contains("**not met**") && page.contains("a tie"),
            "{page}"
        );

        // A guest lost is a miss.
        let mut lost = records.clone();
        lost[0] = record(0, "planned", 10.0, false);
        assert!(render(&lost, "x", "cmd").unwrap().contains("**not met**"));

        // Four repeats are not enough.
        let few: Vec<_> = records.iter().filter(|r| r.sequence < 8).cloned().collect();
        assert!(render(&few, "x", "cmd").unwrap().contains("**not met**"));
    }

    #[test]
    fn a_campaign_is_packed_in_the_order_it_ran() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("runs")).unwrap();
        for (name, m) in [("r1-planned", 10.0), ("r1-all", 12.0)] {
            let r = record(0, "x", m, true);
            std::fs::write(
                dir.path().join("runs").join(format!("{name}.json")),
                r.report.to_string(),
            )
            .unwrap();
        }
        std::fs::write(
            dir.path().join("evacuations.tsv"),
            "1\tall\t12.0\t0\n1\tplanned\t10.0\t0\n",
        )
        .unwrap();
        let records = pack(dir.path()).unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!((records[0].plan.as_str(), records[0].sequence), ("all", 0));
        assert_eq!(records[1].makespan_s(), Some(10.0));
        std::fs::write(dir.path().join("evacuations.tsv"), "1\tall\n").unwrap();
        assert!(pack(dir.path()).is_err());
    }
}

//! The stored form of runs: one versioned record per run — a live run's
//! result and per-round trace ([`RunRecord`]), a simulated run's summary
//! ([`SimRecord`]) — all of a campaign in one gzip-compressed JSON-lines
//! file that the repository keeps and every page is rendered from.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;

use anyhow::{bail, Context, Result};
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;
use serde::{Deserialize, Serialize};

use kairos_eval::forecast_quality::ForecastQuality;
use kairos_eval::summary::RunSummary;
use serde::de::DeserializeOwned;

use crate::cmd::soak::{CsvRow, SoakSummary};
use crate::live::run::LiveResult;
use crate::profile_overhead::OverheadReport;

/// The record format this binary writes and reads.
pub const RECORD_FORMAT: u32 = 1;

/// One live run as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    /// [`RECORD_FORMAT`] of the writer.
    pub format: u32,
    /// The run's name in its campaign (`workload__policy__repeat`).
    pub name: String,
    /// What the run measured (its `work_dir` and `trace` paths are the
    /// machine's that made it, kept for the record only).
    pub result: LiveResult,
    /// The per-round trace as QEMU's convergence feed recorded it (CSV),
    /// when there was one.
    pub trace_csv: Option<String>,
}

/// The records of a campaign's run store (`OUT/runs`: `NAME.json` and its
/// `NAME/trace.csv`), sorted by name. Files that are not runs (oracles,
/// half-written ones) are skipped and counted.
pub fn from_store(runs_dir: &Path) -> Result<(Vec<RunRecord>, usize)> {
    let mut records = Vec::new();
    let mut skipped = 0;
    let entries =
        std::fs::read_dir(runs_dir).with_context(|| format!("reading {}", runs_dir.display()))?;
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_none_or(|x| x != "json") {
            continue;
        }
        let Some(name) = path.file_stem().map(|s| s.to_string_lossy().into_owned()) else {
            continue;
        };
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let Ok(result) = serde_json::from_str::<LiveResult>(&text) else {
            skipped += 1;
            continue;
        };
        let trace = runs_dir.join(&name).join("trace.csv");
        records.push(RunRecord {
            format: RECORD_FORMAT,
            trace_csv: std::fs::read_to_string(&trace).ok(),
            name,
            result,
        });
    }
    records.sort_by(|a, b| a.name.cmp(&b.name));
    Ok((records, skipped))
}

/// What [`to_store`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unpacked {
    /// Runs written into the store.
    pub written: usize,
    /// Runs the store already held (left as they were).
    pub kept: usize,
}

/// Write `records` back into a campaign's run store (`NAME.json` and
/// `NAME/trace.csv` under `runs_dir`), the inverse of [`from_store`], so a
/// campaign whose raw runs were lost with its machine goes on from the
/// ones the repository keeps. A run the store already holds is left as
/// it is (it is the campaign's own).
pub fn to_store(records: &[RunRecord], runs_dir: &Path) -> Result<Unpacked> {
    let store = crate::cmd::compare::store::Store::open_dir(runs_dir)?;
    let mut unpacked = Unpacked {
        written: 0,
        kept: 0,
    };
    for record in records {
        if store.load::<LiveResult>(&record.name).is_some() {
            unpacked.kept += 1;
            continue;
        }
        if let Some(trace) = &record.trace_csv {
            let dir = store.work_dir(&record.name);
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            let path = dir.join("trace.csv");
            std::fs::write(&path, trace).with_context(|| format!("writing {}", path.display()))?;
        }
        store.save(&record.name, &record.result)?;
        unpacked.written += 1;
    }
    Ok(unpacked)
}

/// A record of a known format.
pub trait Versioned {
    /// The format the record says it has.
    fn format(&self) -> u32;
}

impl Versioned for RunRecord {
    fn format(&self) -> u32 {
        self.format
    }
}

impl Versioned for SimRecord {
    fn format(&self) -> u32 {
        self.format
    }
}

/// One `kairos profile --overhead` run as stored: its overhead.json, and
/// the campaign's note on what else ran on the host.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OverheadRecord {
    /// [`RECORD_FORMAT`] of the writer.
    pub format: u32,
    /// What the run measured.
    pub report: OverheadReport,
    /// What else ran on the host, and how to read the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<String>,
}

impl Versioned for OverheadRecord {
    fn format(&self) -> u32 {
        self.format
    }
}

/// Which of the reliability campaigns a soak run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SoakKind {
    /// The long soak: many hops, no fault.
    Soak,
    /// Hops with a fault injected into each.
    Faults,
}

/// One `kairos soak` run as stored: its summary and every attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SoakRun {
    /// Which campaign.
    pub kind: SoakKind,
    /// summary.json.
    pub summary: SoakSummary,
    /// soak.csv, one row per migration attempt.
    pub attempts: Vec<CsvRow>,
}

/// A record of the reliability page: a soak run, or a line of the fuzzing
/// log (`build/fuzz/runs.txt`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReliabilityRecord {
    /// [`RECORD_FORMAT`] of the writer.
    pub format: u32,
    /// A soak run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soak: Option<SoakRun>,
    /// A fuzzing run, as scripts/fuzz.sh logged it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuzz_run: Option<String>,
}

impl Versioned for ReliabilityRecord {
    fn format(&self) -> u32 {
        self.format
    }
}

/// The latest `soak-*` run under `dir` (what `kairos soak --out DIR`
/// made), read from its summary.json and soak.csv.
pub fn latest_soak(dir: &Path, kind: SoakKind) -> Result<SoakRun> {
    let mut runs: Vec<std::path::PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_dir()
                && p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("soak-"))
        })
        .collect();
    runs.sort();
    let Some(run) = runs.pop() else {
        bail!("no soak run (soak-*) under {}", dir.display());
    };
    let summary_path = run.join("summary.json");
    let summary: SoakSummary = serde_json::from_str(
        &std::fs::read_to_string(&summary_path)
            .with_context(|| format!("reading {}", summary_path.display()))?,
    )
    .with_context(|| format!("{} is not a soak summary", summary_path.display()))?;
    let csv_path = run.join("soak.csv");
    let mut reader = csv::Reader::from_path(&csv_path)
        .with_context(|| format!("reading {}", csv_path.display()))?;
    let attempts = reader
        .deserialize()
        .collect::<std::result::Result<Vec<CsvRow>, _>>()
        .with_context(|| format!("{} has a malformed row", csv_path.display()))?;
    Ok(SoakRun {
        kind,
        summary,
        attempts,
    })
}

/// The overhead runs of a campaign folder (one sub-folder per workload,
/// each with its overhead.json), sorted by workload; a sub-folder without
/// one is an error naming it.
pub fn overhead_runs(dir: &Path, conditions: Option<&str>) -> Result<Vec<OverheadRecord>> {
    let mut records = Vec::new();
    let entries = std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
    for entry in entries {
        let path = entry?.path();
        if !path.is_dir() {
            continue;
        }
        let json = path.join("overhead.json");
        let text = std::fs::read_to_string(&json)
            .with_context(|| format!("reading {}", json.display()))?;
        let report: OverheadReport = serde_json::from_str(&text)
            .with_context(|| format!("{} is not an overhead report", json.display()))?;
        records.push(OverheadRecord {
            format: RECORD_FORMAT,
            report,
            conditions: conditions.map(String::from),
        });
    }
    if records.is_empty() {
        bail!("no overhead runs under {}", dir.display());
    }
    records.sort_by(|a, b| a.report.workload.cmp(&b.report.workload));
    Ok(records)
}

/// One line of `kairos sim --json` as stored: the set of programs it
/// belongs to, the code that simulated it, and either a run's summary or
/// a workload's forecast quality (`--forecast-quality`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SimRecord {
    /// [`RECORD_FORMAT`] of the writer.
    pub format: u32,
    /// The set's name (e.g. the generator's seed).
    pub set: String,
    /// The commit of the code that simulated it.
    pub code_commit: String,
    /// When it was packed, seconds since the Unix epoch.
    pub made_unix_s: u64,
    /// A run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<RunSummary>,
    /// A workload's forecast quality along its never-stop run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<QualityLine>,
}

/// `kairos sim --forecast-quality --json`'s line for one workload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QualityLine {
    /// The workload.
    pub workload: String,
    /// The downtime weight `predictive` decided under.
    pub downtime_weight: f64,
    /// The scores.
    pub forecast_quality: ForecastQuality,
}

/// The lines of a `kairos sim --json` output: run summaries and forecast
/// qualities (other lines are skipped); an error when there is no run.
pub fn sim_lines(path: &Path) -> Result<(Vec<RunSummary>, Vec<QualityLine>)> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let (mut rows, mut qualities) = (Vec::new(), Vec::new());
    for line in text.lines() {
        if let Ok(row) = serde_json::from_str::<RunSummary>(line) {
            rows.push(row);
        } else if let Ok(q) = serde_json::from_str::<QualityLine>(line) {
            qualities.push(q);
        }
    }
    if rows.is_empty() {
        bail!("{}: no kairos sim --json rows in it", path.display());
    }
    Ok((rows, qualities))
}

/// Write `records` to `path` (gzip JSON lines), atomically.
pub fn write<T: Serialize>(path: &Path, records: &[T]) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let tmp = path.with_extension("tmp");
    let file =
        std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let mut gz = GzEncoder::new(file, Compression::best());
    for record in records {
        serde_json::to_writer(&mut gz, record)?;
        gz.write_all(b"\n")?;
    }
    gz.finish()?.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))
}

/// Read the records of `path`; a record of another format, or a line that
/// does not read, is an error naming the line.
pub fn read<T: DeserializeOwned + Versioned>(path: &Path) -> Result<Vec<T>> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut records = Vec::new();
    for (i, line) in BufReader::new(GzDecoder::new(file)).lines().enumerate() {
        let line = line.with_context(|| format!("{}: line {}", path.display(), i + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let record: T = serde_json::from_str(&line).with_context(|| {
            format!(
                "{}: line {} is not a record of this kind",
                path.display(),
                i + 1
            )
        })?;
        if record.format() != RECORD_FORMAT {
            bail!(
                "{}: line {}: record format {} (this binary reads {RECORD_FORMAT})",
                path.display(),
                i + 1,
                record.format()
            );
        }
        records.push(record);
    }
    Ok(records)
}

/// The stamp of simulated runs, as a page states it: their code commits
/// (`` `c1`, `c2` ``) and the dates they were made (`d1, d2`).
pub fn sim_stamp(records: &[SimRecord]) -> (String, String) {
    stamp(
        records.iter().map(|r| r.code_commit.as_str()),
        records.iter().map(|r| r.made_unix_s),
    )
}

/// The stamp of any runs: their distinct code commits (`` `c1`, `c2` ``)
/// and the distinct UTC dates they were made on (`d1, d2`), sorted.
pub fn stamp<'a>(
    commits: impl Iterator<Item = &'a str>,
    made_unix_s: impl Iterator<Item = u64>,
) -> (String, String) {
    let commits: std::collections::BTreeSet<&str> = commits.collect();
    let dates: std::collections::BTreeSet<String> = made_unix_s.map(utc_date).collect();
    (
        commits
            .iter()
            .map(|c| format!("`{c}`"))
            .collect::<Vec<_>>()
            .join(", "),
        dates.into_iter().collect::<Vec<_>>().join(", "),
    )
}

/// The UTC date (`YYYY-MM-DD`) of `unix_s` seconds since the epoch.
pub fn utc_date(unix_s: u64) -> String {
    // Days to civil date (proleptic Gregorian), after H. Hinnant's method.
    let days = (unix_s / 86_400) as i64 + 719_468;
    let era = days.div_euclid(146_097);
    let doe = days.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// Live run records for the report tests.
#[cfg(test)]
pub(crate) mod test_support {
    use super::{RunRecord, RECORD_FORMAT};

    /// A completed-or-not live run of `workload` under `policy`: a plain
    /// run (limit 300 ms, maximum 1000 ms, weight 10, 3 rounds) with the
    /// fields of `overrides` (a JSON object of the result's fields) set.
    pub(crate) fn live_run(
        workload: &str,
        policy: &str,
        status: &str,
        total_ms: f64,
        downtime_ms: f64,
        overrides: serde_json::Value,
    ) -> RunRecord {
        let mut json = serde_json::json!({
            "workload": workload, "policy": policy, "status": status,
            "total_time_ms": total_ms, "downtime_ms": downtime_ms,
            "setup_time_ms": null, "transferred_bytes": 1, "rounds": 3,
            "action": null, "reason": null, "downtime_limit_ms": 300,
            "max_downtime_ms": 1000, "downtime_weight": 10.0,
            "guest_pause_ms": null, "ops_before": null, "ops_during": null,
            "ops_after": null, "verify_errors": 0, "app_loss_pct": null,
            "source_cpu_s": null, "trace": null, "rounds_dropped": 0,
            "work_dir": "", "link": "netns",
            "code_commit": "abc", "finished_unix_s": 1_796_533_424u64,
        });
        if let (Some(fields), Some(set)) = (json.as_object_mut(), overrides.as_object()) {
            for (key, value) in set {
                fields.insert(key.clone(), value.clone());
            }
        }
        RunRecord {
            format: RECORD_FORMAT,
            name: format!("{workload}__{policy}"),
            result: serde_json::from_value(json).unwrap(),
            trace_csv: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_unpacked_into_a_store_pack_back_the_same_and_a_stored_run_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let runs = dir.path().join("runs");
        let mut a = test_support::live_run(
            "w",
            "qemu@300",
            "completed",
            5000.0,
            200.0,
            serde_json::json!({}),
        );
        a.name = "w__qemu@300__1".into();
        a.trace_csv = Some("round,time_ms\n1,7\n".into());
        let mut b = test_support::live_run(
            "w",
            "predictive",
            "timed-out",
            120_000.0,
            0.0,
            serde_json::json!({}),
        );
        b.name = "w__predictive__1".into();
        let first = to_store(&[a.clone(), b.clone()], &runs).unwrap();
        assert_eq!(
            first,
            Unpacked {
                written: 2,
                kept: 0
            }
        );
        let (back, skipped) = from_store(&runs).unwrap();
        assert_eq!(skipped, 0);
        let names: Vec<_> = back.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["w__predictive__1", "w__qemu@300__1"]);
        assert_eq!(back[1].trace_csv.as_deref(), Some("round,time_ms\n1,7\n"));
        assert_eq!(back[0].trace_csv, None);
        assert_eq!(back[1].result.total_time_ms, Some(5000.0));
        // A second unpack of a changed record leaves the stored run alone.
        a.result.total_time_ms = Some(1.0);
        let again = to_store(&[a], &runs).unwrap();
        assert_eq!(
            again,
            Unpacked {
                written: 0,
                kept: 1
            }
        );
        let (back, _) = from_store(&runs).unwrap();
        assert_eq!(back[1].result.total_time_ms, Some(5000.0));
    }

    #[test]
    fn dates() {
        assert_eq!(utc_date(0), "1970-01-01");
        assert_eq!(utc_date(951_782_400), "2000-02-29");
        assert_eq!(utc_date(1_796_533_424), "2026-12-06");
    }

    #[test]
    fn overhead_runs_are_packed_and_read_back_and_a_folder_without_one_is_named() {
        use kairos_eval::advise::overhead::Overhead;
        let dir = tempfile::tempdir().unwrap();
        let report = OverheadReport {
            workload: "fio".into(),
            accel: "tcg".into(),
            window_s: 20.0,
            mode: "page-sampling".into(),
            overhead: Overhead {
                pairs: 5,
                ratio: 0.99,
                ratio_low: Some(0.98),
                ratio_high: Some(1.0),
                ratio_min: 0.97,
                off_ops_per_s: 100.0,
                on_ops_per_s: 99.0,
            },
            code_commit: "abc".into(),
            finished_unix_s: 1,
        };
        std::fs::create_dir(dir.path().join("fio")).unwrap();
        std::fs::write(
            dir.path().join("fio/overhead.json"),
            serde_json::to_string(&report).unwrap(),
        )
        .unwrap();
        let records = overhead_runs(dir.path(), Some("idle host")).unwrap();
        let packed = dir.path().join("runs.jsonl.gz");
        write(&packed, &records).unwrap();
        let back: Vec<OverheadRecord> = read(&packed).unwrap();
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].report, report);
        assert_eq!(back[0].conditions.as_deref(), Some("idle host"));
        std::fs::create_dir(dir.path().join("redis")).unwrap();
        let err = overhead_runs(dir.path(), None).unwrap_err();
        assert!(format!("{err:#}").contains("redis"), "{err:#}");
    }
}

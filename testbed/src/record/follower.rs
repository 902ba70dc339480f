//! One QEMU followed by `kairos record`: every migration it makes, seen
//! by polling `query-migrate`, its syncs read from `x-query-convergence`
//! while it runs, and written out when it ends.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::Value;

use super::metrics::Metrics;
use super::summary::MigrationRecord;
use crate::driver::Monitor;
use crate::live::qmp::QmpError;
use crate::live::rounds::RoundFeed;

/// `query-migrate` statuses of a migration that has not ended.
const RUNNING: &[&str] = &[
    "setup",
    "active",
    "pre-switchover",
    "device",
    "wait-unplug",
    "cancelling",
    "postcopy-active",
    "postcopy-paused",
    "postcopy-recover-setup",
    "postcopy-recover",
    "colo",
];

/// Whether `status` is that of a migration still running.
fn is_running(status: &str) -> bool {
    RUNNING.contains(&status)
}

/// What tells one ended migration from another in `query-migrate`: QEMU
/// reports only the status and the error of a failed or cancelled one, so
/// the policy's state (its sync count and forecast, kept until the next
/// migration starts) is part of it.
fn fingerprint(info: &Value) -> Value {
    serde_json::json!([
        info["status"],
        info["error-desc"],
        info["total-time"],
        info["downtime"],
        info["setup-time"],
        info["ram"]["transferred"],
        info["convergence"],
    ])
}

/// Why a poll failed.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    /// The QEMU's monitor failed (it is gone, or answered wrongly).
    #[error(transparent)]
    Monitor(#[from] QmpError),
    /// A migration's files could not be written (it is not counted).
    #[error("writing a migration's record: {0:#}")]
    Write(anyhow::Error),
}

/// A migration being recorded.
#[derive(Debug)]
struct Recording {
    index: u64,
    seen_start_unix_s: u64,
    feed: RoundFeed,
    /// The last `query-migrate` answer.
    last_info: Value,
}

/// One QEMU and what has been recorded of it.
#[derive(Debug)]
pub struct Follower {
    name: String,
    out_dir: PathBuf,
    recording: Option<Recording>,
    /// Migrations seen so far (numbering the folders).
    seen: u64,
    /// Migrations written.
    recorded: u64,
    /// The fingerprint of the ended migration seen at the last poll (None
    /// before the first poll of a connection): one that differs at the
    /// next poll started and ended between the two.
    last_ended: Option<Value>,
}

/// A migration written: its record and its folder.
pub type Written = (MigrationRecord, PathBuf);

impl Follower {
    /// A follower of the QEMU called `name`, writing under `out_dir/name`.
    pub fn new(name: &str, out_dir: &Path) -> Self {
        Self {
            name: name.to_string(),
            out_dir: out_dir.join(name),
            recording: None,
            seen: 0,
            recorded: 0,
            last_ended: None,
        }
    }

    /// The QEMU's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Migrations written so far.
    pub fn recorded(&self) -> u64 {
        self.recorded
    }

    /// One poll: start recording a migration that runs, read its new
    /// syncs, and write it out once it has ended. A migration that started
    /// and ended between two polls is recorded at the second (its syncs
    /// stay readable until the next one starts); one that ended before the
    /// connection's first poll is not. Returns what was written.
    pub fn poll(
        &mut self,
        monitor: &mut dyn Monitor,
        metrics: &Metrics,
        now_unix_s: u64,
    ) -> Result<Vec<Written>, PollError> {
        let info = monitor.execute("query-migrate", None)?;
        let status = info["status"].as_str().unwrap_or("none").to_string();
        let running = is_running(&status);
        let mut written = Vec::new();
        // A new policy (fewer syncs than read) means the migration being
        // recorded ended unseen and another started: two in one record
        // would mix their syncs.
        if let Some(recording) = &self.recording {
            let read = recording.feed.rounds.last().map_or(0, |r| r.observed);
            let now = info["convergence"]["rounds"].as_u64();
            if now.is_some_and(|n| n < read) {
                written.extend(self.finish("superseded", metrics)?);
            }
        }
        let ended_unseen = !running
            && status != "none"
            && self.recording.is_none()
            && self
                .last_ended
                .as_ref()
                .is_some_and(|before| *before != fingerprint(&info));
        if !running {
            self.last_ended = Some(fingerprint(&info));
        }
        if self.recording.is_none() && (running || ended_unseen) {
            self.seen += 1;
            self.recording = Some(Recording {
                index: self.seen,
                seen_start_unix_s: now_unix_s,
                feed: RoundFeed::default(),
                last_info: Value::Null,
            });
            metrics.started(&self.name);
        }
        let Some(recording) = self.recording.as_mut() else {
            return Ok(written);
        };
        if status == "none" {
            // A QEMU that has not migrated: the one recorded is gone (a
            // new QEMU on the same socket after a reconnect).
            written.extend(self.finish("source-gone", metrics)?);
            return Ok(written);
        }
        recording.last_info = info;
        let before = recording.feed.rounds.len();
        // No policy ran (off, or left to QEMU's rule): no syncs to read.
        if recording.feed.poll(monitor).is_ok() {
            let all = &recording.feed.rounds;
            metrics.synced(&self.name, all.len(), &all[before..]);
        }
        if !running {
            written.extend(self.finish(&status, metrics)?);
        }
        Ok(written)
    }

    /// The monitor failed: the migration being recorded stays open (a
    /// reconnect may find it still running, or ended), and the ended one
    /// seen is forgotten (the next connection's first poll is its new
    /// baseline).
    pub fn disconnected(&mut self) {
        self.last_ended = None;
    }

    /// The QEMU could not be reached again: a migration being recorded is
    /// written as it is, marked `source-gone` (libvirt ends the source
    /// QEMU once its migration completes; a plain QEMU that exited).
    pub fn gone(&mut self, metrics: &Metrics) -> Result<Vec<Written>, PollError> {
        self.finish("source-gone", metrics)
    }

    /// The recorder is stopping: a migration being recorded is written as
    /// it is, marked `interrupted`.
    pub fn interrupted(&mut self, metrics: &Metrics) -> Result<Vec<Written>, PollError> {
        self.finish("interrupted", metrics)
    }

    /// Write the migration being recorded (nothing when none is).
    fn finish(&mut self, status: &str, metrics: &Metrics) -> Result<Vec<Written>, PollError> {
        let Some(recording) = self.recording.take() else {
            return Ok(Vec::new());
        };
        let record = MigrationRecord::new(
            &self.name,
            recording.index,
            recording.seen_start_unix_s,
            status,
            &recording.last_info,
            &recording.feed.rounds,
            recording.feed.dropped,
        );
        metrics.ended(&record);
        let dir = self.out_dir.join(format!(
            "{:04}-{}",
            recording.index, recording.seen_start_unix_s
        ));
        write(&dir, &recording.feed, &record).map_err(PollError::Write)?;
        self.recorded += 1;
        Ok(vec![(record, dir)])
    }
}

fn write(dir: &Path, feed: &RoundFeed, record: &MigrationRecord) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    if !feed.rounds.is_empty() {
        feed.write_trace(&dir.join("trace.csv"))?;
    }
    let path = dir.join("record.json");
    let text = serde_json::to_string_pretty(record)?;
    std::fs::write(&path, text + "\n").with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::scripted::Scripted;
    use serde_json::json;

    fn statuses(f: &mut Follower, qemu: &mut Scripted, polls: u64) -> Vec<String> {
        let (metrics, _) = Metrics::registered();
        (0..polls)
            .flat_map(|t| f.poll(qemu, &metrics, 100 + t).unwrap())
            .map(|(r, _)| r.status)
            .collect()
    }

    #[test]
    fn a_migration_is_recorded_from_its_start_to_its_end_and_the_next_apart() {
        let dir = tempfile::tempdir().unwrap();
        let mut qemu = Scripted::with_statuses(&[
            "completed", // an old migration, before the recorder: not recorded
            "active",
            "active",
            "completed",
            "completed",
            "setup",
            "failed",
        ]);
        let mut f = Follower::new("vm1", dir.path());
        assert_eq!(statuses(&mut f, &mut qemu, 7), ["completed", "failed"]);
        assert_eq!(f.recorded(), 2);
        let first = dir.path().join("vm1/0001-101");
        assert!(first.join("record.json").is_file());
        // The scripted QEMU reports no syncs: no trace.
        assert!(!first.join("trace.csv").exists());
        assert!(dir.path().join("vm1/0002-105/record.json").is_file());
        // The syncs are asked for while it runs.
        assert!(qemu.count("x-query-convergence") >= 3);
    }

    #[test]
    fn a_migration_between_two_polls_is_recorded_and_an_old_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let ended = |t: u64| json!({ "status": "completed", "total-time": t });
        let failed =
            |rounds: u64| json!({ "status": "failed", "convergence": { "rounds": rounds } });
        let mut qemu = Scripted::default();
        // Two failed ones tell apart by their policy's state only.
        qemu.statuses = [
            ended(900),
            ended(900),
            ended(450),
            failed(3),
            failed(5),
            failed(5),
        ]
        .into();
        let mut f = Follower::new("vm1", dir.path());
        assert_eq!(
            statuses(&mut f, &mut qemu, 6),
            ["completed", "failed", "failed"]
        );
    }

    #[test]
    fn a_fresh_qemu_on_the_socket_is_not_a_migration() {
        let dir = tempfile::tempdir().unwrap();
        let mut qemu = Scripted::default();
        qemu.statuses = [json!({ "status": "completed" }), json!({})].into();
        let mut f = Follower::new("vm1", dir.path());
        assert!(statuses(&mut f, &mut qemu, 3).is_empty());
    }

    #[test]
    fn a_reconnect_goes_on_with_the_migration_it_left() {
        let dir = tempfile::tempdir().unwrap();
        let (metrics, _) = Metrics::registered();
        let mut qemu = Scripted::with_statuses(&["active", "completed"]);
        let mut f = Follower::new("vm1", dir.path());
        assert!(f.poll(&mut qemu, &metrics, 1).unwrap().is_empty());
        f.disconnected();
        // Reconnected: the same migration has ended meanwhile, once.
        let written = f.poll(&mut qemu, &metrics, 2).unwrap();
        assert_eq!(written.len(), 1);
        assert_eq!(written[0].0.status, "completed");
        assert!(f.poll(&mut qemu, &metrics, 3).unwrap().is_empty());
        assert_eq!(f.recorded(), 1);
    }

    fn sync(observed: u64) -> Value {
        json!({"observed": observed, "round": observed, "time": observed * 100,
            "dirtied-pages": 1, "pending": 4096, "transferred": 4096, "bandwidth": 1000,
            "page-size": 4096, "ram-size": 1 << 20, "action": "continue",
            "reason": "observing", "forecast-pending": 4096})
    }

    #[test]
    fn a_new_policy_under_way_ends_the_migration_it_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let (metrics, _) = Metrics::registered();
        let mut qemu = Scripted::default();
        let active =
            |rounds: u64| json!({ "status": "active", "convergence": { "rounds": rounds } });
        // Three syncs read of one migration; then QEMU's policy has seen
        // one: another migration started between two polls.
        qemu.statuses = [active(3), active(1)].into();
        qemu.answer(
            "x-query-convergence",
            &[
                json!({ "rounds": [sync(1), sync(2), sync(3)] }),
                json!({ "rounds": [] }),
            ],
        );
        let mut f = Follower::new("vm1", dir.path());
        assert!(f.poll(&mut qemu, &metrics, 1).unwrap().is_empty());
        let written = f.poll(&mut qemu, &metrics, 2).unwrap();
        assert_eq!(written.len(), 1);
        assert_eq!(
            (written[0].0.status.as_str(), written[0].0.syncs),
            ("superseded", 3)
        );
        // The new one is being recorded: stopping writes it.
        let stopped = f.interrupted(&metrics).unwrap();
        assert_eq!(stopped[0].0.status, "interrupted");
        assert_eq!(stopped[0].0.index, 2);
        assert!(f.gone(&metrics).unwrap().is_empty());
    }

    #[test]
    fn a_write_failure_is_told_apart_and_not_counted() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, "").unwrap();
        let (metrics, _) = Metrics::registered();
        let mut qemu = Scripted::with_statuses(&["active", "completed"]);
        // Its folder would be under a file: it cannot be made.
        let mut f = Follower::new("vm1", &blocker);
        assert!(f.poll(&mut qemu, &metrics, 1).unwrap().is_empty());
        let err = f.poll(&mut qemu, &metrics, 2).unwrap_err();
        assert!(matches!(err, PollError::Write(_)), "{err}");
        assert_eq!(f.recorded(), 0);
    }
}

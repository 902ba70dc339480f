//! One QEMU followed by `kairos record`: every migration it makes, seen
//! by polling `query-migrate`, its syncs read from `x-query-convergence`
//! while it runs, and written out when it ends.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::Value;

use super::metrics::Metrics;
use super::summary::MigrationRecord;
use crate::driver::Monitor;
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

/// A migration being recorded.
#[derive(Debug)]
struct Recording {
    index: u64,
    seen_start_unix_s: u64,
    feed: RoundFeed,
    /// The last `query-migrate` answer.
    last_info: Value,
}

/// What tells one ended migration from another in `query-migrate`.
fn fingerprint(info: &Value) -> Value {
    serde_json::json!([
        info["status"],
        info["total-time"],
        info["downtime"],
        info["setup-time"],
        info["ram"]["transferred"],
    ])
}

/// One QEMU and what has been recorded of it.
#[derive(Debug)]
pub struct Follower {
    name: String,
    out_dir: PathBuf,
    recording: Option<Recording>,
    recorded: u64,
    /// The fingerprint of the last ended migration seen (None before the
    /// first poll): one that differs at the next poll started and ended
    /// between the two.
    last_ended: Option<Value>,
}

impl Follower {
    /// A follower of the QEMU called `name`, writing under `out_dir/name`.
    pub fn new(name: &str, out_dir: &Path) -> Self {
        Self {
            name: name.to_string(),
            out_dir: out_dir.join(name),
            recording: None,
            recorded: 0,
            last_ended: None,
        }
    }

    /// The QEMU's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Migrations recorded so far.
    pub fn recorded(&self) -> u64 {
        self.recorded
    }

    /// One poll: start recording a migration that runs, read its new
    /// syncs, and write it out once it has ended (returned, with where).
    /// A migration that started and ended between two polls is recorded
    /// at the second (its syncs stay readable until the next starts).
    pub fn poll(
        &mut self,
        monitor: &mut dyn Monitor,
        metrics: &Metrics,
        now_unix_s: u64,
    ) -> Result<Option<(MigrationRecord, PathBuf)>> {
        let info = monitor.execute("query-migrate", None)?;
        let status = info["status"].as_str().unwrap_or("none").to_string();
        let ended_unseen = !is_running(&status)
            && self.recording.is_none()
            && self
                .last_ended
                .as_ref()
                .is_some_and(|before| *before != fingerprint(&info));
        if !is_running(&status) {
            // What was there before the first poll is not recorded.
            self.last_ended = Some(fingerprint(&info));
        }
        if self.recording.is_none() && (is_running(&status) || ended_unseen) {
            self.recording = Some(Recording {
                index: self.recorded + 1,
                seen_start_unix_s: now_unix_s,
                feed: RoundFeed::default(),
                last_info: Value::Null,
            });
            metrics.started(&self.name);
        }
        let Some(recording) = self.recording.as_mut() else {
            return Ok(None);
        };
        recording.last_info = info;
        read_syncs(monitor, &mut recording.feed, metrics, &self.name);
        if is_running(&status) {
            return Ok(None);
        }
        self.finish(&status, metrics).map(Some)
    }

    /// The monitor closed: a migration being recorded is written as it
    /// is, marked `source-gone` (libvirt ends the source QEMU once its
    /// migration completes; a plain QEMU that exited).
    pub fn source_gone(&mut self, metrics: &Metrics) -> Result<Option<(MigrationRecord, PathBuf)>> {
        if self.recording.is_none() {
            return Ok(None);
        }
        self.finish("source-gone", metrics).map(Some)
    }

    fn finish(&mut self, status: &str, metrics: &Metrics) -> Result<(MigrationRecord, PathBuf)> {
        let Some(recording) = self.recording.take() else {
            anyhow::bail!("no migration is being recorded");
        };
        self.recorded += 1;
        let record = MigrationRecord::new(
            &self.name,
            recording.index,
            recording.seen_start_unix_s,
            status,
            &recording.last_info,
            &recording.feed.rounds,
            recording.feed.dropped,
        );
        let dir = self.out_dir.join(format!(
            "{:04}-{}",
            recording.index, recording.seen_start_unix_s
        ));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        if !recording.feed.rounds.is_empty() {
            recording.feed.write_trace(&dir.join("trace.csv"))?;
        }
        let path = dir.join("record.json");
        let text = serde_json::to_string_pretty(&record)?;
        std::fs::write(&path, text + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
        metrics.ended(&record);
        Ok((record, dir))
    }
}

/// Read the syncs recorded since the last read. A QEMU whose policy did
/// not start (off, or left to QEMU's rule) has none: `x-query-convergence`
/// says no policy has run, and the migration is recorded without syncs.
fn read_syncs(monitor: &mut dyn Monitor, feed: &mut RoundFeed, metrics: &Metrics, name: &str) {
    let before = feed.rounds.len();
    if feed.poll(monitor).is_ok() {
        metrics.synced(name, feed.rounds.len(), &feed.rounds[before..]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::scripted::Scripted;
    use serde_json::json;

    #[test]
    fn a_migration_is_recorded_from_its_start_to_its_end_and_the_next_apart() {
        let dir = tempfile::tempdir().unwrap();
        let (metrics, _) = Metrics::registered();
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
        let mut ended = Vec::new();
        for t in 0..7 {
            if let Some((record, at)) = f.poll(&mut qemu, &metrics, 100 + t).unwrap() {
                ended.push((record, at));
            }
        }
        let statuses: Vec<&str> = ended.iter().map(|(r, _)| r.status.as_str()).collect();
        assert_eq!(statuses, ["completed", "failed"]);
        assert_eq!(ended[0].0.index, 1);
        assert_eq!(ended[0].0.seen_start_unix_s, 101);
        assert_eq!(ended[1].0.index, 2);
        assert!(ended[0].1.join("record.json").is_file());
        // The scripted QEMU reports no syncs: no trace, and none counted.
        assert!(!ended[0].1.join("trace.csv").exists());
        assert_eq!(ended[0].0.syncs, 0);
        assert_eq!(f.recorded(), 2);
        // Nothing is being recorded any more.
        assert!(f.source_gone(&metrics).unwrap().is_none());
        // The syncs are asked for while it runs, not after.
        assert!(qemu.count("x-query-convergence") >= 3);
    }

    #[test]
    fn a_migration_between_two_polls_is_recorded_and_an_old_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let (metrics, _) = Metrics::registered();
        let ended = |t: u64| json!({ "status": "completed", "total-time": t });
        let mut qemu = Scripted::default();
        qemu.statuses = [ended(900), ended(900), ended(450), ended(450)].into();
        let mut f = Follower::new("vm1", dir.path());
        let recorded: Vec<u64> = (0..4)
            .filter_map(|t| f.poll(&mut qemu, &metrics, t).unwrap())
            .map(|(r, _)| r.seen_start_unix_s)
            .collect();
        // The one of 450 ms ended between the second and third polls.
        assert_eq!(recorded, [2]);
    }

    #[test]
    fn a_source_that_goes_away_mid_migration_is_written_as_gone() {
        let dir = tempfile::tempdir().unwrap();
        let (metrics, _) = Metrics::registered();
        let mut qemu = Scripted::with_statuses(&["active"]);
        let mut f = Follower::new("vm1", dir.path());
        assert!(f.poll(&mut qemu, &metrics, 1).unwrap().is_none());
        let (record, _) = f.source_gone(&metrics).unwrap().unwrap();
        assert_eq!(record.status, "source-gone");
        assert!(f.source_gone(&metrics).unwrap().is_none());
    }
}

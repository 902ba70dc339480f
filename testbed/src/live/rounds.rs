//! Every sync of a live migration, as the patched QEMU's convergence policy
//! saw it: read from `x-query-convergence` while the migration runs (each
//! sync once), kept here, and written as a per-round trace (the format
//! `kairos replay` reads) when it ends. QEMU itself writes no file.

use std::path::Path;

use anyhow::{Context, Result};
use kairos_eval::trace::{TraceWriter, TracedDecision};
use kairos_policy_core::RoundObservation;
use serde::Deserialize;
use serde_json::json;

use crate::driver::Monitor;

/// One sync, as `x-query-convergence` reports it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct QmpRound {
    /// Syncs the policy had observed, this one included.
    pub observed: u64,
    /// QEMU's dirty-sync-count.
    pub round: u64,
    /// ms since the migration started.
    pub time: u64,
    /// Pages newly dirty at this sync.
    pub dirtied_pages: u64,
    /// Bytes left right after it.
    pub pending: u64,
    /// Bytes sent so far.
    pub transferred: u64,
    /// Bandwidth expected at switch-over, bytes/s.
    pub bandwidth: u64,
    /// Target page size.
    pub page_size: u64,
    /// Guest RAM, bytes.
    pub ram_size: u64,
    /// The policy's action.
    pub action: String,
    /// Why.
    pub reason: String,
    /// Bytes forecast to be left after the next sync.
    pub forecast_pending: u64,
    /// Cost of stopping at this sync, ms, when weighed.
    #[serde(default)]
    pub stop_cost: Option<u64>,
    /// Throttle the policy asked for at this sync, %.
    #[serde(default)]
    pub throttle_percentage: u8,
    /// The downtime whose worth of pages left the policy asked the next
    /// sync to come at, ms (0: QEMU's own threshold; absent before patch
    /// 13 of the series).
    #[serde(default)]
    pub sync_below: u64,
}

impl QmpRound {
    /// What a policy of the library would observe.
    pub fn observation(&self) -> RoundObservation {
        RoundObservation {
            round: self.round,
            elapsed_ms: self.time,
            dirtied_pages: self.dirtied_pages,
            pending_bytes: self.pending,
            sent_bytes: self.transferred,
            bandwidth_bytes_per_s: self.bandwidth as f64,
            page_size_bytes: self.page_size,
            ram_bytes: self.ram_size,
        }
    }
}

#[derive(Deserialize)]
struct History {
    rounds: Vec<QmpRound>,
}

/// The syncs read so far.
#[derive(Debug, Default)]
pub struct RoundFeed {
    /// Every sync read, oldest first.
    pub rounds: Vec<QmpRound>,
    /// Syncs QEMU's ring dropped before they were read.
    pub dropped: u64,
}

impl RoundFeed {
    /// Read the syncs QEMU has recorded since the last call; returns how
    /// many are new (they are at the end of `rounds`).
    pub fn poll(&mut self, qmp: &mut dyn Monitor) -> Result<usize> {
        let after = self.rounds.last().map_or(0, |r| r.observed);
        let reply = qmp.execute("x-query-convergence", Some(json!({ "after": after })))?;
        let history: History =
            serde_json::from_value(reply).context("x-query-convergence: unexpected reply")?;
        let mut expected = after + 1;
        for round in &history.rounds {
            self.dropped += round.observed.saturating_sub(expected);
            expected = round.observed + 1;
        }
        let new = history.rounds.len();
        self.rounds.extend(history.rounds);
        Ok(new)
    }

    /// Write the trace (`kairos replay`'s format, with the decision and
    /// reason columns).
    pub fn write_trace(&self, path: &Path) -> Result<()> {
        let file =
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
        let mut writer = TraceWriter::new(std::io::BufWriter::new(file))?;
        for r in &self.rounds {
            writer.write(
                &r.observation(),
                &TracedDecision {
                    action: &r.action,
                    reason: &r.reason,
                    throttle_pct: r.throttle_percentage,
                    sync_below_ms: r.sync_below as f64,
                },
            )?;
        }
        writer
            .finish()
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_qmp_round_reads_and_maps_to_an_observation() {
        let text = r#"{"observed": 3, "round": 3, "time": 4210, "dirtied-pages": 24010,
            "pending": 98344960, "transferred": 456213504, "bandwidth": 125000000,
            "page-size": 4096, "ram-size": 1073741824, "action": "stop-and-copy",
            "reason": "convergence-point", "forecast-pending": 97320960, "stop-cost": 9712,
            "sync-below": 0}"#;
        let r: QmpRound = serde_json::from_str(text).unwrap();
        let o = r.observation();
        assert_eq!(
            (o.round, o.elapsed_ms, o.pending_bytes),
            (3, 4210, 98_344_960)
        );
        assert_eq!(o.bandwidth_bytes_per_s, 125e6);
        assert_eq!(r.stop_cost, Some(9712));
    }
}

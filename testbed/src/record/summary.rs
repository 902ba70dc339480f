//! What `kairos record` writes for one migration besides its trace: how
//! it ended, what the policy said at every sync, and how far its forecast
//! of the next sync's pending bytes was from what came.

use kairos_eval::cell_stats::median;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::live::rounds::QmpRound;

/// The record format `kairos record` writes (`record.json`).
pub const MIGRATION_RECORD_FORMAT: u32 = 1;

/// One sync as the record keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncDecision {
    /// Syncs the policy had observed, this one included.
    pub observed: u64,
    /// ms since the migration started.
    pub time_ms: u64,
    /// Bytes left right after the sync.
    pub pending_bytes: u64,
    /// Bytes the policy forecast to be left after the next sync.
    pub forecast_pending_bytes: u64,
    /// Its action (`continue` in shadow mode: `observe` never acts).
    pub action: String,
    /// Why.
    pub reason: String,
}

/// How far the forecasts of the next sync's pending bytes were from the
/// pending bytes that sync reported (a sync without a forecast, which QEMU
/// reports as 0, is left out).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ForecastError {
    /// Syncs with a forecast and a next sync to judge it by.
    pub pairs: usize,
    /// Median of |forecast − actual| / actual over them (those with
    /// actual > 0; None when there is none).
    pub median_relative: Option<f64>,
    /// Mean of |forecast − actual|, bytes.
    pub mean_abs_bytes: f64,
}

impl ForecastError {
    /// The error of every sync's forecast against the next sync; None
    /// with fewer than two syncs.
    pub fn of(rounds: &[QmpRound]) -> Option<Self> {
        let pairs: Vec<(f64, f64)> = rounds
            .windows(2)
            // QEMU reports "no forecast" (the first sync's) as 0.
            .filter(|w| w[1].observed == w[0].observed + 1 && w[0].forecast_pending > 0)
            .map(|w| (w[0].forecast_pending as f64, w[1].pending as f64))
            .collect();
        if pairs.is_empty() {
            return None;
        }
        let median_relative = median(
            pairs
                .iter()
                .filter(|(_, actual)| *actual > 0.0)
                .map(|(forecast, actual)| (forecast - actual).abs() / actual),
        );
        let mean_abs_bytes =
            pairs.iter().map(|(f, a)| (f - a).abs()).sum::<f64>() / pairs.len() as f64;
        Some(Self {
            pairs: pairs.len(),
            median_relative,
            mean_abs_bytes,
        })
    }
}

/// One recorded migration (`record.json` beside its `trace.csv`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MigrationRecord {
    /// [`MIGRATION_RECORD_FORMAT`].
    pub format: u32,
    /// The QEMU it was recorded on, as named on the command line.
    pub target: String,
    /// Its number among the target's recorded migrations, from 1.
    pub index: u64,
    /// When the recorder saw it start, seconds since the Unix epoch.
    pub seen_start_unix_s: u64,
    /// How it ended: QEMU's status (`completed`, `failed`, `cancelled`),
    /// or `source-gone` when the monitor closed before it ended.
    pub status: String,
    /// QEMU's `total-time`, ms (absent when QEMU did not report it).
    pub total_time_ms: Option<u64>,
    /// QEMU's `downtime`, ms.
    pub downtime_ms: Option<u64>,
    /// QEMU's `setup-time`, ms.
    pub setup_time_ms: Option<u64>,
    /// Bytes of RAM sent (`ram.transferred`).
    pub transferred_bytes: Option<u64>,
    /// The policy QEMU ran (`observe` in shadow mode), None when none ran.
    pub policy: Option<String>,
    /// The escalation it had in force (patch 14 of the series).
    pub escalation: Option<String>,
    /// Syncs read.
    pub syncs: usize,
    /// Syncs QEMU's ring dropped before they were read.
    pub syncs_dropped: u64,
    /// Syncs at which the policy fell back to QEMU's rule (bad input or
    /// an internal error).
    pub fallback_syncs: usize,
    /// The forecast against what came.
    pub forecast_error: Option<ForecastError>,
    /// Every sync's decision.
    pub decisions: Vec<SyncDecision>,
}

impl MigrationRecord {
    /// The record of a migration that ended with `final_info` (the last
    /// `query-migrate` answer seen), from the syncs read.
    pub fn new(
        target: &str,
        index: u64,
        seen_start_unix_s: u64,
        status: &str,
        final_info: &Value,
        rounds: &[QmpRound],
        syncs_dropped: u64,
    ) -> Self {
        let number = |v: &Value| v.as_u64();
        let convergence = &final_info["convergence"];
        Self {
            format: MIGRATION_RECORD_FORMAT,
            target: target.to_string(),
            index,
            seen_start_unix_s,
            status: status.to_string(),
            total_time_ms: number(&final_info["total-time"]),
            downtime_ms: number(&final_info["downtime"]),
            setup_time_ms: number(&final_info["setup-time"]),
            transferred_bytes: number(&final_info["ram"]["transferred"]),
            policy: convergence["policy"].as_str().map(str::to_string),
            escalation: convergence["escalation"].as_str().map(str::to_string),
            syncs: rounds.len(),
            syncs_dropped,
            fallback_syncs: rounds.iter().filter(|r| is_fallback(r)).count(),
            forecast_error: ForecastError::of(rounds),
            decisions: rounds
                .iter()
                .map(|r| SyncDecision {
                    observed: r.observed,
                    time_ms: r.time,
                    pending_bytes: r.pending,
                    forecast_pending_bytes: r.forecast_pending,
                    action: r.action.clone(),
                    reason: r.reason.clone(),
                })
                .collect(),
        }
    }
}

/// Whether the policy fell back to QEMU's rule at this sync.
pub fn is_fallback(round: &QmpRound) -> bool {
    round.action == "fallback"
        || matches!(
            round.reason.as_str(),
            "bad-input-fallback" | "internal-error"
        )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn round(observed: u64, pending: u64, forecast: u64, action: &str) -> QmpRound {
        QmpRound {
            observed,
            round: observed,
            time: observed * 1000,
            dirtied_pages: 10,
            pending,
            transferred: observed * 1_000_000,
            bandwidth: 125_000_000,
            page_size: 4096,
            ram_size: 1 << 30,
            action: action.into(),
            reason: "observing".into(),
            forecast_pending: forecast,
            stop_cost: None,
            throttle_percentage: 0,
            sync_below: 0,
        }
    }

    #[test]
    fn each_forecast_is_judged_by_the_next_sync() {
        // Forecasts 100 and 300 against the next syncs' 200 and 300.
        let rounds = [
            round(1, 1000, 100, "continue"),
            round(2, 200, 300, "continue"),
            round(3, 300, 0, "continue"),
        ];
        let e = ForecastError::of(&rounds).unwrap();
        assert_eq!(e.pairs, 2);
        assert_eq!(e.median_relative, Some(0.25)); // (0.5 + 0) / 2
        assert_eq!(e.mean_abs_bytes, 50.0);
        // No forecast (0) is not judged.
        let first = [
            round(1, 1000, 0, "continue"),
            round(2, 200, 300, "continue"),
            round(3, 300, 0, "continue"),
        ];
        assert_eq!(ForecastError::of(&first).unwrap().pairs, 1);
        // A gap (a dropped sync) is not a pair.
        let gapped = [round(1, 10, 10, "continue"), round(3, 10, 10, "continue")];
        assert_eq!(ForecastError::of(&gapped), None);
    }

    #[test]
    fn a_record_reads_how_the_migration_ended_and_counts_fallbacks() {
        let info = json!({"status": "completed", "total-time": 5100, "downtime": 210,
            "setup-time": 12, "ram": {"transferred": 1234},
            "convergence": {"policy": "observe", "escalation": "none"}});
        let rounds = [
            round(1, 1000, 900, "continue"),
            round(2, 800, 700, "fallback"),
        ];
        let r = MigrationRecord::new("vm1", 1, 7, "completed", &info, &rounds, 0);
        assert_eq!(
            (r.total_time_ms, r.downtime_ms, r.transferred_bytes),
            (Some(5100), Some(210), Some(1234))
        );
        assert_eq!(r.policy.as_deref(), Some("observe"));
        assert_eq!(r.fallback_syncs, 1);
        assert_eq!(r.decisions.len(), 2);
        let without = MigrationRecord::new("vm1", 2, 7, "source-gone", &json!({}), &[], 0);
        assert_eq!((without.total_time_ms, without.policy), (None, None));
    }
}

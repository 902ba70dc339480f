//! The live oracle: from one long migration that never stops (the library's
//! `never-stop` policy with QEMU's downtime-limit at 1 ms, so QEMU's own
//! rule fires only if the guest stops writing; cancelled at a time cap),
//! what stopping at each
//! round would have cost, and the best stop in hindsight
//! (`kairos_policy_core::oracle`) under the downtime limit and under the
//! maximum downtime. Every run's regret is measured against it.
//!
//! QEMU 10 syncs when what is left falls below bandwidth × downtime-limit,
//! here once a round has (nearly) drained; a stop's downtime is the
//! pending bytes over the bandwidth QEMU measured in that round (device
//! state and the final handshake are not in it).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use kairos_policy_core::oracle::oracle_choice;
use kairos_policy_core::replay::stop_cost;
use kairos_policy_core::trace::{read_trace_file, TraceRow};
use kairos_policy_core::{build_policy, PolicyConfig, PolicyKind};
use serde::{Deserialize, Serialize};

/// Where the oracle stops under one downtime bound.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct OracleStop {
    /// The downtime bound it had to meet, ms.
    pub bound_ms: f64,
    /// The round it stops at.
    pub round: u64,
    /// Its total migration time, ms.
    pub total_time_ms: f64,
    /// Its downtime, ms.
    pub downtime_ms: f64,
    /// True when that downtime meets the bound (else it is within 10 % of
    /// the lowest reachable).
    pub meets_bound: bool,
}

/// The oracle of one workload: the best stop in hindsight under QEMU's
/// downtime limit (what `qemu` and `auto-converge` must meet) and under the
/// maximum downtime (what the library's policies may use).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LiveOracle {
    /// Workload name.
    pub workload: String,
    /// The never-stop trace it was computed from.
    pub trace: PathBuf,
    /// Rounds in that trace.
    pub trace_rounds: u64,
    /// How long that migration ran, s.
    pub trace_s: f64,
    /// The best stop with downtime within the downtime limit.
    pub at_limit: OracleStop,
    /// The best stop with downtime within the maximum downtime.
    pub at_max: OracleStop,
    /// The lowest downtime any round of the trace reaches, ms.
    pub lowest_downtime_ms: f64,
}

/// The oracle of `workload` from its never-stop trace.
pub fn oracle_from_trace(
    workload: &str,
    trace: &Path,
    downtime_limit_ms: f64,
    max_downtime_ms: f64,
) -> Result<LiveOracle> {
    let rows = read_trace_file(trace)?;
    let costs: Vec<_> = rows.iter().map(stop_cost).collect();
    let stop = |bound_ms: f64| -> Result<OracleStop> {
        let choice = oracle_choice(&costs, bound_ms)
            .filter(|c| c.stop.downtime_ms.is_finite())
            .with_context(|| {
                format!(
                    "{}: no round of the never-stop trace can be stopped at",
                    trace.display()
                )
            })?;
        Ok(OracleStop {
            bound_ms,
            round: choice.stop.round,
            total_time_ms: choice.stop.total_time_ms,
            downtime_ms: choice.stop.downtime_ms,
            meets_bound: choice.meets_limit,
        })
    };
    let lowest = costs
        .iter()
        .map(|c| c.downtime_ms)
        .fold(f64::INFINITY, f64::min);
    Ok(LiveOracle {
        workload: workload.to_string(),
        trace: trace.to_path_buf(),
        trace_rounds: rows.len() as u64,
        trace_s: rows
            .last()
            .map_or(0.0, |r| r.observation.elapsed_ms as f64 / 1000.0),
        at_limit: stop(downtime_limit_ms)?,
        at_max: stop(max_downtime_ms.max(downtime_limit_ms))?,
        lowest_downtime_ms: lowest,
    })
}

/// One round of the never-stop trace with `predictive`'s one-round-ahead
/// forecast of it (made the round before).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ForecastRow {
    /// Time of the sync, s.
    pub t_s: f64,
    /// Pending bytes after the sync, MB.
    pub pending_mb: f64,
    /// Forecast pending (expected, low, high), MB; None before the model
    /// was ready.
    pub forecast_mb: Option<(f64, f64, f64)>,
    /// Dirty rate seen in the round, MB/s.
    pub dirty_mb_per_s: f64,
    /// Forecast dirty rate, MB/s.
    pub forecast_dirty_mb_per_s: Option<f64>,
}

/// Feed every round of `rows` to a fresh `predictive` policy (its stop
/// decisions ignored) and pair each round with the forecast made before it.
pub fn forecast_along(rows: &[TraceRow], cfg: &PolicyConfig) -> Result<Vec<ForecastRow>> {
    let mut policy = build_policy(PolicyKind::Predictive, cfg)?;
    let mut out = Vec::with_capacity(rows.len());
    let mut previous: Option<(f64, kairos_policy_core::Forecast)> = None;
    for row in rows {
        let o = &row.observation;
        let t_s = o.elapsed_ms as f64 / 1000.0;
        let dt_s = previous.map_or(t_s, |p| t_s - p.0);
        let dirty_mb_per_s = if dt_s > 0.0 {
            o.dirtied_pages as f64 * o.page_size_bytes as f64 / dt_s / 1e6
        } else {
            0.0
        };
        let forecast = previous.map(|p| p.1);
        out.push(ForecastRow {
            t_s,
            pending_mb: o.pending_bytes as f64 / 1e6,
            forecast_mb: forecast.and_then(|f| {
                f.next().map(|p| {
                    (
                        p.pending_bytes / 1e6,
                        p.pending_lo_bytes / 1e6,
                        p.pending_hi_bytes / 1e6,
                    )
                })
            }),
            dirty_mb_per_s,
            forecast_dirty_mb_per_s: forecast
                .filter(|f| f.len > 0)
                .map(|f| f.dirty_rate_bytes_per_s / 1e6),
        });
        let decision = policy.observe(o);
        previous = Some((t_s, decision.forecast));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_trace(rows: &[(u64, u64, u64, u64)]) -> tempfile::NamedTempFile {
        use std::io::Write;
        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(f, "round,time_ms,dirtied_pages,pending_bytes,sent_bytes,bandwidth_bytes_per_s,page_size,ram_bytes").unwrap();
        for (round, time_ms, pending, bw) in rows {
            writeln!(f, "{round},{time_ms},1000,{pending},0,{bw},4096,1073741824").unwrap();
        }
        f
    }

    #[test]
    fn oracle_stops_at_the_first_round_meeting_the_limit() {
        // 100 MB/s: 50 MB pending is 500 ms, 20 MB is 200 ms.
        let f = write_trace(&[
            (1, 0, 1_000_000_000, 0),
            (2, 10_000, 50_000_000, 100_000_000),
            (3, 11_000, 20_000_000, 100_000_000),
            (4, 12_000, 10_000_000, 100_000_000),
        ]);
        let o = oracle_from_trace("w", f.path(), 300.0, 1000.0).unwrap();
        assert_eq!(o.at_limit.round, 3);
        assert!(o.at_limit.meets_bound);
        assert!((o.at_limit.downtime_ms - 200.0).abs() < 1e-9);
        assert!((o.at_limit.total_time_ms - 11_200.0).abs() < 1e-9);
        // Within 1000 ms, round 2 (500 ms) already does.
        assert_eq!(o.at_max.round, 2);
        assert!((o.at_max.total_time_ms - 10_500.0).abs() < 1e-9);
        assert!((o.lowest_downtime_ms - 100.0).abs() < 1e-9);
        assert_eq!(o.trace_rounds, 4);
    }

    #[test]
    fn a_trace_without_bandwidth_has_no_oracle() {
        let f = write_trace(&[(1, 0, 1_000_000_000, 0)]);
        assert!(oracle_from_trace("w", f.path(), 300.0, 1000.0).is_err());
    }
}

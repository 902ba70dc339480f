//! The live oracle: from one long migration that never stops (QEMU's rule
//! at a 1 ms downtime-limit, so it fires only if the guest stops writing,
//! with every sync recorded by the `observe` policy; cancelled at a time
//! cap), what stopping at each round would have cost; the best stop in
//! hindsight under any objective follows (`kairos_eval::oracle`). Every
//! run's regret is measured against it.
//!
//! QEMU 10 syncs when what is left falls below bandwidth × downtime-limit,
//! here once a round has (nearly) drained; a stop's downtime is the
//! pending bytes over the bandwidth QEMU expected at that sync (device
//! state and the final handshake are not in it).

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use kairos_eval::oracle::{lowest_downtime_ms, oracle_choice, OracleChoice, StopCost};
use kairos_eval::replay::stop_cost;
use kairos_eval::trace::{read_trace_file, TraceRow};
use kairos_policy_core::cost::Objective;
use kairos_policy_core::{build_policy, PolicyConfig, PolicyKind};
use serde::{Deserialize, Serialize};

/// Bytes in a MiB.
const MIB: f64 = 1048576.0;

/// The oracle of one workload: what stopping at each round of its
/// never-stop migration would have cost, from which the best stop in
/// hindsight under any objective follows.
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
    /// What stopping at each round (after the first) would have cost.
    pub stops: Vec<StopCost>,
    /// The lowest downtime any round of the trace reaches, ms.
    pub lowest_downtime_ms: f64,
}

impl LiveOracle {
    /// The best stop in hindsight under `objective` (None when no round's
    /// downtime is allowed).
    pub fn choice(&self, objective: &Objective) -> Option<OracleChoice> {
        oracle_choice(&self.stops, objective)
    }
}

/// The oracle of `workload` from its never-stop trace.
pub fn oracle_from_trace(workload: &str, trace: &Path) -> Result<LiveOracle> {
    let rows = read_trace_file(trace)?;
    // Round 1 is the sync at the start: all of RAM is pending.
    let stops: Vec<StopCost> = rows
        .iter()
        .skip(1)
        .map(stop_cost)
        .filter(|c| c.downtime_ms.is_finite())
        .collect();
    if stops.is_empty() {
        bail!(
            "{}: no round of the never-stop trace can be stopped at",
            trace.display()
        );
    }
    Ok(LiveOracle {
        workload: workload.to_string(),
        trace: trace.to_path_buf(),
        trace_rounds: rows.len() as u64,
        trace_s: rows
            .last()
            .map_or(0.0, |r| r.observation.elapsed_ms as f64 / 1000.0),
        lowest_downtime_ms: lowest_downtime_ms(&stops),
        stops,
    })
}

/// One round of the never-stop trace with `predictive`'s one-round-ahead
/// forecast of it (made the round before).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ForecastRow {
    /// Time of the sync, s.
    pub t_s: f64,
    /// Pending bytes after the sync, MiB.
    pub pending_mib: f64,
    /// Forecast pending (expected, low, high), MiB; None before the model
    /// was ready.
    pub forecast_mib: Option<(f64, f64, f64)>,
    /// Dirty rate seen in the round, MiB/s.
    pub dirty_mib_per_s: f64,
    /// Forecast dirty rate, MiB/s.
    pub forecast_dirty_mib_per_s: Option<f64>,
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
        let dirty_mib_per_s = if dt_s > 0.0 {
            o.dirtied_pages as f64 * o.page_size_bytes as f64 / dt_s / MIB
        } else {
            0.0
        };
        let forecast = previous.map(|p| p.1);
        out.push(ForecastRow {
            t_s,
            pending_mib: o.pending_bytes as f64 / MIB,
            forecast_mib: forecast.and_then(|f| {
                f.next().map(|p| {
                    (
                        p.pending_bytes / MIB,
                        p.pending_lo_bytes / MIB,
                        p.pending_hi_bytes / MIB,
                    )
                })
            }),
            dirty_mib_per_s,
            forecast_dirty_mib_per_s: forecast
                .filter(|f| f.len > 0)
                .map(|f| f.dirty_rate_bytes_per_s / MIB),
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
    fn the_oracle_is_the_cheapest_round_at_any_weight() {
        // 100 MB/s: 50 MB pending is 500 ms, 20 MB is 200 ms.
        let f = write_trace(&[
            (1, 0, 1_000_000_000, 0),
            (2, 10_000, 50_000_000, 100_000_000),
            (3, 11_000, 20_000_000, 100_000_000),
            (4, 12_000, 10_000_000, 100_000_000),
        ]);
        let o = oracle_from_trace("w", f.path()).unwrap();
        let objective = |w| Objective {
            downtime_limit_ms: 300.0,
            max_downtime_ms: 1000.0,
            downtime_weight: w,
        };
        // λ = ∞: the first round meeting the limit (round 3: 11.2 s).
        let at_limit = o.choice(&objective(f64::INFINITY)).unwrap();
        assert_eq!(at_limit.stop.round, 3);
        assert!((at_limit.stop.total_time_ms - 11_200.0).abs() < 1e-9);
        // λ = 0: the first within the maximum (round 2, 500 ms).
        let at_max = o.choice(&objective(0.0)).unwrap();
        assert_eq!(at_max.stop.round, 2);
        assert!((at_max.cost_ms - 10_500.0).abs() < 1e-9);
        // λ = 10: round 2 costs 10.5 + 2 s, round 3 11.2 s.
        assert_eq!(o.choice(&objective(10.0)).unwrap().stop.round, 3);
        assert!((o.lowest_downtime_ms - 100.0).abs() < 1e-9);
        assert_eq!(o.trace_rounds, 4);
    }

    #[test]
    fn a_trace_without_bandwidth_has_no_oracle() {
        let f = write_trace(&[(1, 0, 1_000_000_000, 0)]);
        assert!(oracle_from_trace("w", f.path()).is_err());
    }
}

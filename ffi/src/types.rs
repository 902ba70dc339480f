//! The plain C structs of the ABI. The enums that cross it (action, reason,
//! model, non-convergence action) are the policy core's own `#[repr(u32)]`
//! enums, exported under `Kairos*` names by cbindgen, so their values and
//! names have one source.

use std::os::raw::c_char;

use kairos_policy_core::{Action, Decision, ModelKind, Reason, RoundObservation};

pub use kairos_policy_core::{
    Action as KairosAction, Escalation as KairosEscalation, ModelKind as KairosModel,
    NonConvergenceAction as KairosNonConvergenceAction, Reason as KairosReason,
};

/// Configuration of a policy. Fill it with kairos_config_default() first,
/// then change what you need.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct KairosConfig {
    /// Policy name: "qemu", "xen", "nova", "kubevirt-stall",
    /// "kubevirt-ramp", "predictive" or "observe" (NUL-terminated).
    pub policy: *const c_char,
    /// QEMU's downtime limit (L), ms.
    pub downtime_limit_ms: f64,
    /// Hard maximum downtime the user accepts (M), ms (>= the limit).
    pub max_downtime_ms: f64,
    /// Downtime weight λ: ms of migration time one ms of downtime beyond the
    /// limit is worth; a stop costs T + λ·max(0, D − L). In [0, 1e6].
    pub downtime_weight: f64,
    /// Safety cap on sync rounds.
    pub max_rounds: u64,
    /// Safety cap on migration time, ms.
    pub max_elapsed_ms: u64,
    /// Safety cap on bytes sent, as a multiple of guest RAM.
    pub max_sent_ram_multiple: f64,
    /// Forecast horizon, rounds (1..=8).
    pub horizon_rounds: u32,
    /// After forecasting non-convergence: a KairosNonConvergenceAction
    /// value (a plain integer here, so any value C stores is checked).
    pub non_convergence_action: u32,
    /// Rounds kept in the policy's history ring for kairos_policy_history()
    /// (allocated once, at creation; 1..=65536).
    pub history_rounds: u32,
    /// What escalation may do once nothing fits the maximum: a
    /// KairosEscalation value (checked like non_convergence_action).
    pub escalation: u32,
    /// The highest throttle escalation may ask for, % (1..=99; QEMU's
    /// max-cpu-throttle).
    pub max_throttle_pct: u32,
}

/// One dirty-bitmap sync round.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct KairosRound {
    /// Sync round number, 1 for the sync at the start.
    pub round: u64,
    /// Time since the migration started, ms.
    pub elapsed_ms: u64,
    /// Pages newly found dirty by this sync.
    pub dirtied_pages: u64,
    /// Bytes still to send right after this sync.
    pub pending_bytes: u64,
    /// Bytes sent since the migration started.
    pub sent_bytes: u64,
    /// Measured bandwidth, bytes per second.
    pub bandwidth_bytes_per_s: f64,
    /// Target page size, bytes.
    pub page_size_bytes: u64,
    /// Guest RAM, bytes.
    pub ram_bytes: u64,
}

impl From<&KairosRound> for RoundObservation {
    fn from(round: &KairosRound) -> Self {
        RoundObservation {
            round: round.round,
            elapsed_ms: round.elapsed_ms,
            dirtied_pages: round.dirtied_pages,
            pending_bytes: round.pending_bytes,
            sent_bytes: round.sent_bytes,
            bandwidth_bytes_per_s: round.bandwidth_bytes_per_s,
            page_size_bytes: round.page_size_bytes,
            ram_bytes: round.ram_bytes,
        }
    }
}

/// The latest decision and the forecast behind it, as query-migrate shows.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KairosState {
    /// Rounds observed since creation or the last reset.
    pub rounds_observed: u64,
    /// The latest action.
    pub action: Action,
    /// Why.
    pub reason: Reason,
    /// Model behind the forecast.
    pub model: ModelKind,
    /// Detected workload period, rounds (0 = none).
    pub period_rounds: u32,
    /// The throttle the policy wants in force from now on, % of the guest's
    /// CPU time (0: none; a lower value than before lowers it, 0 releases
    /// it).
    pub throttle_pct: u32,
    /// Downtime limit in force, ms.
    pub downtime_limit_ms: f64,
    /// Pending bytes forecast for the next round (0 when none).
    pub forecast_pending_bytes: f64,
    /// Lower end of its interval.
    pub forecast_pending_lo_bytes: f64,
    /// Upper end of its interval.
    pub forecast_pending_hi_bytes: f64,
    /// Forecast dirty (page-touch) rate, bytes per second.
    pub forecast_dirty_rate_bytes_per_s: f64,
    /// Estimated writable working set, bytes.
    pub wws_bytes: f64,
    /// Cost of stopping now under the objective, ms (NaN when not weighed).
    pub stop_cost_ms: f64,
    /// Expected cost of the best later stop, ms (NaN when not weighed,
    /// +inf when no later stop is expected to be allowed).
    pub wait_cost_ms: f64,
    /// The dirty-rate limit the policy wants in force from now on, bytes
    /// per second for the whole guest (0: none; only with
    /// `KAIROS_ESCALATION_DIRTY_LIMIT`, which leaves `throttle_pct` at 0).
    /// QEMU gives each vCPU an even share of it.
    pub dirty_limit_bytes_per_s: f64,
    /// Ask again mid-pass: sync the dirty bitmap (and observe a round) as
    /// soon as the unsent rest of the pass is below the bandwidth × this
    /// many ms, when that is above QEMU's own threshold (bandwidth ×
    /// `downtime_limit_ms`); 0: at QEMU's own threshold. Set while the
    /// policy waits for a cheaper stop: the downtime at which stopping
    /// would cost no more than the stop it waits for.
    pub sync_below_ms: f64,
}

impl Default for KairosState {
    fn default() -> Self {
        Self {
            rounds_observed: 0,
            action: Action::Continue,
            reason: Reason::None,
            model: ModelKind::None,
            period_rounds: 0,
            throttle_pct: 0,
            downtime_limit_ms: 0.0,
            forecast_pending_bytes: 0.0,
            forecast_pending_lo_bytes: 0.0,
            forecast_pending_hi_bytes: 0.0,
            forecast_dirty_rate_bytes_per_s: 0.0,
            wws_bytes: 0.0,
            stop_cost_ms: f64::NAN,
            wait_cost_ms: f64::NAN,
            dirty_limit_bytes_per_s: 0.0,
            sync_below_ms: 0.0,
        }
    }
}

impl KairosState {
    /// The state after `rounds_observed` rounds, the last decided by
    /// `decision` (reported as `action`/`reason`, which differ from the
    /// decision's when the library fell back).
    pub fn after(
        rounds_observed: u64,
        action: Action,
        reason: Reason,
        decision: &Decision,
    ) -> Self {
        let f = &decision.forecast;
        let next = f.next().copied().unwrap_or_default();
        Self {
            rounds_observed,
            action,
            reason,
            model: f.model,
            period_rounds: f.period_rounds,
            throttle_pct: u32::from(decision.throttle_pct),
            downtime_limit_ms: decision.downtime_limit_ms,
            forecast_pending_bytes: next.pending_bytes,
            forecast_pending_lo_bytes: next.pending_lo_bytes,
            forecast_pending_hi_bytes: next.pending_hi_bytes,
            forecast_dirty_rate_bytes_per_s: f.dirty_rate_bytes_per_s,
            wws_bytes: f.wws_bytes,
            stop_cost_ms: decision.stop_cost_ms,
            wait_cost_ms: decision.wait_cost_ms,
            dirty_limit_bytes_per_s: decision.dirty_limit_bytes_per_s,
            sync_below_ms: decision.sync_below_ms,
        }
    }
}

/// One round of the history: what the policy saw and what it said.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct KairosRecord {
    /// The round as it was observed.
    pub round: KairosRound,
    /// The state right after it.
    pub state: KairosState,
}

/// Copy `text` into a fixed C string buffer, truncating, NUL-terminated.
pub fn copy_c_string(text: &str, out: &mut [c_char]) {
    let n = text.len().min(out.len().saturating_sub(1));
    for (dst, src) in out.iter_mut().zip(text.as_bytes()[..n].iter()) {
        *dst = *src as c_char;
    }
    if let Some(end) = out.get_mut(n) {
        *end = 0;
    }
}

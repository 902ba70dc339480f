//! The plain C structs and enums of the ABI.

use std::os::raw::c_char;

use kairos_policy_core::{Action, Reason};

/// What the migration thread should do after this round.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KairosAction {
    /// Keep iterating pre-copy.
    Continue = 0,
    /// Pause the guest and copy what is left now.
    StopAndCopy = 1,
    /// Ask for help converging: throttle the guest or switch to post-copy.
    Escalate = 2,
    /// Cancel the migration (only the Nova/KubeVirt emulations say this).
    Abort = 3,
    /// The library could not judge this round (bad input, NULL, or an
    /// internal error): apply your own rule.
    Fallback = 4,
}

impl From<Action> for KairosAction {
    fn from(a: Action) -> Self {
        match a {
            Action::Continue => KairosAction::Continue,
            Action::StopAndCopy => KairosAction::StopAndCopy,
            Action::Escalate => KairosAction::Escalate,
            Action::Abort => KairosAction::Abort,
        }
    }
}

/// Why the policy answered what it did (see docs/design.md).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KairosReason {
    /// Nothing observed yet.
    None = 0,
    /// Too little history to forecast.
    Warmup = 1,
    /// Pending fits the downtime limit in force.
    BelowThreshold = 2,
    /// Pending does not fit the downtime limit yet.
    AboveThreshold = 3,
    /// Pending keeps falling or the limit is forecast to be met soon.
    Converging = 4,
    /// A meaningfully lower point is forecast: waiting for it.
    TroughAhead = 5,
    /// No lower point is forecast and the downtime fits the maximum.
    ConvergencePoint = 6,
    /// The workload repeats and this round is its lowest point.
    TroughNow = 7,
    /// No forecast point fits the hard maximum downtime.
    NoConvergenceForecast = 8,
    /// A safety cap (rounds, time or bytes) was reached.
    SafetyCap = 9,
    /// The round's input was invalid.
    BadInputFallback = 10,
    /// The policy's own iteration cap.
    IterationCap = 11,
    /// The policy's own sent-bytes cap.
    SentBytesCap = 12,
    /// A completion timeout fired.
    CompletionTimeout = 13,
    /// Stall detected, at its local minimum.
    StallLocalMinimum = 14,
    /// Stall detected, downtime hopelessly above the maximum.
    StallHopeless = 15,
    /// Remaining bytes did not fall for too long.
    ProgressTimeout = 16,
    /// The policy never stops by design.
    NeverStop = 17,
    /// The library hit an internal error and now always answers fallback.
    InternalError = 18,
}

impl From<Reason> for KairosReason {
    fn from(r: Reason) -> Self {
        match r {
            Reason::Warmup => KairosReason::Warmup,
            Reason::BelowThreshold => KairosReason::BelowThreshold,
            Reason::AboveThreshold => KairosReason::AboveThreshold,
            Reason::Converging => KairosReason::Converging,
            Reason::TroughAhead => KairosReason::TroughAhead,
            Reason::ConvergencePoint => KairosReason::ConvergencePoint,
            Reason::TroughNow => KairosReason::TroughNow,
            Reason::NoConvergenceForecast => KairosReason::NoConvergenceForecast,
            Reason::SafetyCap => KairosReason::SafetyCap,
            Reason::BadInputFallback => KairosReason::BadInputFallback,
            Reason::IterationCap => KairosReason::IterationCap,
            Reason::SentBytesCap => KairosReason::SentBytesCap,
            Reason::CompletionTimeout => KairosReason::CompletionTimeout,
            Reason::StallLocalMinimum => KairosReason::StallLocalMinimum,
            Reason::StallHopeless => KairosReason::StallHopeless,
            Reason::ProgressTimeout => KairosReason::ProgressTimeout,
            Reason::NeverStop => KairosReason::NeverStop,
        }
    }
}

/// Configuration of a policy. Fill it with kairos_config_default() first,
/// then change what you need.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct KairosConfig {
    /// Policy name: "qemu", "xen", "nova", "kubevirt-stall",
    /// "kubevirt-ramp", "predictive" or "never-stop" (NUL-terminated).
    pub policy: *const c_char,
    /// QEMU's downtime limit, ms.
    pub downtime_limit_ms: f64,
    /// Hard maximum downtime the user accepts, ms (>= the limit).
    pub max_downtime_ms: f64,
    /// Safety cap on sync rounds.
    pub max_rounds: u64,
    /// Safety cap on migration time, ms.
    pub max_elapsed_ms: u64,
    /// Safety cap on bytes sent, as a multiple of guest RAM.
    pub max_sent_ram_multiple: f64,
    /// Forecast horizon, rounds (1..=8).
    pub horizon_rounds: u32,
    /// After forecasting non-convergence: 0 = escalate, 1 = stop at the best
    /// point even above the maximum, 2 = keep going.
    pub non_convergence_action: u32,
}

/// One dirty-bitmap sync round.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
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

/// The latest decision and the forecast behind it, as query-migrate shows.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct KairosState {
    /// Rounds observed since creation or the last reset.
    pub rounds_observed: u64,
    /// The latest action.
    pub action: KairosAction,
    /// Why.
    pub reason: KairosReason,
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
    /// Detected workload period, rounds (0 = none).
    pub period_rounds: u32,
    /// Model behind the forecast, NUL-terminated (e.g. "arima-ons").
    pub model: [c_char; 24],
}

impl Default for KairosState {
    fn default() -> Self {
        Self {
            rounds_observed: 0,
            action: KairosAction::Continue,
            reason: KairosReason::None,
            downtime_limit_ms: 0.0,
            forecast_pending_bytes: 0.0,
            forecast_pending_lo_bytes: 0.0,
            forecast_pending_hi_bytes: 0.0,
            forecast_dirty_rate_bytes_per_s: 0.0,
            wws_bytes: 0.0,
            period_rounds: 0,
            model: [0; 24],
        }
    }
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

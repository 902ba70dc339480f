//! What the policy says: an action, the reason for it, and the forecast used.

use crate::names::names;

/// Longest forecast horizon, in rounds, a policy can be configured with.
pub const MAX_HORIZON_ROUNDS: usize = 8;

/// What the migration thread should do after this round.
///
/// The values are those of the C ABI (`KairosAction`).
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Keep iterating pre-copy.
    Continue = 0,
    /// Pause the guest and copy what is left now.
    StopAndCopy = 1,
    /// Switch to post-copy now (the escalation `predictive` chooses when no
    /// stop fits the maximum and post-copy is expected to cost the guest
    /// less than throttling; auto-converge's emulation and the operator
    /// policies' emulations use it too). A throttle is not an action: it is
    /// `Decision::throttle_pct`, in force alongside any action.
    Escalate = 2,
    /// Give up: cancel the migration, the guest keeps running on the source.
    /// Only the emulations of operator policies that abort (Nova, KubeVirt)
    /// answer this.
    Abort = 3,
    /// The policy could not judge this round (invalid input, or an internal
    /// error): the caller's own rule applies.
    Fallback = 4,
}

names!(Action, "action" {
    Continue => "continue",
    StopAndCopy => "stop-and-copy",
    Escalate => "escalate",
    Abort => "abort",
    Fallback => "fallback",
});

/// Why the policy answered what it did.
///
/// The values are those of the C ABI (`KairosReason`).
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// No round observed yet.
    None = 0,
    /// Too little history to forecast; following QEMU's rule meanwhile.
    Warmup = 1,
    /// Pending fits the downtime limit in force (QEMU's rule).
    BelowThreshold = 2,
    /// Pending does not fit the downtime limit in force yet.
    AboveThreshold = 3,
    /// A stop meeting the downtime limit is expected soon enough to be worth
    /// the wait.
    Converging = 4,
    /// A cheaper stop (time plus weighted excess downtime) is expected
    /// within the horizon: wait for it.
    TroughAhead = 5,
    /// No stop within the horizon is expected to be cheaper than now, and
    /// the downtime fits the hard maximum: this is the convergence point.
    ConvergencePoint = 6,
    /// The workload repeats and this round is at the bottom of its cycle.
    TroughNow = 7,
    /// No forecast point fits the hard maximum downtime.
    NoConvergenceForecast = 8,
    /// A safety cap (rounds, time or bytes sent) was reached: stop if the
    /// stop fits the maximum, abort otherwise.
    SafetyCap = 9,
    /// The observation was invalid; the answer is QEMU's own rule.
    BadInputFallback = 10,
    /// The policy's own round or iteration cap (e.g. Xen's 29 iterations).
    IterationCap = 11,
    /// The policy's own sent-bytes cap relative to RAM (Xen).
    SentBytesCap = 12,
    /// A completion timeout fired (Nova, KubeVirt).
    CompletionTimeout = 13,
    /// A stall was detected and this round is near its local minimum
    /// (KubeVirt VEP 248).
    StallLocalMinimum = 14,
    /// A stall was detected and the downtime is hopelessly above the maximum
    /// (KubeVirt VEP 248 aborts).
    StallHopeless = 15,
    /// The progress timeout fired: remaining bytes did not fall for too long.
    ProgressTimeout = 16,
    /// The policy only observes: it never asks to stop (the caller's own
    /// rule decides; used to record traces).
    Observing = 17,
    /// The policy failed internally; from then on the caller's own rule
    /// applies.
    InternalError = 18,
    /// No stop fits the maximum at the guest's own pace: the guest is
    /// throttled by the share the forecast says makes one fit within a round
    /// or two.
    Throttling = 19,
    /// Stopping now fits the maximum and no cheaper stop is forecast, but
    /// a regime change is likely enough, and would save enough, to wait
    /// another round (within the ski-rental bound).
    Hedging = 20,
}

names!(Reason, "reason" {
    None => "none",
    Warmup => "warmup",
    BelowThreshold => "below-threshold",
    AboveThreshold => "above-threshold",
    Converging => "converging",
    TroughAhead => "trough-ahead",
    ConvergencePoint => "convergence-point",
    TroughNow => "trough-now",
    NoConvergenceForecast => "no-convergence-forecast",
    SafetyCap => "safety-cap",
    BadInputFallback => "bad-input-fallback",
    IterationCap => "iteration-cap",
    SentBytesCap => "sent-bytes-cap",
    CompletionTimeout => "completion-timeout",
    StallLocalMinimum => "stall-local-minimum",
    StallHopeless => "stall-hopeless",
    ProgressTimeout => "progress-timeout",
    Observing => "observing",
    InternalError => "internal-error",
    Throttling => "throttling",
    Hedging => "hedging",
});

/// Which forecasting model produced a forecast.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ModelKind {
    /// No model had enough history.
    #[default]
    None = 0,
    /// Last value.
    Naive = 1,
    /// Mean of a sliding window.
    MovingAverage = 2,
    /// Simple exponential smoothing.
    Ses = 3,
    /// Holt's linear trend with damping.
    HoltDamped = 4,
    /// Online ARIMA, Online Newton Step update.
    ArimaOns = 5,
    /// Online ARIMA, online gradient descent update.
    ArimaOgd = 6,
    /// Value one detected period ago.
    SeasonalNaive = 7,
}

names!(ModelKind, "model" {
    None => "none",
    Naive => "naive",
    MovingAverage => "moving-average",
    Ses => "ses",
    HoltDamped => "holt-damped",
    ArimaOns => "arima-ons",
    ArimaOgd => "arima-ogd",
    SeasonalNaive => "seasonal-naive",
});

/// Pending bytes forecast for one future round, with its interval.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ForecastPoint {
    /// Expected pending bytes right after that round's sync.
    pub pending_bytes: f64,
    /// Lower end of the prediction interval.
    pub pending_lo_bytes: f64,
    /// Upper end of the prediction interval.
    pub pending_hi_bytes: f64,
    /// When that sync is expected, ms from now.
    pub offset_ms: f64,
    /// Dirty rate that round is expected to show: bytes newly dirty at its
    /// sync over its length, bytes per second.
    pub dirty_rate_bytes_per_s: f64,
}

/// The forecast a decision was based on: pending bytes for the next rounds.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Forecast {
    /// Points for rounds +1 ..= +`len`; entries past `len` are zero.
    pub points: [ForecastPoint; MAX_HORIZON_ROUNDS],
    /// Number of valid points (0 when no model was ready).
    pub len: usize,
    /// Model that produced the dirty-rate forecast behind the points.
    pub model: ModelKind,
    /// Forecast page-touch (dirty) rate for the next round, bytes per second.
    pub dirty_rate_bytes_per_s: f64,
    /// Estimated writable working set, bytes.
    pub wws_bytes: f64,
    /// Period of the workload in rounds, 0 when none was detected.
    pub period_rounds: u32,
}

impl Forecast {
    /// The valid points.
    pub fn points(&self) -> &[ForecastPoint] {
        &self.points[..self.len]
    }

    /// The next round's point, if any.
    pub fn next(&self) -> Option<&ForecastPoint> {
        self.points().first()
    }
}

/// The longest a throttle asked for in [`Decision::throttle_pct`] may stop
/// the guest at a time, ns. QEMU's throttle runs each vCPU for a slice
/// (10 ms) and then sleeps it `p / (1 − p)` times as long: 990 ms at 99 %,
/// each sleep a stall the application sees like downtime. With this bound
/// QEMU shortens the slice wherever a sleep would be longer (down to the
/// 1 ms it accepts), so the guest loses the same share of time in shorter
/// stalls. 99 ms is what the 1 ms slice gives at QEMU's 99 % cap: no
/// throttle the policy may ask for sleeps longer, and throttles up to 90 %
/// keep QEMU's own slice (no more vCPU kicks than auto-converge's).
pub const THROTTLE_MAX_SLEEP_NS: u64 = 99_000_000;

/// A policy's answer for one round.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Decision {
    /// What to do.
    pub action: Action,
    /// Why.
    pub reason: Reason,
    /// The downtime limit in force this round, in ms (policies that move the
    /// limit, e.g. Nova or KubeVirt's ramp, report the current step).
    pub downtime_limit_ms: f64,
    /// Ask again before the pass ends: QEMU syncs (and asks the policy)
    /// once the unsent rest of its pass is below its bandwidth × this many
    /// ms, if that is above its own threshold (bandwidth × the limit);
    /// 0: at QEMU's own threshold. The level at which the policy expects
    /// a stop worth taking, so that it can stop mid-pass as QEMU's rule
    /// does.
    #[cfg_attr(feature = "serde", serde(default))]
    pub sync_below_ms: f64,
    /// The forecast behind the decision (empty for policies that don't
    /// forecast).
    pub forecast: Forecast,
    /// What stopping now costs under the user's objective, ms (NaN when the
    /// policy did not weigh costs this round).
    pub stop_cost_ms: f64,
    /// The expected cost of the best later stop within the forecast
    /// horizon, ms (NaN when not weighed; +∞ when no later stop is expected
    /// to be allowed).
    pub wait_cost_ms: f64,
    /// The throttle the policy wants in force from now on, % of the guest's
    /// CPU time taken away (0: none; lowering or releasing is a decision
    /// too). QEMU applies it with `cpu_throttle_set()`, its sleeps bounded
    /// by [`THROTTLE_MAX_SLEEP_NS`]; the simulator
    /// slows its guest by it. Always 0 with `dirty-limit` escalation,
    /// which slows the guest with [`Decision::dirty_limit_bytes_per_s`]
    /// instead.
    pub throttle_pct: u8,
    /// The dirty-rate limit the policy wants in force from now on, bytes
    /// per second for the whole guest (0: none). Set only with `dirty-limit`
    /// escalation: the rate a throttle of the size the policy computed
    /// would leave the guest at its own forecast pace. QEMU splits it
    /// evenly between the vCPUs (KVM's dirty ring limits each vCPU); the
    /// simulator caps its guest's writes at it.
    pub dirty_limit_bytes_per_s: f64,
}

impl Decision {
    /// A decision without a forecast.
    pub fn new(action: Action, reason: Reason, downtime_limit_ms: f64) -> Self {
        Self {
            action,
            reason,
            downtime_limit_ms,
            sync_below_ms: 0.0,
            forecast: Forecast::default(),
            stop_cost_ms: f64::NAN,
            wait_cost_ms: f64::NAN,
            throttle_pct: 0,
            dirty_limit_bytes_per_s: 0.0,
        }
    }

    /// True when the policy says stop-and-copy now.
    pub fn stops(&self) -> bool {
        self.action == Action::StopAndCopy
    }
}

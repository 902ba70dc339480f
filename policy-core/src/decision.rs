//! What the policy says: an action, the reason for it, and the forecast used.

use serde::{Deserialize, Serialize};

/// Longest forecast horizon, in rounds, a policy can be configured with.
pub const MAX_HORIZON_ROUNDS: usize = 8;

/// What the migration thread should do after this round.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Keep iterating pre-copy.
    Continue,
    /// Pause the guest and copy what is left now.
    StopAndCopy,
    /// Ask for help converging: throttle the guest (auto-converge) or switch
    /// to post-copy, whichever the caller has enabled.
    Escalate,
    /// Give up: cancel the migration, the guest keeps running on the source.
    /// Only the emulations of operator policies that abort (Nova, KubeVirt)
    /// answer this.
    Abort,
}

impl Action {
    /// Stable lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Continue => "continue",
            Action::StopAndCopy => "stop-and-copy",
            Action::Escalate => "escalate",
            Action::Abort => "abort",
        }
    }
}

/// Why the policy answered what it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// Too little history to forecast; following QEMU's rule meanwhile.
    Warmup,
    /// Pending fits the downtime limit in force (QEMU's rule).
    BelowThreshold,
    /// Pending does not fit the downtime limit in force yet.
    AboveThreshold,
    /// Pending keeps falling or the limit is forecast to be met soon.
    Converging,
    /// A meaningfully lower point is forecast within the horizon: wait for it.
    TroughAhead,
    /// No meaningfully lower point is forecast and the downtime fits the hard
    /// maximum: this is the convergence point.
    ConvergencePoint,
    /// The workload repeats and this round is at the bottom of its cycle.
    TroughNow,
    /// No forecast point fits the hard maximum downtime.
    NoConvergenceForecast,
    /// A safety cap (rounds, time or bytes sent) was reached.
    SafetyCap,
    /// The observation was invalid; the answer is QEMU's own rule.
    BadInputFallback,
    /// The policy's own round or iteration cap (e.g. Xen's 29 iterations).
    IterationCap,
    /// The policy's own sent-bytes cap relative to RAM (Xen).
    SentBytesCap,
    /// A completion timeout fired (Nova, KubeVirt).
    CompletionTimeout,
    /// A stall was detected and this round is near its local minimum
    /// (KubeVirt VEP 248).
    StallLocalMinimum,
    /// A stall was detected and the downtime is hopelessly above the maximum
    /// (KubeVirt VEP 248 aborts).
    StallHopeless,
    /// The progress timeout fired: remaining bytes did not fall for too long.
    ProgressTimeout,
    /// The policy never stops by design (used to record oracle traces).
    NeverStop,
}

impl Reason {
    /// Stable kebab-case name, as printed in tables, JSON and traces.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Warmup => "warmup",
            Reason::BelowThreshold => "below-threshold",
            Reason::AboveThreshold => "above-threshold",
            Reason::Converging => "converging",
            Reason::TroughAhead => "trough-ahead",
            Reason::ConvergencePoint => "convergence-point",
            Reason::TroughNow => "trough-now",
            Reason::NoConvergenceForecast => "no-convergence-forecast",
            Reason::SafetyCap => "safety-cap",
            Reason::BadInputFallback => "bad-input-fallback",
            Reason::IterationCap => "iteration-cap",
            Reason::SentBytesCap => "sent-bytes-cap",
            Reason::CompletionTimeout => "completion-timeout",
            Reason::StallLocalMinimum => "stall-local-minimum",
            Reason::StallHopeless => "stall-hopeless",
            Reason::ProgressTimeout => "progress-timeout",
            Reason::NeverStop => "never-stop",
        }
    }
}

/// Which forecasting model produced a forecast.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum ModelKind {
    /// No model had enough history.
    #[default]
    None,
    /// Last value.
    Naive,
    /// Mean of a sliding window.
    MovingAverage,
    /// Simple exponential smoothing.
    Ses,
    /// Holt's linear trend with damping.
    HoltDamped,
    /// Online ARIMA, Online Newton Step update.
    ArimaOns,
    /// Online ARIMA, online gradient descent update.
    ArimaOgd,
    /// Value one detected period ago.
    SeasonalNaive,
}

impl ModelKind {
    /// Stable kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            ModelKind::None => "none",
            ModelKind::Naive => "naive",
            ModelKind::MovingAverage => "moving-average",
            ModelKind::Ses => "ses",
            ModelKind::HoltDamped => "holt-damped",
            ModelKind::ArimaOns => "arima-ons",
            ModelKind::ArimaOgd => "arima-ogd",
            ModelKind::SeasonalNaive => "seasonal-naive",
        }
    }
}

/// Pending bytes forecast for one future round, with its interval.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct ForecastPoint {
    /// Expected pending bytes right after that round's sync.
    pub pending_bytes: f64,
    /// Lower end of the prediction interval.
    pub pending_lo_bytes: f64,
    /// Upper end of the prediction interval.
    pub pending_hi_bytes: f64,
}

/// The forecast a decision was based on: pending bytes for the next rounds.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
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

/// A policy's answer for one round.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// What to do.
    pub action: Action,
    /// Why.
    pub reason: Reason,
    /// The downtime limit in force this round, in ms (policies that move the
    /// limit, e.g. Nova or KubeVirt's ramp, report the current step).
    pub downtime_limit_ms: f64,
    /// The forecast behind the decision (empty for policies that don't
    /// forecast).
    pub forecast: Forecast,
}

impl Decision {
    /// A decision without a forecast.
    pub fn new(action: Action, reason: Reason, downtime_limit_ms: f64) -> Self {
        Self {
            action,
            reason,
            downtime_limit_ms,
            forecast: Forecast::default(),
        }
    }

    /// True when the policy says stop-and-copy now.
    pub fn stops(&self) -> bool {
        self.action == Action::StopAndCopy
    }
}

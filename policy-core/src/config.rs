//! Policy configuration, validated once at creation (never clamped silently).

use thiserror::Error;

use crate::decision::MAX_HORIZON_ROUNDS;
use crate::forecast::arima::MAX_ARIMA_LAGS;
use crate::forecast::baseline::MAX_MA_WINDOW;
use crate::names::{names, UnknownName};

/// Default downtime limit, ms: QEMU 10.0's `downtime-limit` default.
pub const DEFAULT_DOWNTIME_LIMIT_MS: f64 = 300.0;
/// Default hard maximum downtime, ms. About one second of pause is the upper
/// end of what operators still call "live" (KubeVirt VEP 248 argues the same
/// and picks 900 ms); Kairos uses 1000 ms.
pub const DEFAULT_MAX_DOWNTIME_MS: f64 = 1000.0;
/// Default downtime weight λ, seconds of migration time per second of
/// downtime beyond the limit: 100 ms more pause is worth 1 s less migration
/// (docs/design.md, "The objective", derives it and compares it with what
/// Nova's and KubeVirt's downtime ramps imply).
pub const DEFAULT_DOWNTIME_WEIGHT: f64 = 10.0;
/// Largest downtime weight accepted; beyond it every stop above the limit
/// is as good as forbidden (set the maximum equal to the limit for that).
pub const MAX_DOWNTIME_WEIGHT: f64 = 1e6;
/// Default highest throttle, % (QEMU's `max-cpu-throttle` default).
pub const DEFAULT_MAX_THROTTLE_PCT: u8 = 99;

/// What `predictive` does once it has forecast that the hard maximum downtime
/// cannot be met.
///
/// The values are those of the C ABI (`KairosNonConvergenceAction`).
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NonConvergenceAction {
    /// Escalate as `PolicyConfig::escalation` allows (throttle, post-copy,
    /// or, with `none`, keep going) (default).
    #[default]
    Escalate = 0,
    /// Stop at the best point the forecast says is reachable, even though it
    /// exceeds the hard maximum downtime (the user opted into that).
    StopBestEffort = 1,
    /// Keep iterating and leave it to QEMU's rule and the safety caps.
    KeepGoing = 2,
}

names!(NonConvergenceAction, "non-convergence action" {
    Escalate => "escalate",
    StopBestEffort => "stop-best-effort",
    KeepGoing => "keep-going",
});

/// What escalation may do once no stop is forecast to fit the maximum.
///
/// The values are those of the C ABI (`KairosEscalation`).
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Escalation {
    /// Nothing: keep iterating (QEMU's rule and the safety caps remain).
    #[default]
    None = 0,
    /// Slow the guest's dirtying by the share the forecast says makes a stop
    /// fit within a round or two (`Decision::throttle_pct`), re-evaluated
    /// every round and released once the guest calms down.
    Throttle = 1,
    /// Switch to post-copy (`Action::Escalate`).
    Postcopy = 2,
    /// Whichever of the two is expected to cost the guest less time.
    Auto = 3,
    /// Cap the guest's dirty rate at what the forecast says makes a stop
    /// fit (`Decision::dirty_limit_bytes_per_s`), sized and re-evaluated
    /// as a throttle is. QEMU carries it out with its dirty-limit (KVM's
    /// dirty ring), which sleeps only the vCPUs that write faster than
    /// their share: vCPUs that do not write keep their speed.
    DirtyLimit = 4,
}

names!(Escalation, "escalation" {
    None => "none",
    Throttle => "throttle",
    Postcopy => "postcopy",
    Auto => "auto",
    DirtyLimit => "dirty-limit",
});

impl Escalation {
    /// True when it may slow the guest's dirtying: with a CPU throttle, or
    /// with a dirty-rate limit ([`Escalation::limits_dirty_rate`]).
    pub fn may_throttle(self) -> bool {
        matches!(
            self,
            Escalation::Throttle | Escalation::Auto | Escalation::DirtyLimit
        )
    }

    /// True when the guest is slowed by a dirty-rate limit rather than a
    /// CPU throttle.
    pub fn limits_dirty_rate(self) -> bool {
        self == Escalation::DirtyLimit
    }

    /// True when it may switch to post-copy.
    pub fn may_postcopy(self) -> bool {
        matches!(self, Escalation::Postcopy | Escalation::Auto)
    }
}

/// Settings of the online forecasters.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ForecastConfig {
    /// AR order `k` of the online ARIMA(k, d, q).
    pub arima_ar_order: usize,
    /// Extra lags `m` that approximate the MA(q) part: the model is an
    /// AR(k + m) on the d-th difference (Liu et al., AAAI 2016).
    pub arima_extra_lags: usize,
    /// Differencing order `d` (0, 1 or 2).
    pub arima_diff_order: usize,
    /// Online Newton Step learning rate (η in the paper).
    pub ons_learning_rate: f64,
    /// Online Newton Step initial regulariser (A₀ = ε·I).
    pub ons_epsilon: f64,
    /// Online gradient descent base learning rate (step η/√t).
    pub ogd_learning_rate: f64,
    /// Simple exponential smoothing weight α.
    pub ses_alpha: f64,
    /// Holt level weight α.
    pub holt_alpha: f64,
    /// Holt trend weight β.
    pub holt_beta: f64,
    /// Holt damping φ (1 = undamped linear trend).
    pub holt_phi: f64,
    /// Moving-average window, rounds.
    pub ma_window_rounds: usize,
    /// Forecast horizon, rounds.
    pub horizon_rounds: usize,
    /// Two-sided coverage of the prediction intervals (e.g. 0.8).
    pub interval_level: f64,
    /// Weight of the newest squared error in each model's running error.
    pub error_decay: f64,
    /// Dirty-rate samples needed before forecasts are used.
    pub min_history_rounds: usize,
    /// Page-Hinkley alarm threshold λ, on the log dirty rate.
    pub change_threshold: f64,
    /// Page-Hinkley drift allowance δ, on the log dirty rate.
    pub change_drift: f64,
}

impl Default for ForecastConfig {
    fn default() -> Self {
        Self {
            arima_ar_order: 3,
            arima_extra_lags: 2,
            arima_diff_order: 1,
            ons_learning_rate: 1.0,
            ons_epsilon: 0.1,
            ogd_learning_rate: 0.05,
            ses_alpha: 0.5,
            holt_alpha: 0.6,
            holt_beta: 0.3,
            holt_phi: 0.9,
            ma_window_rounds: 4,
            horizon_rounds: 5,
            interval_level: 0.8,
            error_decay: 0.3,
            min_history_rounds: 1,
            change_threshold: 1.5,
            change_drift: 0.1,
        }
    }
}

/// Configuration shared by every policy.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct PolicyConfig {
    /// The downtime limit QEMU was given (`downtime-limit`), ms.
    pub downtime_limit_ms: f64,
    /// The hard maximum downtime the user accepts, ms. `predictive` never
    /// chooses a stop whose implied downtime exceeds it (unless
    /// `non_convergence_action` is `stop-best-effort`).
    pub max_downtime_ms: f64,
    /// The downtime weight λ: how many seconds of total migration time one
    /// second of downtime beyond `downtime_limit_ms` is worth. Stopping at
    /// a round costs T + λ·max(0, D − limit) (see [`crate::cost`]).
    pub downtime_weight: f64,
    /// Headroom kept below the hard maximum: `predictive` only chooses stops
    /// whose implied downtime is at most max × (1 − this), leaving room for
    /// bandwidth noise and the fixed switch-over cost it cannot see.
    pub downtime_headroom_fraction: f64,
    /// Safety cap: stop-and-copy after this many sync rounds.
    pub max_rounds: u64,
    /// Safety cap: stop-and-copy after this much time, ms.
    pub max_elapsed_ms: u64,
    /// Safety cap: stop-and-copy once this many times the guest RAM was sent.
    pub max_sent_ram_multiple: f64,
    /// Consecutive rounds of "no convergence forecast" before acting on it.
    pub non_convergence_confirm_rounds: u32,
    /// What to do once non-convergence is declared (`escalate` uses
    /// `escalation`).
    pub non_convergence_action: NonConvergenceAction,
    /// What escalation may do.
    pub escalation: Escalation,
    /// The highest throttle escalation may ask for, % (QEMU's
    /// `max-cpu-throttle`).
    pub max_throttle_pct: u8,
    /// Forecaster settings.
    pub forecast: ForecastConfig,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            downtime_limit_ms: DEFAULT_DOWNTIME_LIMIT_MS,
            max_downtime_ms: DEFAULT_MAX_DOWNTIME_MS,
            downtime_weight: DEFAULT_DOWNTIME_WEIGHT,
            downtime_headroom_fraction: 0.1,
            max_rounds: 1000,
            max_elapsed_ms: 3_600_000,
            max_sent_ram_multiple: 20.0,
            non_convergence_confirm_rounds: 2,
            non_convergence_action: NonConvergenceAction::Escalate,
            escalation: Escalation::None,
            max_throttle_pct: DEFAULT_MAX_THROTTLE_PCT,
            forecast: ForecastConfig::default(),
        }
    }
}

/// A configuration that was rejected, naming the field.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ConfigError {
    /// A numeric field is out of its range.
    #[error("invalid {field}: {value} (must be {requirement})")]
    OutOfRange {
        /// Field name.
        field: &'static str,
        /// Value given.
        value: f64,
        /// What it must be.
        requirement: &'static str,
    },
    /// A name outside its closed set (policy, non-convergence action).
    #[error(transparent)]
    UnknownName(#[from] UnknownName),
}

fn check(
    field: &'static str,
    value: f64,
    ok: bool,
    requirement: &'static str,
) -> Result<(), ConfigError> {
    if ok && value.is_finite() {
        Ok(())
    } else {
        Err(ConfigError::OutOfRange {
            field,
            value,
            requirement,
        })
    }
}

fn in_unit_open(x: f64) -> bool {
    x > 0.0 && x < 1.0
}

impl PolicyConfig {
    /// Check every field; the first invalid one is reported.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let c = self;
        check(
            "downtime_limit_ms",
            c.downtime_limit_ms,
            c.downtime_limit_ms > 0.0,
            "> 0",
        )?;
        check(
            "max_downtime_ms",
            c.max_downtime_ms,
            c.max_downtime_ms >= c.downtime_limit_ms,
            ">= downtime_limit_ms",
        )?;
        check(
            "downtime_weight",
            c.downtime_weight,
            (0.0..=MAX_DOWNTIME_WEIGHT).contains(&c.downtime_weight),
            "in [0, 1e6]",
        )?;
        check(
            "downtime_headroom_fraction",
            c.downtime_headroom_fraction,
            (0.0..0.9).contains(&c.downtime_headroom_fraction),
            "in [0, 0.9)",
        )?;
        check("max_rounds", c.max_rounds as f64, c.max_rounds >= 1, ">= 1")?;
        check(
            "max_elapsed_ms",
            c.max_elapsed_ms as f64,
            c.max_elapsed_ms >= 1,
            ">= 1",
        )?;
        check(
            "max_sent_ram_multiple",
            c.max_sent_ram_multiple,
            c.max_sent_ram_multiple >= 1.0,
            ">= 1",
        )?;
        check(
            "max_throttle_pct",
            f64::from(c.max_throttle_pct),
            (1..=99).contains(&c.max_throttle_pct),
            "in [1, 99]",
        )?;
        check(
            "non_convergence_confirm_rounds",
            f64::from(c.non_convergence_confirm_rounds),
            c.non_convergence_confirm_rounds >= 1,
            ">= 1",
        )?;
        let f = &c.forecast;
        check(
            "forecast.arima_ar_order",
            f.arima_ar_order as f64,
            f.arima_ar_order >= 1 && f.arima_ar_order + f.arima_extra_lags <= MAX_ARIMA_LAGS,
            ">= 1, with ar_order + extra_lags <= 8",
        )?;
        check(
            "forecast.arima_diff_order",
            f.arima_diff_order as f64,
            f.arima_diff_order <= 2,
            "0, 1 or 2",
        )?;
        check(
            "forecast.ons_learning_rate",
            f.ons_learning_rate,
            f.ons_learning_rate > 0.0,
            "> 0",
        )?;
        check(
            "forecast.ons_epsilon",
            f.ons_epsilon,
            f.ons_epsilon > 0.0,
            "> 0",
        )?;
        check(
            "forecast.ogd_learning_rate",
            f.ogd_learning_rate,
            f.ogd_learning_rate > 0.0,
            "> 0",
        )?;
        check(
            "forecast.ses_alpha",
            f.ses_alpha,
            in_unit_open(f.ses_alpha) || f.ses_alpha == 1.0,
            "in (0, 1]",
        )?;
        check(
            "forecast.holt_alpha",
            f.holt_alpha,
            in_unit_open(f.holt_alpha) || f.holt_alpha == 1.0,
            "in (0, 1]",
        )?;
        check(
            "forecast.holt_beta",
            f.holt_beta,
            in_unit_open(f.holt_beta) || f.holt_beta == 1.0,
            "in (0, 1]",
        )?;
        check(
            "forecast.holt_phi",
            f.holt_phi,
            f.holt_phi > 0.0 && f.holt_phi <= 1.0,
            "in (0, 1]",
        )?;
        check(
            "forecast.ma_window_rounds",
            f.ma_window_rounds as f64,
            (1..=MAX_MA_WINDOW).contains(&f.ma_window_rounds),
            "in [1, 32]",
        )?;
        check(
            "forecast.horizon_rounds",
            f.horizon_rounds as f64,
            (1..=MAX_HORIZON_ROUNDS).contains(&f.horizon_rounds),
            "in [1, 8]",
        )?;
        check(
            "forecast.interval_level",
            f.interval_level,
            in_unit_open(f.interval_level),
            "in (0, 1)",
        )?;
        check(
            "forecast.error_decay",
            f.error_decay,
            in_unit_open(f.error_decay),
            "in (0, 1)",
        )?;
        check(
            "forecast.min_history_rounds",
            f.min_history_rounds as f64,
            (1..=64).contains(&f.min_history_rounds),
            "in [1, 64]",
        )?;
        check(
            "forecast.change_threshold",
            f.change_threshold,
            f.change_threshold > 0.0,
            "> 0",
        )?;
        check(
            "forecast.change_drift",
            f.change_drift,
            f.change_drift >= 0.0,
            ">= 0",
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid() {
        PolicyConfig::default().validate().unwrap();
    }

    #[test]
    fn rejects_max_below_limit_naming_the_field() {
        let cfg = PolicyConfig {
            max_downtime_ms: 100.0,
            ..PolicyConfig::default()
        };
        let err = cfg.validate().unwrap_err();
        assert!(err.to_string().contains("max_downtime_ms"), "{err}");
    }

    #[test]
    fn rejects_nan() {
        let cfg = PolicyConfig {
            downtime_limit_ms: f64::NAN,
            ..PolicyConfig::default()
        };
        assert!(matches!(
            cfg.validate(),
            Err(ConfigError::OutOfRange {
                field: "downtime_limit_ms",
                ..
            })
        ));
    }

    #[test]
    fn rejects_too_many_lags() {
        let mut cfg = PolicyConfig::default();
        cfg.forecast.arima_ar_order = 7;
        cfg.forecast.arima_extra_lags = 2;
        assert!(cfg.validate().is_err());
    }
}

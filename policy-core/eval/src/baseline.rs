//! What a comparison runs: the library's policies and the baselines a
//! reviewer demands next to them — QEMU's rule at any static
//! `downtime-limit` (`qemu@1000`), and auto-converge. One table of names
//! for `sim`, `replay`, `run` and `compare`.

use std::fmt;
use std::str::FromStr;

use kairos_policy_core::config::MAX_DOWNTIME_WEIGHT;
use kairos_policy_core::input_guard::{fallback_decision, InputGuard};
use kairos_policy_core::names::UnknownName;
use kairos_policy_core::policies::{build_policy, qemu_rule_holds, ConvergencePolicy};
use kairos_policy_core::RoundObservation;
use kairos_policy_core::{Action, ConfigError, Decision, PolicyConfig, PolicyKind, Reason};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Largest static downtime limit `qemu@MS` accepts: QEMU's own maximum
/// `downtime-limit` (2000 s).
pub const MAX_STATIC_LIMIT_MS: u64 = 2_000_000;

/// auto-converge's trigger: dirtied bytes above this share of the bytes
/// sent in a period (QEMU's `throttle-trigger-threshold` default, 50 %).
const AUTO_CONVERGE_TRIGGER: f64 = 0.5;
/// auto-converge's periods: QEMU checks once a second (ms).
const AUTO_CONVERGE_PERIOD_MS: u64 = 1000;
/// Periods in a row above the trigger before QEMU throttles more.
const AUTO_CONVERGE_PERIODS: u32 = 2;

/// One thing a comparison can run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PolicySpec {
    /// A policy of the library, with the comparison's configuration.
    Library(PolicyKind),
    /// QEMU's rule with a static `downtime-limit` of its own, ms (what a
    /// user who "just raises downtime-limit" gets).
    QemuAt(u64),
    /// QEMU's rule at the limit with the auto-converge capability: the guest
    /// is throttled 20 %, then 10 % more, whenever its dirty rate stays
    /// above half the transfer rate for two one-second periods.
    AutoConverge,
    /// auto-converge with `cpu-throttle-tailslow`: past the first step, the
    /// increment is what would bring the dirty rate to the trigger, at most
    /// 10 %.
    AutoConvergeTailslow,
    /// `predictive` with a downtime weight of its own (`predictive@w=30`),
    /// so one comparison can hold several trade-offs.
    PredictiveWeighted(f64),
}

/// A policy name that could not be parsed.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum SpecError {
    /// Not a known name.
    #[error("unknown policy '{0}' (known: {known}, qemu@MS, predictive@w=N)", known = PolicySpec::NAMES.join(", "))]
    Unknown(String),
    /// `qemu@MS` with a bad number.
    #[error("'{0}': the limit after qemu@ must be an integer in [1, {MAX_STATIC_LIMIT_MS}] ms")]
    BadLimit(String),
    /// `predictive@w=N` with a bad weight.
    #[error(
        "'{0}': the weight after predictive@w= must be a number in [0, {MAX_DOWNTIME_WEIGHT}]"
    )]
    BadWeight(String),
}

impl PolicySpec {
    /// The names a comparison accepts (besides `qemu@MS`), in comparison
    /// order.
    pub const NAMES: [&'static str; 9] = [
        "qemu",
        "auto-converge",
        "auto-converge-tailslow",
        "xen",
        "nova",
        "kubevirt-stall",
        "kubevirt-ramp",
        "predictive",
        "observe",
    ];

    /// The library policy behind it, if any (auto-converge and `qemu@MS`
    /// run QEMU's rule).
    pub fn library_kind(self) -> PolicyKind {
        match self {
            PolicySpec::Library(kind) => kind,
            PolicySpec::QemuAt(_) | PolicySpec::AutoConverge | PolicySpec::AutoConvergeTailslow => {
                PolicyKind::Qemu
            }
            PolicySpec::PredictiveWeighted(_) => PolicyKind::Predictive,
        }
    }

    /// The configuration it runs with, from the comparison's: `qemu@MS`
    /// replaces the downtime limit (and raises the maximum to it if needed).
    pub fn config(self, cfg: &PolicyConfig) -> PolicyConfig {
        match self {
            PolicySpec::QemuAt(limit_ms) => PolicyConfig {
                downtime_limit_ms: limit_ms as f64,
                max_downtime_ms: cfg.max_downtime_ms.max(limit_ms as f64),
                ..*cfg
            },
            PolicySpec::PredictiveWeighted(weight) => PolicyConfig {
                downtime_weight: weight,
                ..*cfg
            },
            _ => *cfg,
        }
    }

    /// The downtime, ms, a guest's pending must fit for its stop to come
    /// (what an evacuation plan asks of each guest): the maximum for
    /// `predictive`, which may stop anywhere up to it; the limit for the
    /// rest (QEMU's rule, and the policies that raise it step by step
    /// start from it).
    pub fn stop_downtime_ms(self, cfg: &PolicyConfig) -> f64 {
        let own = self.config(cfg);
        match self.library_kind() {
            PolicyKind::Predictive => own.max_downtime_ms,
            _ => own.downtime_limit_ms,
        }
    }

    /// Build it for the simulator or replay.
    pub fn build(self, cfg: &PolicyConfig) -> Result<Box<dyn ConvergencePolicy>, ConfigError> {
        let own = self.config(cfg);
        match self {
            PolicySpec::AutoConverge | PolicySpec::AutoConvergeTailslow => {
                own.validate()?;
                Ok(Box::new(AutoConverge::new(
                    own.downtime_limit_ms,
                    self == PolicySpec::AutoConvergeTailslow,
                )))
            }
            _ => build_policy(self.library_kind(), &own),
        }
    }
}

impl fmt::Display for PolicySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicySpec::Library(kind) => f.write_str(kind.name()),
            PolicySpec::QemuAt(limit_ms) => write!(f, "qemu@{limit_ms}"),
            PolicySpec::AutoConverge => f.write_str("auto-converge"),
            PolicySpec::AutoConvergeTailslow => f.write_str("auto-converge-tailslow"),
            PolicySpec::PredictiveWeighted(weight) => write!(f, "predictive@w={weight}"),
        }
    }
}

impl FromStr for PolicySpec {
    type Err = SpecError;
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        if let Some(limit) = name.strip_prefix("qemu@") {
            return limit
                .parse::<u64>()
                .ok()
                .filter(|ms| (1..=MAX_STATIC_LIMIT_MS).contains(ms))
                .map(PolicySpec::QemuAt)
                .ok_or_else(|| SpecError::BadLimit(name.to_string()));
        }
        if let Some(weight) = name.strip_prefix("predictive@w=") {
            return weight
                .parse::<f64>()
                .ok()
                .filter(|w| (0.0..=MAX_DOWNTIME_WEIGHT).contains(w))
                .map(PolicySpec::PredictiveWeighted)
                .ok_or_else(|| SpecError::BadWeight(name.to_string()));
        }
        match name {
            "auto-converge" => return Ok(PolicySpec::AutoConverge),
            "auto-converge-tailslow" => return Ok(PolicySpec::AutoConvergeTailslow),
            _ => {}
        }
        PolicyKind::from_name(name)
            .map(PolicySpec::Library)
            .map_err(|_: UnknownName| SpecError::Unknown(name.to_string()))
    }
}

impl Serialize for PolicySpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PolicySpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

/// Parse a comma-separated list of policy names (`all`: the library's
/// compared policies, auto-converge, and QEMU's rule at the limit and at
/// `max_downtime_ms`).
pub fn parse_list(list: &str, max_downtime_ms: f64) -> Result<Vec<PolicySpec>, SpecError> {
    if list.trim() == "all" {
        let mut all = vec![
            PolicySpec::Library(PolicyKind::Qemu),
            PolicySpec::QemuAt(max_downtime_ms.round().max(1.0) as u64),
            PolicySpec::AutoConverge,
        ];
        all.extend(
            PolicyKind::COMPARED
                .iter()
                .filter(|k| **k != PolicyKind::Qemu)
                .map(|&k| PolicySpec::Library(k)),
        );
        return Ok(all);
    }
    let specs = list
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::parse)
        .collect::<Result<Vec<_>, _>>()?;
    if specs.is_empty() {
        return Err(SpecError::Unknown(list.to_string()));
    }
    Ok(specs)
}

/// QEMU's rule with auto-converge, for the simulator: answers
/// stop-and-copy when QEMU's rule holds, and throttles the guest as QEMU's
/// `mig_throttle_guest_down()` does (`Decision::throttle_pct`).
#[derive(Debug, Clone)]
pub struct AutoConverge {
    limit_ms: f64,
    tailslow: bool,
    guard: InputGuard,
    period_start: Option<RoundObservation>,
    period_dirtied_bytes: f64,
    high_periods: u32,
    throttle_pct: u8,
}

/// QEMU's `cpu-throttle-initial` default, %.
const THROTTLE_INITIAL_PCT: u8 = 20;
/// QEMU's `cpu-throttle-increment` default, %.
const THROTTLE_INCREMENT_PCT: u8 = 10;
/// QEMU's `max-cpu-throttle` default, %.
const THROTTLE_MAX_PCT: u8 = 99;

impl AutoConverge {
    /// QEMU's rule at `limit_ms` with auto-converge (and tailslow).
    pub fn new(limit_ms: f64, tailslow: bool) -> Self {
        Self {
            limit_ms,
            tailslow,
            guard: InputGuard::default(),
            period_start: None,
            period_dirtied_bytes: 0.0,
            high_periods: 0,
            throttle_pct: 0,
        }
    }

    /// QEMU's `migration_trigger_throttle()`, checked at the end of every
    /// one-second period, and `mig_throttle_guest_down()` when it fires.
    fn throttle(&mut self, obs: &RoundObservation) {
        let Some(start) = self.period_start else {
            self.period_start = Some(*obs);
            return;
        };
        self.period_dirtied_bytes += obs.dirtied_pages as f64 * obs.page_size_bytes as f64;
        if obs.elapsed_ms < start.elapsed_ms + AUTO_CONVERGE_PERIOD_MS {
            return;
        }
        let sent_bytes = obs.sent_bytes.saturating_sub(start.sent_bytes) as f64;
        let threshold_bytes = sent_bytes * AUTO_CONVERGE_TRIGGER;
        let dirty_bytes = self.period_dirtied_bytes;
        self.period_start = Some(*obs);
        self.period_dirtied_bytes = 0.0;
        if dirty_bytes <= threshold_bytes {
            return;
        }
        self.high_periods += 1;
        if self.high_periods < AUTO_CONVERGE_PERIODS {
            return;
        }
        self.high_periods = 0;
        self.throttle_pct = if self.throttle_pct == 0 {
            THROTTLE_INITIAL_PCT
        } else {
            let increment = if self.tailslow {
                let cpu_now = f64::from(100 - self.throttle_pct);
                let cpu_ideal = cpu_now * threshold_bytes / dirty_bytes;
                ((cpu_now - cpu_ideal) as u8).min(THROTTLE_INCREMENT_PCT)
            } else {
                THROTTLE_INCREMENT_PCT
            };
            (self.throttle_pct + increment).min(THROTTLE_MAX_PCT)
        };
    }
}

impl ConvergencePolicy for AutoConverge {
    fn kind(&self) -> PolicyKind {
        PolicyKind::Qemu
    }

    fn observe(&mut self, obs: &RoundObservation) -> Decision {
        if self.guard.check(obs).is_err() {
            return fallback_decision(obs, self.limit_ms);
        }
        let (action, reason) = if qemu_rule_holds(obs, self.limit_ms) {
            (Action::StopAndCopy, Reason::BelowThreshold)
        } else {
            self.throttle(obs);
            (Action::Continue, Reason::AboveThreshold)
        };
        Decision {
            throttle_pct: self.throttle_pct,
            ..Decision::new(action, reason, self.limit_ms)
        }
    }

    fn reset(&mut self) {
        *self = Self::new(self.limit_ms, self.tailslow);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_bad_ones_are_named() {
        for name in PolicySpec::NAMES.iter().copied().chain([
            "qemu@1000",
            "predictive@w=30",
            "predictive@w=2.5",
        ]) {
            let spec: PolicySpec = name.parse().unwrap();
            assert_eq!(spec.to_string(), name);
        }
        let err = "qemu@0".parse::<PolicySpec>().unwrap_err().to_string();
        assert!(err.contains("qemu@0") && err.contains("integer"), "{err}");
        let err = "predictive@w=-1"
            .parse::<PolicySpec>()
            .unwrap_err()
            .to_string();
        assert!(err.contains("predictive@w=-1"), "{err}");
        let own = PolicySpec::PredictiveWeighted(30.0).config(&PolicyConfig::default());
        assert_eq!(own.downtime_weight, 30.0);
        let err = "fast".parse::<PolicySpec>().unwrap_err().to_string();
        assert!(
            err.contains("unknown policy 'fast'") && err.contains("qemu@MS"),
            "{err}"
        );
    }

    #[test]
    fn all_holds_the_static_settings_at_the_limit_and_the_maximum() {
        let all = parse_list("all", 1000.0).unwrap();
        assert!(all.contains(&PolicySpec::Library(PolicyKind::Qemu)));
        assert!(all.contains(&PolicySpec::QemuAt(1000)));
        assert!(all.contains(&PolicySpec::AutoConverge));
        assert!(all.contains(&PolicySpec::Library(PolicyKind::Predictive)));
    }

    #[test]
    fn qemu_at_replaces_the_limit() {
        let cfg = PolicyConfig::default();
        let own = PolicySpec::QemuAt(1500).config(&cfg);
        assert_eq!(own.downtime_limit_ms, 1500.0);
        assert_eq!(own.max_downtime_ms, 1500.0);
        own.validate().unwrap();
    }

    #[test]
    fn auto_converge_throttles_after_two_hot_periods() {
        let mut ac = AutoConverge::new(300.0, false);
        let obs = |round: u64, elapsed_ms: u64| RoundObservation {
            round,
            elapsed_ms,
            dirtied_pages: 25_000, // ~100 MB per round: above half of 50 MB sent
            pending_bytes: 100_000_000,
            sent_bytes: round * 50_000_000,
            bandwidth_bytes_per_s: 50e6,
            page_size_bytes: 4096,
            ram_bytes: 1 << 30,
        };
        let throttles: Vec<u8> = (1..=5)
            .map(|r| ac.observe(&obs(r, r * 1000)).throttle_pct)
            .collect();
        assert_eq!(throttles, [0, 0, 20, 20, 30]);
        // tailslow: dirtying just above the trigger (26.2 MB against 25 MB)
        // asks for what would bring it down, 80 % × (1 − 25/26.2) = 3 %.
        let mut slow = AutoConverge::new(300.0, true);
        let throttles: Vec<u8> = (1..=5)
            .map(|r| {
                let o = RoundObservation {
                    dirtied_pages: 6_400,
                    ..obs(r, r * 1000)
                };
                slow.observe(&o).throttle_pct
            })
            .collect();
        assert_eq!(throttles, [0, 0, 20, 20, 23]);
    }
}

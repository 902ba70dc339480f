//! Kairos policy core: when should pre-copy live migration stop?
//!
//! Fed one [`RoundObservation`] per dirty-bitmap sync round, a
//! [`ConvergencePolicy`] answers continue, stop-and-copy or escalate, with a
//! [`Reason`] and the [`Forecast`] it used. Kairos's own policy
//! ([`policies::predictive`]) forecasts the dirty rate online (ARIMA by
//! Online Newton Step, exponential smoothing, baselines; the best recent
//! model wins), detects regime changes and cycles, and stops at the
//! convergence point. Emulations of QEMU's, Xen's, Nova's and KubeVirt's
//! rules sit behind the same trait.
//!
//! Beside this crate, the evaluation crate (`kairos-eval`, never linked
//! into QEMU) holds a page-level pre-copy simulator driven by TOML
//! workload programs, the hindsight oracle, and per-round trace files with
//! their replay.
//!
//! The per-round path does O(1) work, no I/O and no heap allocation.

pub mod config;
pub mod cost;
pub mod decision;
pub mod forecast;
pub mod input_guard;
pub mod names;
pub mod normal;
pub mod observation;
pub mod period;
pub mod phase;
pub mod policies;

pub use config::{ConfigError, Escalation, ForecastConfig, NonConvergenceAction, PolicyConfig};
pub use decision::{
    Action, Decision, Forecast, ForecastPoint, ModelKind, Reason, MAX_HORIZON_ROUNDS,
    THROTTLE_MAX_SLEEP_NS,
};
pub use observation::RoundObservation;
pub use policies::{build_policy, ConvergencePolicy, PolicyKind};

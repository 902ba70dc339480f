//! Kairos evaluation: everything that judges the per-round policies of
//! `kairos-policy-core` and runs outside the migration thread.
//!
//! A page-level pre-copy [`sim`]ulator driven by TOML workload programs,
//! per-round [`trace`] files and their [`replay`], the hindsight [`oracle`]
//! under the user's cost, the [`baseline`]s a comparison must hold
//! (QEMU's rule at any limit, auto-converge, the library's emulations),
//! [`forecast_quality`] scores, and the [`summary`] of a run next to the
//! oracle's.
//!
//! Layers, each importing only those above it: [`outcome`] (how a run
//! ended and counts, what a decision does), [`cell_stats`], [`set_regret`], [`trace`],
//! [`oracle`] and [`baseline`] are leaves; [`sim`] and [`replay`] use
//! them; [`summary`] and [`forecast_quality`] use those; [`advise`] sits on
//! top. No cycle: the simulator and replay never import the summary.

pub mod advise;
pub mod baseline;
pub mod cell_stats;
pub mod forecast_quality;
pub mod gang;
pub mod oracle;
pub mod outcome;
pub mod replay;
pub mod set_regret;
pub mod sim;
pub mod summary;
pub mod trace;

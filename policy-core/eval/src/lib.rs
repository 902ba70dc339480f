//! Kairos evaluation: everything that judges the per-round policies of
//! `kairos-policy-core` and runs outside the migration thread.
//!
//! A page-level pre-copy [`sim`]ulator driven by TOML workload programs,
//! per-round [`trace`] files and their [`replay`], the hindsight [`oracle`]
//! under the user's cost, the [`baseline`]s a comparison must hold
//! (QEMU's rule at any limit, auto-converge, the library's emulations),
//! [`forecast_quality`] scores, and the [`summary`] of a run next to the
//! oracle's.

pub mod advise;
pub mod baseline;
pub mod cell_stats;
pub mod forecast_quality;
pub mod oracle;
pub mod outcome;
pub mod replay;
pub mod sim;
pub mod summary;
pub mod trace;

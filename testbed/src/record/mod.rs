//! `kairos record`: a shadow recorder. It follows every migration of one
//! or more QEMUs through their monitors, with the policy set to `observe`
//! (it forecasts every sync and decides nothing, QEMU's own rule stops),
//! and keeps, per migration, the per-sync trace `kairos replay` reads and
//! a decision record, while serving the figures in the Prometheus text
//! format.
//!
//! - [`follower`]: one QEMU, polled: a migration's start, syncs and end.
//! - [`summary`]: the record written for one migration.
//! - [`metrics`]: the served figures.

pub mod follower;
pub mod metrics;
pub mod summary;

//! One migration driver for every live subcommand: a migration between two
//! QEMUs carried out through their monitors, whoever started the QEMUs.
//!
//! - [`monitor`]: a connection to one QEMU's monitor ([`Monitor`]): QMP on
//!   its own socket, or a management layer's pass-through.
//! - [`settings`]: the capabilities and parameters a migration runs with,
//!   set on both sides before it starts.
//! - [`mod@follow`]: the migration set going ([`follow::Transfer`]), followed poll by
//!   poll until it ends, cancelled at its timeout or on Ctrl-C.
//! - `libvirt` (the `libvirt` feature): a domain's monitor through
//!   libvirt's pass-through, and a migration between two libvirt daemons.
//!
//! `kairos run`, `compare`, `advise`, `starts` (through
//! [`crate::live::run`]), `soak` (through [`crate::live::hop`]) and
//! `evacuate --connect` (through `crate::live::libvirt_guest`) all
//! migrate through it.

pub mod follow;
#[cfg(feature = "libvirt")]
pub mod libvirt;
pub mod monitor;
pub mod settings;

#[cfg(test)]
pub mod scripted;

pub use follow::{follow, Limits, QmpTransfer};
pub use monitor::Monitor;
pub use settings::MigrationSettings;

//! Real migrations of real guests between two QEMU processes.

pub mod app_loss;
pub mod controller;
pub mod dirty_rate;
#[cfg(feature = "libvirt")]
pub mod evacuation;
pub mod guest_log;
pub mod hop;
pub mod interrupt;
pub mod kvm;
#[cfg(feature = "libvirt")]
pub mod libvirt_guest;
pub mod netns;
pub mod oracle;
pub mod qemu;
pub mod qmp;
pub mod rounds;
pub mod run;
pub mod send_rate;
pub mod spec;
pub mod start;
pub mod status;
pub mod switchover;

//! Real migrations of real guests between two QEMU processes.

pub mod guest_log;
pub mod interrupt;
pub mod kvm;
pub mod netns;
pub mod oracle;
pub mod policy;
pub mod qemu;
pub mod qmp;
pub mod run;

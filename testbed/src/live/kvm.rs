//! Hiding /dev/kvm: guests hang under KVM on this project's machines, and
//! QEMU's probes must fall back to TCG.

use anyhow::{Context, Result};
use nix::mount::{mount, MsFlags};
use nix::sched::{unshare, CloneFlags};

/// Move this process into a private mount namespace and bind /dev/null over
/// /dev/kvm, so every QEMU started from here sees no KVM. Needs root (or
/// CAP_SYS_ADMIN). Does nothing when there is no /dev/kvm.
pub fn hide_dev_kvm() -> Result<()> {
    if !std::path::Path::new("/dev/kvm").exists() {
        return Ok(());
    }
    unshare(CloneFlags::CLONE_NEWNS).context("unshare(CLONE_NEWNS) to hide /dev/kvm")?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .context("making mounts private")?;
    mount(
        Some("/dev/null"),
        "/dev/kvm",
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .context("bind-mounting /dev/null over /dev/kvm")?;
    Ok(())
}

//! Hiding /dev/kvm: guests hang under KVM on this project's machines, and
//! QEMU's probes must fall back to TCG.

use anyhow::{bail, Result};

/// Move this process into a private mount namespace and bind /dev/null over
/// /dev/kvm, so every QEMU started from here sees no KVM. Needs root (or
/// CAP_SYS_ADMIN). Does nothing when there is no /dev/kvm.
pub fn hide_dev_kvm() -> Result<()> {
    if !std::path::Path::new("/dev/kvm").exists() {
        return Ok(());
    }
    // SAFETY: plain syscalls with valid NUL-terminated strings; they only
    // change this process's mount namespace.
    unsafe {
        if libc::unshare(libc::CLONE_NEWNS) != 0 {
            bail!(
                "unshare(CLONE_NEWNS) to hide /dev/kvm: {}",
                std::io::Error::last_os_error()
            );
        }
        let none = c"none".as_ptr();
        if libc::mount(
            none,
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        ) != 0
        {
            bail!("making mounts private: {}", std::io::Error::last_os_error());
        }
        if libc::mount(
            c"/dev/null".as_ptr(),
            c"/dev/kvm".as_ptr(),
            std::ptr::null(),
            libc::MS_BIND,
            std::ptr::null(),
        ) != 0
        {
            bail!(
                "bind-mounting /dev/null over /dev/kvm: {}",
                std::io::Error::last_os_error()
            );
        }
    }
    Ok(())
}

//! Ctrl-C, SIGTERM and SIGHUP end a live run cleanly: the run loop notices, returns
//! an [`Interrupted`] error, and every QEMU and namespace is removed as it
//! unwinds; `kairos` then exits with 130.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::Result;
use thiserror::Error;

/// The run was interrupted by a signal.
#[derive(Debug, Error)]
#[error("interrupted: stopping every QEMU and removing the namespaces")]
pub struct Interrupted;

fn flag() -> &'static Arc<AtomicBool> {
    static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();
    FLAG.get_or_init(|| Arc::new(AtomicBool::new(false)))
}

/// Route SIGINT, SIGTERM and SIGHUP (a closed terminal) to the flag
/// (once; later calls do nothing).
pub fn install() -> Result<()> {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    if INSTALLED.get().is_none() {
        for signal in [
            signal_hook::consts::SIGINT,
            signal_hook::consts::SIGTERM,
            signal_hook::consts::SIGHUP,
        ] {
            signal_hook::flag::register(signal, Arc::clone(flag()))?;
        }
        let _ = INSTALLED.set(());
    }
    Ok(())
}

/// An [`Interrupted`] error once a signal arrived.
pub fn check() -> Result<()> {
    if flag().load(Ordering::SeqCst) {
        return Err(Interrupted.into());
    }
    Ok(())
}

/// True when `err` (or what caused it) is an interruption.
pub fn is_interruption(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| cause.is::<Interrupted>())
}

/// Sleep, waking early (with an error) on a signal.
pub fn sleep(duration: Duration) -> Result<()> {
    let end = Instant::now() + duration;
    while Instant::now() < end {
        check()?;
        std::thread::sleep((end - Instant::now()).min(Duration::from_millis(100)));
    }
    check()
}

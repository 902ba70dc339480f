//! QEMU's own dirty-rate measurement of a running guest (`calc-dirty-rate`
//! then `query-dirty-rate`), shared by `kairos profile` and `kairos
//! advise`: page-sampling hashes a sample of pages per GiB and counts those
//! that changed (works under TCG and KVM); dirty-bitmap counts KVM's dirty
//! log (exact, but reads 0 under TCG); dirty-ring needs KVM's dirty ring
//! and counts dirtyings per vCPU rather than distinct pages, so the
//! working-set inference of `advise` reads it less well. Windows are given
//! in milliseconds (`calc-time-unit`), which needs QEMU 8.2 or later.

use std::time::{Duration, Instant};

use anyhow::Result;
use kairos_eval::advise::profile::{window_s, ProfileSample};
use serde_json::json;

use super::interrupt;
use crate::driver::Monitor;

/// How QEMU measures the dirty rate (`calc-dirty-rate`'s mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DirtyRateMode {
    /// Hash a sample of pages per GiB and count those that changed.
    PageSampling,
    /// Count the pages of KVM's dirty log: exact, but needs KVM (under TCG
    /// it reads 0).
    DirtyBitmap,
    /// Count the pages of KVM's dirty ring (needs `-accel
    /// kvm,dirty-ring-size=N`).
    DirtyRing,
}

impl DirtyRateMode {
    /// The name QMP takes.
    pub fn qmp_name(self) -> &'static str {
        match self {
            DirtyRateMode::PageSampling => "page-sampling",
            DirtyRateMode::DirtyBitmap => "dirty-bitmap",
            DirtyRateMode::DirtyRing => "dirty-ring",
        }
    }
}

/// Measure the dirty rate over `window`; QEMU's figure in MiB/s, or None
/// when it gives none.
pub fn measure(
    qmp: &mut dyn Monitor,
    window: Duration,
    mode: DirtyRateMode,
) -> Result<Option<f64>> {
    qmp.execute(
        "calc-dirty-rate",
        Some(json!({
            "calc-time": window.as_millis() as u64,
            "calc-time-unit": "millisecond",
            "mode": mode.qmp_name(),
        })),
    )?;
    interrupt::sleep(window)?;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let info = qmp.execute("query-dirty-rate", None)?;
        if info["status"] == "measured" {
            return Ok(info["dirty-rate"].as_f64());
        }
        if Instant::now() > deadline {
            return Ok(None);
        }
        interrupt::sleep(Duration::from_millis(50))?;
    }
}

/// CPU time (user + system) of the guest's vCPU threads so far, s, from
/// `query-cpus-fast`'s thread ids and /proc (QEMU's own view, no agent
/// needed).
pub fn vcpu_seconds(qmp: &mut dyn Monitor) -> Result<Option<f64>> {
    let cpus = qmp.execute("query-cpus-fast", None)?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let mut total = 0.0;
    let mut any = false;
    for cpu in cpus.as_array().into_iter().flatten() {
        let Some(tid) = cpu["thread-id"].as_u64() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{tid}/stat")) else {
            continue;
        };
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if let (Some(u), Some(s)) = (fields.get(11), fields.get(12)) {
            if let (Ok(u), Ok(s)) = (u.parse::<f64>(), s.parse::<f64>()) {
                total += (u + s) / hz.max(1.0);
                any = true;
            }
        }
    }
    Ok(any.then_some(total))
}

/// MiB, as QEMU's dirty rate counts them.
const MIB: f64 = 1024.0 * 1024.0;

/// A profile being taken of a running QEMU, on the schedule
/// `kairos_eval::advise::profile` expects (1 s windows, every 30th one
/// 5 s), one window at a time: what `kairos advise` and `kairos run
/// --start advised` forecast from (the latter goes on sampling while it
/// waits).
pub struct Profiler {
    mode: DirtyRateMode,
    started: Instant,
    /// Windows measured or tried so far (the schedule's index).
    windows: usize,
    samples: Vec<ProfileSample>,
}

impl Profiler {
    /// Start a profile now.
    pub fn new(mode: DirtyRateMode) -> Self {
        Self {
            mode,
            started: Instant::now(),
            windows: 0,
            samples: Vec::new(),
        }
    }

    /// The length of the next window.
    pub fn next_window(&self) -> Duration {
        Duration::from_secs_f64(window_s(self.windows))
    }

    /// Seconds since the profile started.
    pub fn elapsed_s(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// Measure the next window; the sample, or None when QEMU gave no
    /// figure for it (the window is skipped).
    pub fn sample(&mut self, qmp: &mut dyn Monitor) -> Result<Option<ProfileSample>> {
        let window = self.next_window();
        self.windows += 1;
        let Some(mib_per_s) = measure(qmp, window, self.mode)? else {
            return Ok(None);
        };
        let sample = ProfileSample {
            t_s: self.elapsed_s(),
            window_s: window.as_secs_f64(),
            dirtied_bytes: mib_per_s * MIB * window.as_secs_f64(),
        };
        self.samples.push(sample);
        Ok(Some(sample))
    }

    /// The samples so far, oldest first.
    pub fn samples(&self) -> &[ProfileSample] {
        &self.samples
    }

    /// The samples, given up.
    pub fn into_samples(self) -> Vec<ProfileSample> {
        self.samples
    }
}

/// Sample a running QEMU for `duration` (see [`Profiler`]).
pub fn profile(
    qmp: &mut dyn Monitor,
    duration: Duration,
    mode: DirtyRateMode,
    mut progress: impl FnMut(&ProfileSample),
) -> Result<Vec<ProfileSample>> {
    let mut profiler = Profiler::new(mode);
    while profiler.started.elapsed() + profiler.next_window() <= duration {
        if let Some(sample) = profiler.sample(qmp)? {
            progress(&sample);
        }
    }
    Ok(profiler.into_samples())
}

//! One guest migrated back and forth between two network namespaces: each
//! hop starts a fresh destination QEMU in the other namespace, migrates the
//! running guest to it (optionally with a fault injected mid-migration),
//! checks both ends, and makes the destination the next source. What
//! `kairos soak` repeats a thousand times and the fault tests once per
//! fault.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Serialize;
use serde_json::{json, Value};

use super::guest_log::{load_samples, LoadSample};
use super::interrupt;
use super::netns::{NetnsLink, DST_ADDR, SRC_ADDR};
use super::qemu::{GuestSpec, QemuProcess};
use super::qmp::Qmp;
use crate::driver::{follow, Limits, MigrationSettings, Monitor, QmpTransfer};

/// How long a guest may take to boot and start its load.
const BOOT_TIMEOUT: Duration = Duration::from_secs(90);
/// How often a hop polls QEMU.
const POLL: Duration = Duration::from_millis(100);
/// How long a guest may take to report its load after a hop or a fault.
const REPORT_TIMEOUT: Duration = Duration::from_secs(20);
/// How long the link stays down, or the source paused, in those faults.
const FAULT_HOLD: Duration = Duration::from_secs(2);
/// How long the migration thread may take to release a throttle after
/// the status turned final.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a destination may stay `inmigrate` after the source completed.
const LOAD_TIMEOUT: Duration = Duration::from_secs(20);

/// A fault injected into one migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Fault {
    /// The destination QEMU is killed (SIGKILL).
    KillDestination,
    /// The link goes down for 2 s, then comes back.
    LinkDown,
    /// `migrate_cancel`.
    Cancel,
    /// `migrate-set-parameters` while the migration runs: the bandwidth
    /// is halved (it takes effect at once), the policy and the maximum
    /// downtime changed (they take effect with the next migration, which
    /// must then start from its own parameters).
    SetParameters,
    /// The source guest is paused (`stop`) for 2 s, then resumed.
    PauseSource,
}

impl Fault {
    /// Every fault, in the order `--fault all` injects them.
    pub const ALL: [Fault; 5] = [
        Fault::KillDestination,
        Fault::LinkDown,
        Fault::Cancel,
        Fault::SetParameters,
        Fault::PauseSource,
    ];
}

/// What every hop sets before it migrates.
#[derive(Debug, Clone)]
pub struct HopSettings {
    /// The capabilities (both sides) and parameters (the source).
    pub migration: MigrationSettings,
    /// Cancel a migration still running after this long.
    pub timeout: Duration,
}

/// What one migration attempt did and what was found afterwards.
#[derive(Debug, Clone, Serialize)]
pub struct Attempt {
    /// Hop number (1-based).
    pub hop: u64,
    /// Attempt within the hop (1 = first).
    pub attempt: u32,
    /// The fault injected, if any.
    pub fault: Option<Fault>,
    /// Whether the fault was injected before the migration ended.
    pub fault_injected: bool,
    /// QEMU's final status (`completed`, `failed`, `cancelled`), or
    /// `timed-out` when the test-bed cancelled it.
    pub status: String,
    /// QEMU's total time, ms.
    pub total_time_ms: Option<f64>,
    /// QEMU's downtime, ms.
    pub downtime_ms: Option<f64>,
    /// Dirty-bitmap syncs.
    pub rounds: Option<u64>,
    /// The policy's state was fresh throughout: `convergence.rounds` never
    /// exceeded this migration's own `dirty-sync-count`.
    pub convergence_fresh: bool,
    /// After the migration the source had no throttle left on (QEMU's
    /// `cpu-throttle-percentage`, the policy's `throttle-percentage` and
    /// its `vcpu-dirty-limit` all 0).
    pub throttle_released: bool,
    /// Pages the guest found wrong (on the destination after a completed
    /// hop, on the source after a failed one).
    pub verify_errors: u64,
    /// Seconds the attempt took, start of the destination to verified.
    pub wall_s: f64,
}

impl Attempt {
    /// Completed, verified, nothing left behind.
    pub fn clean_success(&self) -> bool {
        self.status == "completed"
            && self.verify_errors == 0
            && self.throttle_released
            && self.convergence_fresh
    }
}

/// Which network namespace a QEMU runs in and the address it listens on.
struct Side {
    ns: String,
    addr: &'static str,
}

/// The running guest, its QEMU and the two sides it hops between.
pub struct Hopper {
    // Declared first, dropped first: the QEMU goes before its namespace.
    source: QemuProcess,
    qmp: Qmp,
    link: NetnsLink,
    sides: [Side; 2],
    source_side: usize,
    spec: GuestSpec,
    work: PathBuf,
    started_qemus: u64,
}

impl Hopper {
    /// Create the namespaces and boot the guest on the first side.
    pub fn boot(spec: GuestSpec, bandwidth_mbit: u64, work: &Path) -> Result<Self> {
        std::fs::create_dir_all(work).with_context(|| format!("creating {}", work.display()))?;
        let link = NetnsLink::create(bandwidth_mbit, 0.0)?;
        let sides = [
            Side {
                ns: link.src_ns.clone(),
                addr: SRC_ADDR,
            },
            Side {
                ns: link.dst_ns.clone(),
                addr: DST_ADDR,
            },
        ];
        let mut source = QemuProcess::start(&spec, work, "q0000", None, Some(&sides[0].ns))?;
        let qmp = Qmp::connect(&source.qmp_path, Duration::from_secs(20))
            .with_context(|| format!("QEMU did not come up; see {}", source.qemu_log.display()))?;
        source.wait_for_load(BOOT_TIMEOUT).context("the guest")?;
        Ok(Self {
            source,
            qmp,
            link,
            sides,
            source_side: 0,
            spec,
            work: work.to_path_buf(),
            started_qemus: 1,
        })
    }

    /// The guest's page check after `settle`: the error count of its next
    /// report then (the last hop's check gets a full sweep).
    pub fn final_verify_errors(&mut self, settle: Duration) -> Result<u64> {
        interrupt::sleep(settle)?;
        let last = load_samples(&self.source.serial_log)
            .last()
            .map_or(0.0, |s| s.t_s);
        Ok(next_sample(&mut self.source, last)?.verify_errors)
    }

    /// The namespaces' names (to check they are gone afterwards).
    pub fn namespaces(&self) -> [String; 2] {
        [self.link.src_ns.clone(), self.link.dst_ns.clone()]
    }

    /// Migrate the guest to the other side once. On success the
    /// destination becomes the source; on failure the source stays.
    pub fn attempt(
        &mut self,
        hop: u64,
        attempt: u32,
        settings: &HopSettings,
        fault: Option<Fault>,
    ) -> Result<Attempt> {
        let started = Instant::now();
        let target = 1 - self.source_side;
        let port = 4444 + (hop % 200) as u16;
        let uri = format!("tcp:{}:{port}", self.sides[target].addr);
        let role = format!("q{:04}", self.started_qemus);
        self.started_qemus += 1;
        let mut dst = QemuProcess::start(
            &self.spec,
            &self.work,
            &role,
            Some(&uri),
            Some(&self.sides[target].ns),
        )?;
        let mut qd = Qmp::connect(&dst.qmp_path, Duration::from_secs(20))
            .with_context(|| format!("QEMU did not come up; see {}", dst.qemu_log.display()))?;
        settings.migration.apply(&mut self.qmp, Some(&mut qd))?;

        let mut injected: Option<Instant> = None;
        let mut restored = false;
        let mut convergence_fresh = true;
        let link = &self.link;
        let source = &mut self.source;
        let followed = follow(
            &mut QmpTransfer::new(&mut self.qmp, uri),
            Limits {
                poll: POLL,
                timeout: settings.timeout,
            },
            &mut |monitor, progress| {
                let syncs = progress.info["ram"]["dirty-sync-count"].as_u64();
                let seen = progress.info["convergence"]["rounds"].as_u64();
                if let (Some(seen), Some(syncs)) = (seen, syncs) {
                    // Syncs reach the policy after dirty-sync-count counts
                    // them; a state left from an earlier attempt would be
                    // ahead of this migration's own count. (QEMU reports
                    // `ram` only while active and once completed.)
                    convergence_fresh &= seen <= syncs;
                }
                let Some(fault) = fault.filter(|_| !progress.ended) else {
                    return Ok(());
                };
                let syncs = syncs.unwrap_or(0);
                if injected.is_none()
                    && progress.status == "active"
                    && first_pass_half_sent(progress.info, syncs)
                {
                    inject(fault, monitor, link, &mut dst)?;
                    injected = Some(Instant::now());
                }
                if let Some(at) = injected {
                    if !restored && at.elapsed() >= FAULT_HOLD {
                        restore(fault, monitor, link)?;
                        restored = true;
                    }
                }
                Ok(())
            },
            &mut || {
                if source.is_running() {
                    Ok(())
                } else {
                    bail!(
                        "the source QEMU died during hop {hop}; see {}",
                        source.qemu_log.display()
                    )
                }
            },
        )?;
        if followed.interrupted {
            return Err(interrupt::Interrupted.into());
        }
        if let (Some(fault), false) = (fault, restored) {
            if injected.is_some() {
                restore(fault, &mut self.qmp, &self.link)?;
            }
        }
        let status = followed.status().to_string();
        let throttle_released = self.throttle_released()?;
        let mut result = Attempt {
            hop,
            attempt,
            fault,
            fault_injected: injected.is_some(),
            status: if followed.timed_out && status == "cancelled" {
                "timed-out".to_string()
            } else {
                status.clone()
            },
            total_time_ms: followed.info["total-time"].as_f64(),
            downtime_ms: followed.info["downtime"].as_f64(),
            rounds: followed.info["ram"]["dirty-sync-count"].as_u64(),
            convergence_fresh,
            throttle_released,
            verify_errors: 0,
            wall_s: 0.0,
        };
        if status == "completed" {
            // The destination may still be loading what is in flight; a
            // guest paused by the operator stays paused after the hop, and
            // the operator resumes it.
            let run_state = wait_for_run_state(&mut qd)?;
            if run_state == "paused" {
                qd.execute("cont", None)?;
            } else if run_state != "running" {
                bail!(
                    "the destination of hop {hop} is {run_state}; see {}",
                    dst.qemu_log.display()
                );
            }
            // The second report after the hop: the guest's page check has
            // been running on the destination for a full second by then.
            let first =
                next_sample(&mut dst, 0.0).with_context(|| format!("the guest after hop {hop}"))?;
            let sample = next_sample(&mut dst, first.t_s)
                .with_context(|| format!("the guest after hop {hop}"))?;
            result.verify_errors = sample.verify_errors;
            // The destination is the source now; the old one goes.
            self.source = dst;
            self.qmp = qd;
            self.source_side = target;
        } else {
            drop(qd);
            drop(dst);
            // The guest must still run on the source, memory intact.
            if self.qmp.execute("query-status", None)?["status"] == "paused" {
                self.qmp.execute("cont", None)?;
            }
            let last_t = load_samples(&self.source.serial_log)
                .last()
                .map_or(0.0, |s| s.t_s);
            let sample = next_sample(&mut self.source, last_t)
                .with_context(|| format!("the source guest after hop {hop} failed"))?;
            result.verify_errors = sample.verify_errors;
        }
        result.wall_s = started.elapsed().as_secs_f64();
        Ok(result)
    }

    /// True when the source has no throttle left on once the migration
    /// thread has finished (it releases the throttle after the status
    /// turns final, so this waits up to [`RELEASE_TIMEOUT`]): the vCPU
    /// throttle as the patched QEMU reports it in
    /// `convergence.throttle-percentage` (in any state), the policy's
    /// dirty page rate limit (`convergence.vcpu-dirty-limit`), and
    /// auto-converge's `cpu-throttle-percentage` (reported while active or
    /// completed).
    fn throttle_released(&mut self) -> Result<bool> {
        let deadline = Instant::now() + RELEASE_TIMEOUT;
        loop {
            let info = self.qmp.execute("query-migrate", None)?;
            let qemu = info["cpu-throttle-percentage"].as_u64().unwrap_or(0);
            let policy = info["convergence"]["throttle-percentage"]
                .as_u64()
                .unwrap_or(0);
            let limit = info["convergence"]["vcpu-dirty-limit"]
                .as_u64()
                .unwrap_or(0);
            if qemu == 0 && policy == 0 && limit == 0 {
                return Ok(true);
            }
            if Instant::now() > deadline {
                return Ok(false);
            }
            interrupt::sleep(POLL)?;
        }
    }
}

/// Inject `fault` into the migration from the QEMU behind `source`.
fn inject(
    fault: Fault,
    source: &mut dyn Monitor,
    link: &NetnsLink,
    dst: &mut QemuProcess,
) -> Result<()> {
    match fault {
        Fault::KillDestination => dst.kill(),
        Fault::LinkDown => link.set_up(false)?,
        Fault::Cancel => {
            source.execute("migrate_cancel", None)?;
        }
        Fault::SetParameters => {
            let current = source.execute("query-migrate-parameters", None)?;
            let bandwidth = current["max-bandwidth"].as_u64().unwrap_or(125_000_000);
            let mut changed = json!({ "max-bandwidth": (bandwidth / 2).max(1_000_000) });
            if current.get("x-convergence-policy").is_some() {
                changed["x-convergence-policy"] = json!("observe");
                changed["x-convergence-max-downtime"] = json!(2000);
            }
            source.execute("migrate-set-parameters", Some(changed))?;
        }
        Fault::PauseSource => {
            source.execute("stop", None)?;
        }
    }
    Ok(())
}

/// Undo what `inject` did, where it can be undone.
fn restore(fault: Fault, source: &mut dyn Monitor, link: &NetnsLink) -> Result<()> {
    match fault {
        Fault::LinkDown => link.set_up(true),
        Fault::PauseSource => {
            if source.execute("query-status", None)?["status"] == "paused" {
                source.execute("cont", None)?;
            }
            Ok(())
        }
        Fault::KillDestination | Fault::Cancel | Fault::SetParameters => Ok(()),
    }
}

/// True once the migration is half-way through its first pass (what is
/// left of the guest's RAM is at most half of it) or past it: the moment a
/// fault goes in. Every migration has a first pass, and it lasts seconds,
/// so a poll every [`POLL`] meets it; later syncs may never come (a policy
/// can stop at the first one).
fn first_pass_half_sent(info: &Value, syncs: u64) -> bool {
    let remaining_bytes = info["ram"]["remaining"].as_u64();
    let total_bytes = info["ram"]["total"].as_u64();
    match (remaining_bytes, total_bytes) {
        (Some(remaining), Some(total)) if syncs <= 1 => remaining.saturating_mul(2) <= total,
        _ => syncs >= 2,
    }
}

/// Wait until the destination has loaded the migration (leaves
/// `inmigrate`); its run state then.
fn wait_for_run_state(qd: &mut Qmp) -> Result<String> {
    let deadline = Instant::now() + LOAD_TIMEOUT;
    loop {
        let state = qd.execute("query-status", None)?["status"]
            .as_str()
            .unwrap_or("unknown")
            .to_string();
        if state != "inmigrate" || Instant::now() > deadline {
            return Ok(state);
        }
        interrupt::sleep(POLL)?;
    }
}

/// Wait for the guest's next load report after guest time `after_t_s`.
fn next_sample(qemu: &mut QemuProcess, after_t_s: f64) -> Result<LoadSample> {
    let deadline = Instant::now() + REPORT_TIMEOUT;
    loop {
        if let Some(s) = load_samples(&qemu.serial_log)
            .into_iter()
            .find(|s| s.t_s > after_t_s)
        {
            return Ok(s);
        }
        if !qemu.is_running() {
            bail!("QEMU exited; see {}", qemu.qemu_log.display());
        }
        if Instant::now() > deadline {
            bail!(
                "no load report within {REPORT_TIMEOUT:?}; see {}",
                qemu.serial_log.display()
            );
        }
        interrupt::sleep(Duration::from_millis(200))?;
    }
}

/// Processes whose command line mentions `dir` (the QEMUs a soak started
/// keep their logs there): what must be gone when it ends.
pub fn processes_mentioning(dir: &Path) -> Vec<u32> {
    let needle = dir.to_string_lossy().into_owned();
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != me)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains(&needle))
                .unwrap_or(false)
        })
        .collect()
}

/// Open file descriptors of this process.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(remaining: u64, total: u64) -> Value {
        json!({ "status": "active", "ram": { "remaining": remaining, "total": total } })
    }

    #[test]
    fn a_fault_waits_for_half_of_the_first_pass() {
        assert!(!first_pass_half_sent(&info(900, 1000), 1));
        assert!(!first_pass_half_sent(&info(501, 1000), 1));
        assert!(first_pass_half_sent(&info(500, 1000), 1));
        assert!(first_pass_half_sent(&info(10, 1000), 1));
    }

    #[test]
    fn a_fault_missed_in_the_first_pass_goes_in_after_it() {
        // A later pass may have more than half left; it is past the first.
        assert!(first_pass_half_sent(&info(900, 1000), 2));
        // Without the RAM figures, only the sync count says.
        assert!(!first_pass_half_sent(&json!({ "status": "active" }), 1));
        assert!(first_pass_half_sent(&json!({ "status": "active" }), 2));
    }
}

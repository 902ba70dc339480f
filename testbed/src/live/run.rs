//! One live migration: boot the guest on a source QEMU, start a
//! destination, let the workload warm up, migrate under a policy, follow
//! every sync, measure.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use kairos_eval::advise::AdviseConfig;
use kairos_eval::outcome::MigrationStatus;
use kairos_policy_core::cost::Objective;
use kairos_policy_core::{Escalation, PolicyConfig};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::app_loss::{app_loss_pct, recover_guest_t_start_s};
use super::controller::Controller;
use super::guest_log::{load_samples, mean_ops_per_s, LoadSample};
use super::interrupt;
use super::netns::{NetnsLink, DST_ADDR};
use super::qemu::{serial_log_path, GuestSpec, QemuProcess};
use super::qmp::Qmp;
use super::rounds::RoundFeed;
use super::spec::{LiveSpec, POSTCOPY_AFTER_ROUNDS};
use super::start::{wait_for_start, StartPolicy, StartRecord, StartRule};
use super::status::StatusLine;
use super::switchover::Switchover;
use crate::driver::{follow, Limits, MigrationSettings, QmpTransfer};

/// How long a guest may take to boot and start its load generator.
const BOOT_TIMEOUT: Duration = Duration::from_secs(90);
/// How often QEMU is polled while the migration runs.
const POLL: Duration = Duration::from_millis(200);
/// How long the guest is watched on the destination afterwards.
const AFTER: Duration = Duration::from_secs(4);

/// What to run.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// The guest both sides boot.
    pub spec: GuestSpec,
    /// The policy.
    pub policy: LiveSpec,
    /// `max-bandwidth`, bytes/s.
    pub bandwidth_bytes_per_s: u64,
    /// The comparison's `downtime-limit`, ms (`qemu@MS` and the oracle's
    /// recorder use their own).
    pub downtime_limit_ms: u64,
    /// `x-convergence-max-downtime`, ms.
    pub max_downtime_ms: u64,
    /// The comparison's downtime weight (`predictive@w=N` uses its own).
    pub downtime_weight: f64,
    /// What `predictive`'s escalation may do (`x-convergence-escalation`).
    pub escalation: Escalation,
    /// Seconds the workload runs before the migration starts.
    pub warmup_s: f64,
    /// A migration still running after this long is cancelled.
    pub timeout_s: f64,
    /// Where sockets, logs and the trace go (kept).
    pub work_dir: PathBuf,
    /// True for the patched QEMU (it takes the x-convergence-* parameters).
    pub patched_qemu: bool,
    /// Run source and destination in two namespaces joined by a veth pair
    /// shaped to the bandwidth, with this one-way delay (ms); None: loopback.
    pub netns_delay_ms: Option<f64>,
    /// A label for progress lines.
    pub label: String,
    /// Seconds waited after the warm-up before the start rule (a campaign
    /// puts the moment at random places in a cycle with it).
    pub start_delay_s: f64,
    /// When the migration starts after the warm-up and the delay.
    pub start: StartPolicy,
    /// ω: seconds of migration one second of waiting on a start rule is
    /// worth.
    pub wait_weight: f64,
}

impl RunConfig {
    /// The library configuration a management-layer controller runs with.
    fn controller_config(&self) -> PolicyConfig {
        PolicyConfig {
            downtime_limit_ms: self.downtime_limit_ms as f64,
            max_downtime_ms: self.max_downtime_ms.max(self.downtime_limit_ms) as f64,
            downtime_weight: self.downtime_weight,
            ..PolicyConfig::default()
        }
    }
}

/// The names the two QEMUs of a run give their files in its work directory.
const SRC_ROLE: &str = "src";
const DST_ROLE: &str = "dst";

/// What one live migration measured, in the vocabulary every `kairos`
/// command uses (docs/results-format.md maps it to QEMU's and virsh's).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LiveResult {
    /// Workload name.
    pub workload: String,
    /// Policy name.
    pub policy: String,
    /// How it ended.
    pub status: MigrationStatus,
    /// QEMU's total time, ms (`total-time`).
    pub total_time_ms: Option<f64>,
    /// The downtime, ms: QEMU's (`downtime`), except after a post-copy
    /// switch, where it is `paused_ms` ([`Switchover::downtime_ms`]).
    pub downtime_ms: Option<f64>,
    /// QEMU's `downtime` as it reported it, ms.
    #[serde(default)]
    pub qemu_downtime_ms: Option<f64>,
    /// From the source's `STOP` event to the destination's `RESUME`, ms: the
    /// pause as both QEMUs saw it, the same way for pre-copy and post-copy.
    #[serde(default)]
    pub paused_ms: Option<f64>,
    /// The source reported `postcopy-active`: the switch went to post-copy.
    #[serde(default)]
    pub postcopy_switch: bool,
    /// QEMU's setup time, ms (`setup-time`).
    pub setup_time_ms: Option<f64>,
    /// Bytes sent (`ram.transferred`).
    pub transferred_bytes: Option<u64>,
    /// Dirty-bitmap syncs (`ram.dirty-sync-count`).
    pub rounds: Option<u64>,
    /// The convergence policy's last action (patched QEMU).
    pub action: Option<String>,
    /// Why.
    pub reason: Option<String>,
    /// The escalation QEMU had in force (`query-migrate`'s
    /// `convergence.escalation`: the one asked for, or `none` where QEMU
    /// left it out, saying why in its log); None when no policy ran or the
    /// QEMU predates patch 14 of the series.
    #[serde(default)]
    pub escalation_in_force: Option<String>,
    /// QEMU's downtime-limit at the start, ms.
    pub downtime_limit_ms: u64,
    /// The maximum downtime, ms.
    pub max_downtime_ms: u64,
    /// The downtime weight `predictive` ran with.
    pub downtime_weight: f64,
    /// Longest stall the guest's load generator saw from the start of the
    /// migration to just after the switch-over (throttling and downtime), ms.
    pub guest_pause_ms: Option<f64>,
    /// Guest operations per second before the migration.
    pub ops_before: Option<f64>,
    /// … while it ran (on the source).
    pub ops_during: Option<f64>,
    /// … afterwards, on the destination.
    pub ops_after: Option<f64>,
    /// Pages the guest found corrupted or lost (source and destination).
    pub verify_errors: u64,
    /// Throughput lost during the migration, %: the mean over its seconds
    /// of the share of the same workload phase's rate without migration
    /// (before it, and after on the destination) that the second did not
    /// reach ([`app_loss_pct`]).
    pub app_loss_pct: Option<f64>,
    /// The load generator's clock (guest seconds) at the start of the
    /// migration: its reports after it are the migration's.
    #[serde(default)]
    pub guest_t_start_s: Option<f64>,
    /// CPU time the source QEMU used during the migration, s.
    pub source_cpu_s: Option<f64>,
    /// The per-round trace (patched QEMU).
    pub trace: Option<PathBuf>,
    /// Syncs QEMU recorded but the test-bed read too late to see.
    pub rounds_dropped: u64,
    /// Logs, sockets and trace.
    pub work_dir: PathBuf,
    /// loopback, or netns (a shaped veth pair between two namespaces).
    pub link: String,
    /// Seconds waited on `kairos advise`'s word before starting (None:
    /// started at once).
    #[serde(default)]
    pub start_wait_s: Option<f64>,
    /// How the start was decided (None in runs stored before it was
    /// recorded).
    #[serde(default)]
    pub start: Option<StartRecord>,
    /// The commit of the code that made the run ([`CODE_COMMIT`]; None in
    /// runs stored before it was recorded).
    #[serde(default)]
    pub code_commit: Option<String>,
    /// When the run ended, seconds since the Unix epoch.
    #[serde(default)]
    pub finished_unix_s: Option<u64>,
}

/// The commit of the code this binary was built from (testbed/build.rs):
/// a full hash, with `-dirty` when tracked files differed from it.
pub const CODE_COMMIT: &str = env!("KAIROS_CODE_COMMIT");

/// Seconds since the Unix epoch, now.
pub fn unix_now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl LiveResult {
    /// Recompute the measures derived from the guest's consoles (the app
    /// loss) from the logs kept in `work_dir`, so a stored run is judged by
    /// the current definition. A run stored before its start was recorded
    /// gets it back from its `ops_during`; where the logs are gone or the
    /// start cannot be recovered, the stored figures are kept and it
    /// returns false.
    pub fn rescore_from_logs(&mut self, work_dir: &Path) -> bool {
        let src = load_samples(&serial_log_path(work_dir, SRC_ROLE));
        let dst = load_samples(&serial_log_path(work_dir, DST_ROLE));
        let start = self.guest_t_start_s.or_else(|| {
            self.ops_during
                .and_then(|ops| recover_guest_t_start_s(&src, ops))
        });
        match start {
            Some(start) if !src.is_empty() => {
                self.guest_t_start_s = Some(start);
                self.app_loss_pct = app_loss_pct(&src, &dst, start);
                true
            }
            _ => false,
        }
    }

    /// A completed run of `workload` under `policy` (limit 300 ms, maximum
    /// 1000 ms, λ = 10), for tests.
    #[cfg(test)]
    pub fn completed_for_test(
        workload: &str,
        policy: &str,
        total_ms: f64,
        downtime_ms: f64,
    ) -> Self {
        LiveResult {
            workload: workload.into(),
            policy: policy.into(),
            status: MigrationStatus::Completed,
            total_time_ms: Some(total_ms),
            downtime_ms: Some(downtime_ms),
            qemu_downtime_ms: Some(downtime_ms),
            paused_ms: None,
            postcopy_switch: false,
            setup_time_ms: None,
            transferred_bytes: Some(1),
            rounds: Some(3),
            action: None,
            reason: None,
            escalation_in_force: None,
            downtime_limit_ms: 300,
            max_downtime_ms: 1000,
            downtime_weight: 10.0,
            guest_pause_ms: None,
            ops_before: None,
            ops_during: None,
            ops_after: None,
            verify_errors: 0,
            app_loss_pct: None,
            guest_t_start_s: None,
            source_cpu_s: None,
            trace: None,
            rounds_dropped: 0,
            work_dir: PathBuf::new(),
            link: "netns".into(),
            start_wait_s: None,
            start: None,
            code_commit: None,
            finished_unix_s: None,
        }
    }

    /// True when it completed with the guest's memory intact.
    pub fn completed(&self) -> bool {
        self.status == MigrationStatus::Completed
    }
}

fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

fn number(v: &Value, key: &str) -> Option<f64> {
    v.get(key).and_then(Value::as_f64)
}

/// The capabilities and parameters of `cfg`'s policy.
fn settings(cfg: &RunConfig) -> MigrationSettings {
    let mut params = Map::new();
    params.insert("max-bandwidth".into(), json!(cfg.bandwidth_bytes_per_s));
    params.insert(
        "downtime-limit".into(),
        json!(cfg.policy.downtime_limit_ms(cfg.downtime_limit_ms)),
    );
    if cfg.policy == LiveSpec::AutoConverge(true) {
        params.insert("cpu-throttle-tailslow".into(), json!(true));
    }
    if let Some(policy) = cfg.policy.qemu_policy(cfg.patched_qemu) {
        params.insert("x-convergence-policy".into(), json!(policy));
        params.insert(
            "x-convergence-max-downtime".into(),
            json!(cfg.max_downtime_ms),
        );
        params.insert(
            "x-convergence-downtime-weight".into(),
            json!(cfg.policy.downtime_weight(cfg.downtime_weight).round() as u64),
        );
        if matches!(cfg.policy, LiveSpec::Predictive(_)) {
            params.insert(
                "x-convergence-escalation".into(),
                json!(cfg.escalation.name()),
            );
        }
    }
    MigrationSettings {
        capabilities: cfg
            .policy
            .capabilities(cfg.escalation)
            .iter()
            .map(|c| c.to_string())
            .collect(),
        // The source's state changes as events: they tell a post-copy switch.
        source_capabilities: vec!["events".into()],
        parameters: params,
    }
}

/// Run one migration.
pub fn run_migration(cfg: &RunConfig) -> Result<LiveResult> {
    if cfg.policy.needs_patched_qemu() && !cfg.patched_qemu {
        bail!("policy '{}' needs the patched QEMU", cfg.policy);
    }
    std::fs::create_dir_all(&cfg.work_dir)
        .with_context(|| format!("creating {}", cfg.work_dir.display()))?;
    // Declared first, dropped last: the QEMUs go before their namespaces.
    let link = match cfg.netns_delay_ms {
        Some(delay) => Some(NetnsLink::create(
            cfg.bandwidth_bytes_per_s * 8 / 1_000_000,
            delay,
        )?),
        None => None,
    };
    let (addr, port) = match &link {
        Some(_) => (DST_ADDR, 4444),
        None => ("127.0.0.1", free_port()?),
    };
    let uri = format!("tcp:{addr}:{port}");
    let dst_ns = link.as_ref().map(|l| l.dst_ns.as_str());
    let src_ns = link.as_ref().map(|l| l.src_ns.as_str());
    let mut dst = QemuProcess::start(&cfg.spec, &cfg.work_dir, DST_ROLE, Some(&uri), dst_ns)?;
    let mut src = QemuProcess::start(&cfg.spec, &cfg.work_dir, SRC_ROLE, None, src_ns)?;
    let connect = |p: &QemuProcess| {
        Qmp::connect(&p.qmp_path, Duration::from_secs(20))
            .with_context(|| format!("QEMU did not come up; see {}", p.qemu_log.display()))
    };
    let mut qs = connect(&src)?;
    let mut qd = connect(&dst)?;

    src.wait_for_load(BOOT_TIMEOUT)
        .context("the source guest")?;
    interrupt::sleep(Duration::from_secs_f64(cfg.warmup_s))?;
    let advise_cfg = AdviseConfig {
        wait_weight: cfg.wait_weight,
        ..AdviseConfig::new(
            cfg.spec.ram_mib as f64 * 1024.0 * 1024.0,
            cfg.bandwidth_bytes_per_s as f64,
            Objective::from_config(&cfg.controller_config()),
        )
    };
    let start = wait_for_start(
        &cfg.start,
        cfg.start_delay_s,
        &advise_cfg,
        &cfg.label,
        &mut qs,
    )?;
    settings(cfg).apply(&mut qs, Some(&mut qd))?;
    let mut controller = match cfg.policy {
        LiveSpec::Controller(kind) => Some(Controller::new(
            kind,
            &cfg.controller_config(),
            cfg.downtime_limit_ms,
        )?),
        _ => None,
    };

    let before: Vec<LoadSample> = load_samples(&src.serial_log);
    let guest_t_start = before.last().map_or(0.0, |s| s.t_s);
    let cpu_start = src.cpu_seconds();
    let mut feed = RoundFeed::default();
    let mut status_line = StatusLine::new(cfg.label.clone());
    let mut postcopy_started = false;
    let followed = follow(
        &mut QmpTransfer::new(&mut qs, uri),
        Limits {
            poll: POLL,
            timeout: Duration::from_secs_f64(cfg.timeout_s),
        },
        &mut |source, progress| {
            let new = if cfg.patched_qemu {
                feed.poll(source)?
            } else {
                0
            };
            if let Some(c) = controller.as_mut() {
                let start = feed.rounds.len() - new;
                c.feed(&feed.rounds[start..], source)?;
            }
            let n = feed.rounds.len();
            status_line.update(
                progress.status,
                feed.rounds.last(),
                n.checked_sub(2).map(|i| &feed.rounds[i]),
            );
            if !progress.ended && cfg.policy == LiveSpec::PostcopyAfter && !postcopy_started {
                let rounds = progress.info["ram"]["dirty-sync-count"]
                    .as_u64()
                    .unwrap_or(0);
                if rounds >= POSTCOPY_AFTER_ROUNDS {
                    source.execute("migrate-start-postcopy", None)?;
                    postcopy_started = true;
                }
            }
            Ok(())
        },
        &mut || {
            if src.is_running() {
                Ok(())
            } else {
                bail!(
                    "the source QEMU died during the migration; see {}",
                    src.qemu_log.display()
                )
            }
        },
    )?;
    if followed.interrupted {
        return Err(interrupt::Interrupted.into());
    }
    status_line.finish();
    let cpu_end = src.cpu_seconds();
    if cfg.patched_qemu {
        feed.poll(&mut qs)?;
    }
    let qemu_status = followed.status();
    let completed = qemu_status == "completed";
    if completed {
        interrupt::sleep(AFTER)?;
    }

    let src_samples = load_samples(&src.serial_log);
    let dst_samples = load_samples(&dst.serial_log);
    let window_before: Vec<LoadSample> = before
        .iter()
        .copied()
        .filter(|s| s.t_s > guest_t_start - cfg.warmup_s.max(2.0) + 1.0)
        .collect();
    let during: Vec<LoadSample> = src_samples
        .iter()
        .copied()
        .filter(|s| s.t_s > guest_t_start)
        .collect();
    let after: Vec<LoadSample> = dst_samples.iter().copied().skip(1).collect();
    let pause = src_samples
        .iter()
        .chain(dst_samples.iter().take(2))
        .filter(|s| s.t_s > guest_t_start)
        .map(|s| s.max_gap_ms)
        .fold(None, |m: Option<f64>, g| Some(m.map_or(g, |m| m.max(g))));
    let verify_errors = src_samples
        .iter()
        .chain(dst_samples.iter())
        .map(|s| s.verify_errors)
        .max()
        .unwrap_or(0);
    let dst_running =
        completed && dst.is_running() && qd.execute("query-status", None)?["status"] == "running";
    if completed && !dst_running {
        bail!(
            "the migration completed but the destination is not running; see {}",
            dst.qemu_log.display()
        );
    }
    let switchover = Switchover::from_events(&qs.take_events(), &qd.take_events());
    let qemu_downtime_ms = number(&followed.info, "downtime");
    let status = if verify_errors > 0 {
        MigrationStatus::MemoryCorrupted
    } else if controller.as_ref().is_some_and(Controller::cancelled) {
        MigrationStatus::Aborted
    } else if followed.timed_out {
        MigrationStatus::TimedOut
    } else {
        MigrationStatus::from_qemu(qemu_status).unwrap_or(MigrationStatus::Failed)
    };
    let trace = cfg.work_dir.join("trace.csv");
    let trace = if feed.rounds.is_empty() {
        None
    } else {
        feed.write_trace(&trace)?;
        Some(trace)
    };
    let escalation_in_force = followed.info["convergence"]["escalation"]
        .as_str()
        .map(str::to_string);
    if matches!(cfg.policy, LiveSpec::Predictive(_))
        && cfg.escalation != Escalation::None
        && escalation_in_force.as_deref() == Some("none")
    {
        eprintln!(
            "kairos: QEMU left escalation '{}' out of this migration (its log says why: {})",
            cfg.escalation.name(),
            src.qemu_log.display()
        );
    }
    // Only Kairos inside QEMU decides; the recorder's "observing" says
    // nothing about QEMU's own mechanisms or a controller's decisions.
    let decided = feed
        .rounds
        .last()
        .filter(|_| matches!(cfg.policy, LiveSpec::Predictive(_)));
    Ok(LiveResult {
        workload: cfg.spec.workload.clone(),
        policy: cfg.policy.to_string(),
        status,
        total_time_ms: number(&followed.info, "total-time"),
        downtime_ms: switchover.downtime_ms(qemu_downtime_ms),
        qemu_downtime_ms,
        paused_ms: switchover.paused_ms,
        postcopy_switch: switchover.postcopy,
        setup_time_ms: number(&followed.info, "setup-time"),
        transferred_bytes: followed.info["ram"]["transferred"].as_u64(),
        rounds: followed.info["ram"]["dirty-sync-count"].as_u64(),
        action: decided.map(|r| r.action.clone()),
        reason: decided.map(|r| r.reason.clone()),
        escalation_in_force,
        downtime_limit_ms: cfg.policy.downtime_limit_ms(cfg.downtime_limit_ms),
        max_downtime_ms: cfg.max_downtime_ms,
        downtime_weight: cfg.policy.downtime_weight(cfg.downtime_weight),
        guest_pause_ms: pause,
        ops_before: mean_ops_per_s(&window_before),
        ops_during: mean_ops_per_s(&during),
        ops_after: mean_ops_per_s(&after),
        verify_errors,
        app_loss_pct: app_loss_pct(&src_samples, &dst_samples, guest_t_start),
        guest_t_start_s: Some(guest_t_start),
        source_cpu_s: match (cpu_start, cpu_end) {
            (Some(a), Some(b)) => Some(b - a),
            _ => None,
        },
        trace,
        rounds_dropped: feed.dropped,
        work_dir: cfg.work_dir.clone(),
        link: if link.is_some() { "netns" } else { "loopback" }.to_string(),
        start_wait_s: (start.rule != StartRule::Now).then_some(start.wait_s),
        start: Some(start),
        code_commit: Some(CODE_COMMIT.to_string()),
        finished_unix_s: Some(unix_now_s()),
    })
}

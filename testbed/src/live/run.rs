//! One live migration: boot the guest on a source QEMU, start a
//! destination, let the workload warm up, migrate, measure.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::guest_log::{load_samples, throughput_loss_pct, LoadSample};
use super::interrupt;
use super::netns::{NetnsLink, DST_ADDR};
use super::policy::{LivePolicy, POSTCOPY_AFTER_ROUNDS};
use super::qemu::{GuestSpec, QemuProcess};
use super::qmp::Qmp;

/// How long a guest may take to boot and start its load generator.
const BOOT_TIMEOUT: Duration = Duration::from_secs(90);
/// How often query-migrate is polled.
const POLL: Duration = Duration::from_millis(200);
/// How long the guest is watched on the destination afterwards.
const AFTER: Duration = Duration::from_secs(4);

/// What to run.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// The guest both sides boot.
    pub spec: GuestSpec,
    /// The policy.
    pub policy: LivePolicy,
    /// `max-bandwidth`, bytes/s.
    pub bandwidth_bytes_per_s: u64,
    /// `downtime-limit`, ms.
    pub downtime_limit_ms: u64,
    /// `x-convergence-max-downtime`, ms.
    pub max_downtime_ms: u64,
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
}

/// What one live migration measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LiveResult {
    /// Workload name.
    pub workload: String,
    /// Policy name.
    pub policy: String,
    /// completed, failed, cancelled or timed-out.
    pub status: String,
    /// True when the migration completed.
    pub converged: bool,
    /// QEMU's total time, ms.
    pub total_time_ms: Option<f64>,
    /// QEMU's downtime, ms.
    pub downtime_ms: Option<f64>,
    /// Longest stall the guest's load generator saw around the switch-over, ms.
    pub guest_pause_ms: Option<f64>,
    /// QEMU's setup time, ms.
    pub setup_time_ms: Option<f64>,
    /// Bytes transferred.
    pub sent_bytes: Option<u64>,
    /// Dirty-bitmap sync rounds.
    pub rounds: Option<u64>,
    /// The convergence policy's last action and reason (patched QEMU).
    pub decision: Option<String>,
    /// Why.
    pub reason: Option<String>,
    /// Guest operations per second before the migration.
    pub ops_before: Option<f64>,
    /// … while it ran (on the source).
    pub ops_during: Option<f64>,
    /// … afterwards, on the destination.
    pub ops_after: Option<f64>,
    /// Pages the guest found corrupted or lost (source and destination).
    pub verify_errors: u64,
    /// Throughput lost during the migration, % of what the same workload
    /// phases gave without migration (before it, and after on the
    /// destination).
    pub app_loss_pct: Option<f64>,
    /// CPU time the source QEMU used during the migration, s.
    pub source_cpu_s: Option<f64>,
    /// The per-round trace (patched QEMU with a policy).
    pub trace: Option<PathBuf>,
    /// Logs, sockets and trace.
    pub work_dir: PathBuf,
    /// loopback, or netns (a shaped veth pair between two namespaces).
    #[serde(default)]
    pub link: String,
}

fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

fn mean(samples: &[LoadSample]) -> Option<f64> {
    (!samples.is_empty())
        .then(|| samples.iter().map(|s| s.ops_per_s).sum::<f64>() / samples.len() as f64)
}

fn number(v: &Value, key: &str) -> Option<f64> {
    v.get(key).and_then(Value::as_f64)
}

/// Run one migration.
pub fn run_migration(cfg: &RunConfig) -> Result<LiveResult> {
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
    let mut dst = QemuProcess::start(&cfg.spec, &cfg.work_dir, "dst", Some(&uri), dst_ns)?;
    let mut src = QemuProcess::start(&cfg.spec, &cfg.work_dir, "src", None, src_ns)?;
    let connect = |p: &QemuProcess| {
        Qmp::connect(&p.qmp_path, Duration::from_secs(20))
            .with_context(|| format!("QEMU did not come up; see {}", p.qemu_log.display()))
    };
    let mut qs = connect(&src)?;
    let mut qd = connect(&dst)?;

    src.wait_for_load(BOOT_TIMEOUT)
        .context("the source guest")?;
    interrupt::sleep(Duration::from_secs_f64(cfg.warmup_s))?;

    if let Some(caps) = cfg.policy.capabilities_arg() {
        qs.execute("migrate-set-capabilities", Some(caps.clone()))?;
        qd.execute("migrate-set-capabilities", Some(caps))?;
    }
    let mut params = json!({
        "max-bandwidth": cfg.bandwidth_bytes_per_s,
        "downtime-limit": cfg.downtime_limit_ms,
    });
    let trace = cfg.work_dir.join("trace.csv");
    let policy_name = cfg.policy.convergence_policy(cfg.patched_qemu);
    if policy_name != "off" {
        params["x-convergence-policy"] = json!(policy_name);
        params["x-convergence-max-downtime"] = json!(cfg.max_downtime_ms);
        params["x-convergence-trace"] = json!(trace.display().to_string());
    }
    qs.execute("migrate-set-parameters", Some(params))?;

    let before: Vec<LoadSample> = load_samples(&src.serial_log);
    let guest_t_start = before.last().map_or(0.0, |s| s.t_s);
    let cpu_start = src.cpu_seconds();
    let started = Instant::now();
    qs.execute("migrate", Some(json!({ "uri": uri })))?;

    let mut postcopy_started = false;
    let mut timed_out = false;
    let info = loop {
        let info = qs.execute("query-migrate", None)?;
        let status = info["status"].as_str().unwrap_or("").to_string();
        if matches!(status.as_str(), "completed" | "failed" | "cancelled") {
            break info;
        }
        if cfg.policy == LivePolicy::PostcopyAfter && !postcopy_started {
            let rounds = info["ram"]["dirty-sync-count"].as_u64().unwrap_or(0);
            if rounds >= POSTCOPY_AFTER_ROUNDS {
                qs.execute("migrate-start-postcopy", None)?;
                postcopy_started = true;
            }
        }
        if started.elapsed().as_secs_f64() > cfg.timeout_s && !timed_out {
            timed_out = true;
            qs.execute("migrate_cancel", None)?;
        }
        if !src.is_running() {
            bail!(
                "the source QEMU died during the migration; see {}",
                src.qemu_log.display()
            );
        }
        if let Err(e) = interrupt::sleep(POLL) {
            let _ = qs.execute("migrate_cancel", None);
            return Err(e);
        }
    };
    let cpu_end = src.cpu_seconds();
    let status = info["status"].as_str().unwrap_or("unknown").to_string();
    let converged = status == "completed";
    if converged {
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
    let ops_before = mean(&window_before);
    let ops_during = mean(&during);
    // Only the library's own policies decide; the recorder's "never-stop"
    // says nothing about QEMU's mechanisms.
    let library = info
        .get("convergence")
        .filter(|_| matches!(cfg.policy, LivePolicy::Library(_)));
    let dst_running =
        converged && dst.is_running() && qd.execute("query-status", None)?["status"] == "running";
    if converged && !dst_running {
        bail!(
            "the migration completed but the destination is not running; see {}",
            dst.qemu_log.display()
        );
    }
    Ok(LiveResult {
        workload: cfg.spec.workload.clone(),
        policy: cfg.policy.name().to_string(),
        status: if verify_errors > 0 {
            "memory-corrupted".to_string()
        } else if timed_out {
            "timed-out".to_string()
        } else {
            status
        },
        converged: converged && verify_errors == 0,
        verify_errors,
        total_time_ms: number(&info, "total-time"),
        downtime_ms: number(&info, "downtime"),
        guest_pause_ms: pause,
        setup_time_ms: number(&info, "setup-time"),
        sent_bytes: info["ram"]["transferred"].as_u64(),
        rounds: info["ram"]["dirty-sync-count"].as_u64(),
        decision: library
            .and_then(|c| c["action"].as_str())
            .map(str::to_string),
        reason: library
            .and_then(|c| c["reason"].as_str())
            .map(str::to_string),
        ops_before,
        ops_during,
        ops_after: mean(&after),
        app_loss_pct: throughput_loss_pct(
            &during,
            &before
                .iter()
                .copied()
                .filter(|s| s.t_s > 1.0)
                .chain(after.iter().copied())
                .collect::<Vec<_>>(),
        ),
        source_cpu_s: match (cpu_start, cpu_end) {
            (Some(a), Some(b)) => Some(b - a),
            _ => None,
        },
        trace: trace.exists().then_some(trace),
        work_dir: cfg.work_dir.clone(),
        link: if link.is_some() {
            "netns".to_string()
        } else {
            "loopback".to_string()
        },
    })
}

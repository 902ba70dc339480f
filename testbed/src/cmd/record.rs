//! `kairos record`: follow the migrations of running QEMUs in shadow mode
//! (the policy `observe`), keep each one's trace and decision record, and
//! serve the figures in the Prometheus text format.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Args;
use serde_json::json;

use crate::cmd::usage::bail_usage;
use crate::driver::Monitor;
use crate::live::interrupt;
use crate::live::qmp::Qmp;
use crate::record::follower::{Follower, PollError};
use crate::record::metrics::{encode, Metrics};

/// How often a QEMU that went away is tried again, s.
const RECONNECT_S: u64 = 5;

/// How long one reconnect attempt may wait.
const RECONNECT_WAIT: Duration = Duration::from_millis(200);

/// Arguments of `kairos record`.
#[derive(Debug, Args)]
pub struct RecordArgs {
    /// A QEMU's QMP socket to follow, as NAME=PATH or PATH (named by the
    /// file's stem); repeat for several QEMUs. Give the recorder a monitor
    /// of its own (a second `-qmp unix:PATH,server=on,wait=off`): a QMP
    /// socket serves one client at a time.
    #[arg(long = "qmp", value_name = "[NAME=]PATH", required = true)]
    pub qmp: Vec<String>,
    /// Where each migration's `trace.csv` and `record.json` go
    /// (OUT/NAME/NNNN-START/).
    #[arg(long, default_value = "build/record")]
    pub out: PathBuf,
    /// Serve the figures at http://ADDR/metrics (e.g. 127.0.0.1:9464);
    /// none served without it.
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<String>,
    /// How often each QEMU is polled, ms.
    #[arg(long, default_value_t = 200)]
    pub poll_ms: u64,
    /// Leave each QEMU's x-convergence-policy as it is. By default one
    /// set to `off` is set to `observe` (shadow mode: it forecasts and
    /// decides nothing) while the recorder runs, and back to `off` when
    /// it exits.
    #[arg(long)]
    pub keep_policy: bool,
    /// Exit once this many migrations have been recorded (all QEMUs
    /// together); by default, run until Ctrl-C or SIGTERM (a migration
    /// being recorded then is written, marked `interrupted`; exit 0).
    #[arg(long, value_name = "N")]
    pub migrations: Option<u64>,
}

/// One followed QEMU.
struct Target {
    follower: Follower,
    path: PathBuf,
    monitor: Option<Qmp>,
    /// Set to `observe` by the recorder, to put back to `off`.
    set_observe: bool,
}

fn parse_target(spec: &str) -> Result<(String, PathBuf)> {
    let (name, path) = match spec.split_once('=') {
        Some((name, path)) => (name.to_string(), PathBuf::from(path)),
        None => {
            let path = PathBuf::from(spec);
            let name = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            (name, path)
        }
    };
    if name.is_empty() || name.contains('/') || name.starts_with('.') {
        bail_usage!("--qmp {spec}: give NAME=PATH (a name usable as a folder name)");
    }
    Ok((name, path))
}

/// Connect, check that the QEMU is the patched one, and put it in shadow
/// mode unless told not to.
fn connect(path: &Path, name: &str, keep_policy: bool, wait: Duration) -> Result<(Qmp, bool)> {
    let mut qmp = Qmp::connect(path, wait)?;
    let parameters = qmp.execute("query-migrate-parameters", None)?;
    let Some(policy) = parameters["x-convergence-policy"].as_str() else {
        anyhow::bail!(
            "{name}: this QEMU has no x-convergence-policy (not the patched one): nothing to record"
        );
    };
    let set_observe = !keep_policy && policy == "off";
    if set_observe {
        qmp.execute(
            "migrate-set-parameters",
            Some(json!({ "x-convergence-policy": "observe" })),
        )
        .with_context(|| format!("{name}: setting x-convergence-policy observe"))?;
    }
    eprintln!(
        "record: {name} ({}): policy {}",
        path.display(),
        if set_observe {
            "observe (was off)"
        } else {
            policy
        }
    );
    Ok((qmp, set_observe))
}

/// Serve `/metrics` on a thread of its own.
fn serve_metrics(addr: &str, registry: prometheus_client::registry::Registry) -> Result<()> {
    let Ok(socket) = addr.parse::<std::net::SocketAddr>() else {
        bail_usage!("--metrics-listen {addr}: give an address and port, e.g. 127.0.0.1:9464");
    };
    let server = tiny_http::Server::http(socket)
        .map_err(|e| anyhow::anyhow!("--metrics-listen {addr}: {e}"))?;
    eprintln!("record: figures at http://{}/metrics", server.server_addr());
    std::thread::spawn(move || {
        for request in server.incoming_requests() {
            let path = request.url().split('?').next().unwrap_or("");
            let response = if matches!(path, "/metrics" | "/metrics/") {
                let header = tiny_http::Header::from_bytes(
                    &b"Content-Type"[..],
                    &b"application/openmetrics-text; version=1.0.0; charset=utf-8"[..],
                )
                .ok();
                let mut r = tiny_http::Response::from_string(encode(&registry));
                if let Some(h) = header {
                    r.add_header(h);
                }
                r
            } else {
                tiny_http::Response::from_string("kairos record: see /metrics\n")
                    .with_status_code(404)
            };
            let _ = request.respond(response);
        }
    });
    Ok(())
}

/// Run `kairos record`.
pub fn run(args: &RecordArgs) -> Result<()> {
    if args.poll_ms == 0 {
        bail_usage!("--poll-ms must be at least 1");
    }
    if args.migrations == Some(0) {
        bail_usage!("--migrations must be at least 1");
    }
    let mut targets = Vec::new();
    for spec in &args.qmp {
        let (name, path) = parse_target(spec)?;
        if targets.iter().any(|t: &Target| t.follower.name() == name) {
            bail_usage!("--qmp: two QEMUs named '{name}'");
        }
        targets.push(Target {
            follower: Follower::new(&name, &args.out),
            path,
            monitor: None,
            set_observe: false,
        });
    }
    interrupt::install()?;
    let (metrics, registry) = Metrics::registered();
    if let Some(addr) = &args.metrics_listen {
        serve_metrics(addr, registry)?;
    }
    // Every QEMU is reached at the start (a wrong path is said at once);
    // one that cannot be is an error, after the ones already put in shadow
    // mode are put back.
    let mut started = Ok(());
    for t in &mut targets {
        match connect(
            &t.path,
            t.follower.name(),
            args.keep_policy,
            Duration::from_secs(5),
        ) {
            Ok((qmp, set_observe)) => {
                t.monitor = Some(qmp);
                t.set_observe = set_observe;
            }
            Err(e) => {
                started = Err(e);
                break;
            }
        }
    }
    let result = started.and_then(|()| follow_all(&mut targets, &metrics, args));
    // Stopped: what is being recorded is written as it is.
    for t in &mut targets {
        match t.follower.interrupted(&metrics) {
            Ok(written) => written.iter().for_each(|(r, dir)| report(r, dir)),
            Err(e) => eprintln!("record: {}: {e:#}", t.follower.name()),
        }
    }
    restore_policies(&mut targets);
    let recorded: u64 = targets.iter().map(|t| t.follower.recorded()).sum();
    eprintln!(
        "record: {recorded} migration(s) recorded under {}",
        args.out.display()
    );
    match result {
        // Ctrl-C or SIGTERM is how a recorder is stopped.
        Err(e) if interrupt::is_interruption(&e) => Ok(()),
        other => other,
    }
}

/// Put `off` back where the recorder set `observe`, if it is still
/// `observe` (an operator's later change is kept); what cannot be put back
/// is said. A recorder killed with SIGKILL puts nothing back: the QEMU
/// keeps `observe` (which decides nothing) until set otherwise.
fn restore_policies(targets: &mut [Target]) {
    for t in targets.iter_mut().filter(|t| t.set_observe) {
        let name = t.follower.name().to_string();
        let restored = (|| -> Result<()> {
            if t.monitor.is_none() {
                t.monitor = Some(Qmp::connect(&t.path, Duration::from_secs(2))?);
            }
            let Some(qmp) = t.monitor.as_mut() else {
                return Ok(());
            };
            let parameters = qmp.execute("query-migrate-parameters", None)?;
            if parameters["x-convergence-policy"].as_str() == Some("observe") {
                qmp.execute(
                    "migrate-set-parameters",
                    Some(json!({ "x-convergence-policy": "off" })),
                )?;
            }
            Ok(())
        })();
        if let Err(e) = restored {
            eprintln!("record: {name}: x-convergence-policy not put back to off: {e:#}");
        }
    }
}

fn follow_all(targets: &mut [Target], metrics: &Metrics, args: &RecordArgs) -> Result<()> {
    let poll = Duration::from_millis(args.poll_ms);
    let mut last_reconnect = Instant::now();
    loop {
        for t in targets.iter_mut() {
            let name = t.follower.name().to_string();
            let Some(qmp) = t.monitor.as_mut() else {
                continue;
            };
            let now_s = crate::live::run::unix_now_s();
            match t.follower.poll(qmp as &mut dyn Monitor, metrics, now_s) {
                Ok(written) => written.iter().for_each(|(r, dir)| report(r, dir)),
                Err(PollError::Write(e)) => {
                    metrics.write_error(&name);
                    eprintln!("record: {name}: {e:#}");
                }
                Err(PollError::Monitor(e)) => {
                    metrics.monitor_error(&name);
                    eprintln!("record: {name}: {e}; reconnecting every {RECONNECT_S} s");
                    t.monitor = None;
                    t.follower.disconnected();
                }
            }
        }
        let recorded: u64 = targets.iter().map(|t| t.follower.recorded()).sum();
        if args.migrations.is_some_and(|n| recorded >= n) {
            return Ok(());
        }
        if last_reconnect.elapsed() >= Duration::from_secs(RECONNECT_S) {
            for t in targets.iter_mut().filter(|t| t.monitor.is_none()) {
                // One quick attempt: a QEMU that is gone must not hold up
                // the others.
                match connect(&t.path, t.follower.name(), args.keep_policy, RECONNECT_WAIT) {
                    Ok((qmp, set_observe)) => {
                        t.monitor = Some(qmp);
                        t.set_observe |= set_observe;
                    }
                    // Still gone: what was being recorded is written.
                    Err(_) => match t.follower.gone(metrics) {
                        Ok(written) => written.iter().for_each(|(r, dir)| report(r, dir)),
                        Err(e) => {
                            metrics.write_error(t.follower.name());
                            eprintln!("record: {}: {e:#}", t.follower.name());
                        }
                    },
                }
            }
            last_reconnect = Instant::now();
        }
        interrupt::sleep(poll)?;
    }
}

fn report(record: &crate::record::summary::MigrationRecord, dir: &Path) {
    let error = record
        .forecast_error
        .and_then(|e| e.median_relative)
        .map_or("–".to_string(), |e| format!("{:.0} %", e * 100.0));
    eprintln!(
        "record: {} #{}: {} in {} ms, downtime {} ms, {} syncs (forecast error {error}, {} fallbacks) -> {}",
        record.target,
        record.index,
        record.status,
        record.total_time_ms.map_or("?".into(), |v| v.to_string()),
        record.downtime_ms.map_or("?".into(), |v| v.to_string()),
        record.syncs,
        record.fallback_syncs,
        dir.display()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_is_named_by_its_name_or_its_socket_stem() {
        assert_eq!(
            parse_target("vm1=/run/a.qmp").unwrap(),
            ("vm1".to_string(), PathBuf::from("/run/a.qmp"))
        );
        assert_eq!(
            parse_target("/run/guest-7.qmp").unwrap().0,
            "guest-7".to_string()
        );
        for bad in ["=/run/a.qmp", "a/b=/x", ".x=/y"] {
            let err = parse_target(bad).unwrap_err();
            assert!(crate::cmd::usage::is_usage(&err), "{bad}");
        }
    }
}

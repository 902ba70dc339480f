//! libvirt as the driver's transport: a domain's monitor through libvirt's
//! QEMU pass-through (`virsh qemu-monitor-command`), the migration by
//! `virDomainMigrate3` from one daemon to another (what `virsh migrate
//! --live DOMAIN DEST_URI MIGRATE_URI` does). Built with the `libvirt`
//! feature.

use std::thread::JoinHandle;

use anyhow::{Context, Result};
use serde_json::{json, Value};
use virt::connect::Connect;
use virt::domain::{Domain, JobStats, MigrateParameters};
use virt::sys;

use super::follow::{Transfer, FINAL_STATUSES};
use super::monitor::Monitor;
use crate::live::qmp::{command_message, reply_value, QmpError};

/// A domain's QEMU monitor, reached through libvirt.
pub struct DomainMonitor {
    domain: Domain,
    name: String,
}

impl DomainMonitor {
    /// The monitor of `domain`.
    pub fn new(domain: Domain) -> Result<Self> {
        let name = domain.name().context("the domain's name")?;
        Ok(Self { domain, name })
    }

    /// The domain.
    pub fn domain(&self) -> &Domain {
        &self.domain
    }

    /// The domain's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Monitor for DomainMonitor {
    fn execute(&mut self, command: &str, arguments: Option<Value>) -> Result<Value, QmpError> {
        let message = command_message(command, arguments).to_string();
        let reply =
            self.domain
                .qemu_monitor_command(&message, 0)
                .map_err(|e| QmpError::Passthrough {
                    domain: self.name.clone(),
                    message: e.to_string(),
                })?;
        let reply: Value = serde_json::from_str(&reply).map_err(|_| QmpError::Protocol {
            path: self.name.clone(),
            reply,
        })?;
        reply_value(command, &reply)
    }
}

/// Where a libvirt migration sends the guest.
#[derive(Debug, Clone, PartialEq)]
pub struct LibvirtTarget {
    /// The migration stream's URI (`tcp://ADDR:PORT`), or libvirt's
    /// choice when None.
    pub migrate_uri: Option<String>,
    /// libvirt's own bandwidth cap, MiB/s (`virsh migrate --bandwidth`),
    /// or none.
    pub bandwidth_mib_s: Option<u64>,
}

/// A live migration of a domain from its daemon to another, carried out
/// by libvirt on a thread of its own (the call blocks until the end)
/// while the driver polls the source's monitor. The domain is defined on
/// the destination and undefined on the source (an emptied host keeps no
/// definition it could start again); its disks must be on storage both
/// hosts share. Dropped while libvirt's call runs, it aborts the job and
/// waits for the call to return: no migration outlives its transfer.
pub struct LibvirtTransfer<'a> {
    source: &'a mut DomainMonitor,
    destination: Connect,
    target: LibvirtTarget,
    worker: Option<JoinHandle<Result<Domain, virt::error::Error>>>,
    ended: Option<Value>,
    /// The source QEMU has reported a migration under way since the
    /// start (a final status before that is left from an earlier one).
    seen_running: bool,
    /// The source's last answer while its migration ran.
    last: Option<Value>,
    /// The source QEMU's own final `query-migrate`, when it was seen
    /// before libvirt tore the source down.
    qemu_final: Option<Value>,
}

impl<'a> LibvirtTransfer<'a> {
    /// From the domain behind `source` to the daemon `destination`.
    pub fn new(
        source: &'a mut DomainMonitor,
        destination: &Connect,
        target: LibvirtTarget,
    ) -> Self {
        Self {
            source,
            destination: destination.clone(),
            target,
            worker: None,
            ended: None,
            seen_running: false,
            last: None,
            qemu_final: None,
        }
    }

    /// libvirt's call has returned (or was never made).
    fn call_over(&self) -> bool {
        self.worker.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Once libvirt's call has returned: the end in `query-migrate`'s
    /// shape (None while it runs).
    fn end(&mut self) -> Option<Value> {
        if self.ended.is_none() && self.call_over() {
            let ended = match self.worker.take().map(JoinHandle::join) {
                None => json!({ "status": "failed", "error-desc": "never started" }),
                Some(Err(_)) => json!({
                    "status": "failed",
                    "error-desc": "the libvirt migration's thread panicked",
                }),
                Some(Ok(Ok(arrived))) => {
                    // The guest moved: statistics that cannot be read leave
                    // their figures out, not the arrival.
                    let mut info = arrived
                        .job_stats(sys::VIR_DOMAIN_JOB_STATS_COMPLETED)
                        .map_or_else(|_| json!({ "status": "completed" }), |s| completed_info(&s));
                    if let Some(qemu) = &self.qemu_final {
                        info["qemu-downtime"] = qemu["downtime"].clone();
                        info["qemu-total-time"] = qemu["total-time"].clone();
                    }
                    info
                }
                Some(Ok(Err(e))) => json!({
                    "status": if matches!(
                        e.code(),
                        virt::enumutil::Enum::Known(virt::error::ErrorNumber::OperationAborted)
                    ) {
                        "cancelled"
                    } else {
                        "failed"
                    },
                    "error-desc": e.to_string(),
                }),
            };
            self.ended = Some(ended);
        }
        self.ended.clone()
    }

    /// Ask libvirt to abort the job; false when it refused.
    fn abort(&mut self) -> bool {
        // SAFETY: `as_ptr` is the source domain's handle, whose reference
        // `self.source` holds for the whole call, so it stays valid; libvirt
        // handles may be used from any thread, also while another thread is
        // in virDomainMigrate3 on the same domain (aborting that job is what
        // this call is for).
        unsafe { sys::virDomainAbortJob(self.source.domain().as_ptr()) >= 0 }
    }
}

impl Drop for LibvirtTransfer<'_> {
    fn drop(&mut self) {
        if let Some(worker) = self.worker.take() {
            while !worker.is_finished() {
                self.abort();
                std::thread::sleep(std::time::Duration::from_millis(500));
            }
            let _ = worker.join();
        }
    }
}

/// A completed libvirt job's statistics in `query-migrate`'s shape (the
/// members the driver's callers read). libvirt's `downtime` runs from the
/// source's pause to the guest's resume on the destination, its own
/// hand-over included; QEMU's own figure, when the source was seen to
/// complete, is added as `qemu-downtime`.
pub fn completed_info(stats: &JobStats) -> Value {
    json!({
        "status": "completed",
        "total-time": stats.time_elapsed,
        "downtime": stats.downtime,
        "setup-time": stats.setup_time,
        "ram": {
            "transferred": stats.mem_processed,
            "total": stats.mem_total,
            "dirty-sync-count": stats.mem_iteration,
        },
    })
}

impl Transfer for LibvirtTransfer<'_> {
    fn source(&mut self) -> &mut dyn Monitor {
        self.source
    }

    fn start(&mut self) -> Result<()> {
        let domain = self.source.domain().clone();
        let destination = self.destination.clone();
        let parameters = MigrateParameters {
            uri: self.target.migrate_uri.clone(),
            bandwidth: self.target.bandwidth_mib_s,
            ..MigrateParameters::default()
        };
        let flags = sys::VIR_MIGRATE_LIVE
            | sys::VIR_MIGRATE_PERSIST_DEST
            | sys::VIR_MIGRATE_UNDEFINE_SOURCE;
        let worker = std::thread::Builder::new()
            .name(format!("migrate {}", self.source.name()))
            .spawn(move || domain.migrate3(&destination, parameters, flags))
            .context("starting the libvirt migration's thread")?;
        self.worker = Some(worker);
        Ok(())
    }

    fn cancel(&mut self) -> Result<()> {
        // A refusal (the job not begun yet, or over) is not an error: the
        // follow loop goes on until libvirt's call returns, and says how.
        if !self.abort() && !self.call_over() {
            eprintln!(
                "[{}] libvirt did not abort the migration now: {}",
                self.source.name(),
                virt::error::Error::last_error()
            );
        }
        Ok(())
    }

    fn query(&mut self) -> Result<Value> {
        if let Some(ended) = self.end() {
            return Ok(ended);
        }
        let waiting = || json!({});
        match self.source.execute("query-migrate", None) {
            Ok(info) => {
                let status = info["status"].as_str().unwrap_or("");
                if FINAL_STATUSES.contains(&status) {
                    // QEMU's part is over, libvirt's goes on (the
                    // destination takes over) until its call returns; a
                    // final status before this migration ran is an
                    // earlier one's.
                    if self.seen_running {
                        self.qemu_final = Some(info);
                    }
                    Ok(self.last.clone().unwrap_or_else(waiting))
                } else {
                    if !status.is_empty() {
                        self.seen_running = true;
                        self.last = Some(info.clone());
                    }
                    Ok(info)
                }
            }
            // The source torn down with the migration's end, or a monitor
            // busy a moment: the next poll tells.
            Err(_) => Ok(self.last.clone().unwrap_or_else(waiting)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_completed_job_reads_as_a_completed_query_migrate() {
        let stats = JobStats {
            time_elapsed: Some(12_345),
            downtime: Some(210),
            setup_time: Some(4),
            mem_processed: Some(1 << 30),
            mem_total: Some(1 << 30),
            mem_iteration: Some(7),
            ..JobStats::default()
        };
        let info = completed_info(&stats);
        assert_eq!(info["status"], "completed");
        assert_eq!(info["total-time"], 12_345);
        assert_eq!(info["downtime"], 210);
        assert_eq!(info["ram"]["dirty-sync-count"], 7);
        assert_eq!(info["ram"]["transferred"], 1u64 << 30);
    }

    /// libvirt's test driver (`test:///default`, in the library itself)
    /// has a running domain `test` but no QEMU behind it: the
    /// pass-through's refusal comes back as a monitor error naming it.
    #[test]
    fn a_refused_pass_through_names_the_domain() {
        let conn = Connect::open(Some("test:///default")).expect("libvirt's test driver");
        let domain = conn
            .lookup_domain_by_name("test")
            .expect("its domain `test`");
        let mut monitor = DomainMonitor::new(domain).unwrap();
        let err = monitor.execute("query-migrate", None).unwrap_err();
        assert!(
            matches!(err, QmpError::Passthrough { ref domain, .. } if domain == "test"),
            "{err}"
        );
    }
}

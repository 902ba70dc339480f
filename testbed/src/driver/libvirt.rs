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
/// while the driver polls the source's monitor.
pub struct LibvirtTransfer<'a> {
    source: &'a mut DomainMonitor,
    destination: Connect,
    target: LibvirtTarget,
    worker: Option<JoinHandle<Result<Domain, virt::error::Error>>>,
    aborted: bool,
    ended: Option<Value>,
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
            aborted: false,
            ended: None,
            qemu_final: None,
        }
    }

    /// Wait for libvirt's call to return; the end in `query-migrate`'s
    /// shape.
    fn join(&mut self) -> Result<Value> {
        if let Some(ended) = &self.ended {
            return Ok(ended.clone());
        }
        let worker = self
            .worker
            .take()
            .context("the libvirt migration was never started")?;
        let result = worker
            .join()
            .map_err(|_| anyhow::anyhow!("the libvirt migration thread panicked"))?;
        let ended = match result {
            Ok(arrived) => {
                let stats = arrived
                    .job_stats(sys::VIR_DOMAIN_JOB_STATS_COMPLETED)
                    .context("the completed job's statistics on the destination")?;
                let mut info = completed_info(&stats);
                if let Some(qemu) = &self.qemu_final {
                    info["qemu-downtime"] = qemu["downtime"].clone();
                    info["qemu-total-time"] = qemu["total-time"].clone();
                }
                info
            }
            Err(e) => json!({
                "status": if self.aborted { "cancelled" } else { "failed" },
                "error-desc": e.to_string(),
            }),
        };
        self.ended = Some(ended.clone());
        Ok(ended)
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
        let flags = sys::VIR_MIGRATE_LIVE;
        let worker = std::thread::Builder::new()
            .name(format!("migrate {}", self.source.name()))
            .spawn(move || domain.migrate3(&destination, parameters, flags))
            .context("starting the libvirt migration's thread")?;
        self.worker = Some(worker);
        Ok(())
    }

    fn cancel(&mut self) -> Result<()> {
        self.aborted = true;
        // SAFETY: the pointer is the source's live domain reference, held
        // by `self.source` for the whole call; virDomainAbortJob only reads
        // it and may be called while another thread is in virDomainMigrate3
        // on the same domain (libvirt's handles are thread-safe).
        let rc = unsafe { sys::virDomainAbortJob(self.source.domain().as_ptr()) };
        if rc < 0 {
            // The job may have ended meanwhile; the end says how.
            let e = virt::error::Error::last_error();
            if self.worker.as_ref().is_some_and(|w| !w.is_finished()) {
                anyhow::bail!("aborting the migration of {}: {e}", self.source.name());
            }
        }
        Ok(())
    }

    fn query(&mut self) -> Result<Value> {
        if self.ended.is_some() || self.worker.as_ref().is_some_and(JoinHandle::is_finished) {
            return self.join();
        }
        match self.source.execute("query-migrate", None) {
            // libvirt's job goes on after QEMU's (the destination takes
            // over): the end is when its call returns.
            Ok(info) if FINAL_STATUSES.contains(&info["status"].as_str().unwrap_or("")) => {
                self.qemu_final = Some(info);
                self.join()
            }
            Ok(info) => Ok(info),
            // The source is being torn down with the migration's end.
            Err(_) => self.join(),
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

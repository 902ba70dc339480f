//! One libvirt domain's live migration as an evacuation runs it: the
//! policy's parameters set through libvirt's monitor pass-through, the
//! migration by libvirt (`virDomainMigrate3`), every sync the policy saw
//! read while it runs, the guest's own page check read on arrival.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Result;
use kairos_eval::outcome::MigrationStatus;
use virt::connect::Connect;

use super::evacuation::{GuestMigration, GuestOutcome, MigrationProgress};
use super::guest_log::load_samples;
use super::interrupt;
use super::rounds::RoundFeed;
use crate::driver::libvirt::{DomainMonitor, LibvirtTarget, LibvirtTransfer};
use crate::driver::{follow, Limits, MigrationSettings};

/// How long the guest may take to report twice from the destination.
const ARRIVAL_REPORT_TIMEOUT: Duration = Duration::from_secs(20);

/// A domain to migrate, and how.
pub struct LibvirtGuest {
    monitor: DomainMonitor,
    destination: Connect,
    target: LibvirtTarget,
    settings: MigrationSettings,
    limits: Limits,
    /// Whether the source QEMU records the policy's syncs
    /// (`x-query-convergence`: the patched QEMU with a policy set).
    reads_syncs: bool,
    /// The file the guest's console writes to, when it is one (read on
    /// this machine: meaningful where kairos runs beside the source).
    serial_log: Option<PathBuf>,
    /// The console's reports when the migration ended.
    reports_at_end: usize,
}

impl LibvirtGuest {
    /// `monitor`'s domain to `destination`, with `settings` set first.
    pub fn new(
        monitor: DomainMonitor,
        destination: &Connect,
        target: LibvirtTarget,
        settings: MigrationSettings,
        limits: Limits,
        reads_syncs: bool,
    ) -> Self {
        let serial_log = monitor
            .domain()
            .xml_desc(0)
            .ok()
            .and_then(|xml| serial_file(&xml));
        Self {
            monitor,
            destination: destination.clone(),
            target,
            settings,
            limits,
            reads_syncs,
            serial_log,
            reports_at_end: 0,
        }
    }
}

impl GuestMigration for LibvirtGuest {
    fn name(&self) -> &str {
        self.monitor.name()
    }

    fn migrate(&mut self, progress: &mut dyn FnMut(MigrationProgress)) -> Result<GuestOutcome> {
        self.settings.apply(&mut self.monitor, None)?;
        let mut feed = RoundFeed::default();
        let reads_syncs = self.reads_syncs;
        let mut transfer =
            LibvirtTransfer::new(&mut self.monitor, &self.destination, self.target.clone());
        let followed = follow(
            &mut transfer,
            self.limits,
            &mut |source, p| {
                if !p.ended && reads_syncs {
                    // The source goes away with the migration's end: a
                    // sync it recorded but could not tell is lost, not an
                    // error.
                    let _ = feed.poll(source);
                }
                progress(MigrationProgress {
                    status: p.status.to_string(),
                    rounds: p.info["ram"]["dirty-sync-count"].as_u64().unwrap_or(0),
                    remaining_bytes: p.info["ram"]["remaining"].as_u64().unwrap_or(0),
                    transferred_bytes: p.info["ram"]["transferred"].as_u64().unwrap_or(0),
                    elapsed_ms: p.info["total-time"].as_u64().unwrap_or(0),
                });
                Ok(())
            },
            &mut || Ok(()),
        )?;
        let status = match followed.status() {
            "completed" => MigrationStatus::Completed,
            "cancelled" if followed.interrupted => MigrationStatus::Cancelled,
            "cancelled" if followed.timed_out => MigrationStatus::TimedOut,
            "cancelled" => MigrationStatus::Cancelled,
            _ => MigrationStatus::Failed,
        };
        drop(transfer);
        self.reports_at_end = self
            .serial_log
            .as_deref()
            .map_or(0, |p| load_samples(p).len());
        let info = &followed.info;
        Ok(GuestOutcome {
            status,
            total_time_ms: info["total-time"].as_f64(),
            downtime_ms: info["downtime"].as_f64(),
            qemu_downtime_ms: info["qemu-downtime"].as_f64(),
            rounds: info["ram"]["dirty-sync-count"].as_u64(),
            transferred_bytes: info["ram"]["transferred"].as_u64(),
            decision: feed
                .rounds
                .last()
                .map(|r| format!("{}/{}", r.action, r.reason)),
            verified: None,
            error: info["error-desc"].as_str().map(str::to_string),
        })
    }

    fn verify_arrival(&mut self) -> Option<bool> {
        arrival_check(self.serial_log.as_deref()?, self.reports_at_end)
    }
}

/// The guest's page check once it runs on the destination: true when its
/// second report after the migration's end (`reports_at_end` reports
/// were there then; the next ones come from the destination, a full
/// second of checking there) counts no wrong page; None when it does not
/// report within [`ARRIVAL_REPORT_TIMEOUT`] (not the Kairos guest) or on
/// Ctrl-C.
fn arrival_check(log: &Path, reports_at_end: usize) -> Option<bool> {
    let deadline = Instant::now() + ARRIVAL_REPORT_TIMEOUT;
    loop {
        let samples = load_samples(log);
        if samples.len() >= reports_at_end + 2 {
            return samples.last().map(|s| s.verify_errors == 0);
        }
        if Instant::now() > deadline {
            return None;
        }
        interrupt::sleep(Duration::from_millis(250)).ok()?;
    }
}

/// The file a domain's first serial console writes to, from its XML.
fn serial_file(xml: &str) -> Option<PathBuf> {
    let doc = roxmltree::Document::parse(xml).ok()?;
    let serial = doc
        .descendants()
        .find(|n| n.has_tag_name("serial") && n.attribute("type") == Some("file"))?;
    let source = serial.children().find(|n| n.has_tag_name("source"))?;
    source.attribute("path").map(PathBuf::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_serial_file_is_read_from_the_domain_xml() {
        let xml = "<domain><devices><serial type='file'>\n  <source path='/tmp/vm1-serial.log' append='on'/>\n  <target port='0'/>\n</serial></devices></domain>";
        assert_eq!(serial_file(xml), Some(PathBuf::from("/tmp/vm1-serial.log")));
        let pty = "<domain><devices><serial type='pty'><source path='/dev/pts/3'/></serial></devices></domain>";
        assert_eq!(serial_file(pty), None);
        let quoted = "<serial type=\"file\"><source path=\"/a b.log\"/></serial>";
        assert_eq!(serial_file(quoted), Some(PathBuf::from("/a b.log")));
    }
}

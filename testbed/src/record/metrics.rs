//! The figures `kairos record` serves, in the Prometheus / OpenMetrics
//! text format (prometheus-client), per recorded QEMU (`target` label).

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::summary::MigrationRecord;
use crate::live::rounds::QmpRound;

/// One recorded QEMU.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TargetLabels {
    /// Its name on the command line.
    pub target: String,
}

/// A recorded QEMU and how a migration ended.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndLabels {
    /// Its name on the command line.
    pub target: String,
    /// QEMU's final status, or `source-gone`.
    pub status: String,
}

/// A recorded QEMU and the policy's latest decision.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecisionLabels {
    /// Its name on the command line.
    pub target: String,
    /// The action.
    pub action: String,
    /// Why.
    pub reason: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;

/// Every family `kairos record` serves (clones share their values).
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    migrations: Family<EndLabels, Counter>,
    migrating: Family<TargetLabels, Gauge>,
    syncs: Family<TargetLabels, Gauge>,
    pending_bytes: Family<TargetLabels, Gauge>,
    forecast_pending_bytes: Family<TargetLabels, Gauge>,
    decision: Family<DecisionLabels, Gauge>,
    fallback_syncs: Family<TargetLabels, Counter>,
    last_total_time_ms: Family<TargetLabels, Gauge>,
    last_downtime_ms: Family<TargetLabels, Gauge>,
    last_forecast_error: Family<TargetLabels, FloatGauge>,
    monitor_errors: Family<TargetLabels, Counter>,
    write_errors: Family<TargetLabels, Counter>,
    /// Each target's decision label set in force, to drop when the next
    /// comes.
    decision_in_force: Arc<Mutex<BTreeMap<String, DecisionLabels>>>,
}

fn target(name: &str) -> TargetLabels {
    TargetLabels {
        target: name.to_string(),
    }
}

fn clamp_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Metrics {
    /// The families, registered in a new registry.
    pub fn registered() -> (Self, Registry) {
        let m = Self::default();
        let mut r = Registry::with_prefix("kairos");
        r.register(
            "migrations",
            "Migrations recorded, by how they ended",
            m.migrations.clone(),
        );
        r.register(
            "migrating",
            "1 while a migration of the QEMU is being recorded",
            m.migrating.clone(),
        );
        r.register(
            "syncs",
            "Dirty bitmap syncs read of the current (or last) migration",
            m.syncs.clone(),
        );
        r.register(
            "pending_bytes",
            "Bytes left after the latest sync",
            m.pending_bytes.clone(),
        );
        r.register(
            "forecast_pending_bytes",
            "Bytes the policy forecast, at the latest sync, to be left after the next",
            m.forecast_pending_bytes.clone(),
        );
        r.register(
            "decision",
            "The policy's latest decision (1 for the action and reason in force)",
            m.decision.clone(),
        );
        r.register(
            "fallback_syncs",
            "Syncs at which the policy fell back to QEMU's rule",
            m.fallback_syncs.clone(),
        );
        r.register(
            "last_total_time_ms",
            "Total time of the last recorded migration, ms",
            m.last_total_time_ms.clone(),
        );
        r.register(
            "last_downtime_ms",
            "Downtime of the last recorded migration, ms",
            m.last_downtime_ms.clone(),
        );
        r.register(
            "last_forecast_error_ratio",
            "Median |forecast - actual| / actual of the pending bytes of the next sync, last migration",
            m.last_forecast_error.clone(),
        );
        r.register(
            "monitor_errors",
            "Polls of the QEMU's monitor that failed",
            m.monitor_errors.clone(),
        );
        r.register(
            "write_errors",
            "Migrations whose files could not be written (not recorded)",
            m.write_errors.clone(),
        );
        (m, r)
    }

    /// A migration of `name` started (or was found running).
    pub fn started(&self, name: &str) {
        self.migrating.get_or_create(&target(name)).set(1);
        self.syncs.get_or_create(&target(name)).set(0);
    }

    /// New syncs were read: the latest is the last of `new`.
    pub fn synced(&self, name: &str, all: usize, new: &[QmpRound]) {
        let t = target(name);
        self.syncs.get_or_create(&t).set(clamp_i64(all as u64));
        let fallbacks = new
            .iter()
            .filter(|r| super::summary::is_fallback(r))
            .count();
        self.fallback_syncs
            .get_or_create(&t)
            .inc_by(fallbacks as u64);
        let Some(last) = new.last() else {
            return;
        };
        self.pending_bytes
            .get_or_create(&t)
            .set(clamp_i64(last.pending));
        self.forecast_pending_bytes
            .get_or_create(&t)
            .set(clamp_i64(last.forecast_pending));
        let labels = DecisionLabels {
            target: name.to_string(),
            action: last.action.clone(),
            reason: last.reason.clone(),
        };
        let mut in_force = self
            .decision_in_force
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(before) = in_force.insert(name.to_string(), labels.clone()) {
            if before != labels {
                self.decision.remove(&before);
            }
        }
        self.decision.get_or_create(&labels).set(1);
    }

    /// A migration ended.
    pub fn ended(&self, record: &MigrationRecord) {
        let t = target(&record.target);
        self.migrating.get_or_create(&t).set(0);
        self.migrations
            .get_or_create(&EndLabels {
                target: record.target.clone(),
                status: record.status.clone(),
            })
            .inc();
        // Of the last migration only: a figure it does not have is not
        // left from the one before.
        for (family, value) in [
            (&self.last_total_time_ms, record.total_time_ms),
            (&self.last_downtime_ms, record.downtime_ms),
        ] {
            if let Some(ms) = value {
                family.get_or_create(&t).set(clamp_i64(ms));
            } else {
                family.remove(&t);
            }
        }
        match record.forecast_error.and_then(|e| e.median_relative) {
            Some(ratio) => {
                self.last_forecast_error.get_or_create(&t).set(ratio);
            }
            None => {
                self.last_forecast_error.remove(&t);
            }
        }
    }

    /// A poll of `name`'s monitor failed.
    pub fn monitor_error(&self, name: &str) {
        self.monitor_errors.get_or_create(&target(name)).inc();
    }

    /// A migration of `name` could not be written.
    pub fn write_error(&self, name: &str) {
        self.write_errors.get_or_create(&target(name)).inc();
    }
}

/// The registry in the text format.
pub fn encode(registry: &Registry) -> String {
    let mut text = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut text, registry);
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latest_decision_replaces_the_one_before_and_targets_stay_apart() {
        let (m, r) = Metrics::registered();
        let mut a = crate::record::summary::tests::round(1, 500, 400, "continue");
        m.started("vm1");
        m.synced("vm1", 1, std::slice::from_ref(&a));
        m.synced("vm2", 1, std::slice::from_ref(&a));
        a.action = "stop-and-copy".into();
        a.reason = "convergence-point".into();
        m.synced("vm1", 2, std::slice::from_ref(&a));
        let text = encode(&r);
        assert!(text.contains(
            r#"kairos_decision{target="vm1",action="stop-and-copy",reason="convergence-point"} 1"#
        ), "{text}");
        assert!(
            !text.contains(r#"kairos_decision{target="vm1",action="continue""#),
            "{text}"
        );
        assert!(
            text.contains(r#"kairos_decision{target="vm2",action="continue""#),
            "{text}"
        );
        assert!(
            text.contains(r#"kairos_pending_bytes{target="vm1"} 500"#),
            "{text}"
        );
        assert!(text.contains(r#"kairos_syncs{target="vm1"} 2"#), "{text}");
    }

    #[test]
    fn an_ended_migration_counts_by_status() {
        let (m, r) = Metrics::registered();
        let info = serde_json::json!({"total-time": 900, "downtime": 40});
        let record =
            crate::record::summary::MigrationRecord::new("vm1", 1, 0, "completed", &info, &[], 0);
        m.ended(&record);
        m.ended(&record);
        let text = encode(&r);
        assert!(
            text.contains(r#"kairos_migrations_total{target="vm1",status="completed"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"kairos_last_downtime_ms{target="vm1"} 40"#),
            "{text}"
        );
    }
}

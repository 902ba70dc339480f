//! A guest whose quiet phase is short: a plan to wait in it for a cheaper
//! stop loses, with the stop it did not take, a whole busy phase.

use std::path::Path;

use kairos_eval::baseline::PolicySpec;
use kairos_eval::outcome::MigrationStatus;
use kairos_eval::sim::workload::Workload;
use kairos_eval::sim::{SimConfig, SyncModel};
use kairos_eval::summary::simulate_workload;
use kairos_policy_core::cost::Objective;
use kairos_policy_core::policies::PolicyKind;
use kairos_policy_core::PolicyConfig;

/// A program of the generator's design set (seed 20001, program 48): a
/// 4 GiB guest that writes 1.2 GiB at 348 MiB/s for 40 s, then computes
/// for 8 s and writes lightly for 2 s, over and over; the migration starts
/// in the busy phase.
const SHORT_QUIET_PHASE: &str = "
name = 'short-quiet-phase'
ram_mib = 4096
repeat = true
migrate_at_s = 29.2
[[phase]]
kind = 'cpu'
seconds = 7.7
[[phase]]
kind = 'write'
seconds = 2.0
wss_mib = 378
rate_mib_s = 13.4
pattern = 'hot-cold'
cpu_share = 0.99
hot_fraction = 0.09
hot_share = 0.66
[[phase]]
kind = 'write'
seconds = 40.7
wss_mib = 1221
rate_mib_s = 348.1
pattern = 'zipf'
cpu_share = 0.98
zipf_theta = 0.60
";

#[test]
fn a_short_quiet_phase_is_not_waited_through() {
    let workload = Workload::from_toml(SHORT_QUIET_PHASE, Path::new("short.toml")).unwrap();
    let sim = SimConfig {
        warmup_s: workload.migrate_at_s.unwrap_or(0.0),
        sync_model: SyncModel::Threshold,
        ..SimConfig::default()
    };
    // QEMU's rule at every static limit: its stops do not depend on λ.
    let statics: Vec<PolicySpec> = (1..=10).map(|i| PolicySpec::QemuAt(i * 100)).collect();
    let static_runs =
        simulate_workload(&workload, &statics, &PolicyConfig::default(), &sim).unwrap();
    for weight in [3.0, 10.0, 30.0] {
        let cfg = PolicyConfig {
            downtime_weight: weight,
            ..PolicyConfig::default()
        };
        let objective = Objective::from_config(&cfg);
        let best_static_ms = static_runs
            .iter()
            .filter(|r| r.status == MigrationStatus::Completed)
            .filter_map(|r| objective.cost_ms(r.total_time_ms, r.downtime_ms?))
            .fold(f64::INFINITY, f64::min);
        let predictive = simulate_workload(
            &workload,
            &[PolicySpec::Library(PolicyKind::Predictive)],
            &cfg,
            &sim,
        )
        .unwrap();
        let cost_ms = predictive[0].cost_ms.expect("predictive did not end");
        // Waiting through the busy phase that follows costs 2.5x; a stop
        // in the quiet phase, at most what its downtime weighs.
        assert!(
            cost_ms <= 1.7 * best_static_ms,
            "λ = {weight}: {cost_ms:.0} ms against the best static limit's {best_static_ms:.0} ms"
        );
    }
}

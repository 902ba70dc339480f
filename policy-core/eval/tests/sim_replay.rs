//! The simulator, the oracle and trace replay agree with each other.

use std::path::Path;

use kairos_eval::baseline::PolicySpec;
use kairos_eval::outcome::MigrationStatus;
use kairos_eval::replay::replay;
use kairos_eval::sim::workload::Workload;
use kairos_eval::sim::{simulate, SimConfig};
use kairos_eval::summary::simulate_workload;
use kairos_eval::trace::{read_trace, TraceWriter, TracedDecision};
use kairos_policy_core::policies::{build_policy, PolicyKind};
use kairos_policy_core::PolicyConfig;

fn hot_workload() -> Workload {
    let text = "name='hot'\nram_mib=512\n[[phase]]\nkind='write'\nseconds=600\nwss_mib=64\nrate_mib_s=250\n";
    Workload::from_toml(text, Path::new("hot.toml")).unwrap()
}

fn sim_cfg() -> SimConfig {
    SimConfig {
        bandwidth_bytes_per_s: 125e6,
        time_cap_s: 60.0,
        ..SimConfig::default()
    }
}

#[test]
fn replaying_the_never_stop_trace_gives_the_simulated_stop() {
    let workload = hot_workload();
    let cfg = PolicyConfig::default();
    let mut never = build_policy(PolicyKind::Observe, &cfg).unwrap();
    let long = simulate(&workload, never.as_mut(), &sim_cfg(), None);
    let mut writer = TraceWriter::new(Vec::new()).unwrap();
    for r in &long.rounds {
        writer
            .write(
                &r.observation,
                &TracedDecision {
                    action: r.decision.action.name(),
                    reason: r.decision.reason.name(),
                    throttle_pct: r.decision.throttle_pct,
                    sync_below_ms: r.decision.sync_below_ms,
                },
            )
            .unwrap();
    }
    let bytes = writer.finish().unwrap();
    let rows = read_trace(bytes.as_slice(), Path::new("mem.csv")).unwrap();
    assert_eq!(rows.len(), long.rounds.len());

    for kind in [
        PolicyKind::Predictive,
        PolicyKind::Xen,
        PolicyKind::KubevirtStall,
    ] {
        let mut simulated_policy = build_policy(kind, &cfg).unwrap();
        let simulated = simulate(&workload, simulated_policy.as_mut(), &sim_cfg(), None);
        let mut replayed_policy = build_policy(kind, &cfg).unwrap();
        let replayed = replay(&rows, replayed_policy.as_mut());
        if simulated.escalations == 0 && simulated.status == MigrationStatus::Completed {
            assert_eq!(
                replayed.stop.map(|s| s.round),
                Some(simulated.rounds.len() as u64),
                "{kind}"
            );
        }
    }
}

#[test]
fn predictive_beats_qemu_where_qemu_cannot_converge() {
    let rows = simulate_workload(
        &hot_workload(),
        &[
            PolicySpec::Library(PolicyKind::Qemu),
            PolicySpec::Library(PolicyKind::Predictive),
        ],
        &PolicyConfig::default(),
        &sim_cfg(),
    )
    .unwrap();
    let (qemu, predictive) = (&rows[0], &rows[1]);
    assert!(
        !qemu.completed(),
        "this working set is too hot for QEMU's 300 ms rule"
    );
    assert!(predictive.completed());
    assert!(predictive.downtime_ms.unwrap() <= PolicyConfig::default().max_downtime_ms);
    let regret = predictive.regret.unwrap();
    assert!(regret <= 1.2, "regret {regret}: {predictive:?}");
}

#[test]
fn every_catalogue_workload_parses() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testbed/workloads");
    let files = kairos_eval::sim::workload::suite_files(&dir).unwrap();
    assert!(files.len() >= 6);
    for f in files {
        Workload::from_file(&f).unwrap_or_else(|e| panic!("{e}"));
    }
}

//! On random workload programs and objectives, no policy's allowed stop
//! costs less than the oracle's: every run that does not throttle the
//! guest sees the same rounds as the never-stop run the oracle is taken
//! from, and the oracle is their minimum.

use std::path::Path;

use kairos_eval::baseline::parse_list;
use kairos_eval::sim::workload::Workload;
use kairos_eval::sim::SimConfig;
use kairos_eval::summary::simulate_workload;
use kairos_policy_core::PolicyConfig;
use proptest::prelude::*;

fn workload(phases: &[(f64, f64, f64)]) -> Workload {
    let mut text = String::from("name = 'random'\nram_mib = 512\nrepeat = true\n");
    for (seconds, wss_mib, rate_mib_s) in phases {
        text += &format!(
            "[[phase]]\nkind = 'write'\nseconds = {seconds}\nwss_mib = {wss_mib}\nrate_mib_s = {rate_mib_s}\n"
        );
    }
    Workload::from_toml(&text, Path::new("random.toml")).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10))]

    #[test]
    fn the_oracle_costs_no_more_than_any_policy(
        phases in prop::collection::vec((0.5f64..20.0, 8.0f64..256.0, 5.0f64..400.0), 1..4),
        weight in prop_oneof![Just(0.0), Just(3.0), Just(10.0), Just(30.0)],
        seed in 1u64..1000,
    ) {
        let cfg = PolicyConfig { downtime_weight: weight, ..PolicyConfig::default() };
        let sim = SimConfig { seed, time_cap_s: 30.0, ..SimConfig::default() };
        let specs = parse_list("all", cfg.max_downtime_ms).unwrap();
        for r in simulate_workload(&workload(&phases), &specs, &cfg, &sim).unwrap() {
            if let (Some(cost), Some(oracle), Some(true), 0) =
                (r.cost_ms, r.oracle, r.within_max, r.escalations)
            {
                prop_assert!(cost >= oracle.cost_ms - 1e-6, "{:?}", r);
            }
        }
    }
}

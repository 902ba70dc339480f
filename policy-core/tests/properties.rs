//! Property tests: any input gives a decision without panicking; predictive
//! never stops later than QEMU's rule and never chooses a stop above the
//! hard maximum downtime.

use kairos_policy_core::policies::{build_policy, qemu_rule_holds, PolicyKind};
use kairos_policy_core::{Action, PolicyConfig, Reason, RoundObservation};
use proptest::prelude::*;

fn any_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(0.0),
        Just(-1.0),
        any::<f64>(),
        1e3f64..1e10,
    ]
}

fn any_observation() -> impl Strategy<Value = RoundObservation> {
    (
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
        any_f64(),
        prop_oneof![Just(4096u64), any::<u64>()],
        prop_oneof![Just(1u64 << 30), any::<u64>()],
    )
        .prop_map(
            |(round, elapsed_ms, dirtied_pages, pending_bytes, sent_bytes, bw, page, ram)| {
                RoundObservation {
                    round,
                    elapsed_ms,
                    dirtied_pages,
                    pending_bytes,
                    sent_bytes,
                    bandwidth_bytes_per_s: bw,
                    page_size_bytes: page,
                    ram_bytes: ram,
                }
            },
        )
}

/// A plausible migration: time and counters move forward, bandwidth is
/// positive, pending moves around the threshold.
fn plausible_migration() -> impl Strategy<Value = Vec<RoundObservation>> {
    prop::collection::vec((1u64..3000, 0u64..(600 << 20), 5e7f64..2e8), 2..60).prop_map(|steps| {
        let ram = 1u64 << 30;
        let mut elapsed = 0;
        let mut sent = 0;
        steps
            .into_iter()
            .enumerate()
            .map(|(i, (dt, pending, bw))| {
                elapsed += dt;
                sent += pending / 2;
                RoundObservation {
                    round: i as u64 + 1,
                    elapsed_ms: elapsed,
                    dirtied_pages: pending / 4096,
                    pending_bytes: pending,
                    sent_bytes: sent,
                    bandwidth_bytes_per_s: bw,
                    page_size_bytes: 4096,
                    ram_bytes: ram,
                }
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_input_yields_a_decision(obs in prop::collection::vec(any_observation(), 1..40)) {
        for &kind in PolicyKind::ALL {
            let mut policy = build_policy(kind, &PolicyConfig::default()).unwrap();
            for o in &obs {
                let d = policy.observe(o);
                prop_assert!(d.downtime_limit_ms.is_finite());
                for p in d.forecast.points() {
                    prop_assert!(!p.pending_bytes.is_nan());
                }
            }
            policy.reset();
        }
    }

    #[test]
    fn predictive_never_later_than_qemu_nor_above_max(rounds in plausible_migration()) {
        let cfg = PolicyConfig::default();
        let mut policy = build_policy(PolicyKind::Predictive, &cfg).unwrap();
        for o in &rounds {
            let d = policy.observe(o);
            if qemu_rule_holds(o, cfg.downtime_limit_ms) {
                prop_assert_eq!(d.action, Action::StopAndCopy, "qemu stops at round {} but predictive said {:?}", o.round, d.reason);
            }
            if d.action == Action::StopAndCopy {
                let own_choice = d.reason != Reason::BadInputFallback;
                if own_choice {
                    prop_assert!(o.implied_downtime_ms() <= cfg.max_downtime_ms,
                        "stopped at {} ms > max {} ({:?})", o.implied_downtime_ms(), cfg.max_downtime_ms, d.reason);
                }
                break;
            }
        }
    }
}

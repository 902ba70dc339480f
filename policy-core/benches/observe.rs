//! One observe+decide round with default settings, per policy.

use criterion::{criterion_group, criterion_main, Criterion};
use kairos_policy_core::policies::{build_policy, PolicyKind};
use kairos_policy_core::{PolicyConfig, RoundObservation};

fn observation(round: u64) -> RoundObservation {
    let pending = 60_000_000 + (round * 7919 % 31) * 1_000_000;
    RoundObservation {
        round,
        elapsed_ms: round * 500,
        dirtied_pages: pending / 4096,
        pending_bytes: pending,
        sent_bytes: round * 60_000_000,
        bandwidth_bytes_per_s: 125e6,
        page_size_bytes: 4096,
        ram_bytes: 1 << 40,
    }
}

fn observe_round(c: &mut Criterion) {
    let cfg = PolicyConfig {
        max_rounds: u64::MAX,
        max_elapsed_ms: u64::MAX,
        max_sent_ram_multiple: 1e12,
        ..PolicyConfig::default()
    };
    for kind in [
        PolicyKind::Predictive,
        PolicyKind::Qemu,
        PolicyKind::KubevirtStall,
    ] {
        let mut policy = build_policy(kind, &cfg).expect("valid config");
        let mut round = 0u64;
        c.bench_function(&format!("observe_round/{kind}"), |b| {
            b.iter(|| {
                round += 1;
                std::hint::black_box(policy.observe(std::hint::black_box(&observation(round))))
            })
        });
    }
}

criterion_group!(benches, observe_round);
criterion_main!(benches);

//! One observe+decide round through the C ABI next to the pure-Rust call,
//! same policy, same rounds, same run.

use criterion::{criterion_group, criterion_main, Criterion};
use kairos::{
    kairos_config_default, kairos_policy_free, kairos_policy_new, kairos_policy_observe,
    KairosConfig, KairosRound,
};
use kairos_policy_core::policies::{build_policy, PolicyKind};
use kairos_policy_core::{PolicyConfig, RoundObservation};

fn round(r: u64) -> KairosRound {
    let pending = 60_000_000 + (r * 7919 % 31) * 1_000_000;
    KairosRound {
        round: r,
        elapsed_ms: r * 500,
        dirtied_pages: pending / 4096,
        pending_bytes: pending,
        sent_bytes: r * 60_000_000,
        bandwidth_bytes_per_s: 125e6,
        page_size_bytes: 4096,
        ram_bytes: 1 << 40,
    }
}

fn observation(r: &KairosRound) -> RoundObservation {
    RoundObservation {
        round: r.round,
        elapsed_ms: r.elapsed_ms,
        dirtied_pages: r.dirtied_pages,
        pending_bytes: r.pending_bytes,
        sent_bytes: r.sent_bytes,
        bandwidth_bytes_per_s: r.bandwidth_bytes_per_s,
        page_size_bytes: r.page_size_bytes,
        ram_bytes: r.ram_bytes,
    }
}

fn c_abi_vs_rust(c: &mut Criterion) {
    let mut group = c.benchmark_group("predictive_round");

    let cfg = PolicyConfig {
        max_rounds: u64::MAX,
        max_elapsed_ms: u64::MAX,
        max_sent_ram_multiple: 1e12,
        ..PolicyConfig::default()
    };
    let mut rust_policy = build_policy(PolicyKind::Predictive, &cfg).expect("valid config");
    let mut r = 0u64;
    group.bench_function("rust", |b| {
        b.iter(|| {
            r += 1;
            std::hint::black_box(rust_policy.observe(&observation(&round(r))))
        })
    });

    let mut c_cfg = std::mem::MaybeUninit::<KairosConfig>::uninit();
    // SAFETY: fills the whole struct.
    unsafe { kairos_config_default(c_cfg.as_mut_ptr()) };
    // SAFETY: initialised above.
    let mut c_cfg = unsafe { c_cfg.assume_init() };
    c_cfg.max_rounds = u64::MAX;
    c_cfg.max_elapsed_ms = u64::MAX;
    c_cfg.max_sent_ram_multiple = 1e12;
    // SAFETY: valid config; no error buffer.
    let handle = unsafe { kairos_policy_new(&c_cfg, std::ptr::null_mut(), 0) };
    assert!(!handle.is_null());
    let mut r = 0u64;
    group.bench_function("c_abi", |b| {
        b.iter(|| {
            r += 1;
            let next = round(r);
            // SAFETY: live handle, valid round, single thread.
            std::hint::black_box(unsafe { kairos_policy_observe(handle, &next) })
        })
    });
    group.finish();
    // SAFETY: our handle, freed once.
    unsafe { kairos_policy_free(handle) };
}

criterion_group!(benches, c_abi_vs_rust);
criterion_main!(benches);

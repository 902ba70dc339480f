//! Planning an evacuation: the first plan of a 64-guest host and a
//! re-plan when one migration ends (the goals: ≤ 100 ms and ≤ 10 ms), the
//! re-plan also with every waiting guest's forecast read again from a
//! 10-minute profile (what the planner does at every event).

use criterion::{criterion_group, criterion_main, Criterion};
use kairos_eval::advise::profile::ProfileSample;
use kairos_eval::gang::plan::{GuestForecast, PlanLink, Planner};
use kairos_eval::gang::sim::Dispatcher;
use std::hint::black_box;

const MIB: f64 = 1048576.0;
const GUESTS: usize = 64;

/// 64 guests of mixed sizes and rates, some bursting.
fn forecasts() -> Vec<GuestForecast> {
    (0..GUESTS)
        .map(|i| {
            let k = i as f64;
            let mut f = GuestForecast::steady(
                (256.0 + (k * 97.0) % 3840.0) * MIB,
                ((k * 37.0) % 150.0) * MIB,
                (16.0 + (k * 53.0) % 900.0) * MIB,
            );
            if i % 3 == 0 {
                for q in &mut f.rate_quantiles_bytes_per_s[..4] {
                    *q = 2.0 * MIB;
                }
            }
            f
        })
        .collect()
}

fn link() -> PlanLink {
    PlanLink {
        link_bytes_per_s: 1250.0 * MIB,
        per_migration_bytes_per_s: Some(300.0 * MIB),
        stop_downtime_s: 1.0,
        time_cap_s: 600.0,
        setup_s: 0.0,
    }
}

fn plan(c: &mut Criterion) {
    let all: Vec<usize> = (0..GUESTS).collect();
    c.bench_function("plan 64 guests", |b| {
        b.iter(|| {
            let mut p = Planner::new(forecasts(), link());
            black_box(p.start_now(0.0, &[], black_box(&all)))
        })
    });
    let mut p = Planner::new(forecasts(), link());
    let running: Vec<usize> = (0..4).collect();
    let waiting: Vec<usize> = (4..GUESTS).collect();
    c.bench_function("re-plan 60 waiting, 4 running", |b| {
        b.iter(|| black_box(p.start_now(10.0, black_box(&running[1..]), black_box(&waiting))))
    });
}

/// A 10-minute profile: 1 s windows, every 30th 5 s long, the rate
/// stepping between two regimes.
fn profile(i: usize) -> Vec<ProfileSample> {
    let mut t_s = 0.0;
    (0..600)
        .map(|w| {
            let window_s = if w % 30 == 29 { 5.0 } else { 1.0 };
            t_s += window_s;
            let hot = (w / 20 + i).is_multiple_of(3);
            ProfileSample {
                t_s,
                window_s,
                dirtied_bytes: window_s * if hot { 90.0 } else { 4.0 } * MIB,
            }
        })
        .collect()
}

fn replan_from_profiles(c: &mut Criterion) {
    let profiles: Vec<Vec<ProfileSample>> = (0..GUESTS).map(profile).collect();
    let mut p = Planner::new(forecasts(), link());
    let running: Vec<usize> = (0..4).collect();
    let waiting: Vec<usize> = (4..GUESTS).collect();
    c.bench_function("re-plan 60 waiting from 10-minute profiles", |b| {
        b.iter(|| {
            let fresh: Vec<GuestForecast> = waiting
                .iter()
                .map(|&g| GuestForecast::from_profile(&profiles[g], 4096.0 * MIB, 2048.0 * MIB))
                .collect();
            black_box(fresh);
            black_box(p.start_now(10.0, black_box(&running[1..]), black_box(&waiting)))
        })
    });
}

criterion_group!(benches, plan, replan_from_profiles);
criterion_main!(benches);

//! The application's loss during a migration, from the load generator's
//! once-a-second reports on the two consoles.
//!
//! Each second of the migration is compared with the same workload phase
//! without one (before the migration on the source, after it on the
//! destination), and the seconds count equally: a workload whose phases run
//! at very different rates (a writer at 38 k ops/s, then a CPU loop at
//! 1.1 M) would otherwise be judged by its fastest phase alone. A report
//! whose phase is not the one before it covers the change of phase, part of
//! each, and is compared with neither.

use super::guest_log::{mean_ops_per_s, LoadSample};

/// Two reports of the same phase in the same state (a program that is over
/// reports its last phase's number, idle).
fn same_phase(a: &LoadSample, b: &LoadSample) -> bool {
    a.phase == b.phase && a.idle == b.idle
}

/// Reports that cover one phase only: every report whose phase is the one
/// of the report before it (the first report of a log has none before it
/// and is kept).
fn within_phase(samples: &[LoadSample]) -> Vec<LoadSample> {
    samples
        .iter()
        .enumerate()
        .filter(|&(i, s)| i == 0 || same_phase(&samples[i - 1], s))
        .map(|(_, s)| *s)
        .collect()
}

/// The application's throughput lost during the migration, %: the mean,
/// over the migration's seconds on the source (reports after
/// `guest_t_start_s`), of the share of the same phase's rate without
/// migration that the second did not reach. The reference is the source's
/// reports before the migration (from t > 1 s) and the destination's after
/// it (its first report straddles the switch and is left out). Seconds of a
/// phase the reference never saw, or saw idle, are left out; `None` when no
/// second is comparable. A second above the reference (a paced generator
/// making up the work a throttle held back) counts as a gain.
pub fn app_loss_pct(src: &[LoadSample], dst: &[LoadSample], guest_t_start_s: f64) -> Option<f64> {
    let src = within_phase(src);
    let dst = within_phase(dst.get(1..).unwrap_or_default());
    let reference: Vec<LoadSample> = src
        .iter()
        .filter(|s| s.t_s > 1.0 && s.t_s <= guest_t_start_s)
        .chain(dst.iter())
        .copied()
        .collect();
    let phase_rate = |second: &LoadSample| {
        let of_phase: Vec<LoadSample> = reference
            .iter()
            .filter(|s| same_phase(s, second))
            .copied()
            .collect();
        mean_ops_per_s(&of_phase).filter(|&rate| rate > 0.0)
    };
    let lost: Vec<f64> = src
        .iter()
        .filter(|s| s.t_s > guest_t_start_s)
        .filter_map(|s| phase_rate(s).map(|rate| 1.0 - s.ops_per_s / rate))
        .collect();
    (!lost.is_empty()).then(|| 100.0 * lost.iter().sum::<f64>() / lost.len() as f64)
}

/// The guest time a migration started at, recovered from the mean rate it
/// recorded for the source's reports after the start (`ops_during`, the
/// same [`mean_ops_per_s`]): runs stored before the start was recorded kept
/// that mean, and exactly one start reproduces it. `None` when none does,
/// or several different ones do.
pub fn recover_guest_t_start_s(src: &[LoadSample], ops_during: f64) -> Option<f64> {
    let tolerance = 1e-9 * ops_during.abs().max(1.0);
    let mut found: Option<(f64, usize)> = None;
    for t0 in std::iter::once(0.0).chain(src.iter().map(|s| s.t_s)) {
        let after: Vec<LoadSample> = src.iter().filter(|s| s.t_s > t0).copied().collect();
        if mean_ops_per_s(&after).is_some_and(|m| (m - ops_during).abs() <= tolerance) {
            let reports_after = after.len();
            match found {
                // Starts between the same two reports are the same start.
                Some((_, n)) if n == reports_after => {}
                Some(_) => return None,
                None => found = Some((t0, reports_after)),
            }
        }
    }
    found.map(|(t0, _)| t0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(t_s: f64, phase: u32, ops_per_s: f64) -> LoadSample {
        LoadSample {
            t_s,
            phase,
            idle: false,
            ops_per_s,
            max_gap_ms: 0.0,
            verify_errors: 0,
        }
    }

    #[test]
    fn seconds_count_equally_whatever_their_phase_rate() {
        // Without migration: phase 1 at 100 ops/s (source, before), phase 2
        // at 1000 (destination, after; its first report is skipped).
        let src = [
            sample(1.0, 1, 100.0),
            sample(2.0, 1, 100.0),
            sample(3.0, 1, 100.0),
            // The migration starts after t = 3: one second of phase 1 at
            // full speed, then one of phase 2 at half speed.
            sample(4.0, 1, 100.0),
            sample(5.0, 2, 999.0),
            sample(6.0, 2, 500.0),
        ];
        let dst = [sample(7.0, 2, 10.0), sample(8.0, 2, 1000.0)];
        let loss = app_loss_pct(&src, &dst, 3.0).unwrap();
        // (0 + 50) / 2: the report at t = 5 changed phase and is left out,
        // and the slow phase counts as much as the fast one.
        assert!((loss - 25.0).abs() < 1e-9, "{loss}");
    }

    #[test]
    fn a_phase_change_second_is_compared_with_neither_phase() {
        // A writer at 40 k ops/s, then a CPU loop at 1 M: the second in
        // which it changed phase did 48 k, mostly writing.
        let mut src: Vec<LoadSample> = (1..=10).map(|t| sample(f64::from(t), 1, 40e3)).collect();
        src.push(sample(11.0, 2, 48e3));
        let dst = [sample(12.0, 2, 5e5), sample(13.0, 2, 1e6)];
        // The guest never slowed: no loss, though the mixed second is far
        // below the CPU loop's rate.
        assert_eq!(app_loss_pct(&src, &dst, 5.0), Some(0.0));
    }

    #[test]
    fn nothing_comparable_gives_none() {
        // Phase 3 is never seen without migration.
        let src = [
            sample(1.0, 1, 100.0),
            sample(2.0, 1, 100.0),
            sample(3.0, 3, 1.0),
            sample(4.0, 3, 1.0),
        ];
        assert_eq!(app_loss_pct(&src, &[], 2.0), None);
        // An idle reference phase is no reference.
        let src = [sample(2.0, 1, 0.0), sample(3.0, 1, 0.0)];
        assert_eq!(app_loss_pct(&src, &[], 2.0), None);
        // A gain is a negative loss.
        let src = [sample(2.0, 1, 100.0), sample(3.0, 1, 150.0)];
        assert_eq!(app_loss_pct(&src, &[], 2.0), Some(-50.0));
    }

    #[test]
    fn a_program_that_is_over_is_not_compared_with_its_last_phase() {
        // A program whose last phase wrote at 50 k ops/s ended at t = 3;
        // the generator then reports that phase's number, idle. The
        // migration starts at t = 5: the guest doing nothing then is no
        // loss, and there is nothing to compare it with.
        let mut src: Vec<LoadSample> = (1..=3).map(|t| sample(f64::from(t), 1, 50e3)).collect();
        for t in 4..=8 {
            src.push(LoadSample {
                idle: true,
                ..sample(f64::from(t), 1, 0.0)
            });
        }
        assert_eq!(app_loss_pct(&src, &[], 5.0), None);
    }

    #[test]
    fn the_start_is_recovered_from_the_mean_after_it() {
        let src: Vec<LoadSample> = [10.0, 20.0, 30.0, 40.0, 55.0]
            .iter()
            .enumerate()
            .map(|(i, &ops)| sample(i as f64 + 1.0, 1, ops))
            .collect();
        // Started after t = 2: (30 + 40 + 55) / 3.
        assert_eq!(recover_guest_t_start_s(&src, 125.0 / 3.0), Some(2.0));
        // Before any report.
        assert_eq!(recover_guest_t_start_s(&src, 31.0), Some(0.0));
        assert_eq!(recover_guest_t_start_s(&src, 12.345), None);
        // Two different starts giving the same mean: ambiguous.
        let flat: Vec<LoadSample> = (1..=4).map(|t| sample(f64::from(t), 1, 7.0)).collect();
        assert_eq!(recover_guest_t_start_s(&flat, 7.0), None);
    }
}

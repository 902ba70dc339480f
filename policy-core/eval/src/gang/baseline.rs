//! What operators run today to empty a host: a fixed number of
//! migrations at a time, whatever the guests — one (OpenStack Nova's
//! default, `max_concurrent_live_migrations = 1`), two (KubeVirt's
//! outbound per node), four (vSphere on 1 GbE), all at once — in an order
//! that knows nothing of them either (as listed, or random) or puts the
//! shortest predicted migration first (CQNCR, mVM), each guest
//! under QEMU's rule or under Kairos's per-guest stop; and the summary an
//! evacuation is judged by.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use kairos_policy_core::cost::Objective;

use super::sim::{GangOutcome, Schedule};
use crate::outcome::MigrationStatus;

/// How many migrations run at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Concurrency {
    /// At most this many.
    Fixed(usize),
    /// Every guest at once.
    All,
}

impl Concurrency {
    /// The operators' usual settings: 1, 2, 4 and all.
    pub const USUAL: [Concurrency; 4] = [
        Concurrency::Fixed(1),
        Concurrency::Fixed(2),
        Concurrency::Fixed(4),
        Concurrency::All,
    ];

    /// The limit for `guests` guests.
    pub fn limit(self, guests: usize) -> usize {
        match self {
            Concurrency::Fixed(n) => n.max(1),
            Concurrency::All => guests.max(1),
        }
    }

    /// The name used in output (`1`, `2`, `all`).
    pub fn name(self) -> String {
        match self {
            Concurrency::Fixed(n) => n.to_string(),
            Concurrency::All => "all".to_string(),
        }
    }
}

/// The order a baseline starts guests in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BaselineOrder {
    /// As listed (the host's domain list): knowing nothing of them.
    AsListed,
    /// Shuffled with this seed: knowing nothing of them.
    Random(u64),
    /// The shortest predicted migration first (each guest's prediction
    /// from its profile, alone on the link), as the CQNCR and mVM
    /// planners order migrations.
    ShortestPredictedFirst,
}

/// The schedule of a baseline for guests whose migrations are predicted
/// to take `predicted_s` each (by index; read only by
/// [`BaselineOrder::ShortestPredictedFirst`]).
pub fn baseline_schedule(
    predicted_s: &[f64],
    concurrency: Concurrency,
    order: BaselineOrder,
) -> Schedule {
    let guests = predicted_s.len();
    let mut indices: Vec<usize> = (0..guests).collect();
    match order {
        BaselineOrder::AsListed => {}
        BaselineOrder::Random(seed) => indices.shuffle(&mut ChaCha8Rng::seed_from_u64(seed)),
        BaselineOrder::ShortestPredictedFirst => {
            indices.sort_by(|&a, &b| predicted_s[a].total_cmp(&predicted_s[b]).then(a.cmp(&b)));
        }
    }
    Schedule {
        order: indices,
        concurrency: concurrency.limit(guests),
        not_before_s: Vec::new(),
    }
}

/// An evacuation judged: its makespan, what its downtimes cost above the
/// limit, and the guests that did not make it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct GangScore {
    /// From the start to the last migration's end, s.
    pub makespan_s: f64,
    /// Σ max(0, D − L) over the guests that completed, ms.
    pub downtime_excess_ms: f64,
    /// Guests whose downtime went above the maximum.
    pub above_max: usize,
    /// Guests whose migration did not complete.
    pub failed: usize,
    /// makespan + λ·Σ excess, s: what the evacuation is judged by (with
    /// every guest completed within its maximum).
    pub cost_s: f64,
}

impl GangScore {
    /// Score `outcome` under `objective` (the same for every guest).
    pub fn of(outcome: &GangOutcome, objective: &Objective) -> Self {
        let mut excess_ms = 0.0;
        let mut above_max = 0;
        let mut failed = 0;
        for run in &outcome.runs {
            match (run.status, run.downtime_ms) {
                (MigrationStatus::Completed, Some(d)) => {
                    excess_ms += (d - objective.downtime_limit_ms).max(0.0);
                    above_max += usize::from(d > objective.max_downtime_ms);
                }
                _ => failed += 1,
            }
        }
        Self {
            makespan_s: outcome.makespan_s,
            downtime_excess_ms: excess_ms,
            above_max,
            failed,
            cost_s: outcome.makespan_s + objective.downtime_weight * excess_ms / 1000.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gang::sim::GangRun;
    use kairos_policy_core::decision::Reason;

    #[test]
    fn a_score_counts_the_excess_the_maximum_and_the_failures() {
        let run = |status, downtime_ms| GangRun {
            start_s: 0.0,
            end_s: 10.0,
            status,
            reason: Reason::Converging,
            downtime_ms,
            rounds: 3,
            transferred_bytes: 1,
        };
        let outcome = GangOutcome {
            runs: vec![
                run(MigrationStatus::Completed, Some(200.0)),
                run(MigrationStatus::Completed, Some(500.0)),
                run(MigrationStatus::Completed, Some(1500.0)),
                run(MigrationStatus::TimedOut, None),
            ],
            makespan_s: 40.0,
        };
        let objective = Objective {
            downtime_limit_ms: 300.0,
            max_downtime_ms: 1000.0,
            downtime_weight: 10.0,
        };
        let s = GangScore::of(&outcome, &objective);
        assert_eq!(s.downtime_excess_ms, 200.0 + 1200.0);
        assert_eq!((s.above_max, s.failed), (1, 1));
        assert_eq!(s.cost_s, 40.0 + 14.0);
    }

    #[test]
    fn schedules_hold_every_guest_once() {
        let predicted = [9.0, 1.0, 5.0, 3.0, 7.0, 2.0, 8.0, 4.0, 6.0];
        for order in [
            BaselineOrder::AsListed,
            BaselineOrder::Random(3),
            BaselineOrder::ShortestPredictedFirst,
        ] {
            let s = baseline_schedule(&predicted, Concurrency::Fixed(2), order);
            let mut sorted = s.order.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, (0..9).collect::<Vec<_>>());
            assert_eq!(s.concurrency, 2);
        }
        assert_eq!(
            baseline_schedule(&predicted, Concurrency::All, BaselineOrder::AsListed).concurrency,
            9
        );
        assert_ne!(
            baseline_schedule(&predicted, Concurrency::All, BaselineOrder::Random(3)).order,
            (0..9).collect::<Vec<_>>()
        );
        assert_eq!(
            baseline_schedule(
                &predicted,
                Concurrency::Fixed(1),
                BaselineOrder::ShortestPredictedFirst
            )
            .order,
            vec![1, 5, 3, 7, 2, 8, 4, 6, 0]
        );
    }
}

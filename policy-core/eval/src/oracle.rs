//! The hindsight oracle under the user's cost.
//!
//! Given every round of one long run that never stopped (same seed, up to a
//! time cap) and what stopping at each round would have cost, the oracle
//! stops at the round of **lowest cost** T + λ·max(0, D − L) among those
//! whose downtime is allowed (D ≤ M); ties go to the earlier round. With
//! λ = ∞ it is the earliest round meeting the limit (or, when none does,
//! the allowed round of least excess); with λ = 0 the earliest round within
//! the maximum. Every policy's regret is its cost over the oracle's.

use kairos_policy_core::cost::Objective;
use serde::{Deserialize, Serialize};

/// What stopping at one round costs, before weighing.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StopCost {
    /// Round number.
    pub round: u64,
    /// Total migration time if stopped here, ms (includes the downtime).
    pub total_time_ms: f64,
    /// Downtime if stopped here, ms.
    pub downtime_ms: f64,
}

/// The oracle's choice under one objective.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct OracleChoice {
    /// The round it stops at, and what that costs.
    pub stop: StopCost,
    /// Its cost under the objective, ms (+∞ when λ = ∞ and no allowed round
    /// meets the limit).
    pub cost_ms: f64,
    /// True when that downtime meets the limit.
    pub meets_limit: bool,
}

/// The order the oracle ranks allowed stops in: cost, then (for λ = ∞,
/// where every stop above the limit costs +∞) least excess, then time.
fn rank(objective: &Objective, c: &StopCost) -> (f64, f64, f64) {
    (
        objective.unbounded_cost_ms(c.total_time_ms, c.downtime_ms),
        objective.excess_ms(c.downtime_ms),
        c.total_time_ms,
    )
}

/// Pick the oracle's stop among `costs` (in round order); `None` when no
/// round's downtime is allowed (or has a finite downtime).
pub fn oracle_choice(costs: &[StopCost], objective: &Objective) -> Option<OracleChoice> {
    let mut best: Option<(&StopCost, (f64, f64, f64))> = None;
    for c in costs
        .iter()
        .filter(|c| c.downtime_ms.is_finite() && objective.allows(c.downtime_ms))
    {
        let key = rank(objective, c);
        if best.is_none_or(|(_, best_key)| key < best_key) {
            best = Some((c, key));
        }
    }
    best.map(|(stop, (cost_ms, _, _))| OracleChoice {
        stop: *stop,
        cost_ms,
        meets_limit: stop.downtime_ms <= objective.downtime_limit_ms,
    })
}

/// The lowest downtime any round reaches, ms (+∞ for no rounds).
pub fn lowest_downtime_ms(costs: &[StopCost]) -> f64 {
    costs
        .iter()
        .map(|c| c.downtime_ms)
        .fold(f64::INFINITY, f64::min)
}

/// A policy's cost over the oracle's (1 = as good as hindsight); `None`
/// when either is missing or the oracle's is not a positive finite number.
pub fn regret(policy_cost_ms: Option<f64>, oracle: Option<&OracleChoice>) -> Option<f64> {
    let oracle_cost = oracle?.cost_ms;
    (oracle_cost.is_finite() && oracle_cost > 0.0)
        .then_some(policy_cost_ms? / oracle_cost)
        .filter(|r| r.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cost(round: u64, downtime_ms: f64) -> StopCost {
        StopCost {
            round,
            total_time_ms: round as f64 * 1000.0 + downtime_ms,
            downtime_ms,
        }
    }

    fn objective(weight: f64) -> Objective {
        Objective {
            downtime_limit_ms: 300.0,
            max_downtime_ms: 1000.0,
            downtime_weight: weight,
        }
    }

    #[test]
    fn lowest_cost_round_at_a_finite_weight() {
        // λ = 3: round 2 costs 2900 + 1800 = 4700, round 3 3250, round 4 4100.
        let costs = [
            cost(1, 8000.0),
            cost(2, 900.0),
            cost(3, 250.0),
            cost(4, 100.0),
        ];
        let c = oracle_choice(&costs, &objective(3.0)).unwrap();
        assert_eq!(c.stop.round, 3);
        assert!((c.cost_ms - 3250.0).abs() < 1e-9);
        assert!(c.meets_limit);
        // λ = 1: round 2 costs 2900 + 600 = 3500 > 3250: still round 3.
        // λ = 0.1: round 2 costs 2960 < 3250.
        assert_eq!(
            oracle_choice(&costs, &objective(0.1)).unwrap().stop.round,
            2
        );
    }

    #[test]
    fn the_two_old_oracles_are_the_special_cases() {
        let costs = [
            cost(1, 8000.0),
            cost(2, 900.0),
            cost(3, 250.0),
            cost(4, 100.0),
        ];
        // λ = ∞: earliest round meeting the limit.
        let at_limit = oracle_choice(&costs, &objective(f64::INFINITY)).unwrap();
        assert_eq!(at_limit.stop.round, 3);
        // λ = 0: earliest round within the maximum.
        let at_max = oracle_choice(&costs, &objective(0.0)).unwrap();
        assert_eq!(at_max.stop.round, 2);
        assert!(!at_max.meets_limit);
    }

    #[test]
    fn infinite_weight_without_a_round_meeting_the_limit_takes_the_least_excess() {
        let costs = [
            cost(1, 8000.0),
            cost(2, 700.0),
            cost(3, 500.0),
            cost(4, 600.0),
        ];
        let c = oracle_choice(&costs, &objective(f64::INFINITY)).unwrap();
        assert_eq!(c.stop.round, 3);
        assert!(c.cost_ms.is_infinite());
    }

    #[test]
    fn nothing_within_the_maximum_means_no_oracle() {
        let costs = [cost(1, 8000.0), cost(2, 1200.0)];
        assert!(oracle_choice(&costs, &objective(10.0)).is_none());
        assert_eq!(lowest_downtime_ms(&costs), 1200.0);
    }

    #[test]
    fn regret_is_the_cost_ratio() {
        let o = OracleChoice {
            stop: cost(2, 100.0),
            cost_ms: 2000.0,
            meets_limit: true,
        };
        assert_eq!(regret(Some(3000.0), Some(&o)), Some(1.5));
        assert_eq!(regret(None, Some(&o)), None);
        assert_eq!(regret(Some(3000.0), None), None);
    }

    proptest! {
        /// Whatever round a policy stops at, its cost is at least the
        /// oracle's: the oracle is the minimum over the same rounds.
        #[test]
        fn oracle_cost_is_a_lower_bound(
            downtimes in prop::collection::vec(1.0f64..3000.0, 1..60),
            weight in prop_oneof![Just(0.0), 0.0f64..100.0, Just(f64::INFINITY)],
            pick in any::<prop::sample::Index>(),
        ) {
            let costs: Vec<StopCost> = downtimes
                .iter()
                .enumerate()
                .map(|(i, &d)| cost(i as u64 + 1, d))
                .collect();
            let o = objective(weight);
            let stop = costs[pick.index(costs.len())];
            match (oracle_choice(&costs, &o), o.cost_ms(stop.total_time_ms, stop.downtime_ms)) {
                (Some(best), Some(policy)) => prop_assert!(best.cost_ms <= policy),
                (None, Some(_)) => prop_assert!(false, "an allowed stop exists but no oracle"),
                (_, None) => {} // the policy's stop is not allowed
            }
        }
    }
}

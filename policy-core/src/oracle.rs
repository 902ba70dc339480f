//! The hindsight oracle.
//!
//! Given every round of one long run that never stopped (same seed, up to a
//! time cap), and what stopping at each round would have cost:
//! the oracle stops at the **earliest round whose downtime meets the
//! downtime limit**; if no round does, at the **earliest round whose downtime
//! is within 10 % of the lowest reachable downtime**. Its total time and
//! downtime are that round's. Every policy's regret is measured against it.

use serde::Serialize;

/// Slack on the lowest reachable downtime when the limit is never met.
pub const LOWEST_DOWNTIME_SLACK: f64 = 0.10;

/// What stopping at one round costs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct StopCost {
    /// Round number.
    pub round: u64,
    /// Total migration time if stopped here, ms (includes the downtime).
    pub total_time_ms: f64,
    /// Downtime if stopped here, ms.
    pub downtime_ms: f64,
}

/// The oracle's choice.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct OracleChoice {
    /// The round it stops at, and what that costs.
    pub stop: StopCost,
    /// True when that downtime meets the limit.
    pub meets_limit: bool,
}

/// Pick the oracle's stop among `costs` (in round order).
pub fn oracle_choice(costs: &[StopCost], downtime_limit_ms: f64) -> Option<OracleChoice> {
    if let Some(stop) = costs.iter().find(|c| c.downtime_ms <= downtime_limit_ms) {
        return Some(OracleChoice {
            stop: *stop,
            meets_limit: true,
        });
    }
    let lowest = costs
        .iter()
        .map(|c| c.downtime_ms)
        .fold(f64::INFINITY, f64::min);
    costs
        .iter()
        .find(|c| c.downtime_ms <= lowest * (1.0 + LOWEST_DOWNTIME_SLACK))
        .map(|stop| OracleChoice {
            stop: *stop,
            meets_limit: false,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cost(round: u64, downtime_ms: f64) -> StopCost {
        StopCost {
            round,
            total_time_ms: round as f64 * 1000.0 + downtime_ms,
            downtime_ms,
        }
    }

    #[test]
    fn earliest_round_meeting_the_limit() {
        let costs = [
            cost(1, 8000.0),
            cost(2, 900.0),
            cost(3, 250.0),
            cost(4, 100.0),
        ];
        let c = oracle_choice(&costs, 300.0).unwrap();
        assert_eq!(c.stop.round, 3);
        assert!(c.meets_limit);
    }

    #[test]
    fn within_ten_percent_of_lowest_when_limit_unreachable() {
        let costs = [
            cost(1, 8000.0),
            cost(2, 1050.0),
            cost(3, 1000.0),
            cost(4, 1200.0),
        ];
        let c = oracle_choice(&costs, 300.0).unwrap();
        assert_eq!(c.stop.round, 2);
        assert!(!c.meets_limit);
    }
}

//! How long to keep waiting once a stop fits: a ski-rental bound on the
//! forecast.
//!
//! Once a stop fits the maximum, every round waited costs its length for
//! sure ("rent"), while the most waiting can ever save is what stopping now
//! costs beyond the time already spent ("buy"):
//!
//! ```text
//! B = D + λ·max(0, D − L)
//! ```
//!
//! since any later stop costs at least its own elapsed time. Waiting is
//! worth it only while the rent paid since a stop first fitted, plus the
//! next round's, stays within a patience measured in B:
//!
//! - the forecast expects a cheaper stop: patience B / α, α being
//!   [`FORECAST_TRUST`] (after the learning-augmented ski rental of
//!   Purohit, Svitkina and Kumar, NeurIPS 2018, whose robust side this
//!   is: a wrong forecast of a cheaper stop buys at most B / α of waiting);
//! - the forecast expects nothing cheaper: it only extrapolates the regime
//!   under way, so patience B if a regime change is likely enough to pay
//!   for the wait, and none otherwise. A change is taken to leave any
//!   downtime between none and today's equally likely, so it saves B / 2
//!   on average; waiting a millisecond is worth it while the hazard of a
//!   change per millisecond times B / 2 exceeds the millisecond.
//!
//! The hazard is learnt from what this migration has shown: (changes
//! detected + ½) per elapsed time, the posterior mean of a Poisson rate
//! under Jeffreys' prior. Early in a migration, or in a guest that keeps
//! changing, a large B buys a few rounds of waiting; a long steady
//! migration stops at once.
//!
//! What this bounds, and what it does not. B is read afresh at every sync,
//! not fixed as in ski rental, and the time since a stop first fitted all
//! counts as rent, including syncs where no stop fitted. Where the stop
//! still fits when it is taken, it costs at most the rent (≤ B / α plus
//! one round) plus the rise in B since a stop first fitted more than
//! stopping then; waiting does not keep the fit, though: a guest that
//! turns worse while the rule waits can leave no stop that fits, and then
//! the rule is back to rule 5 (waiting, escalating or, at a safety cap,
//! aborting), with no bound from here. The hedge is not the paper's
//! consistent side either (it waits B, not α·B, when it waits at all).
//!
/// α: how far the forecast is trusted when it expects a cheaper stop
/// (patience B / α). 1/2 bounds a wrong forecast's extra waiting at 2 B.
pub(super) const FORECAST_TRUST: f64 = 0.5;
/// Jeffreys' prior for a Poisson rate: half a change seen before any.
const PRIOR_CHANGES: f64 = 0.5;
/// The share of B a regime change saves on average, its downtime
/// anywhere between none and today's.
const CHANGE_SAVING_SHARE: f64 = 0.5;

/// Why waiting goes on, or that it does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    /// The forecast expects a cheaper stop and its patience is not spent.
    ForTheForecast,
    /// No cheaper stop is forecast, but a regime change is likely enough
    /// to be worth the wait, and its patience is not spent.
    ForARegimeChange,
    /// Stop now.
    Stop,
}

/// What waiting has cost and could still save, at one sync.
#[derive(Debug, Clone, Copy)]
pub(super) struct Patience {
    /// Waiting since a stop first fitted, and the next round's, ms.
    pub rent_ms: f64,
    /// The most waiting could still save, B, ms.
    pub buy_ms: f64,
    /// Regime changes per ms, as this migration has shown them.
    pub hazard_per_ms: f64,
}

impl Patience {
    /// At a sync `elapsed_ms` into the migration, where stopping costs
    /// `stop_cost_ms` (elapsed time included), a stop first fitted at
    /// `fitted_since_ms`, the next round is expected to last
    /// `next_round_ms`, and `regime_changes` have been detected.
    pub fn at(
        elapsed_ms: u64,
        stop_cost_ms: f64,
        fitted_since_ms: u64,
        next_round_ms: f64,
        regime_changes: u64,
    ) -> Self {
        Self {
            // A length that is not a number stops (rent +∞), as the
            // verdict promises.
            rent_ms: elapsed_ms.saturating_sub(fitted_since_ms) as f64
                + if next_round_ms.is_nan() {
                    f64::INFINITY
                } else {
                    next_round_ms.max(0.0)
                },
            buy_ms: stop_cost_ms - elapsed_ms as f64,
            hazard_per_ms: (regime_changes as f64 + PRIOR_CHANGES) / (elapsed_ms as f64).max(1.0),
        }
    }

    /// Whether to wait another round, `forecast_waits` when the forecast
    /// expects a cheaper stop than now. Anything not a number stops.
    pub fn verdict(&self, forecast_waits: bool) -> Verdict {
        if forecast_waits {
            if self.rent_ms <= self.buy_ms / FORECAST_TRUST {
                return Verdict::ForTheForecast;
            }
        } else if self.hazard_per_ms * self.buy_ms * CHANGE_SAVING_SHARE > 1.0
            && self.rent_ms <= self.buy_ms
        {
            return Verdict::ForARegimeChange;
        }
        Verdict::Stop
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forecast_is_followed_up_to_its_patience_and_no_further() {
        // Stopping now costs 2 s beyond the 10 s spent: wait up to 4 s.
        let at = |since_ms| Patience::at(10_000, 12_000.0, since_ms, 500.0, 0);
        assert_eq!(at(10_000).verdict(true), Verdict::ForTheForecast);
        assert_eq!(at(6_500).verdict(true), Verdict::ForTheForecast);
        assert_eq!(at(6_000).verdict(true), Verdict::Stop);
    }

    #[test]
    fn without_a_forecast_only_a_likely_regime_change_buys_waiting() {
        // 2 s to save, 10 s seen with no change: a change every 20 s or
        // so, saving 1 s on average, is not worth waiting for.
        assert_eq!(
            Patience::at(10_000, 12_000.0, 10_000, 500.0, 0).verdict(false),
            Verdict::Stop
        );
        // 9 s to save after 2 s seen: it is, up to B of waiting.
        let early = |since_ms| Patience::at(2_000, 11_000.0, since_ms, 500.0, 0);
        assert_eq!(early(2_000).verdict(false), Verdict::ForARegimeChange);
        assert_eq!(early(0).verdict(false), Verdict::ForARegimeChange);
        // Changes seen make one likelier: 19.5 in 10 s, 1 s saved on
        // average, worth waiting for up to B = 2 s and no longer.
        let changing = |since_ms| Patience::at(10_000, 12_000.0, since_ms, 500.0, 19);
        assert_eq!(changing(10_000).verdict(false), Verdict::ForARegimeChange);
        assert_eq!(changing(8_000).verdict(false), Verdict::Stop);
    }

    #[test]
    fn a_round_length_that_is_not_a_number_stops() {
        let p = Patience::at(2_000, 11_000.0, 2_000, f64::NAN, 0);
        assert_eq!(p.verdict(true), Verdict::Stop);
        assert_eq!(p.verdict(false), Verdict::Stop);
    }

    #[test]
    fn garbage_stops() {
        let p = Patience {
            rent_ms: f64::NAN,
            buy_ms: f64::NAN,
            hazard_per_ms: f64::NAN,
        };
        assert_eq!(p.verdict(true), Verdict::Stop);
        assert_eq!(p.verdict(false), Verdict::Stop);
    }
}

//! How long this guest takes to offer a stop that fits: what a plan to
//! wait loses when its stop does not come.
//!
//! Waiting for a cheaper stop while one fits now is a bet on the forecast.
//! When the stop waited for turns out above what is allowed, the stop that
//! fitted is gone too, and the migration goes on until the guest offers
//! one again — a whole busy phase, on a guest whose quiet phase ended. The
//! time that takes is learnt from this migration: the longest stretch of
//! syncs after the bulk round in which no stop fitted, ended by one that
//! did (the descent from the bulk round to the first fit is one). A guest
//! that fitted from its first sync after the bulk round has shown none,
//! and a lost plan costs it only the wait.

/// The stretches without a fit seen so far.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Refit {
    /// Elapsed ms at the first sync of the stretch without a fit under
    /// way, if one is.
    unfit_since_ms: Option<u64>,
    /// The longest stretch without a fit seen, ms.
    longest_ms: u64,
}

impl Refit {
    /// Take in a sync after the bulk round, `elapsed_ms` into the
    /// migration, at which a stop `fits` or not.
    pub fn observe(&mut self, elapsed_ms: u64, fits: bool) {
        match (fits, self.unfit_since_ms) {
            (false, None) => self.unfit_since_ms = Some(elapsed_ms),
            (true, Some(since_ms)) => {
                self.longest_ms = self.longest_ms.max(elapsed_ms.saturating_sub(since_ms));
                self.unfit_since_ms = None;
            }
            _ => {}
        }
    }

    /// The time a lost stop takes to come back, ms: the longest stretch
    /// without a fit this guest has shown.
    pub fn expected_ms(&self) -> f64 {
        self.longest_ms as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_stretch_without_a_fit_is_kept() {
        let mut r = Refit::default();
        assert_eq!(r.expected_ms(), 0.0);
        for (ms, fits) in [
            (1_000, false),
            (5_000, false),
            (9_000, true),
            (10_000, true),
        ] {
            r.observe(ms, fits);
        }
        assert_eq!(r.expected_ms(), 8_000.0);
        // A shorter stretch later does not lower it; a longer one raises it.
        r.observe(11_000, false);
        r.observe(12_000, true);
        assert_eq!(r.expected_ms(), 8_000.0);
        r.observe(13_000, false);
        r.observe(30_000, true);
        assert_eq!(r.expected_ms(), 17_000.0);
    }

    #[test]
    fn a_guest_that_always_fitted_has_shown_no_stretch() {
        let mut r = Refit::default();
        for ms in [1_000, 2_000, 3_000] {
            r.observe(ms, true);
        }
        assert_eq!(r.expected_ms(), 0.0);
    }
}

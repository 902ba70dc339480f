//! How wrong the projection has been: its one-step pending forecasts and
//! the lengths it gave rounds, scored against what QEMU then reported.

use crate::observation::RoundObservation;

/// Largest |ln(actual / projected)| round length the bias correction
/// takes from one round (a factor of e either way).
const MAX_LOG_BIAS: f64 = 1.0;

/// The projection's track record.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Calibration {
    /// The one-step pending forecast made at the previous sync, bytes.
    forecast_pending_bytes: Option<f64>,
    /// Exponentially weighted mean of the squared relative error of those
    /// one-step pending forecasts: what the projection itself gets wrong
    /// (round lengths, the carry, the saturation model), on top of the
    /// rate forecast's own error.
    pending_rel_sq_error: f64,
    /// One-step pending forecasts scored so far.
    pending_scored: u32,
    /// The length, ms, the projection gave the round now under way.
    forecast_round_ms: Option<f64>,
    /// Exponentially weighted mean of ln(actual / projected round length):
    /// QEMU's rounds include syncs, rate-limit waits and the remainder it
    /// sends before syncing, which pending/bandwidth does not see; the
    /// projection's round lengths are scaled by its exponential.
    round_log_bias: f64,
}

impl Calibration {
    /// Remember what the projection expects of the round now starting:
    /// the pending bytes at its end and its length, ms.
    pub fn expect(&mut self, pending_bytes: Option<f64>, round_ms: Option<f64>) {
        self.forecast_pending_bytes = pending_bytes;
        self.forecast_round_ms = round_ms;
    }

    /// Score the round that ended at `obs` (the sync before it was
    /// `previous`), with errors weighted by `decay`. After the bulk round
    /// (`after_bulk`) the pending forecast was made from a biased sample:
    /// its miss is not the model's error and is not scored.
    pub fn score(
        &mut self,
        obs: &RoundObservation,
        previous: Option<&RoundObservation>,
        after_bulk: bool,
        decay: f64,
    ) {
        if after_bulk {
            self.forecast_pending_bytes = None;
        }
        self.score_pending(obs, decay);
        self.score_round_length(obs, previous, decay);
    }

    fn score_pending(&mut self, obs: &RoundObservation, decay: f64) {
        let Some(forecast) = self.forecast_pending_bytes.take() else {
            return;
        };
        if forecast <= 0.0 {
            return;
        }
        let rel = (obs.pending_bytes as f64 - forecast) / forecast;
        let e2 = rel * rel;
        self.pending_rel_sq_error = if self.pending_scored == 0 {
            e2
        } else {
            decay * e2 + (1.0 - decay) * self.pending_rel_sq_error
        };
        self.pending_scored = self.pending_scored.saturating_add(1);
    }

    fn score_round_length(
        &mut self,
        obs: &RoundObservation,
        previous: Option<&RoundObservation>,
        decay: f64,
    ) {
        let (Some(projected_ms), Some(previous)) = (self.forecast_round_ms.take(), previous) else {
            return;
        };
        let actual_ms = obs.elapsed_ms.saturating_sub(previous.elapsed_ms) as f64;
        if projected_ms > 0.0 && actual_ms > 0.0 {
            let log_ratio = (actual_ms / projected_ms)
                .ln()
                .clamp(-MAX_LOG_BIAS, MAX_LOG_BIAS);
            self.round_log_bias = decay * log_ratio + (1.0 - decay) * self.round_log_bias;
        }
    }

    /// The factor the projection's round lengths are scaled by.
    pub fn round_stretch(&self) -> f64 {
        self.round_log_bias.exp()
    }

    /// The one-step pending forecasts' relative error (RMS).
    pub fn pending_rel_sd(&self) -> f64 {
        self.pending_rel_sq_error.sqrt()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sync(elapsed_ms: u64, pending_bytes: u64) -> RoundObservation {
        RoundObservation {
            round: 1,
            elapsed_ms,
            dirtied_pages: 0,
            pending_bytes,
            sent_bytes: 0,
            bandwidth_bytes_per_s: 1e8,
            page_size_bytes: 4096,
            ram_bytes: 1 << 30,
        }
    }

    #[test]
    fn misses_are_scored_once_and_the_bulk_forecast_not_at_all() {
        let mut c = Calibration::default();
        c.expect(Some(100.0), Some(1000.0));
        c.score(&sync(2000, 150), Some(&sync(0, 0)), true, 0.5);
        assert_eq!(c.pending_rel_sd(), 0.0, "the bulk round's miss counted");
        // Rounds last twice what was projected: the stretch learns it.
        assert!((c.round_stretch() - (0.5 * 2f64.ln()).exp()).abs() < 1e-12);
        c.expect(Some(100.0), None);
        c.score(&sync(3000, 150), Some(&sync(2000, 0)), false, 0.5);
        assert!((c.pending_rel_sd() - 0.5).abs() < 1e-12);
        // Nothing expected, nothing scored.
        c.score(&sync(4000, 999), Some(&sync(3000, 0)), false, 0.5);
        assert!((c.pending_rel_sd() - 0.5).abs() < 1e-12);
    }
}

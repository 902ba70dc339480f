//! Regime-change detection on the dirty rate: a two-sided Page-Hinkley test.

/// Samples after which the running mean becomes an exponential average, so
/// the detector stays responsive and its state bounded.
const MEAN_MEMORY: f64 = 32.0;

/// Two-sided Page-Hinkley test on a series (Kairos feeds it the log of the
/// dirty rate, so its thresholds are relative changes).
#[derive(Debug, Clone, Copy)]
pub struct PageHinkley {
    drift: f64,
    threshold: f64,
    mean: f64,
    samples: f64,
    up_sum: f64,
    up_min: f64,
    down_sum: f64,
    down_max: f64,
    changes: u64,
}

impl PageHinkley {
    /// A detector that tolerates `drift` per sample and alarms when the
    /// cumulative deviation exceeds `threshold`.
    pub fn new(drift: f64, threshold: f64) -> Self {
        Self {
            drift,
            threshold,
            mean: 0.0,
            samples: 0.0,
            up_sum: 0.0,
            up_min: 0.0,
            down_sum: 0.0,
            down_max: 0.0,
            changes: 0,
        }
    }

    /// Feed one value; true when a change of regime is declared at it (the
    /// detector then restarts from this value).
    pub fn update(&mut self, x: f64) -> bool {
        if !x.is_finite() {
            return false;
        }
        self.samples = (self.samples + 1.0).min(MEAN_MEMORY);
        self.mean += (x - self.mean) / self.samples;
        self.up_sum += x - self.mean - self.drift;
        self.up_min = self.up_min.min(self.up_sum);
        self.down_sum += x - self.mean + self.drift;
        self.down_max = self.down_max.max(self.down_sum);
        let changed = self.up_sum - self.up_min > self.threshold
            || self.down_max - self.down_sum > self.threshold;
        if changed {
            self.changes += 1;
            self.restart_at(x);
        }
        changed
    }

    fn restart_at(&mut self, x: f64) {
        self.mean = x;
        self.samples = 1.0;
        self.up_sum = 0.0;
        self.up_min = 0.0;
        self.down_sum = 0.0;
        self.down_max = 0.0;
    }

    /// Changes declared so far.
    pub fn changes(&self) -> u64 {
        self.changes
    }

    /// Forget everything.
    pub fn reset(&mut self) {
        *self = Self::new(self.drift, self.threshold);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fires_within_three_samples_of_a_step_up_and_down() {
        for (before, after) in [(0.0, 2.0), (2.0, 0.0)] {
            let mut ph = PageHinkley::new(0.1, 1.5);
            for _ in 0..50 {
                assert!(!ph.update(before));
            }
            let delay = (1..=10).find(|_| ph.update(after));
            assert!(matches!(delay, Some(d) if d <= 3), "delay {delay:?}");
        }
    }

    #[test]
    fn quiet_on_noise_below_the_threshold() {
        let mut ph = PageHinkley::new(0.1, 1.5);
        let fired = (0..500)
            .filter(|t| ph.update(if t % 2 == 0 { 0.15 } else { -0.15 }))
            .count();
        assert_eq!(fired, 0);
    }
}

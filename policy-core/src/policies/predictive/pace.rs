//! The guest's pace: its page-touch rate as a series, forecast by the
//! ensemble, restarted at each detected regime change, with its period.

use crate::config::ForecastConfig;
use crate::forecast::ensemble::{Ensemble, SeriesForecast};
use crate::period::PeriodDetector;
use crate::phase::PageHinkley;

use crate::policies::GIB_BYTES;

/// Floor added to the touch rate (GiB/s) before taking its log for the
/// change detector, so idle phases don't send it to −∞.
const LOG_RATE_FLOOR_GIB_S: f64 = 1e-4;

/// The touch-rate series and what is learnt from it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Pace {
    ensemble: Ensemble,
    change: PageHinkley,
    period: PeriodDetector,
    /// Rate samples taken (the first is the biased one after the bulk
    /// copy).
    samples: u32,
}

impl Pace {
    /// No samples yet.
    pub fn new(cfg: &ForecastConfig) -> Self {
        Self {
            ensemble: Ensemble::new(cfg),
            change: PageHinkley::new(cfg.change_drift, cfg.change_threshold),
            period: PeriodDetector::default(),
            samples: 0,
        }
    }

    /// Rate samples taken so far.
    pub fn samples(&self) -> u32 {
        self.samples
    }

    /// True when the next sample is the first full round's, which replaces
    /// the lower bound the round after the bulk copy gave.
    pub fn next_replaces_the_bulk_sample(&self) -> bool {
        self.samples == 1
    }

    /// Take a touch-rate sample, GiB/s at the guest's own pace.
    pub fn update(&mut self, rate_gib_s: f64) {
        let replaces_bulk = self.next_replaces_the_bulk_sample();
        if replaces_bulk {
            self.change.reset();
            self.period.reset();
        }
        let changed = self.change.update((rate_gib_s + LOG_RATE_FLOOR_GIB_S).ln());
        if replaces_bulk || changed {
            self.ensemble.restart_at(rate_gib_s);
        } else {
            self.ensemble.update(rate_gib_s);
        }
        let period = self.period.update(rate_gib_s);
        self.ensemble.set_period(period);
        self.samples = self.samples.saturating_add(1);
    }

    /// True once the ensemble can forecast.
    pub fn ready(&self) -> bool {
        self.ensemble.ready()
    }

    /// The touch rate `h` rounds ahead, GiB/s.
    pub fn forecast(&self, h: usize) -> SeriesForecast {
        self.ensemble.forecast(h)
    }

    /// The next round's expected touch rate, bytes/s, once ready.
    pub fn next_rate_bytes_per_s(&self) -> Option<f64> {
        self.ready()
            .then(|| self.ensemble.forecast(1).mean * GIB_BYTES)
    }

    /// The detected period, rounds (0: none).
    pub fn period_rounds(&self) -> usize {
        self.period.period()
    }

    /// Regime changes detected so far.
    pub fn regime_changes(&self) -> u64 {
        self.change.changes()
    }
}

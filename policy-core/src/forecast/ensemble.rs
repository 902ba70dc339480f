//! Online model choice: every model's recent one-step error is tracked and
//! the one with the lowest is used; its error also sizes the interval.

use super::arima::{ArimaUpdate, OnlineArima};
use super::baseline::{MovingAverage, Naive, SeasonalNaive};
use super::ets::{HoltDamped, Ses};
use super::OnlineModel;
use crate::config::ForecastConfig;
use crate::decision::ModelKind;

const MODEL_COUNT: usize = 7;
/// One-step errors a model needs before it can be chosen.
const MIN_SCORED: u32 = 2;

/// A forecast of the series `h` steps ahead.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SeriesForecast {
    /// Point forecast.
    pub mean: f64,
    /// Standard deviation of the forecast error at that horizon.
    pub sigma: f64,
    /// Model that made it.
    pub model: ModelKind,
    /// True when `sigma` comes from the model's scored one-step errors;
    /// false while it has none (then `sigma` is 0 and says nothing).
    pub calibrated: bool,
}

/// All forecasters side by side, each scored on its one-step errors.
#[derive(Debug, Clone, Copy)]
pub struct Ensemble {
    naive: Naive,
    moving_average: MovingAverage,
    ses: Ses,
    holt: HoltDamped,
    arima_ons: OnlineArima,
    arima_ogd: OnlineArima,
    seasonal: SeasonalNaive,
    /// Each model's one-step forecast for the next value (NaN: not ready).
    next_prediction: [f64; MODEL_COUNT],
    /// Exponentially weighted mean squared one-step error.
    squared_error: [f64; MODEL_COUNT],
    /// One-step errors scored since the last restart.
    scored: [u32; MODEL_COUNT],
    error_decay: f64,
}

impl Ensemble {
    /// The ensemble for the given settings.
    pub fn new(cfg: &ForecastConfig) -> Self {
        Self {
            naive: Naive::default(),
            moving_average: MovingAverage::new(cfg.ma_window_rounds),
            ses: Ses::new(cfg.ses_alpha),
            holt: HoltDamped::new(cfg.holt_alpha, cfg.holt_beta, cfg.holt_phi),
            arima_ons: OnlineArima::new(
                cfg.arima_ar_order,
                cfg.arima_extra_lags,
                cfg.arima_diff_order,
                ArimaUpdate::ons(cfg.ons_learning_rate, cfg.ons_epsilon),
            ),
            arima_ogd: OnlineArima::new(
                cfg.arima_ar_order,
                cfg.arima_extra_lags,
                cfg.arima_diff_order,
                ArimaUpdate::ogd(cfg.ogd_learning_rate),
            ),
            seasonal: SeasonalNaive::default(),
            next_prediction: [f64::NAN; MODEL_COUNT],
            squared_error: [0.0; MODEL_COUNT],
            scored: [0; MODEL_COUNT],
            error_decay: cfg.error_decay,
        }
    }

    fn models(&self) -> [&dyn OnlineModel; MODEL_COUNT] {
        [
            &self.naive,
            &self.moving_average,
            &self.ses,
            &self.holt,
            &self.arima_ons,
            &self.arima_ogd,
            &self.seasonal,
        ]
    }

    fn models_mut(&mut self) -> [&mut dyn OnlineModel; MODEL_COUNT] {
        [
            &mut self.naive,
            &mut self.moving_average,
            &mut self.ses,
            &mut self.holt,
            &mut self.arima_ons,
            &mut self.arima_ogd,
            &mut self.seasonal,
        ]
    }

    /// Score every model on `y`, then let each learn it.
    pub fn update(&mut self, y: f64) {
        for i in 0..MODEL_COUNT {
            let predicted = self.next_prediction[i];
            if predicted.is_finite() {
                let e2 = (y - predicted) * (y - predicted);
                self.squared_error[i] = if self.scored[i] == 0 {
                    e2
                } else {
                    self.error_decay * e2 + (1.0 - self.error_decay) * self.squared_error[i]
                };
                self.scored[i] = self.scored[i].saturating_add(1);
            }
        }
        for model in self.models_mut() {
            model.update(y);
        }
        let mut next = [f64::NAN; MODEL_COUNT];
        for (slot, model) in next.iter_mut().zip(self.models()) {
            if model.ready() {
                *slot = model.forecast(1);
            }
        }
        self.next_prediction = next;
    }

    /// Index of the model with the lowest running error (naive until any
    /// model has been scored enough).
    fn best_index(&self) -> usize {
        let mut best = 0;
        let mut best_error = f64::INFINITY;
        for i in 0..MODEL_COUNT {
            if self.scored[i] >= MIN_SCORED
                && self.next_prediction[i].is_finite()
                && self.squared_error[i] < best_error
            {
                best = i;
                best_error = self.squared_error[i];
            }
        }
        best
    }

    /// True once the naive model has a value.
    pub fn ready(&self) -> bool {
        self.naive.ready()
    }

    /// Forecast `h ≥ 1` steps ahead with the currently best model.
    pub fn forecast(&self, h: usize) -> SeriesForecast {
        let best = self.best_index();
        let model = self.models()[best];
        let calibrated = self.scored[best] > 0;
        let sigma_one_step = if calibrated {
            self.squared_error[best].sqrt()
        } else {
            0.0
        };
        SeriesForecast {
            mean: model.forecast(h),
            sigma: sigma_one_step * (h as f64).sqrt(),
            model: model.kind(),
            calibrated,
        }
    }

    /// A regime change: re-anchor every model at `y` and forget old errors.
    pub fn restart_at(&mut self, y: f64) {
        for model in self.models_mut() {
            model.restart_at(y);
        }
        self.scored = [0; MODEL_COUNT];
        self.squared_error = [0.0; MODEL_COUNT];
        let mut next = [f64::NAN; MODEL_COUNT];
        for (slot, model) in next.iter_mut().zip(self.models()) {
            if model.ready() {
                *slot = model.forecast(1);
            }
        }
        self.next_prediction = next;
    }

    /// Tell the seasonal model the detected period (0 = none).
    pub fn set_period(&mut self, period_rounds: usize) {
        self.seasonal.set_period(period_rounds);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_seasonal_model_on_a_cycle() {
        let mut e = Ensemble::new(&ForecastConfig::default());
        e.set_period(5);
        for t in 0..60 {
            e.update([1.0, 5.0, 9.0, 5.0, 1.0][t % 5]);
        }
        let f = e.forecast(1);
        assert_eq!(f.model, ModelKind::SeasonalNaive);
        assert!((f.mean - 1.0).abs() < 1e-9);
        assert!(f.sigma < 1e-6);
    }

    #[test]
    fn constant_series_has_tight_interval() {
        let mut e = Ensemble::new(&ForecastConfig::default());
        for _ in 0..20 {
            e.update(3.0);
        }
        let f = e.forecast(3);
        assert!((f.mean - 3.0).abs() < 1e-9 && f.sigma < 1e-9, "{f:?}");
    }
}

//! Baseline forecasters: last value, moving average, seasonal naive.

use super::ring::Ring;
use super::OnlineModel;
use crate::decision::ModelKind;

/// Largest moving-average window, rounds.
pub const MAX_MA_WINDOW: usize = 32;
/// Longest history the seasonal model keeps, rounds (bounds the period).
pub const SEASONAL_HISTORY: usize = 64;

/// Forecasts the last value seen.
#[derive(Debug, Clone, Copy, Default)]
pub struct Naive {
    last: Option<f64>,
}

impl OnlineModel for Naive {
    fn kind(&self) -> ModelKind {
        ModelKind::Naive
    }
    fn update(&mut self, y: f64) {
        self.last = Some(y);
    }
    fn ready(&self) -> bool {
        self.last.is_some()
    }
    fn forecast(&self, _h: usize) -> f64 {
        self.last.unwrap_or(0.0)
    }
    fn restart_at(&mut self, y: f64) {
        self.last = Some(y);
    }
}

/// Forecasts the mean of the last `window` values.
#[derive(Debug, Clone, Copy)]
pub struct MovingAverage {
    window: usize,
    values: Ring<MAX_MA_WINDOW>,
    /// Values currently inside the window (≤ `window`).
    count: usize,
    sum: f64,
}

impl MovingAverage {
    /// A moving average over `window` rounds (1..=32, validated by the config).
    pub fn new(window: usize) -> Self {
        Self {
            window: window.clamp(1, MAX_MA_WINDOW),
            values: Ring::default(),
            count: 0,
            sum: 0.0,
        }
    }
}

impl OnlineModel for MovingAverage {
    fn kind(&self) -> ModelKind {
        ModelKind::MovingAverage
    }
    fn update(&mut self, y: f64) {
        if self.count == self.window {
            // The oldest value of the window leaves it.
            self.sum -= self.values.back(self.window - 1).unwrap_or(0.0);
        } else {
            self.count += 1;
        }
        self.values.push(y);
        self.sum += y;
    }
    fn ready(&self) -> bool {
        self.count > 0
    }
    fn forecast(&self, _h: usize) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum / self.count as f64
        }
    }
    fn restart_at(&mut self, y: f64) {
        self.values.clear();
        self.count = 0;
        self.sum = 0.0;
        self.update(y);
    }
}

/// Forecasts the value seen one period earlier; the period comes from
/// [`crate::period::PeriodDetector`].
#[derive(Debug, Clone, Copy, Default)]
pub struct SeasonalNaive {
    history: Ring<SEASONAL_HISTORY>,
    period: usize,
}

impl SeasonalNaive {
    /// Set the period in rounds (0 = none detected).
    pub fn set_period(&mut self, period: usize) {
        self.period = if period < SEASONAL_HISTORY { period } else { 0 };
    }
}

impl OnlineModel for SeasonalNaive {
    fn kind(&self) -> ModelKind {
        ModelKind::SeasonalNaive
    }
    fn update(&mut self, y: f64) {
        self.history.push(y);
    }
    fn ready(&self) -> bool {
        self.period >= 2 && self.history.len() >= self.period
    }
    fn forecast(&self, h: usize) -> f64 {
        if !self.ready() {
            return self.history.back(0).unwrap_or(0.0);
        }
        // Value at t + h - p·ceil(h/p): an age between 0 and p-1.
        let p = self.period;
        let steps_back = p * h.div_ceil(p) - h;
        self.history.back(steps_back).unwrap_or(0.0)
    }
    fn restart_at(&mut self, _y: f64) {
        // A regime change does not erase a cycle: keep the history.
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moving_average_of_window() {
        let mut ma = MovingAverage::new(3);
        for y in [1.0, 2.0, 3.0, 4.0, 5.0] {
            ma.update(y);
        }
        assert!((ma.forecast(1) - 4.0).abs() < 1e-12);
    }

    #[test]
    fn seasonal_naive_repeats_the_cycle() {
        let mut s = SeasonalNaive::default();
        s.set_period(4);
        for t in 0..12 {
            s.update([1.0, 2.0, 3.0, 4.0][t % 4]);
        }
        // Next values: 1, 2, 3, 4, 1 ...
        let f: Vec<f64> = (1..=5).map(|h| s.forecast(h)).collect();
        assert_eq!(f, vec![1.0, 2.0, 3.0, 4.0, 1.0]);
    }
}

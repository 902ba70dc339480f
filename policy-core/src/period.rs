//! Period estimation by autocorrelation over a sliding window of rounds.

use crate::forecast::ring::Ring;

/// Rounds of history the autocorrelation is computed on.
pub const PERIOD_WINDOW: usize = 48;
/// Longest period looked for, rounds.
pub const MAX_PERIOD: usize = PERIOD_WINDOW / 2;
/// Shortest period looked for, rounds.
const MIN_PERIOD: usize = 2;
/// Autocorrelation a lag needs to count as a period.
const MIN_AUTOCORRELATION: f64 = 0.5;
/// The estimate is refreshed every this many rounds (bounds the cost of a
/// round to one refresh, amortised to a quarter).
const REFRESH_EVERY: u32 = 4;

/// Detects that the series repeats, and with which period in rounds.
#[derive(Debug, Clone, Copy, Default)]
pub struct PeriodDetector {
    history: Ring<PERIOD_WINDOW>,
    since_refresh: u32,
    period: usize,
    strength: f64,
}

impl PeriodDetector {
    /// Feed one value; returns the current period (0 = none).
    pub fn update(&mut self, x: f64) -> usize {
        if !x.is_finite() {
            return self.period;
        }
        self.history.push(x);
        self.since_refresh += 1;
        if self.since_refresh >= REFRESH_EVERY {
            self.since_refresh = 0;
            self.refresh();
        }
        self.period
    }

    /// The current period in rounds, 0 when none was found.
    pub fn period(&self) -> usize {
        self.period
    }

    /// Autocorrelation at the current period.
    pub fn strength(&self) -> f64 {
        self.strength
    }

    /// Forget everything.
    pub fn reset(&mut self) {
        *self = Self::default();
    }

    fn refresh(&mut self) {
        let n = self.history.len();
        self.period = 0;
        self.strength = 0.0;
        if n < 2 * MIN_PERIOD + 2 {
            return;
        }
        // Oldest first, in a contiguous array: the lag loops below then run
        // over plain slices.
        let mut values = [0.0; PERIOD_WINDOW];
        for (i, slot) in values.iter_mut().take(n).enumerate() {
            *slot = self.history.back(n - 1 - i).unwrap_or(0.0);
        }
        let values = &mut values[..n];
        let mean = values.iter().sum::<f64>() / n as f64;
        values.iter_mut().for_each(|v| *v -= mean);
        let variance: f64 = values.iter().map(|v| v * v).sum();
        if variance <= 1e-12 * (1.0 + mean * mean) * n as f64 {
            return;
        }
        let max_lag = MAX_PERIOD.min(n / 2);
        let mut acf = [0.0; MAX_PERIOD + 2];
        for (lag, slot) in acf.iter_mut().enumerate().take(max_lag + 1).skip(1) {
            let s: f64 = values[lag..]
                .iter()
                .zip(values.iter())
                .map(|(a, b)| a * b)
                .sum();
            *slot = s / variance;
        }
        // The first local maximum above the bar is the fundamental period.
        for lag in MIN_PERIOD..max_lag {
            if acf[lag] >= MIN_AUTOCORRELATION
                && acf[lag] >= acf[lag - 1]
                && acf[lag] >= acf[lag + 1]
            {
                self.period = lag;
                self.strength = acf[lag];
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_period_of_a_square_wave() {
        let mut d = PeriodDetector::default();
        for t in 0..96 {
            d.update(if t % 8 < 4 { 10.0 } else { 1.0 });
        }
        assert_eq!(d.period(), 8);
    }

    #[test]
    fn no_period_in_a_constant_or_a_trend() {
        let mut c = PeriodDetector::default();
        let mut trend = PeriodDetector::default();
        for t in 0..96 {
            c.update(5.0);
            trend.update(t as f64);
        }
        assert_eq!(c.period(), 0);
        assert_eq!(trend.period(), 0);
    }
}

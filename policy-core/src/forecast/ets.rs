//! Exponential smoothing: simple (SES) and Holt's damped linear trend.

use super::OnlineModel;
use crate::decision::ModelKind;

/// Simple exponential smoothing: a level, no trend.
#[derive(Debug, Clone, Copy)]
pub struct Ses {
    alpha: f64,
    level: Option<f64>,
}

impl Ses {
    /// SES with smoothing weight `alpha` in (0, 1].
    pub fn new(alpha: f64) -> Self {
        Self { alpha, level: None }
    }
}

impl OnlineModel for Ses {
    fn kind(&self) -> ModelKind {
        ModelKind::Ses
    }
    fn update(&mut self, y: f64) {
        self.level = Some(match self.level {
            None => y,
            Some(l) => self.alpha * y + (1.0 - self.alpha) * l,
        });
    }
    fn ready(&self) -> bool {
        self.level.is_some()
    }
    fn forecast(&self, _h: usize) -> f64 {
        self.level.unwrap_or(0.0)
    }
    fn restart_at(&mut self, y: f64) {
        self.level = Some(y);
    }
}

/// Holt's linear trend with damping φ: forecast l + (φ + … + φ^h)·b.
#[derive(Debug, Clone, Copy)]
pub struct HoltDamped {
    alpha: f64,
    beta: f64,
    phi: f64,
    level: f64,
    trend: f64,
    seen: u8,
}

impl HoltDamped {
    /// Holt with level weight `alpha`, trend weight `beta`, damping `phi`.
    pub fn new(alpha: f64, beta: f64, phi: f64) -> Self {
        Self {
            alpha,
            beta,
            phi,
            level: 0.0,
            trend: 0.0,
            seen: 0,
        }
    }
}

impl OnlineModel for HoltDamped {
    fn kind(&self) -> ModelKind {
        ModelKind::HoltDamped
    }
    fn update(&mut self, y: f64) {
        match self.seen {
            0 => self.level = y,
            1 => {
                self.trend = y - self.level;
                self.level = y;
            }
            _ => {
                let previous = self.level;
                self.level =
                    self.alpha * y + (1.0 - self.alpha) * (previous + self.phi * self.trend);
                self.trend =
                    self.beta * (self.level - previous) + (1.0 - self.beta) * self.phi * self.trend;
            }
        }
        self.seen = self.seen.saturating_add(1);
    }
    fn ready(&self) -> bool {
        self.seen >= 2
    }
    fn forecast(&self, h: usize) -> f64 {
        let mut damp_sum = 0.0;
        let mut phi_power = 1.0;
        for _ in 0..h {
            phi_power *= self.phi;
            damp_sum += phi_power;
        }
        self.level + damp_sum * self.trend
    }
    fn restart_at(&mut self, y: f64) {
        self.level = y;
        self.trend = 0.0;
        self.seen = 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holt_undamped_forecasts_a_linear_trend_exactly() {
        let mut holt = HoltDamped::new(0.5, 0.3, 1.0);
        for t in 0..20 {
            holt.update(3.0 + 2.0 * t as f64);
        }
        for h in 1..=5 {
            let expected = 3.0 + 2.0 * (19 + h) as f64;
            assert!((holt.forecast(h) - expected).abs() < 1e-9, "h={h}");
        }
    }

    #[test]
    fn holt_damped_flattens_the_trend() {
        let mut holt = HoltDamped::new(0.5, 0.3, 0.8);
        for t in 0..20 {
            holt.update(t as f64);
        }
        let step_1 = holt.forecast(2) - holt.forecast(1);
        let step_4 = holt.forecast(5) - holt.forecast(4);
        assert!(step_4 < step_1 && step_4 > 0.0);
    }

    #[test]
    fn ses_converges_to_a_constant() {
        let mut ses = Ses::new(0.3);
        for _ in 0..50 {
            ses.update(7.0);
        }
        assert!((ses.forecast(3) - 7.0).abs() < 1e-12);
    }
}

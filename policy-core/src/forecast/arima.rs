//! Online ARIMA after Liu, Hoi, Zhao & Sun, "Online ARIMA Algorithms for
//! Time Series Prediction" (AAAI 2016).
//!
//! ARIMA(k, d, q) is approximated by an AR(k + m) on the d-th difference of
//! the series; its coefficients γ are learnt one observation at a time by
//! Online Newton Step (ARIMA-ONS) or online gradient descent (ARIMA-OGD) on
//! the squared one-step error. Two simplifications, both documented in
//! `docs/design.md`: the projection onto the coefficient set K is a clip to
//! the box [-c, c] (the paper projects in the A-norm), and the differenced
//! series is divided by a running scale so the same learning rates work for
//! any unit of the input.

use super::fixed_linalg::{self, dot, mul_vector, subtract_outer_scaled, subtract_scaled};
use super::ring::Ring;
use super::OnlineModel;
use crate::decision::ModelKind;

/// Most lags (k + m) the model supports; fixes the matrix size.
pub const MAX_ARIMA_LAGS: usize = 8;
/// Bound c of the coefficient box K = [-c, c]^(k+m).
const COEFFICIENT_BOUND: f64 = 2.0;
/// Weight of the newest |difference| in the running scale.
const SCALE_DECAY: f64 = 0.1;

type LagVector = [f64; MAX_ARIMA_LAGS];
type LagMatrix = [[f64; MAX_ARIMA_LAGS]; MAX_ARIMA_LAGS];

/// How the coefficients are updated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ArimaUpdate {
    /// Online Newton Step: γ ← Π(γ − (1/η)·A⁻¹∇), A ← A + ∇∇ᵀ.
    Ons {
        /// Learning rate η.
        learning_rate: f64,
        /// Initial regulariser ε (A₀ = ε·I).
        epsilon: f64,
    },
    /// Online gradient descent: γ ← Π(γ − η/√t·∇).
    Ogd {
        /// Base learning rate η.
        learning_rate: f64,
    },
}

impl ArimaUpdate {
    /// ONS with learning rate `eta` and regulariser `epsilon`.
    pub fn ons(eta: f64, epsilon: f64) -> Self {
        Self::Ons {
            learning_rate: eta,
            epsilon,
        }
    }
    /// OGD with base learning rate `eta`.
    pub fn ogd(eta: f64) -> Self {
        Self::Ogd { learning_rate: eta }
    }
}

/// Online ARIMA(k, d, q) as an AR(k+m) on the d-th difference.
#[derive(Debug, Clone, Copy)]
pub struct OnlineArima {
    lags: usize,
    diff_order: usize,
    update: ArimaUpdate,
    /// Coefficients γ (entries past `lags` stay 0).
    gamma: LagVector,
    /// A⁻¹ for ONS, kept by Sherman–Morrison updates.
    a_inverse: LagMatrix,
    /// Recent d-th differences, newest first via `back(0)`.
    diffs: Ring<16>,
    /// Last level and last lower-order differences: `levels[j]` = ∇^j x_t.
    levels: [f64; 3],
    /// Raw values seen (saturating), to know when differences exist.
    seen: u64,
    /// Updates of γ so far (for OGD's 1/√t step).
    steps: u64,
    /// Running mean of |∇^d x|, the unit the regression works in.
    scale: f64,
}

impl OnlineArima {
    /// A model with AR order `ar_order`, `extra_lags` for the MA part,
    /// differencing `diff_order` (≤ 2) and the given update rule.
    pub fn new(ar_order: usize, extra_lags: usize, diff_order: usize, update: ArimaUpdate) -> Self {
        let lags = (ar_order + extra_lags).clamp(1, MAX_ARIMA_LAGS);
        let mut model = Self {
            lags,
            diff_order: diff_order.min(2),
            update,
            gamma: [0.0; MAX_ARIMA_LAGS],
            a_inverse: fixed_linalg::scaled_identity(1.0),
            diffs: Ring::default(),
            levels: [0.0; 3],
            seen: 0,
            steps: 0,
            scale: 0.0,
        };
        model.reset_curvature();
        model
    }

    /// The learnt coefficients γ₁..γ_{k+m}.
    pub fn coefficients(&self) -> &[f64] {
        &self.gamma[..self.lags]
    }

    fn reset_curvature(&mut self) {
        if let ArimaUpdate::Ons { epsilon, .. } = self.update {
            self.a_inverse = fixed_linalg::scaled_identity(1.0 / epsilon);
        }
        self.steps = 0;
    }

    /// Features: the last `lags` differences (scaled), newest first.
    fn features(&self) -> LagVector {
        let mut x = [0.0; MAX_ARIMA_LAGS];
        let unit = self.unit();
        for (i, lag) in x.iter_mut().enumerate().take(self.lags) {
            *lag = self.diffs.back(i).unwrap_or(0.0) / unit;
        }
        x
    }

    fn unit(&self) -> f64 {
        if self.scale > 1e-300 {
            self.scale
        } else {
            1.0
        }
    }

    fn learn(&mut self, target_diff: f64) {
        let x = self.features();
        let unit = self.unit();
        let error = target_diff / unit - dot(&self.gamma, &x);
        // ∇ = −2·error·x.
        let gradient_scale = -2.0 * error;
        let mut gradient = x;
        gradient.iter_mut().for_each(|g| *g *= gradient_scale);
        match self.update {
            ArimaUpdate::Ons { learning_rate, .. } => {
                let eta = learning_rate;
                // Sherman–Morrison: (A + ggᵀ)⁻¹ = A⁻¹ − A⁻¹ggᵀA⁻¹ / (1 + gᵀA⁻¹g).
                let a_g = mul_vector(&self.a_inverse, &gradient);
                let denominator = 1.0 + dot(&gradient, &a_g);
                if denominator.is_finite() && denominator > 0.0 {
                    subtract_outer_scaled(&mut self.a_inverse, &a_g, denominator);
                }
                let step = mul_vector(&self.a_inverse, &gradient);
                subtract_scaled(&mut self.gamma, &step, 1.0 / eta);
            }
            ArimaUpdate::Ogd { learning_rate } => {
                let eta = learning_rate;
                let step = eta / ((self.steps + 1) as f64).sqrt();
                subtract_scaled(&mut self.gamma, &gradient, step);
            }
        }
        self.steps += 1;
        for i in 0..MAX_ARIMA_LAGS {
            self.gamma[i] = if i < self.lags && self.gamma[i].is_finite() {
                self.gamma[i].clamp(-COEFFICIENT_BOUND, COEFFICIENT_BOUND)
            } else {
                0.0
            };
        }
    }
}

impl OnlineModel for OnlineArima {
    fn kind(&self) -> ModelKind {
        match self.update {
            ArimaUpdate::Ons { .. } => ModelKind::ArimaOns,
            ArimaUpdate::Ogd { .. } => ModelKind::ArimaOgd,
        }
    }

    fn update(&mut self, y: f64) {
        // New differences of every order: ∇^j y_t for j = 0..=d.
        let mut new_levels = [y, 0.0, 0.0];
        for j in 1..=self.diff_order {
            new_levels[j] = new_levels[j - 1] - self.levels[j - 1];
        }
        let have_diff = self.seen >= self.diff_order as u64;
        if have_diff {
            let diff = new_levels[self.diff_order];
            if self.diffs.len() >= self.lags {
                self.learn(diff);
            }
            self.scale = if self.scale == 0.0 {
                diff.abs()
            } else {
                SCALE_DECAY * diff.abs() + (1.0 - SCALE_DECAY) * self.scale
            };
            self.diffs.push(diff);
        }
        self.levels = new_levels;
        self.seen = self.seen.saturating_add(1);
    }

    fn ready(&self) -> bool {
        self.diffs.len() >= self.lags
    }

    fn forecast(&self, h: usize) -> f64 {
        // Extend the differenced series with its own predictions, then
        // integrate d times from the last levels.
        let unit = self.unit();
        let mut window = self.features();
        let mut levels = self.levels;
        let mut value = levels[0];
        for _ in 0..h.max(1) {
            let next_diff = dot(&self.gamma, &window);
            for i in (1..self.lags).rev() {
                window[i] = window[i - 1];
            }
            window[0] = next_diff;
            levels[self.diff_order] = next_diff * unit;
            for j in (0..self.diff_order).rev() {
                levels[j] += levels[j + 1];
            }
            value = levels[0];
        }
        value
    }

    fn restart_at(&mut self, y: f64) {
        // Keep the learnt dynamics, forget the curvature so the next steps
        // adapt fast, and restart the differences at the new level.
        self.reset_curvature();
        self.diffs.clear();
        self.levels = [y, 0.0, 0.0];
        self.seen = 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_distr::{Distribution, Normal};

    fn ar2_series(n: usize, seed: u64) -> Vec<f64> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let noise = Normal::new(0.0, 1.0).unwrap();
        let mut xs = vec![0.0, 0.0];
        for t in 2..n {
            let x = 0.6 * xs[t - 1] - 0.3 * xs[t - 2] + noise.sample(&mut rng);
            xs.push(x);
        }
        xs
    }

    #[test]
    fn ons_recovers_ar2_coefficients() {
        let mut model = OnlineArima::new(2, 0, 0, ArimaUpdate::ons(1.0, 0.1));
        for x in ar2_series(20_000, 7) {
            model.update(x);
        }
        let g = model.coefficients();
        assert!((g[0] - 0.6).abs() < 0.05, "γ = {g:?}");
        assert!((g[1] + 0.3).abs() < 0.05, "γ = {g:?}");
    }

    #[test]
    fn ogd_moves_towards_ar2_coefficients() {
        let mut model = OnlineArima::new(2, 0, 0, ArimaUpdate::ogd(0.05));
        for x in ar2_series(20_000, 11) {
            model.update(x);
        }
        let g = model.coefficients();
        assert!((g[0] - 0.6).abs() < 0.15, "γ = {g:?}");
        assert!((g[1] + 0.3).abs() < 0.15, "γ = {g:?}");
    }

    #[test]
    fn first_difference_follows_a_linear_trend() {
        let mut model = OnlineArima::new(2, 0, 1, ArimaUpdate::ons(1.0, 0.1));
        for t in 0..200 {
            model.update(10.0 + 0.5 * t as f64);
        }
        // The differences are constant 0.5, so γ sums to 1 and the forecast
        // continues the line.
        let expected = 10.0 + 0.5 * 202.0;
        assert!(
            (model.forecast(3) - expected).abs() < 0.05,
            "{}",
            model.forecast(3)
        );
    }
}

//! The standard normal distribution's density, distribution function and
//! quantile: what the forecast's interval and the expected stop cost need,
//! on `libm`'s `erfc` (MIT, no allocation) so that nothing linked into QEMU
//! carries a licence GPLv2 cannot take.

use std::f64::consts::{FRAC_1_SQRT_2, PI};

/// φ(x), the standard normal density.
pub fn pdf(x: f64) -> f64 {
    (-0.5 * x * x).exp() / (2.0 * PI).sqrt()
}

/// Φ(x), the standard normal distribution function, accurate in both tails
/// (through `erfc`, not `1 − erf`).
pub fn cdf(x: f64) -> f64 {
    0.5 * libm::erfc(-x * FRAC_1_SQRT_2)
}

/// Φ⁻¹(p) for p in (0, 1); −∞ at 0, +∞ at 1, NaN outside [0, 1].
///
/// Abramowitz & Stegun 26.2.23 (error below 4.5·10⁻⁴) as the first guess,
/// then Halley's method on Φ, whose cubic convergence reaches double
/// precision in two or three steps. Meant for configuration time (an
/// interval level), not the per-round path.
pub fn quantile(p: f64) -> f64 {
    if p.is_nan() || !(0.0..=1.0).contains(&p) {
        return f64::NAN;
    }
    if p == 0.0 {
        return f64::NEG_INFINITY;
    }
    if p == 1.0 {
        return f64::INFINITY;
    }
    // The guess in the lower half, mirrored for the upper.
    let tail = p.min(1.0 - p);
    let t = (-2.0 * tail.ln()).sqrt();
    let guess = t
        - (2.515_517 + 0.802_853 * t + 0.010_328 * t * t)
            / (1.0 + 1.432_788 * t + 0.189_269 * t * t + 0.001_308 * t * t * t);
    let mut x = if p < 0.5 { -guess } else { guess };
    for _ in 0..8 {
        let density = pdf(x);
        if density == 0.0 {
            break;
        }
        // Halley: Newton's step u, corrected by the curvature φ'/φ = −x.
        let u = (cdf(x) - p) / density;
        let step = u / (1.0 + 0.5 * x * u);
        x -= step;
        if step.abs() <= 1e-15 * x.abs().max(1.0) {
            break;
        }
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        assert_eq!(cdf(0.0), 0.5);
        assert!((cdf(1.959_963_984_540_054) - 0.975).abs() < 1e-15);
        assert!((cdf(-3.0) - 0.001_349_898_031_630_094_6).abs() < 1e-17);
        assert!((cdf(-8.0) - 6.220_960_574_271_785e-16).abs() < 1e-28);
        assert!((pdf(0.0) - 0.398_942_280_401_432_7).abs() < 1e-16);
        assert!((quantile(0.975) - 1.959_963_984_540_054).abs() < 1e-12);
        assert!((quantile(0.9) - 1.281_551_565_544_600_4).abs() < 1e-12);
        assert!(quantile(0.5).abs() < 1e-15);
    }

    #[test]
    fn quantile_inverts_the_distribution_function_into_the_tails() {
        for p in [
            1e-300,
            1e-12,
            1e-6,
            0.01,
            0.3,
            0.5,
            0.7,
            0.99,
            1.0 - 1e-9,
            1.0 - 1e-15,
        ] {
            let x = quantile(p);
            assert!(x.is_finite(), "{p}");
            let back = cdf(x);
            let tolerance = 1e-12 * p.min(1.0 - p) + 1e-16;
            assert!((back - p).abs() <= tolerance, "{p}: {x} -> {back}");
        }
    }

    #[test]
    fn agrees_with_statrs() {
        use statrs::distribution::{Continuous, ContinuousCDF, Normal};
        let reference = Normal::standard();
        for i in -800..=800 {
            let x = f64::from(i) / 100.0;
            let (c, r) = (cdf(x), reference.cdf(x));
            // statrs' own erfc is good to about 1e-10 relative
            // (Φ(−8) = 6.220960574271785e-16: libm is the closer there).
            assert!((c - r).abs() <= 1e-9 * r, "Φ({x}): {c} against {r}");
            assert!((pdf(x) - reference.pdf(x)).abs() <= 1e-15, "φ({x})");
        }
        for i in 1..1000 {
            let p = f64::from(i) / 1000.0;
            assert!(
                (quantile(p) - reference.inverse_cdf(p)).abs() <= 1e-9,
                "Φ⁻¹({p})"
            );
        }
    }

    #[test]
    fn edges_and_garbage() {
        assert_eq!(quantile(0.0), f64::NEG_INFINITY);
        assert_eq!(quantile(1.0), f64::INFINITY);
        assert!(quantile(-0.1).is_nan() && quantile(1.5).is_nan() && quantile(f64::NAN).is_nan());
        assert_eq!(cdf(f64::INFINITY), 1.0);
        assert_eq!(cdf(f64::NEG_INFINITY), 0.0);
        assert_eq!(pdf(f64::INFINITY), 0.0);
    }
}

//! A cycle in the dirty rate at the samples' own resolution (one value a
//! second), found only where it stands out from noise, and the forecast
//! it gives: the rate at each offset of the cycle, folded over the cycles
//! seen, with the spread between them.
//!
//! The cycle is looked for in the rate's *changes* (first differences): a
//! cycle repeats its rises and falls every period, while a trend, a ramp
//! or a single phase change does not repeat them, so none of those is
//! taken for a cycle. The candidate is the strongest local peak of the
//! changes' autocorrelation between the shortest and the longest period
//! looked for (at most half the profile: two cycles must have been seen).
//! It counts only if the changes of no shuffle of the same rates reach as
//! high a peak anywhere in that range ([`SHUFFLES`] shuffles, a
//! permutation test at the 1 % level), so a steady guest's sampling noise
//! is not a cycle.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Shuffles of the permutation test: a cycle beats every one of them
/// (p < 1 / (SHUFFLES + 1) = 1 %).
pub const SHUFFLES: usize = 99;
/// The test's shuffles are drawn from this seed, so the advice for a
/// profile is always the same.
const SHUFFLE_SEED: u64 = 0x6b61_6972_6f73;

/// A cycle of the rate and its fold.
#[derive(Debug, Clone, PartialEq)]
pub struct Cycle {
    /// Its length, in steps of the series.
    pub period_steps: usize,
    /// The changes' autocorrelation at that lag.
    pub strength: f64,
    /// The highest any shuffle reached (what it had to beat).
    pub noise_strength: f64,
    /// Mean rate at each offset of the cycle, offset 0 being the step
    /// after the last sample ("now").
    pub mean: Vec<f64>,
    /// Spread (standard deviation) between the cycles at each offset.
    pub spread: Vec<f64>,
}

impl Cycle {
    /// The forecast rate and its spread `h` ≥ 1 steps after the last
    /// sample.
    pub fn at(&self, h: usize) -> (f64, f64) {
        let i = (h.max(1) - 1) % self.period_steps;
        (self.mean[i], self.spread[i])
    }
}

/// Autocorrelation of `x` (mean removed) at each lag of `lags`.
fn autocorrelation(x: &[f64], lags: std::ops::RangeInclusive<usize>) -> Vec<f64> {
    let n = x.len();
    let mean = x.iter().sum::<f64>() / n as f64;
    let centred: Vec<f64> = x.iter().map(|v| v - mean).collect();
    let variance: f64 = centred.iter().map(|v| v * v).sum();
    lags.map(|k| {
        if variance <= 0.0 || k >= n {
            return 0.0;
        }
        centred[..n - k]
            .iter()
            .zip(&centred[k..])
            .map(|(a, b)| a * b)
            .sum::<f64>()
            / variance
    })
    .collect()
}

/// The strongest local peak of `acf` (lags from `first_lag`), as (lag,
/// value): a lag whose value is above the one before and not below the
/// one after.
fn strongest_peak(acf: &[f64], first_lag: usize) -> Option<(usize, f64)> {
    (1..acf.len().saturating_sub(1))
        .filter(|&i| acf[i] > acf[i - 1] && acf[i] >= acf[i + 1])
        .map(|i| (first_lag + i, acf[i]))
        .fold(None, |best: Option<(usize, f64)>, (lag, v)| match best {
            Some((_, b)) if b >= v => best,
            _ => Some((lag, v)),
        })
}

/// The cycle of `rates` (oldest first, one value a step), with periods
/// from `min_steps` to `max_steps` (and at most half the series), if it
/// stands out from noise; its fold over the whole cycles seen.
pub fn detect(rates: &[f64], min_steps: usize, max_steps: usize) -> Option<Cycle> {
    if rates.len() < 8 {
        return None;
    }
    let changes: Vec<f64> = rates.windows(2).map(|w| w[1] - w[0]).collect();
    let max_lag = max_steps.min(changes.len() / 2);
    // One lag below and above the range, so its ends can be peaks.
    let first_lag = min_steps.max(2) - 1;
    if max_lag < first_lag + 2 {
        return None;
    }
    let acf = autocorrelation(&changes, first_lag..=max_lag + 1);
    let (period_steps, strength) = strongest_peak(&acf, first_lag)?;
    if period_steps > max_lag || strength <= 0.0 {
        return None;
    }
    // What the changes of the same rates in a random order reach,
    // anywhere in range. (Shuffling the rates, not their changes, keeps
    // what differencing does to noise: each change shares a value with
    // the next.)
    let mut rng = ChaCha8Rng::seed_from_u64(SHUFFLE_SEED);
    let mut shuffled = rates.to_vec();
    let mut shuffled_changes = vec![0.0; changes.len()];
    let mut noise_strength = f64::NEG_INFINITY;
    for _ in 0..SHUFFLES {
        shuffled.shuffle(&mut rng);
        for (c, w) in shuffled_changes.iter_mut().zip(shuffled.windows(2)) {
            *c = w[1] - w[0];
        }
        let peak = autocorrelation(&shuffled_changes, first_lag + 1..=max_lag)
            .into_iter()
            .fold(f64::NEG_INFINITY, f64::max);
        noise_strength = noise_strength.max(peak);
    }
    if strength <= noise_strength {
        return None;
    }
    let (mean, spread) = fold(rates, period_steps);
    Some(Cycle {
        period_steps,
        strength,
        noise_strength,
        mean,
        spread,
    })
}

/// Mean and spread of `rates` at each offset of a cycle of `period`
/// steps, offset 0 being the step after the last value.
fn fold(rates: &[f64], period: usize) -> (Vec<f64>, Vec<f64>) {
    let n = rates.len();
    let mut sum = vec![0.0; period];
    let mut sum_sq = vec![0.0; period];
    let mut count = vec![0.0; period];
    for (i, &r) in rates.iter().enumerate() {
        // Steps from the value to the one after the last: n − i.
        let offset = (period - (n - i) % period) % period;
        sum[offset] += r;
        sum_sq[offset] += r * r;
        count[offset] += 1.0;
    }
    let mean: Vec<f64> = (0..period)
        .map(|o| {
            if count[o] > 0.0 {
                sum[o] / count[o]
            } else {
                0.0
            }
        })
        .collect();
    let spread = (0..period)
        .map(|o| {
            if count[o] > 1.0 {
                ((sum_sq[o] - count[o] * mean[o] * mean[o]) / (count[o] - 1.0))
                    .max(0.0)
                    .sqrt()
            } else {
                0.0
            }
        })
        .collect();
    (mean, spread)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngExt;

    /// A series of `n` values: `f(t)` plus uniform noise of ± `noise`.
    fn series(n: usize, noise: f64, seed: u64, f: impl Fn(usize) -> f64) -> Vec<f64> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..n)
            .map(|t| f(t) + noise * (2.0 * rng.random::<f64>() - 1.0))
            .collect()
    }

    #[test]
    fn a_square_wave_is_found_with_its_phase() {
        // 20 s cycle: 12 s at 250, 8 s at 60, noise ± 20; 240 samples.
        let rates = series(240, 20.0, 1, |t| if t % 20 < 12 { 250.0 } else { 60.0 });
        let c = detect(&rates, 4, 120).expect("a cycle");
        assert_eq!(c.period_steps, 20);
        assert!(c.strength > c.noise_strength);
        // The series ends at t = 239, in the low part (t % 20 = 19); the
        // next step (t = 240) starts a high part.
        let (next, _) = c.at(1);
        assert!((next - 250.0).abs() < 30.0, "{next}");
        let (low, spread) = c.at(13);
        assert!((low - 60.0).abs() < 30.0 && spread < 30.0, "{low} {spread}");
    }

    #[test]
    fn a_long_cycle_is_found_when_two_were_seen() {
        // 90 s cycle: 60 s at 90, 15 s at 300, 15 s at 4.
        let shape = |t: usize| match t % 90 {
            0..60 => 90.0,
            60..75 => 300.0,
            _ => 4.0,
        };
        let c = detect(&series(240, 10.0, 2, shape), 4, 120).expect("a cycle");
        assert_eq!(c.period_steps, 90);
        // Seen only once: not a cycle yet.
        assert!(detect(&series(150, 10.0, 2, shape), 4, 120).is_none());
    }

    #[test]
    fn noise_a_ramp_and_a_step_are_rarely_taken_for_cycles() {
        // A test at the 1 % level: over 100 profiles of each, a few at
        // most (the expected count is under 1).
        let found = |f: &dyn Fn(usize) -> f64| {
            (0..100)
                .filter(|&seed| detect(&series(240, 20.0, seed, f), 4, 120).is_some())
                .count()
        };
        assert!(found(&|_| 100.0) <= 3);
        assert!(found(&|t| 10.0 + 2.0 * t as f64) <= 3);
        assert!(found(&|t| if t < 140 { 30.0 } else { 300.0 }) <= 3);
    }

    #[test]
    fn the_same_profile_gets_the_same_answer() {
        let rates = series(240, 20.0, 3, |t| if t % 30 < 10 { 200.0 } else { 20.0 });
        assert_eq!(detect(&rates, 4, 120), detect(&rates, 4, 120));
    }
}

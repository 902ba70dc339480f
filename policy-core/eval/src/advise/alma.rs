//! The ALMA-style baseline (Baruchi et al., CNSM 2014): find the
//! workload's cycle in the spectrum of the sampled dirty rate and start
//! the migration at the next low phase of that cycle; start now when the
//! spectrum shows no cycle. Implemented here from the paper's description
//! as a baseline for `kairos advise`: the paper's own thresholds are not
//! published, so the ones below are this project's.

use rustfft::num_complex::Complex;
use rustfft::FftPlanner;

/// Shortest cycle looked for, s.
const MIN_CYCLE_S: f64 = 10.0;
/// Share of the series' variance the dominant frequency must hold to count
/// as a cycle.
const MIN_POWER_SHARE: f64 = 0.25;

/// A cycle found in the spectrum.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cycle {
    /// Its length, s.
    pub period_s: f64,
    /// Where in the cycle (s after a cycle start, measured from the first
    /// sample) the low phase begins: the run of phases below the cycle's
    /// mean rate that holds the lowest one.
    pub low_phase_s: f64,
    /// How long the low phase lasts, s.
    pub low_length_s: f64,
}

/// The dominant cycle of `rates` (one value every `step_s` seconds), if
/// its frequency holds at least `MIN_POWER_SHARE` of the variance.
pub fn dominant_cycle(rates: &[f64], step_s: f64) -> Option<Cycle> {
    let n = rates.len();
    if n < 8 || step_s <= 0.0 {
        return None;
    }
    let mean = rates.iter().sum::<f64>() / n as f64;
    let mut buffer: Vec<Complex<f64>> = rates.iter().map(|r| Complex::new(r - mean, 0.0)).collect();
    FftPlanner::new().plan_fft_forward(n).process(&mut buffer);
    let power = |k: usize| buffer[k].norm_sqr();
    let total: f64 = (1..=n / 2).map(power).sum();
    if total <= 0.0 {
        return None;
    }
    // Frequencies whose cycle fits twice in the series and is not shorter
    // than the shortest looked for.
    let k_max = ((n as f64 * step_s / MIN_CYCLE_S).floor() as usize).min(n / 2);
    let k = (2..=k_max).max_by(|&a, &b| power(a).total_cmp(&power(b)))?;
    if power(k) / total < MIN_POWER_SHARE {
        return None;
    }
    let period_s = n as f64 * step_s / k as f64;
    // The low phase: fold the series over the period and take the phase
    // bin with the lowest mean rate.
    let bins = (period_s / step_s).round().max(1.0) as usize;
    let mut sum = vec![0.0; bins];
    let mut count = vec![0u32; bins];
    for (i, r) in rates.iter().enumerate() {
        let phase = (i as f64 * step_s) % period_s;
        let bin = ((phase / step_s).floor() as usize).min(bins - 1);
        sum[bin] += r;
        count[bin] += 1;
    }
    let mean_of = |b: usize| {
        if count[b] > 0 {
            sum[b] / f64::from(count[b])
        } else {
            f64::INFINITY
        }
    };
    let low_bin = (0..bins).min_by(|&a, &b| mean_of(a).total_cmp(&mean_of(b)))?;
    let seen: Vec<f64> = (0..bins).map(mean_of).filter(|m| m.is_finite()).collect();
    let fold_mean = seen.iter().sum::<f64>() / seen.len().max(1) as f64;
    // Walk back and forth (cyclically) from the lowest phase while below
    // the mean: that run is the low phase.
    let below = |b: usize| mean_of(b) < fold_mean;
    let mut start = low_bin;
    let mut length = 1;
    while length < bins && below((start + bins - 1) % bins) {
        start = (start + bins - 1) % bins;
        length += 1;
    }
    while length < bins && below((start + length) % bins) {
        length += 1;
    }
    Some(Cycle {
        period_s,
        low_phase_s: start as f64 * step_s,
        low_length_s: length as f64 * step_s,
    })
}

/// Seconds from now (the end of the series, `n · step_s` after its first
/// sample began) to the next start of the low phase; 0 without a cycle,
/// or when now is inside the low phase.
pub fn alma_wait_s(rates: &[f64], step_s: f64) -> f64 {
    let Some(cycle) = dominant_cycle(rates, step_s) else {
        return 0.0;
    };
    let now = rates.len() as f64 * step_s;
    let since_low = (now - cycle.low_phase_s).rem_euclid(cycle.period_s);
    if since_low < cycle.low_length_s {
        return 0.0;
    }
    cycle.period_s - since_low
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_cycle_and_its_trough() {
        // 60 s cycle sampled every 5 s: 20 s high, 40 s low, from t = 0.
        let rates: Vec<f64> = (0..48)
            .map(|i| if (i * 5) % 60 < 20 { 200.0 } else { 10.0 })
            .collect();
        let cycle = dominant_cycle(&rates, 5.0).unwrap();
        assert!((cycle.period_s - 60.0).abs() < 1e-9, "{cycle:?}");
        assert_eq!(
            (cycle.low_phase_s, cycle.low_length_s),
            (20.0, 40.0),
            "{cycle:?}"
        );
        // Now = 240 s, a cycle start: the low phase begins 20 s later.
        assert_eq!(alma_wait_s(&rates, 5.0), 20.0);
        // The same cycle seen from 30 s into it: now is in the low phase.
        let shifted: Vec<f64> = (0..48)
            .map(|i| if (i * 5 + 30) % 60 < 20 { 200.0 } else { 10.0 })
            .collect();
        assert_eq!(alma_wait_s(&shifted, 5.0), 0.0);
    }

    #[test]
    fn no_cycle_in_a_constant() {
        assert_eq!(dominant_cycle(&[5.0; 40], 1.0), None);
        assert_eq!(alma_wait_s(&[5.0; 40], 1.0), 0.0);
    }
}

//! A profile of a running guest that is not being migrated: how many
//! distinct bytes it dirtied in each measurement window (QEMU's
//! `calc-dirty-rate`, or the simulator's page-level guest), turned into the
//! evenly spaced series the forecasters take, and the writable working set
//! those windows imply.

use serde::{Deserialize, Serialize};

use crate::sim::guest::{DirtySet, Guest};
use crate::sim::workload::Workload;

/// Bytes per guest page (the simulator's and x86's).
const PAGE_BYTES: f64 = 4096.0;

/// One measurement of the guest's dirtying, without migrating it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ProfileSample {
    /// Seconds since profiling began, at the end of the window.
    pub t_s: f64,
    /// Length of the window, s.
    pub window_s: f64,
    /// Distinct bytes dirtied in the window.
    pub dirtied_bytes: f64,
}

impl ProfileSample {
    /// Distinct bytes per second of the window (a lower bound of the touch
    /// rate once the window saturates the working set).
    pub fn rate_bytes_per_s(&self) -> f64 {
        self.dirtied_bytes / self.window_s
    }
}

/// When the profile measures over a long window instead of a short one: a
/// long window every this many samples.
pub const LONG_WINDOW_EVERY: usize = 30;
/// The short window, s (one sample a second).
pub const SHORT_WINDOW_S: f64 = 1.0;
/// The long window, s: long enough for a working set to saturate, so the
/// two window lengths together bound its size.
pub const LONG_WINDOW_S: f64 = 5.0;

/// The measurement schedule: the length of window `i` (0-based).
pub fn window_s(i: usize) -> f64 {
    if i % LONG_WINDOW_EVERY == LONG_WINDOW_EVERY - 1 {
        LONG_WINDOW_S
    } else {
        SHORT_WINDOW_S
    }
}

/// Mean rate (bytes/s) of the short windows in consecutive buckets of
/// `bucket_s` seconds counted back from the last sample (so the last bucket
/// ends "now"); a bucket no short window ended in repeats the one before
/// (leading empty ones are left out). Long windows are left out: a
/// saturated one reads far below the short ones' rate, a dip that is not
/// there; they serve the working set. Returns the rates and the time of
/// the last sample ("now").
pub fn bucket_rates(samples: &[ProfileSample], bucket_s: f64) -> (Vec<f64>, f64) {
    let Some(last) = samples.last() else {
        return (Vec::new(), 0.0);
    };
    let now = last.t_s;
    let buckets = (now / bucket_s + 1e-9).floor() as usize;
    let mut sum = vec![0.0; buckets];
    let mut weight = vec![0.0; buckets];
    for s in samples {
        if (s.window_s - SHORT_WINDOW_S).abs() > 1e-9 {
            continue;
        }
        let back = ((now - s.t_s) / bucket_s + 1e-9).floor();
        if back < 0.0 || back as usize >= buckets {
            continue;
        }
        let index = buckets - 1 - back as usize;
        sum[index] += s.dirtied_bytes;
        weight[index] += s.window_s;
    }
    let mut rates = Vec::with_capacity(buckets);
    let mut previous = None;
    for (s, w) in sum.iter().zip(&weight) {
        let rate = if *w > 0.0 { Some(s / w) } else { previous };
        if let Some(r) = rate {
            rates.push(r);
            previous = Some(r);
        }
    }
    (rates, now)
}

/// The writable working set the windows imply, bytes, at most `ram_bytes`:
/// for each long window, the W under which the touch rate seen in the
/// short windows around it would dirty what the long window saw,
/// W·(1 − (1 − d₁/W)^(T_long/T_short)) = d_long; the largest such W.
/// `ram_bytes` when no long window saturated (the set is larger than the
/// profile can tell, or the guest barely writes).
pub fn working_set_bytes(samples: &[ProfileSample], ram_bytes: f64) -> f64 {
    let mut wws: Option<f64> = None;
    for (i, long) in samples.iter().enumerate() {
        if long.window_s <= SHORT_WINDOW_S * 1.5 {
            continue;
        }
        let near: Vec<f64> = samples[i.saturating_sub(3)..(i + 4).min(samples.len())]
            .iter()
            .filter(|s| (s.window_s - SHORT_WINDOW_S).abs() < 1e-9)
            .map(|s| s.dirtied_bytes)
            .collect();
        if near.is_empty() {
            continue;
        }
        let short = near.iter().sum::<f64>() / near.len() as f64;
        let k = long.window_s / SHORT_WINDOW_S;
        if let Some(w) = invert_saturation(short, long.dirtied_bytes, k, ram_bytes) {
            wws = Some(wws.map_or(w, |x: f64| x.max(w)));
        }
    }
    wws.unwrap_or(ram_bytes).min(ram_bytes)
}

/// The distinct bytes a guest dirties in a window of `window_s`, on the
/// working-set curve the profile's windows are read with: W·(1 − (1 −
/// d₁/W)^(window / T_short)), where d₁ is what a short window dirties
/// (`rate_bytes_per_s` × [`SHORT_WINDOW_S`]) and W the working set. Over
/// windows shorter than the short one the rate comes out higher (the
/// writes a short window sees are less often repeats), towards the
/// guest's raw write rate.
pub fn dirtied_in_window_bytes(rate_bytes_per_s: f64, wws_bytes: f64, window_s: f64) -> f64 {
    let short = rate_bytes_per_s * SHORT_WINDOW_S;
    if !(short > 0.0 && wws_bytes > 0.0 && window_s > 0.0) {
        return 0.0;
    }
    let k = window_s / SHORT_WINDOW_S;
    wws_bytes * (1.0 - (1.0 - (short / wws_bytes).min(1.0)).powf(k))
}

/// Solve W·(1 − (1 − short/W)^k) = long for W in (short, ram]; None when
/// `long` shows no saturation within `ram` (nearly k × short).
fn invert_saturation(short: f64, long: f64, k: f64, ram: f64) -> Option<f64> {
    if !(short > 0.0 && long > 0.0 && k > 1.0) {
        return None;
    }
    let seen = |w: f64| dirtied_in_window_bytes(short / SHORT_WINDOW_S, w, k * SHORT_WINDOW_S);
    // seen(W) grows with W towards k·short; no W within RAM explains less
    // saturation than seen(ram) shows.
    if long >= seen(ram) {
        return None;
    }
    let (mut lo, mut hi) = (short.max(long / k), ram);
    if seen(lo) >= long {
        return Some(lo.max(long));
    }
    for _ in 0..60 {
        let mid = 0.5 * (lo + hi);
        if seen(mid) < long {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Some(0.5 * (lo + hi))
}

/// Profile the simulator's guest running `workload` from t = 0 for
/// `duration_s` seconds on the measurement schedule ([`window_s`]): what
/// `kairos advise` would have sampled before a migration at `duration_s`.
pub fn simulated_profile(workload: &Workload, seed: u64, duration_s: f64) -> Vec<ProfileSample> {
    let mut profiler = SimulatedProfiler::new(workload, seed);
    profiler.extend_to(duration_s);
    profiler.samples
}

/// A profile of the simulator's guest taken as time goes on: each
/// [`extend_to`](Self::extend_to) samples on from where the last stopped
/// (the evacuation planner asks a waiting guest's profile at every event).
pub struct SimulatedProfiler {
    guest: Guest,
    dirty: DirtySet,
    nonzero: DirtySet,
    t_s: f64,
    windows: usize,
    samples: Vec<ProfileSample>,
}

impl SimulatedProfiler {
    /// `workload`'s guest at program time 0, nothing sampled.
    pub fn new(workload: &Workload, seed: u64) -> Self {
        let guest = Guest::new(workload, seed);
        let pages = guest.page_count();
        Self {
            guest,
            dirty: DirtySet::new(pages),
            nonzero: DirtySet::new(pages),
            t_s: 0.0,
            windows: 0,
            samples: Vec::new(),
        }
    }

    /// Sample every window that ends by `duration_s`.
    pub fn extend_to(&mut self, duration_s: f64) {
        loop {
            let w = window_s(self.windows);
            if self.t_s + w > duration_s + 1e-9 {
                break;
            }
            self.dirty.clear();
            self.guest
                .run_until(self.t_s + w, &mut self.dirty, &mut self.nonzero);
            self.t_s += w;
            self.samples.push(ProfileSample {
                t_s: self.t_s,
                window_s: w,
                dirtied_bytes: self.dirty.len() as f64 * PAGE_BYTES,
            });
            self.windows += 1;
        }
    }

    /// The samples so far, oldest first.
    pub fn samples(&self) -> &[ProfileSample] {
        &self.samples
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_working_set_curve_gives_the_short_window_at_one_second_and_saturates() {
        let mib = 1048576.0;
        let d = |w: f64| dirtied_in_window_bytes(50.0 * mib, 200.0 * mib, w);
        assert!((d(SHORT_WINDOW_S) - 50.0 * mib).abs() < 1.0);
        assert!(d(0.3) / 0.3 > 50.0 * mib, "a short window dirties faster");
        assert!(d(5.0) / 5.0 < 50.0 * mib && d(60.0) <= 200.0 * mib);
        assert_eq!(dirtied_in_window_bytes(0.0, 200.0 * mib, 1.0), 0.0);
    }

    fn sample(t_s: f64, window_s: f64, dirtied_bytes: f64) -> ProfileSample {
        ProfileSample {
            t_s,
            window_s,
            dirtied_bytes,
        }
    }

    #[test]
    fn buckets_average_their_windows() {
        let samples: Vec<ProfileSample> = (1..=10)
            .map(|t| sample(t as f64, 1.0, if t <= 5 { 100.0 } else { 300.0 }))
            .collect();
        let (rates, now) = bucket_rates(&samples, 5.0);
        assert_eq!(rates, vec![100.0, 300.0]);
        assert_eq!(now, 10.0);
        // Counted back from the last sample, long windows left out.
        let mut shifted: Vec<ProfileSample> = (1..=12)
            .map(|t| sample(t as f64, 1.0, if t <= 7 { 100.0 } else { 300.0 }))
            .collect();
        shifted.push(sample(17.0, 5.0, 50.0));
        shifted.push(sample(18.0, 1.0, 300.0));
        let (rates, now) = bucket_rates(&shifted, 5.0);
        assert_eq!(now, 18.0);
        // Buckets (13, 18], (8, 13], (3, 8]: 300, 300, then 100 ×4 + 300.
        assert_eq!(rates, vec![140.0, 300.0, 300.0]);
    }

    #[test]
    fn the_working_set_is_recovered_from_saturation() {
        let w = 200e6;
        let rate = 150e6;
        // What uniform touches at `rate` over W leave distinct in t seconds.
        let seen = |t: f64| w * (1.0 - (-rate * t / w).exp());
        let samples = vec![
            sample(1.0, 1.0, seen(1.0)),
            sample(2.0, 1.0, seen(1.0)),
            sample(7.0, 5.0, seen(5.0)),
            sample(8.0, 1.0, seen(1.0)),
        ];
        let found = working_set_bytes(&samples, 1e9);
        assert!((found - w).abs() / w < 0.02, "{found}");
    }

    #[test]
    fn no_saturation_means_the_whole_ram() {
        let samples = vec![
            sample(1.0, 1.0, 1e6),
            sample(6.0, 5.0, 5e6),
            sample(7.0, 1.0, 1e6),
        ];
        assert_eq!(working_set_bytes(&samples, 1e9), 1e9);
    }

    #[test]
    fn a_simulated_profile_follows_the_phases() {
        let w = Workload::from_toml(
            "name='c'\nram_mib=512\nrepeat=true\n[[phase]]\nkind='write'\nseconds=10\nwss_mib=100\nrate_mib_s=50\n[[phase]]\nkind='idle'\nseconds=10\n",
            std::path::Path::new("c.toml"),
        )
        .unwrap();
        let p = simulated_profile(&w, 1, 40.0);
        assert!(p.len() >= 30);
        let busy = p.iter().find(|s| s.t_s == 5.0).unwrap().rate_bytes_per_s();
        let idle = p.iter().find(|s| s.t_s == 15.0).unwrap().rate_bytes_per_s();
        assert!(busy > 40e6 && idle == 0.0, "{busy} {idle}");
    }
}

//! When to *start* a migration: from a profile of the running guest
//! (its dirty rate once a second, no migration), forecast the dirty rate
//! over the next minutes — folded over a cycle found at the samples' own
//! resolution where one stands out from noise ([`cycle`]), with the
//! library's own forecasters otherwise — predict what a migration started
//! at each candidate moment
//! would cost under the user's objective (the physics of pre-copy rounds
//! in [`predict`]), and advise the cheapest start — counting the wait —
//! or "now" when waiting is not worth it, or when the forecast is too
//! uncertain to promise it is.

pub mod alma;
pub mod cycle;
pub mod evaluate;
pub mod overhead;
pub mod predict;
pub mod profile;
pub mod wait;

use kairos_policy_core::cost::Objective;
use kairos_policy_core::forecast::ensemble::Ensemble;
use kairos_policy_core::period::{PeriodDetector, MAX_PERIOD};
use kairos_policy_core::ForecastConfig;
use serde::{Deserialize, Serialize};

use cycle::Cycle;
use predict::{MigrationModel, RatePath};
use profile::{bucket_rates, working_set_bytes, ProfileSample};

/// The forecasters work in GiB/s, like the policy's.
const GIB_BYTES: f64 = 1024.0 * 1024.0 * 1024.0;
/// ω by default: waiting is cheap but not free — a start 10 s later must
/// save at least 1 s of migration — so a forecast's small wiggles never
/// make a guest wait.
pub const DEFAULT_WAIT_WEIGHT: f64 = 0.1;
/// Buckets of history the forecast needs before it advises waiting.
const MIN_BUCKETS: usize = 8;
/// The shortest cycle looked for at the samples' resolution, s: a few of
/// the rounds a migration makes.
const MIN_CYCLE_S: usize = 4;

/// What `advise` is asked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdviseConfig {
    /// Guest RAM, bytes (the most the working set can be).
    pub ram_bytes: f64,
    /// Bytes the bulk round puts on the wire: the guest's nonzero memory,
    /// a zero page costing only its header. It sets how long the bulk
    /// round lasts, and so where in a cycle the rounds after it fall. A
    /// live profile cannot measure it: the guest's RAM unless told (the
    /// most it can be).
    pub bulk_bytes: f64,
    /// Link bandwidth, bytes/s.
    pub bandwidth_bytes_per_s: f64,
    /// The stop objective the migration will run under.
    pub objective: Objective,
    /// How far ahead to look for a start, s.
    pub horizon_s: f64,
    /// The longest cycle to detect, s: it sets the bucket the samples are
    /// averaged into (the cycle detector sees at most
    /// [`MAX_PERIOD`] buckets).
    pub max_cycle_s: f64,
    /// Added to every downtime (device state, vCPU stop/start), ms.
    pub switchover_ms: f64,
    /// Forecaster settings (the policy's).
    pub forecast: ForecastConfig,
    /// Two-sided normal quantile of the forecast interval (1.28: 80 %).
    pub interval_z: f64,
    /// ω: what one second of waiting before the migration costs, in
    /// seconds of migration. 0: waiting is free (up to the horizon): the
    /// cheapest migration is wanted, as when a maintenance or a rebalancing
    /// can be scheduled; 1: a second of waiting costs as much as a second
    /// of migration, as when the guest must leave the host soon.
    pub wait_weight: f64,
}

impl AdviseConfig {
    /// Defaults for a guest and link: 300 s ahead, cycles up to 120 s.
    pub fn new(ram_bytes: f64, bandwidth_bytes_per_s: f64, objective: Objective) -> Self {
        Self {
            ram_bytes,
            bulk_bytes: ram_bytes,
            bandwidth_bytes_per_s,
            objective,
            horizon_s: 300.0,
            max_cycle_s: 120.0,
            switchover_ms: 20.0,
            forecast: ForecastConfig::default(),
            interval_z: 1.2816,
            wait_weight: DEFAULT_WAIT_WEIGHT,
        }
    }

    /// Seconds per bucket: the cycle detector sees at most [`MAX_PERIOD`]
    /// buckets, so a bucket is `max_cycle_s / MAX_PERIOD`, at least 1 s.
    pub fn bucket_s(&self) -> f64 {
        (self.max_cycle_s / MAX_PERIOD as f64).ceil().max(1.0)
    }
}

/// The advice's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Starting now is expected to cost least.
    StartNow,
    /// A later start is expected to cost less, and would still if the
    /// dirty rate came out at the upper end of its forecast, now and later.
    Wait,
    /// A later start is expected to cost less, but not if the rate comes
    /// out at the upper end of its forecast: start now.
    TooUncertain,
    /// Not enough history to forecast: start now.
    TooLittleHistory,
}

impl Verdict {
    /// The name used in output.
    pub fn name(self) -> &'static str {
        match self {
            Verdict::StartNow => "start-now",
            Verdict::Wait => "wait",
            Verdict::TooUncertain => "too-uncertain",
            Verdict::TooLittleHistory => "too-little-history",
        }
    }
}

/// One forecast point of the dirty rate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RatePoint {
    /// Seconds from now (the middle of the bucket).
    pub t_s: f64,
    /// Forecast rate, bytes/s.
    pub mean_bytes_per_s: f64,
    /// Lower end of its interval.
    pub lo_bytes_per_s: f64,
    /// Upper end.
    pub hi_bytes_per_s: f64,
}

/// A candidate start and what it is expected to cost, wait included.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Candidate {
    /// Seconds from now.
    pub start_s: f64,
    /// Expected cost, ms, with the wait weighed by ω (None: no stop
    /// expected to fit).
    pub cost_ms: Option<f64>,
    /// The same if the rate comes out at the upper end of its forecast.
    pub cost_hi_ms: Option<f64>,
}

/// What `advise` says.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Advice {
    /// Start this many seconds from now (0: now).
    pub start_in_s: f64,
    /// Why.
    pub verdict: Verdict,
    /// Expected cost of starting now, ms.
    pub now_cost_ms: Option<f64>,
    /// Expected cost of the advised start, ms, the wait weighed by ω.
    pub advised_cost_ms: Option<f64>,
    /// Expected gain over starting now, ms, and the least it is if the
    /// rate comes out at the upper end of its forecast.
    pub gain_ms: f64,
    /// The least gain under the pessimistic forecast, ms.
    pub gain_lo_ms: f64,
    /// Detected cycle, s.
    pub period_s: Option<f64>,
    /// The writable working set the profile implies, bytes.
    pub wws_bytes: f64,
    /// Seconds per bucket of the forecast.
    pub bucket_s: f64,
    /// The rate forecast.
    pub forecast: Vec<RatePoint>,
    /// Every candidate start.
    pub candidates: Vec<Candidate>,
}

/// The forecasters fed with the profile at one bucket size.
struct Fitted {
    bucket_s: f64,
    rates: Vec<f64>,
    ensemble: Ensemble,
    period: PeriodDetector,
}

fn fit_at(samples: &[ProfileSample], cfg: &AdviseConfig, bucket_s: f64) -> Fitted {
    let (rates, _) = bucket_rates(samples, bucket_s);
    let mut ensemble = Ensemble::new(&cfg.forecast);
    let mut period = PeriodDetector::default();
    for &r in &rates {
        let x = r / GIB_BYTES;
        ensemble.update(x);
        ensemble.set_period(period.update(x));
    }
    Fitted {
        bucket_s,
        rates,
        ensemble,
        period,
    }
}

/// Fit at the bucket `max_cycle_s` needs.
fn fit(samples: &[ProfileSample], cfg: &AdviseConfig) -> Fitted {
    fit_at(samples, cfg, cfg.bucket_s())
}

/// Where the rate forecast comes from.
enum RateSource {
    /// A cycle found at the samples' resolution (1 s), folded.
    Cycle(Cycle),
    /// The library's forecasters over buckets (no cycle stood out).
    Forecasters(Box<Fitted>),
}

impl RateSource {
    /// A cycle at one value a second if one stands out from noise,
    /// otherwise the forecasters at the bucket `max_cycle_s` needs.
    fn of(samples: &[ProfileSample], cfg: &AdviseConfig) -> Self {
        let (per_s, _) = bucket_rates(samples, 1.0);
        let longest = cfg.max_cycle_s.max(1.0) as usize;
        // No cycle before the forecasters' own minimum history.
        let history_s = per_s.len() as f64;
        let detected = (history_s >= MIN_BUCKETS as f64 * cfg.bucket_s())
            .then(|| cycle::detect(&per_s, MIN_CYCLE_S, longest))
            .flatten();
        match detected {
            Some(c) => Self::Cycle(c),
            None => Self::Forecasters(Box::new(fit(samples, cfg))),
        }
    }

    /// Seconds per step of the forecast.
    fn step_s(&self) -> f64 {
        match self {
            Self::Cycle(_) => 1.0,
            Self::Forecasters(f) => f.bucket_s,
        }
    }

    /// The forecast rate (distinct bytes/s) `h` ≥ 1 steps ahead and its
    /// spread (a standard deviation).
    fn at(&self, h: usize) -> (f64, f64) {
        match self {
            Self::Cycle(c) => c.at(h),
            Self::Forecasters(f) => {
                if !f.ensemble.ready() {
                    return (0.0, 0.0);
                }
                let forecast = f.ensemble.forecast(h);
                (
                    forecast.mean.max(0.0) * GIB_BYTES,
                    forecast.sigma * GIB_BYTES,
                )
            }
        }
    }

    /// Enough history to advise waiting.
    fn enough(&self) -> bool {
        match self {
            // Two whole cycles were seen.
            Self::Cycle(_) => true,
            Self::Forecasters(f) => f.ensemble.ready() && f.rates.len() >= MIN_BUCKETS,
        }
    }

    /// The cycle found, s.
    fn period_s(&self) -> Option<f64> {
        match self {
            Self::Cycle(c) => Some(c.period_steps as f64),
            Self::Forecasters(f) => {
                (f.period.period() > 0).then(|| f.period.period() as f64 * f.bucket_s)
            }
        }
    }
}

/// Advise when to start, from `samples` (oldest first, the last one
/// "now").
pub fn advise(samples: &[ProfileSample], cfg: &AdviseConfig) -> Advice {
    let source = RateSource::of(samples, cfg);
    let bucket_s = source.step_s();
    let wws_bytes = working_set_bytes(samples, cfg.ram_bytes);
    let model = MigrationModel {
        bulk_bytes: cfg.bulk_bytes.clamp(0.0, cfg.ram_bytes),
        wws_bytes,
        bandwidth_bytes_per_s: cfg.bandwidth_bytes_per_s,
        switchover_ms: cfg.switchover_ms,
    };
    // The path must reach past the last candidate by the longest migration
    // worth following: the horizon again.
    let steps = ((2.0 * cfg.horizon_s) / bucket_s).ceil() as usize + 1;
    let mut mean = Vec::with_capacity(steps);
    let mut hi = Vec::with_capacity(steps);
    let mut lo = Vec::with_capacity(steps);
    let mut forecast = Vec::with_capacity(steps);
    for h in 1..=steps {
        let (m, sigma) = source.at(h);
        let spread = cfg.interval_z * sigma;
        // The forecast is of distinct bytes per second; the rounds need
        // the touch rate behind it.
        mean.push(model.touch_rate(m));
        hi.push(model.touch_rate(m + spread));
        lo.push(model.touch_rate((m - spread).max(0.0)));
        if (h as f64 - 1.0) * bucket_s < cfg.horizon_s {
            forecast.push(RatePoint {
                t_s: (h as f64 - 0.5) * bucket_s,
                mean_bytes_per_s: m,
                lo_bytes_per_s: (m - spread).max(0.0),
                hi_bytes_per_s: m + spread,
            });
        }
    }
    let mean_path = RatePath {
        step_s: bucket_s,
        rates_bytes_per_s: mean,
    };
    let hi_path = RatePath {
        step_s: bucket_s,
        rates_bytes_per_s: hi,
    };
    let lo_path = RatePath {
        step_s: bucket_s,
        rates_bytes_per_s: lo,
    };
    let with_wait = |path: &RatePath, start_s: f64| {
        model
            .cost_ms(path, start_s, &cfg.objective)
            .map(|c| c + cfg.wait_weight * start_s * 1000.0)
    };
    let count = (cfg.horizon_s / bucket_s).floor() as usize + 1;
    let candidates: Vec<Candidate> = (0..count)
        .map(|i| {
            let start_s = i as f64 * bucket_s;
            Candidate {
                start_s,
                cost_ms: with_wait(&mean_path, start_s),
                cost_hi_ms: with_wait(&hi_path, start_s),
            }
        })
        .collect();
    // Costs are compared to the millisecond (the resolution downtimes are
    // measured in): a flat forecast gives equal costs, and the earliest
    // start wins.
    let key = |c: &Candidate| c.cost_ms.map_or(f64::INFINITY, f64::round);
    let best = candidates
        .iter()
        .min_by(|a, b| {
            key(a)
                .total_cmp(&key(b))
                .then(a.start_s.total_cmp(&b.start_s))
        })
        .copied()
        .unwrap_or(Candidate {
            start_s: 0.0,
            cost_ms: None,
            cost_hi_ms: None,
        });
    let now = candidates[0];
    let now_cost = key(&now);
    // Waiting is advised only when the later start is cheaper both as
    // forecast and if the rate comes out at the upper end of its forecast,
    // now and later alike. (The wait is re-advised as it goes, `wait`, so
    // a forecast that turns out wrong costs a few seconds, not the whole
    // wait; the rule before re-advising compared the later start's
    // pessimistic cost with the optimistic cost of starting now, and left
    // the tail of short cycles where it was.)
    let now_hi = now.cost_hi_ms.map_or(f64::INFINITY, f64::round);
    let now_lo = with_wait(&lo_path, 0.0).map_or(f64::INFINITY, f64::round);
    let enough = source.enough();
    // A start now that is not expected to converge even at the lower end
    // of the forecast cannot be worse to leave: any later start expected
    // to converge is advised.
    let best_hi = best.cost_hi_ms.map_or(f64::INFINITY, f64::round);
    let verdict = if !enough {
        Verdict::TooLittleHistory
    } else if best.start_s == 0.0 || key(&best) >= now_cost {
        Verdict::StartNow
    } else if best_hi < now_hi || (now_lo.is_infinite() && key(&best).is_finite()) {
        Verdict::Wait
    } else {
        Verdict::TooUncertain
    };
    let waiting = verdict == Verdict::Wait;
    let chosen = if waiting { best } else { now };
    let finite = |x: f64| if x.is_finite() { x } else { 0.0 };
    Advice {
        start_in_s: chosen.start_s,
        verdict,
        now_cost_ms: now.cost_ms,
        advised_cost_ms: chosen.cost_ms,
        gain_ms: if waiting {
            finite(now_cost - key(&best))
        } else {
            0.0
        },
        gain_lo_ms: if waiting {
            finite(now_cost - best_hi)
        } else {
            0.0
        },
        period_s: source.period_s(),
        wws_bytes,
        bucket_s,
        forecast,
        candidates,
    }
}

/// What the advice's tests share: the objective they advise under and a
/// profile of one sample a second.
#[cfg(test)]
pub(crate) mod test_support {
    use super::profile::ProfileSample;
    use kairos_policy_core::cost::Objective;

    /// L = 300 ms, M = 1000 ms, λ = 10.
    pub fn objective() -> Objective {
        Objective {
            downtime_limit_ms: 300.0,
            max_downtime_ms: 1000.0,
            downtime_weight: 10.0,
        }
    }

    /// `seconds` one-second samples of `rate_at(t)` bytes.
    pub fn samples(rate_at: impl Fn(f64) -> f64, seconds: usize) -> Vec<ProfileSample> {
        (1..=seconds)
            .map(|t| ProfileSample {
                t_s: t as f64,
                window_s: 1.0,
                dirtied_bytes: rate_at(t as f64),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::{objective, samples};
    use super::*;

    #[test]
    fn a_steady_guest_is_told_to_start_now() {
        let cfg = AdviseConfig::new(1_073_741_824.0, 125e6, objective());
        let a = advise(&samples(|_| 50e6, 240), &cfg);
        assert_eq!(a.start_in_s, 0.0, "{:?}", a.verdict);
        assert!(matches!(
            a.verdict,
            Verdict::StartNow | Verdict::TooUncertain
        ));
    }

    #[test]
    fn a_cycle_is_waited_out_to_its_trough() {
        // 60 s cycle: 20 s at 250 MB/s, 40 s at 2 MB/s; now = 240 s, the
        // start of a burst.
        let rate = |t: f64| if (t - 1.0) % 60.0 < 20.0 { 250e6 } else { 2e6 };
        let cfg = AdviseConfig::new(1e9, 125e6, objective());
        let a = advise(&samples(rate, 240), &cfg);
        assert_eq!(a.period_s, Some(60.0), "{a:?}");
        assert_eq!(a.verdict, Verdict::Wait, "{:?}", a.candidates);
        // The trough starts 20 s in; a start there finishes in it.
        assert!(
            a.start_in_s >= 15.0 && a.start_in_s <= 45.0,
            "{}",
            a.start_in_s
        );
        assert!(a.gain_ms > 0.0);
    }

    #[test]
    fn a_short_cycle_is_seen_at_one_sample_a_second() {
        // 10 s cycle (4 s at 250 MB/s, 6 s at 2 MB/s): two 5 s buckets,
        // which average it away; at one sample a second it is a cycle.
        let rate = |t: f64| if (t - 1.0) % 10.0 < 4.0 { 250e6 } else { 2e6 };
        let cfg = AdviseConfig::new(1e9, 125e6, objective());
        let a = advise(&samples(rate, 240), &cfg);
        assert_eq!(a.period_s, Some(10.0), "{a:?}");
        assert_eq!(a.bucket_s, 1.0);
        // A steady guest with the same mean shows none.
        let a = advise(&samples(|_| 101e6, 240), &cfg);
        assert_eq!(a.period_s, None);
    }

    #[test]
    fn too_little_history_means_now() {
        let cfg = AdviseConfig::new(1e9, 125e6, objective());
        let a = advise(&samples(|_| 50e6, 10), &cfg);
        assert_eq!(a.verdict, Verdict::TooLittleHistory);
        assert_eq!(a.start_in_s, 0.0);
    }
}

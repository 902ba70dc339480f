//! `advise` judged in simulation: for a workload, at many moments spread
//! over its cycle, profile the simulated guest up to that moment, ask
//! `advise` and the ALMA-style rule when to start, and simulate the
//! migration (under `predictive`) started now, at the advised moment and at
//! ALMA's, each cost counting the wait weighed by ω. The advised start is
//! waited for as `kairos run --start advised` waits live: the profile goes
//! on and the advice is given again every few seconds ([`super::wait`]).
//! Every strategy sees the same guest (same seed) at the same moments.

use kairos_policy_core::cost::Objective;
use kairos_policy_core::{build_policy, ConfigError, PolicyConfig, PolicyKind};
use serde::{Deserialize, Serialize};

use super::alma::alma_wait_s;
use super::profile::{bucket_rates, simulated_profile};
use super::wait::follow;
use super::{AdviseConfig, Verdict};
use crate::outcome::MigrationStatus;
use crate::sim::guest::Guest;
use crate::sim::workload::Workload;
use crate::sim::{simulate_ready, ReadyGuest, SimConfig, PAGE_SIZE_BYTES, ZERO_PAGE_BYTES};

/// How the evaluation is run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EvalConfig {
    /// Moments ("now") per workload.
    pub trials: usize,
    /// Profile history before the first moment, s.
    pub history_s: f64,
    /// The moments are spread over this many seconds after the history
    /// (a low-discrepancy sequence, so every part of a cycle is met).
    pub spread_s: f64,
    /// The simulator's settings (the seed, the link; `warmup_s` is set per
    /// start).
    pub sim: SimConfig,
    /// The policy the migrations run under, and the objective.
    pub policy: PolicyConfig,
    /// What `advise` looks ahead and for.
    pub horizon_s: f64,
    /// The longest cycle `advise` looks for, s.
    pub max_cycle_s: f64,
    /// ω: seconds of migration one second of waiting is worth, for
    /// `advise` and in every strategy's cost (see `AdviseConfig`).
    pub wait_weight: f64,
}

/// One moment: what each strategy chose and what it cost.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Trial {
    /// The moment, s into the workload.
    pub now_s: f64,
    /// Cost of starting at once, ms (None: never completed).
    pub now_cost_ms: Option<f64>,
    /// The wait on `advise`'s word, s, re-advised while waiting.
    pub advised_wait_s: f64,
    /// The first advice's wait, s (what it would have been without
    /// re-advising).
    pub first_wait_s: f64,
    /// Advices given while waiting, after the first.
    pub rechecks: usize,
    /// Cost of the first advice's start, the wait weighed by ω, ms: what
    /// waiting without re-advising would have cost.
    pub first_cost_ms: Option<f64>,
    /// The first advice's verdict.
    pub verdict: Verdict,
    /// Cost of its start, the wait weighed by ω, ms.
    pub advised_cost_ms: Option<f64>,
    /// The ALMA-style rule's wait, s.
    pub alma_wait_s: f64,
    /// Cost of its start, the wait weighed by ω, ms.
    pub alma_cost_ms: Option<f64>,
    /// The best start in hindsight (cyclic programs): the cheapest, the
    /// wait weighed by ω, of the starts every second over one cycle from
    /// the moment and the strategies' own; its wait, s.
    #[serde(default)]
    pub best_wait_s: Option<f64>,
    /// Its cost, ms (None: no start completed, or not computed).
    #[serde(default)]
    pub best_cost_ms: Option<f64>,
}

/// Median and 90th percentile of one strategy's costs (a migration that
/// never completed counts as infinitely costly; one that completed above
/// the maximum downtime counts at T + λ·excess, as if it were allowed).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CostStats {
    /// Median cost, ms (None: infinite).
    pub median_ms: Option<f64>,
    /// 90th percentile, ms.
    pub p90_ms: Option<f64>,
    /// Runs that never completed.
    pub incomplete: usize,
}

impl CostStats {
    /// The statistics of `costs` (None: never completed).
    pub fn of(costs: impl Iterator<Item = Option<f64>>) -> Self {
        let mut v: Vec<f64> = costs.map(|c| c.unwrap_or(f64::INFINITY)).collect();
        v.sort_by(f64::total_cmp);
        let at = |q: f64| {
            if v.is_empty() {
                return None;
            }
            let i = ((q * (v.len() - 1) as f64).round() as usize).min(v.len() - 1);
            Some(v[i]).filter(|x| x.is_finite())
        };
        Self {
            median_ms: at(0.5),
            p90_ms: at(0.9),
            incomplete: v.iter().filter(|x| !x.is_finite()).count(),
        }
    }
}

/// A workload's evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkloadEval {
    /// Workload name.
    pub workload: String,
    /// Its program's cycle, s (None: it does not repeat).
    pub cycle_s: Option<f64>,
    /// Every moment.
    pub trials: Vec<Trial>,
    /// Starting at once (= at a random moment of the cycle).
    pub now: CostStats,
    /// `advise`, re-advised while waiting.
    pub advised: CostStats,
    /// `advise`'s first word alone (no re-advice while waiting).
    pub first: CostStats,
    /// The ALMA-style rule.
    pub alma: CostStats,
    /// The best start in hindsight (cyclic programs only): a bound no
    /// start rule can beat.
    #[serde(default)]
    pub best: Option<CostStats>,
}

/// The cost, ms, of a migration of `workload` started `start_s` into it
/// under `predictive`, or None when it did not complete.
fn migration_cost_ms(
    workload: &Workload,
    cfg: &EvalConfig,
    start_s: f64,
) -> Result<Option<f64>, ConfigError> {
    let mut ready = ReadyGuest::new(workload, cfg.sim.seed);
    ready.advance_to(start_s);
    ready_cost_ms(workload, cfg, ready)
}

/// The cost, ms, of a migration of `workload` started where `ready`
/// was run to, under `predictive`, or None when it did not complete.
fn ready_cost_ms(
    workload: &Workload,
    cfg: &EvalConfig,
    ready: ReadyGuest,
) -> Result<Option<f64>, ConfigError> {
    let mut policy = build_policy(PolicyKind::Predictive, &cfg.policy)?;
    let run = simulate_ready(workload, ready, policy.as_mut(), &cfg.sim, None);
    let objective = Objective::from_config(&cfg.policy);
    Ok(run
        .downtime_ms
        .filter(|_| run.status == MigrationStatus::Completed)
        .map(|d| objective.unbounded_cost_ms(run.total_time_ms, d)))
}

/// The cheapest start, in hindsight, of those every second over
/// `span_s` from `now_s` (each cost with ω × its wait): the wait and the
/// cost, or None when none completed.
fn best_start(
    workload: &Workload,
    cfg: &EvalConfig,
    now_s: f64,
    span_s: f64,
) -> Result<Option<(f64, f64)>, ConfigError> {
    let mut ready = ReadyGuest::new(workload, cfg.sim.seed);
    ready.advance_to(now_s);
    let mut best: Option<(f64, f64)> = None;
    let steps = span_s.ceil().max(1.0) as usize;
    for k in 0..steps {
        let wait_s = k as f64;
        if k > 0 {
            ready.advance_to(now_s + wait_s);
        }
        if let Some(cost) = ready_cost_ms(workload, cfg, ready.clone())? {
            let cost = cost + cfg.wait_weight * wait_s * 1000.0;
            if best.is_none_or(|(_, c)| cost < c) {
                best = Some((wait_s, cost));
            }
        }
    }
    Ok(best)
}

/// What the bulk round of a migration of `workload` puts on the wire,
/// bytes: its nonzero pages whole, the rest as zero-page headers.
pub fn bulk_wire_bytes(workload: &Workload, seed: u64) -> f64 {
    let guest = Guest::new(workload, seed);
    let nonzero = guest.initially_nonzero_pages();
    let zero = guest.page_count().saturating_sub(nonzero);
    (nonzero * PAGE_SIZE_BYTES + zero * ZERO_PAGE_BYTES) as f64
}

/// Evaluate `advise` and the ALMA-style rule on `workload`.
pub fn evaluate(workload: &Workload, cfg: &EvalConfig) -> Result<WorkloadEval, ConfigError> {
    cfg.policy.validate()?;
    let ram_bytes = workload.ram_mib as f64 * 1024.0 * 1024.0;
    let advise_cfg = AdviseConfig {
        // The simulated guest's bulk round, as the simulator sends it.
        bulk_bytes: bulk_wire_bytes(workload, cfg.sim.seed),
        horizon_s: cfg.horizon_s,
        max_cycle_s: cfg.max_cycle_s,
        wait_weight: cfg.wait_weight,
        ..AdviseConfig::new(
            ram_bytes,
            cfg.sim.bandwidth_bytes_per_s,
            Objective::from_config(&cfg.policy),
        )
    };
    let golden = 0.618_033_988_749_895;
    let mut trials = Vec::with_capacity(cfg.trials);
    for j in 0..cfg.trials {
        let now_s = cfg.history_s + ((j as f64 + 0.5) * golden).fract() * cfg.spread_s;
        // The profile up to the moment, and on through the longest wait.
        let profile = simulated_profile(workload, cfg.sim.seed, now_s + cfg.horizon_s);
        let (advised_wait_s, wait) = follow(&profile, now_s, &advise_cfg);
        let samples = &profile[..profile.partition_point(|s| s.t_s <= now_s + 1e-9)];
        let (rates, _) = bucket_rates(samples, 1.0);
        let alma = alma_wait_s(&rates, 1.0).min(cfg.horizon_s);
        let wait_cost = |wait_s: f64| -> Result<Option<f64>, ConfigError> {
            Ok(migration_cost_ms(workload, cfg, now_s + wait_s)?
                .map(|c| c + cfg.wait_weight * wait_s * 1000.0))
        };
        let now_cost_ms = migration_cost_ms(workload, cfg, now_s)?;
        let cost_after = |wait_s: f64| -> Result<Option<f64>, ConfigError> {
            if wait_s == 0.0 {
                Ok(now_cost_ms)
            } else {
                wait_cost(wait_s)
            }
        };
        let advised_cost_ms = cost_after(advised_wait_s)?;
        trials.push(Trial {
            now_s,
            now_cost_ms,
            advised_wait_s,
            first_wait_s: wait.first_target_s(),
            rechecks: wait.rechecks(),
            first_cost_ms: if wait.first_target_s() == advised_wait_s {
                advised_cost_ms
            } else {
                cost_after(wait.first_target_s())?
            },
            verdict: wait.first_verdict(),
            advised_cost_ms,
            alma_wait_s: alma,
            alma_cost_ms: cost_after(alma)?,
            best_wait_s: None,
            best_cost_ms: None,
        });
    }
    let cycle_s = workload.repeat.then(|| workload.cycle_seconds());
    if let Some(cycle_s) = cycle_s {
        for t in &mut trials {
            let grid = best_start(workload, cfg, t.now_s, cycle_s.min(cfg.horizon_s))?;
            // The strategies' own starts are candidates too.
            let own = [
                (0.0, t.now_cost_ms),
                (t.advised_wait_s, t.advised_cost_ms),
                (t.first_wait_s, t.first_cost_ms),
                (t.alma_wait_s, t.alma_cost_ms),
            ];
            let best = own
                .iter()
                .filter_map(|&(w, c)| c.map(|c| (w, c)))
                .chain(grid)
                .min_by(|a, b| a.1.total_cmp(&b.1));
            t.best_wait_s = best.map(|b| b.0);
            t.best_cost_ms = best.map(|b| b.1);
        }
    }
    Ok(WorkloadEval {
        workload: workload.name.clone(),
        cycle_s,
        now: CostStats::of(trials.iter().map(|t| t.now_cost_ms)),
        advised: CostStats::of(trials.iter().map(|t| t.advised_cost_ms)),
        first: CostStats::of(trials.iter().map(|t| t.first_cost_ms)),
        alma: CostStats::of(trials.iter().map(|t| t.alma_cost_ms)),
        best: cycle_s.map(|_| CostStats::of(trials.iter().map(|t| t.best_cost_ms))),
        trials,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_count_incomplete_runs_as_worst() {
        let s = CostStats::of([Some(3.0), None, Some(1.0), Some(2.0)].into_iter());
        assert_eq!(s.incomplete, 1);
        assert_eq!(s.median_ms, Some(3.0));
        assert_eq!(s.p90_ms, None);
    }

    #[test]
    fn on_a_cycle_advice_beats_starting_at_once_and_never_loses_much() {
        let w = Workload::from_toml(
            "name='c'\nram_mib=512\nrepeat=true\n[[phase]]\nkind='write'\nseconds=20\nwss_mib=200\nrate_mib_s=200\n[[phase]]\nkind='write'\nseconds=40\nwss_mib=16\nrate_mib_s=4\n",
            std::path::Path::new("c.toml"),
        )
        .unwrap();
        let cfg = EvalConfig {
            trials: 4,
            history_s: 180.0,
            spread_s: 60.0,
            sim: SimConfig {
                bandwidth_bytes_per_s: 125e6,
                time_cap_s: 300.0,
                ..SimConfig::default()
            },
            policy: PolicyConfig::default(),
            horizon_s: 120.0,
            max_cycle_s: 120.0,
            wait_weight: 0.0,
        };
        let e = evaluate(&w, &cfg).unwrap();
        let mean = |f: fn(&Trial) -> Option<f64>| {
            e.trials
                .iter()
                .map(|t| f(t).unwrap_or(f64::INFINITY))
                .sum::<f64>()
                / e.trials.len() as f64
        };
        let (now, advised) = (mean(|t| t.now_cost_ms), mean(|t| t.advised_cost_ms));
        assert!(
            advised < 0.8 * now,
            "advised {advised} now {now}: {:?}",
            e.trials
        );
        for t in &e.trials {
            let (n, a) = (t.now_cost_ms.unwrap(), t.advised_cost_ms.unwrap());
            assert!(a <= 1.05 * n, "{t:?}");
            // The best start in hindsight is a bound on every rule's.
            let best = t.best_cost_ms.unwrap();
            assert!(best <= a && best <= n, "{t:?}");
            assert!(t.best_wait_s.unwrap() < 60.0, "{t:?}");
        }
        assert!(e.best.is_some());
    }
}

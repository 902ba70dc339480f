//! When a live migration starts, once the workload has warmed up: at once,
//! where `kairos advise` says (profile the guest, then wait, re-advising
//! as the profile grows: `kairos_eval::advise::wait`), or where the
//! ALMA-style rule says (profile, then wait for the next low phase of the
//! cycle its spectrum shows). A fixed delay may come first, so a campaign
//! can put the moment it asks at random places in a guest's cycle.

use std::time::Duration;

use anyhow::Result;
use kairos_eval::advise::alma::alma_wait_s;
use kairos_eval::advise::profile::bucket_rates;
use kairos_eval::advise::wait::{AdvisedWait, WaitStep};
use kairos_eval::advise::{AdviseConfig, Verdict};
use serde::{Deserialize, Serialize};

use super::dirty_rate::{DirtyRateMode, Profiler};
use super::interrupt;
use crate::driver::Monitor;

/// When a migration starts once the workload has warmed up (and any
/// delay has passed).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum StartPolicy {
    /// At once.
    Now,
    /// Where `kairos advise` says: profile the guest for `profile_s`, then
    /// wait as advised — the profile going on and the advice given again
    /// every few seconds — at most `max_wait_s`.
    Advised {
        /// Seconds of profile before advising.
        profile_s: f64,
        /// The longest wait accepted, s.
        max_wait_s: f64,
    },
    /// Where the ALMA-style rule says: profile for `profile_s`, then wait
    /// for the next low phase of the cycle in the rate's spectrum (none:
    /// at once), at most `max_wait_s`.
    Alma {
        /// Seconds of profile before deciding.
        profile_s: f64,
        /// The longest wait accepted, s.
        max_wait_s: f64,
    },
}

impl StartPolicy {
    /// Its rule.
    pub fn rule(&self) -> StartRule {
        match self {
            StartPolicy::Now => StartRule::Now,
            StartPolicy::Advised { .. } => StartRule::Advised,
            StartPolicy::Alma { .. } => StartRule::Alma,
        }
    }
}

/// The rules a start can follow (one table of names: `kairos run
/// --start` takes the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum StartRule {
    /// At once.
    Now,
    /// Where `kairos advise` says.
    Advised,
    /// Where the ALMA-style rule says.
    Alma,
}

impl StartRule {
    /// The name used in output and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            StartRule::Now => "now",
            StartRule::Advised => "advised",
            StartRule::Alma => "alma",
        }
    }
}

/// How a run's start was decided, as recorded with the run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StartRecord {
    /// The rule.
    pub rule: StartRule,
    /// Seconds waited before anything else (after the warm-up).
    pub delay_s: f64,
    /// Seconds of profile taken before deciding (0: none).
    pub profile_s: f64,
    /// Seconds waited on the rule's word after the profile.
    pub wait_s: f64,
    /// The first advice's wait, s (`advised`; otherwise `wait_s`).
    pub first_wait_s: f64,
    /// Advices given while waiting, after the first.
    pub rechecks: usize,
    /// The first advice's verdict (`advised`).
    pub verdict: Option<Verdict>,
    /// ω the wait is weighed by in the run's cost.
    pub wait_weight: f64,
}

/// Wait `delay_s`, then as `policy` says; what was done. `advise_cfg`
/// describes the guest, link and objective, and holds ω (its horizon is
/// the policy's longest wait).
pub fn wait_for_start(
    policy: &StartPolicy,
    delay_s: f64,
    advise_cfg: &AdviseConfig,
    label: &str,
    qmp: &mut dyn Monitor,
) -> Result<StartRecord> {
    if delay_s > 0.0 {
        eprintln!("[{label}] waiting {delay_s:.0} s before the start rule");
        interrupt::sleep(Duration::from_secs_f64(delay_s))?;
    }
    let mut record = StartRecord {
        rule: policy.rule(),
        delay_s,
        profile_s: 0.0,
        wait_s: 0.0,
        first_wait_s: 0.0,
        rechecks: 0,
        verdict: None,
        wait_weight: advise_cfg.wait_weight,
    };
    match *policy {
        StartPolicy::Now => {}
        StartPolicy::Advised {
            profile_s,
            max_wait_s,
        } => {
            let mut profiler = profile_for(qmp, profile_s, label)?;
            let cfg = AdviseConfig {
                horizon_s: max_wait_s,
                ..*advise_cfg
            };
            let begun_s = profiler.elapsed_s();
            let (mut wait, advice) = AdvisedWait::begin(profiler.samples(), &cfg);
            eprintln!(
                "[{label}] advice: {} — start in {:.0} s (re-advised every {:.0} s while waiting)",
                advice.verdict.name(),
                wait.target_s(),
                kairos_eval::advise::wait::RECHECK_S
            );
            loop {
                let waited_s = profiler.elapsed_s() - begun_s;
                let (step, new) = wait.poll(waited_s, profiler.samples());
                if let Some(a) = new {
                    eprintln!(
                        "[{label}] {waited_s:.0} s waited; advice: {} — start at {:.0} s",
                        a.verdict.name(),
                        wait.target_s()
                    );
                }
                if step == WaitStep::Start {
                    break;
                }
                let left_s = wait.target_s() - waited_s;
                if left_s < profiler.next_window().as_secs_f64() {
                    // The start comes before the next window ends.
                    interrupt::sleep(Duration::from_secs_f64(left_s.max(0.0)))?;
                    break;
                }
                profiler.sample(qmp)?;
            }
            record.profile_s = begun_s;
            record.wait_s = profiler.elapsed_s() - begun_s;
            record.first_wait_s = wait.first_target_s();
            record.rechecks = wait.rechecks();
            record.verdict = Some(wait.first_verdict());
        }
        StartPolicy::Alma {
            profile_s,
            max_wait_s,
        } => {
            let profiler = profile_for(qmp, profile_s, label)?;
            let (rates, _) = bucket_rates(profiler.samples(), 1.0);
            let wait_s = alma_wait_s(&rates, 1.0).clamp(0.0, max_wait_s);
            eprintln!("[{label}] ALMA-style rule: start in {wait_s:.0} s");
            interrupt::sleep(Duration::from_secs_f64(wait_s))?;
            record.profile_s = profiler.elapsed_s();
            record.wait_s = wait_s;
            record.first_wait_s = wait_s;
        }
    }
    Ok(record)
}

/// Profile the guest for `profile_s` seconds.
fn profile_for(qmp: &mut dyn Monitor, profile_s: f64, label: &str) -> Result<Profiler> {
    eprintln!("[{label}] profiling the guest for {profile_s:.0} s");
    let mut profiler = Profiler::new(DirtyRateMode::PageSampling);
    while profiler.elapsed_s() + profiler.next_window().as_secs_f64() <= profile_s {
        profiler.sample(qmp)?;
    }
    Ok(profiler)
}

//! Acting on the advice: waiting for the advised start while the profile
//! goes on, and advising again every [`RECHECK_S`] seconds from the grown
//! profile, because the guest may change while it is waited on (a cycle
//! that stops, a phase that comes early). Each new advice replaces the
//! plan: its start, counted from the moment it was given, is the new
//! target; a new advice to start now starts the migration. The whole wait
//! never exceeds the first advice's horizon (`--max-wait-s`). The same
//! loop runs live (`kairos run --start advised`) and in the simulator's
//! judgement of the advice ([`super::evaluate`]).

use super::profile::ProfileSample;
use super::{advise, Advice, AdviseConfig, Verdict};

/// Seconds between two advices while waiting: often enough that a cycle's
/// phase cannot drift far between checks, seldom enough that the checks
/// (a permutation test and a forecast each) cost little.
pub const RECHECK_S: f64 = 5.0;

/// What to do at a poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitStep {
    /// Start the migration now.
    Start,
    /// Keep waiting (and profiling).
    Wait,
}

/// A wait on the advice, from the moment it was first given.
#[derive(Debug, Clone)]
pub struct AdvisedWait {
    /// The advice's settings; `horizon_s` is the longest wait, s.
    cfg: AdviseConfig,
    /// When to start, s after the first advice.
    target_s: f64,
    /// The first advice's start, s.
    first_target_s: f64,
    /// When the plan was last advised, s after the first advice.
    checked_s: f64,
    /// The first advice's verdict.
    first_verdict: Verdict,
    /// Advices given after the first.
    rechecks: usize,
    /// Of those, the ones that moved the start by more than a second.
    moved: usize,
}

impl AdvisedWait {
    /// Advise from `samples` (the profile so far, the last one "now");
    /// `cfg.horizon_s` bounds the whole wait. Returns the wait and the
    /// first advice.
    pub fn begin(samples: &[ProfileSample], cfg: &AdviseConfig) -> (Self, Advice) {
        let advice = advise(samples, cfg);
        let target_s = advice.start_in_s.clamp(0.0, cfg.horizon_s.max(0.0));
        let wait = Self {
            cfg: *cfg,
            target_s,
            first_target_s: target_s,
            checked_s: 0.0,
            first_verdict: advice.verdict,
            rechecks: 0,
            moved: 0,
        };
        (wait, advice)
    }

    /// `waited_s` seconds after the first advice, with the profile grown
    /// to `samples`: start now, or keep waiting. Advises again when
    /// [`RECHECK_S`] have passed since the last advice and the target is
    /// not already due; the new advice returns with the step.
    pub fn poll(&mut self, waited_s: f64, samples: &[ProfileSample]) -> (WaitStep, Option<Advice>) {
        let longest_s = self.cfg.horizon_s.max(0.0);
        if waited_s >= self.target_s || waited_s >= longest_s {
            return (WaitStep::Start, None);
        }
        if waited_s - self.checked_s < RECHECK_S {
            return (WaitStep::Wait, None);
        }
        let cfg = AdviseConfig {
            horizon_s: (longest_s - waited_s).max(0.0),
            ..self.cfg
        };
        let advice = advise(samples, &cfg);
        let target_s = (waited_s + advice.start_in_s).min(longest_s);
        self.rechecks += 1;
        if (target_s - self.target_s).abs() > 1.0 {
            self.moved += 1;
        }
        self.target_s = target_s;
        self.checked_s = waited_s;
        let step = if waited_s >= target_s {
            WaitStep::Start
        } else {
            WaitStep::Wait
        };
        (step, Some(advice))
    }

    /// When the migration is to start, s after the first advice.
    pub fn target_s(&self) -> f64 {
        self.target_s
    }

    /// The first advice's start, s.
    pub fn first_target_s(&self) -> f64 {
        self.first_target_s
    }

    /// The first advice's verdict.
    pub fn first_verdict(&self) -> Verdict {
        self.first_verdict
    }

    /// Advices given after the first.
    pub fn rechecks(&self) -> usize {
        self.rechecks
    }

    /// Re-advices that moved the start by more than a second.
    pub fn moved(&self) -> usize {
        self.moved
    }
}

/// Follow the advice on a profile known in advance (the simulator's):
/// `profile` runs from the start of profiling to at least `now_s` +
/// `cfg.horizon_s`; the first advice is given at `now_s` and the profile
/// is then read a window at a time, as it would arrive live. Returns the
/// wait, s, and the wait's record.
pub fn follow(profile: &[ProfileSample], now_s: f64, cfg: &AdviseConfig) -> (f64, AdvisedWait) {
    let upto = |t_s: f64| profile.partition_point(|s| s.t_s <= t_s + 1e-9);
    let (mut wait, _) = AdvisedWait::begin(&profile[..upto(now_s)], cfg);
    let mut seen = upto(now_s);
    loop {
        let waited_s = profile
            .get(seen.saturating_sub(1))
            .map_or(0.0, |s| (s.t_s - now_s).max(0.0));
        if let (WaitStep::Start, _) = wait.poll(waited_s, &profile[..seen]) {
            return (waited_s.min(wait.target_s().max(0.0)), wait);
        }
        if seen >= profile.len() {
            // The profile ends: start at the target.
            return (wait.target_s(), wait);
        }
        seen += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{objective, samples};
    use super::*;

    fn config() -> AdviseConfig {
        AdviseConfig {
            horizon_s: 120.0,
            wait_weight: 0.0,
            ..AdviseConfig::new(1e9, 125e6, objective())
        }
    }

    /// 60 s cycle: 20 s at 250 MB/s, 40 s at 2 MB/s, the burst at the
    /// start of each minute.
    fn cycle(t: f64) -> f64 {
        if (t - 1.0) % 60.0 < 20.0 {
            250e6
        } else {
            2e6
        }
    }

    #[test]
    fn a_steady_cycle_is_waited_out_as_first_advised() {
        let profile = samples(cycle, 480);
        let (once, _) = AdvisedWait::begin(&profile[..240], &config());
        let (waited_s, wait) = follow(&profile, 240.0, &config());
        assert_eq!(once.first_verdict(), Verdict::Wait);
        assert!(wait.rechecks() > 0);
        // The plan holds within a few seconds: the guest did not change.
        assert!(
            (waited_s - once.target_s()).abs() <= RECHECK_S,
            "{waited_s} vs {}",
            once.target_s()
        );
    }

    #[test]
    fn a_cycle_that_stops_ends_the_wait() {
        // The cycle runs until 240 s, then the guest goes quiet for good:
        // there is no trough to wait for any more.
        let profile = samples(|t| if t <= 240.0 { cycle(t) } else { 2e6 }, 480);
        let (once, _) = AdvisedWait::begin(&profile[..240], &config());
        let (waited_s, wait) = follow(&profile, 240.0, &config());
        assert_eq!(once.first_verdict(), Verdict::Wait);
        // A quiet guest is cheap at once: the re-advice starts it before
        // the first plan would have.
        assert!(
            waited_s <= once.target_s(),
            "{waited_s} {}",
            once.target_s()
        );
        assert!(wait.rechecks() >= 1);
    }

    #[test]
    fn the_wait_never_exceeds_the_horizon() {
        let cfg = AdviseConfig {
            horizon_s: 7.0,
            ..config()
        };
        let profile = samples(cycle, 480);
        let (waited_s, _) = follow(&profile, 240.0, &cfg);
        assert!(waited_s <= 7.0, "{waited_s}");
    }

    #[test]
    fn start_now_needs_no_poll_to_wait() {
        let profile = samples(|_| 50e6, 300);
        let (mut wait, advice) = AdvisedWait::begin(&profile[..240], &config());
        assert_eq!(advice.start_in_s, 0.0);
        assert_eq!(wait.poll(0.0, &profile[..240]).0, WaitStep::Start);
    }
}

//! Checks every observation before a policy sees it; garbage never reaches
//! the forecasters, and the caller gets QEMU's own rule instead.

use thiserror::Error;

use crate::decision::{Action, Decision, Reason};
use crate::observation::RoundObservation;

/// Largest page size accepted (1 GiB huge pages).
const MAX_PAGE_SIZE_BYTES: u64 = 1 << 30;
/// Pending may exceed RAM by device state; more than this many times RAM is
/// not a real migration.
const MAX_PENDING_RAM_MULTIPLE: u64 = 2;

/// Why an observation was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum BadInput {
    /// Bandwidth is NaN, infinite, zero or negative.
    #[error("bandwidth is not a positive finite number")]
    Bandwidth,
    /// Page size is zero, not a power of two, or above 1 GiB.
    #[error("page size is not a power of two in [1, 1 GiB]")]
    PageSize,
    /// Guest RAM size is zero or smaller than one page.
    #[error("guest RAM size is smaller than one page")]
    RamSize,
    /// Pending bytes exceed twice the guest RAM.
    #[error("pending bytes exceed twice the guest RAM")]
    Pending,
    /// Dirtied pages exceed twice the guest's page count.
    #[error("dirtied pages exceed twice the guest's page count")]
    Dirtied,
    /// Time went backwards since the last accepted round.
    #[error("time went backwards")]
    TimeBackwards,
    /// Bytes sent decreased since the last accepted round (counter wrapped).
    #[error("sent-bytes counter went backwards")]
    SentBackwards,
    /// Round number did not increase.
    #[error("round number did not increase")]
    RoundNotIncreasing,
}

/// Remembers the last accepted observation to check monotonic counters.
#[derive(Debug, Clone, Copy, Default)]
pub struct InputGuard {
    last: Option<RoundObservation>,
}

impl InputGuard {
    /// Accept or reject `obs`. Accepted observations become the reference
    /// for the next check; rejected ones leave no trace.
    pub fn check(&mut self, obs: &RoundObservation) -> Result<(), BadInput> {
        validate_alone(obs)?;
        if let Some(last) = &self.last {
            if obs.elapsed_ms < last.elapsed_ms {
                return Err(BadInput::TimeBackwards);
            }
            if obs.sent_bytes < last.sent_bytes {
                return Err(BadInput::SentBackwards);
            }
            if obs.round <= last.round {
                return Err(BadInput::RoundNotIncreasing);
            }
        }
        self.last = Some(*obs);
        Ok(())
    }

    /// The last accepted observation.
    pub fn last(&self) -> Option<&RoundObservation> {
        self.last.as_ref()
    }

    /// Forget the history (migration restarted).
    pub fn reset(&mut self) {
        self.last = None;
    }
}

fn validate_alone(obs: &RoundObservation) -> Result<(), BadInput> {
    if !(obs.bandwidth_bytes_per_s.is_finite() && obs.bandwidth_bytes_per_s > 0.0) {
        return Err(BadInput::Bandwidth);
    }
    if obs.page_size_bytes == 0
        || !obs.page_size_bytes.is_power_of_two()
        || obs.page_size_bytes > MAX_PAGE_SIZE_BYTES
    {
        return Err(BadInput::PageSize);
    }
    if obs.ram_bytes < obs.page_size_bytes {
        return Err(BadInput::RamSize);
    }
    if obs.pending_bytes > obs.ram_bytes.saturating_mul(MAX_PENDING_RAM_MULTIPLE) {
        return Err(BadInput::Pending);
    }
    let ram_pages = (obs.ram_bytes / obs.page_size_bytes).saturating_add(1);
    if obs.dirtied_pages > ram_pages.saturating_mul(MAX_PENDING_RAM_MULTIPLE) {
        return Err(BadInput::Dirtied);
    }
    Ok(())
}

/// QEMU's own rule applied to `obs` where it can be read, flagged as a
/// fallback: stop when pending < bandwidth × limit, otherwise continue.
pub fn fallback_decision(obs: &RoundObservation, downtime_limit_ms: f64) -> Decision {
    let bandwidth_ok = obs.bandwidth_bytes_per_s.is_finite() && obs.bandwidth_bytes_per_s > 0.0;
    let stop = bandwidth_ok && (obs.pending_bytes as f64) < obs.threshold_bytes(downtime_limit_ms);
    let action = if stop {
        Action::StopAndCopy
    } else {
        Action::Continue
    };
    Decision::new(action, Reason::BadInputFallback, downtime_limit_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(round: u64, elapsed_ms: u64, sent_bytes: u64) -> RoundObservation {
        RoundObservation {
            round,
            elapsed_ms,
            dirtied_pages: 10,
            pending_bytes: 40960,
            sent_bytes,
            bandwidth_bytes_per_s: 1e8,
            page_size_bytes: 4096,
            ram_bytes: 1 << 30,
        }
    }

    #[test]
    fn rejects_each_kind_of_garbage() {
        let mut g = InputGuard::default();
        g.check(&obs(1, 100, 1000)).unwrap();
        assert_eq!(g.check(&obs(2, 50, 2000)), Err(BadInput::TimeBackwards));
        assert_eq!(g.check(&obs(2, 150, 10)), Err(BadInput::SentBackwards));
        assert_eq!(
            g.check(&obs(1, 150, 2000)),
            Err(BadInput::RoundNotIncreasing)
        );
        let mut nan = obs(3, 200, 3000);
        nan.bandwidth_bytes_per_s = f64::NAN;
        assert_eq!(g.check(&nan), Err(BadInput::Bandwidth));
        let mut page = obs(3, 200, 3000);
        page.page_size_bytes = 3000;
        assert_eq!(g.check(&page), Err(BadInput::PageSize));
        // Found by the fuzzer: less RAM than one page.
        let mut tiny = obs(3, 200, 3000);
        tiny.ram_bytes = 1126;
        assert_eq!(g.check(&tiny), Err(BadInput::RamSize));
        // A rejected round leaves no trace: the next good one is accepted.
        g.check(&obs(2, 150, 2000)).unwrap();
    }

    #[test]
    fn extreme_sizes_are_judged_without_overflow() {
        // Found by the fuzzer: all of memory in one-byte pages.
        let mut huge = obs(1, 100, 1000);
        huge.ram_bytes = u64::MAX;
        huge.page_size_bytes = 1;
        huge.dirtied_pages = u64::MAX;
        huge.pending_bytes = u64::MAX;
        assert_eq!(InputGuard::default().check(&huge), Ok(()));
    }

    #[test]
    fn fallback_applies_qemus_rule() {
        let o = obs(1, 0, 0);
        assert!(fallback_decision(&o, 300.0).stops());
        let mut big = o;
        big.pending_bytes = 1 << 29;
        assert!(!fallback_decision(&big, 300.0).stops());
        big.bandwidth_bytes_per_s = -1.0;
        assert_eq!(
            fallback_decision(&big, 300.0).reason,
            Reason::BadInputFallback
        );
    }
}

//! Xen's classic pre-copy termination, as in libxc's `xc_domain_save()`
//! (Xen 3.x–4.5, before migration v2): the last iteration starts when
//! `iter >= max_iters`, or fewer than 50 pages were dirtied, or more than
//! `max_factor` × RAM was sent. Defaults `DEF_MAX_ITERS = 29` and
//! `DEF_MAX_FACTOR = 3`. Xen ignores the downtime limit entirely.

use super::{PolicyKind, RoundRule};
use crate::config::PolicyConfig;
use crate::decision::{Action, Decision, Reason};
use crate::observation::RoundObservation;

/// libxc `DEF_MAX_ITERS`.
pub const XEN_MAX_ITERATIONS: u64 = 29;
/// libxc `DEF_MAX_FACTOR`: stop once this many times RAM was sent.
pub const XEN_MAX_SENT_RAM_FACTOR: f64 = 3.0;
/// Stop when fewer pages than this are left to send.
pub const XEN_MIN_DIRTY_PAGES: u64 = 50;

/// Xen's round cap, small remainder and sent-bytes cap.
#[derive(Debug, Clone, Copy, Default)]
pub struct XenRule;

impl RoundRule for XenRule {
    const KIND: PolicyKind = PolicyKind::Xen;

    fn decide(&mut self, obs: &RoundObservation, cfg: &PolicyConfig) -> Decision {
        // Round 1 is the sync before the first full pass, so round r follows
        // r - 1 completed iterations.
        let iterations_done = obs.round.saturating_sub(1);
        let pending_pages = obs.pending_bytes / obs.page_size_bytes.max(1);
        let (action, reason) = if pending_pages < XEN_MIN_DIRTY_PAGES {
            (Action::StopAndCopy, Reason::BelowThreshold)
        } else if iterations_done >= XEN_MAX_ITERATIONS {
            (Action::StopAndCopy, Reason::IterationCap)
        } else if obs.sent_bytes as f64 > XEN_MAX_SENT_RAM_FACTOR * obs.ram_bytes as f64 {
            (Action::StopAndCopy, Reason::SentBytesCap)
        } else {
            (Action::Continue, Reason::AboveThreshold)
        };
        Decision::new(action, reason, cfg.downtime_limit_ms)
    }

    fn reset(&mut self) {}
}

//! Planning an evacuation from what each guest's profile says: longest
//! first, as many at once as the link can feed and each guest can still
//! converge at.
//!
//! The objective: the makespan plus λ·Σ downtime above the limit, with
//! every guest within its maximum. Two facts of the shared link set the
//! rule. Bytes are conserved: the link sends at most its bandwidth, so
//! running more migrations at once than it can feed at their cap only
//! splits it, and every split share lets each guest dirty more of what
//! it must send again. And a guest converges at a share b only if its
//! pages are dirtied slower than they are sent (dirty rate r < b; each
//! round then leaves r/b of the one before), or if its whole writable
//! working set fits the maximum downtime at b. So:
//!
//! 1. **How many at once**: the fewest migrations that fill the link
//!    (⌈link / cap⌉: one when a single migration can fill it), and a guest
//!    joins the running ones only if it converges at the share it would
//!    get (unless it converges at no share it can get: then its own
//!    convergence cannot be helped), and every running one that converges
//!    now still does at that share.
//! 2. **Which first**: the longest predicted migration first (LPT, Graham's
//!    rule for makespan on parallel machines: within 4/3 of the optimum
//!    for identical machines), its prediction the pre-copy series at its
//!    share, T = bulk / (b − r) (each round re-sends r/b of the last).
//!    When the next in line cannot join, a later one that can, does
//!    (backfilling); a guest that converges at no share runs alone.
//!
//! 3. **When**, with an [`Outlook`] (each waiting guest's advice, from its
//!    profile so far, at the share it would get): among those that may
//!    join, the guest that loses least by going now goes first — the one
//!    the advice expects to gain least by waiting (ties, most often "start
//!    now" for all, keep the longest-first order). While others use the
//!    link a wait costs the evacuation nothing, so a guest whose trough is
//!    coming is left for later, and asked again at the next event.
//!
//! Re-planned at every event (a migration's end): the rule is applied to
//! whoever is still waiting.

use super::sim::Dispatcher;
use crate::advise::profile::{bucket_rates, working_set_bytes, ProfileSample};

/// Seconds of profile the dirty rate is averaged over: the next minute is
/// forecast as the last one.
const RATE_WINDOW_S: usize = 60;

/// What the plan knows of a guest: what its profile says.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GuestForecast {
    /// Bytes its bulk round sends (nonzero memory; a zero page is a
    /// header).
    pub bulk_bytes: f64,
    /// The rate it dirties distinct pages at, bytes/s.
    pub dirty_bytes_per_s: f64,
    /// Its writable working set, bytes.
    pub wws_bytes: f64,
}

impl GuestForecast {
    /// What a profile says (`kairos advise`'s samples: 1 s windows, every
    /// 30th 5 s long): the mean rate of the last minute of 1 s windows,
    /// the working set the long windows imply; `bulk_bytes` as known (the
    /// guest's nonzero memory, or its RAM).
    pub fn from_profile(samples: &[ProfileSample], ram_bytes: f64, bulk_bytes: f64) -> Self {
        let (per_s, _) = bucket_rates(samples, 1.0);
        let recent = &per_s[per_s.len().saturating_sub(RATE_WINDOW_S)..];
        let rate = if recent.is_empty() {
            0.0
        } else {
            recent.iter().sum::<f64>() / recent.len() as f64
        };
        Self {
            bulk_bytes,
            dirty_bytes_per_s: rate,
            wws_bytes: working_set_bytes(samples, ram_bytes),
        }
    }

    /// Converges at a share of `share_bytes_per_s`: it dirties slower
    /// than it is sent, or its whole working set fits `max_downtime_s` at
    /// that share.
    pub fn converges_at(&self, share_bytes_per_s: f64, max_downtime_s: f64) -> bool {
        self.dirty_bytes_per_s < share_bytes_per_s
            || self.wws_bytes <= share_bytes_per_s * max_downtime_s
    }

    /// The predicted migration time at a share, s: the bulk at the share
    /// net of what is dirtied meanwhile (the geometric series of rounds);
    /// the bulk alone plus its working set once per round's worth when it
    /// does not converge (a working set that fits the maximum is sent
    /// while it stops).
    pub fn time_at_s(&self, share_bytes_per_s: f64) -> f64 {
        let net = share_bytes_per_s - self.dirty_bytes_per_s;
        if net > 0.0 {
            self.bulk_bytes / net
        } else {
            (self.bulk_bytes + self.wws_bytes) / share_bytes_per_s.max(1.0)
        }
    }
}

/// The link as the plan sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlanLink {
    /// The link's bandwidth, bytes/s.
    pub link_bytes_per_s: f64,
    /// The most one migration sends at, bytes/s (None: the link's).
    pub per_migration_bytes_per_s: Option<f64>,
    /// The maximum downtime every guest accepts, s.
    pub max_downtime_s: f64,
}

impl PlanLink {
    /// Each sender's share when `senders` send.
    fn share(&self, senders: usize) -> f64 {
        let fair = self.link_bytes_per_s / senders.max(1) as f64;
        self.per_migration_bytes_per_s
            .map_or(fair, |cap| fair.min(cap))
    }

    /// The fewest migrations that fill the link.
    fn filling(&self) -> usize {
        self.per_migration_bytes_per_s.map_or(1, |cap| {
            (self.link_bytes_per_s / cap).ceil().max(1.0) as usize
        })
    }
}

/// What waiting would gain each guest, as its forecast says.
pub trait Outlook {
    /// The ms `guest`'s migration is expected to save by starting later
    /// rather than at `now_s` (s into the evacuation) at a share of
    /// `share_bytes_per_s`; 0 when waiting is not advised.
    fn gain_of_waiting_ms(&mut self, guest: usize, now_s: f64, share_bytes_per_s: f64) -> f64;
}

/// The planner, as the simulator (and the live evacuation) asks it.
pub struct Planner {
    forecasts: Vec<GuestForecast>,
    link: PlanLink,
    /// The guests, longest predicted migration alone first.
    order: Vec<usize>,
    /// Each guest's advice, when known.
    outlook: Option<Box<dyn Outlook>>,
}

impl Planner {
    /// A plan for guests with these forecasts over `link`.
    pub fn new(forecasts: Vec<GuestForecast>, link: PlanLink) -> Self {
        let solo = link.share(1);
        let mut order: Vec<usize> = (0..forecasts.len()).collect();
        order.sort_by(|&a, &b| {
            forecasts[b]
                .time_at_s(solo)
                .total_cmp(&forecasts[a].time_at_s(solo))
                .then(a.cmp(&b))
        });
        Self {
            forecasts,
            link,
            order,
            outlook: None,
        }
    }

    /// The same, asking `outlook` when to start each guest.
    pub fn with_outlook(mut self, outlook: Box<dyn Outlook>) -> Self {
        self.outlook = Some(outlook);
        self
    }

    /// The guests in the order the plan starts them when it can.
    pub fn order(&self) -> &[usize] {
        &self.order
    }

    /// Whether `guest` may join `running`: it converges at the share it
    /// would get, or at none it could get (alone); and every running guest
    /// converging at their share now still converges at the new one.
    fn may_join(&self, running: &[usize], guest: usize) -> bool {
        let max_s = self.link.max_downtime_s;
        let now = self.link.share(running.len());
        let then = self.link.share(running.len() + 1);
        let converges = |g: usize, share: f64| {
            self.forecasts
                .get(g)
                .is_none_or(|f| f.converges_at(share, max_s))
        };
        let itself = converges(guest, then) || !converges(guest, self.link.share(1));
        itself
            && running
                .iter()
                .all(|&r| !converges(r, now) || converges(r, then))
    }
}

impl Dispatcher for Planner {
    fn start_now(&mut self, now_s: f64, running: &[usize], waiting: &[usize]) -> Vec<usize> {
        let mut candidates: Vec<usize> = self
            .order
            .iter()
            .copied()
            .filter(|g| waiting.contains(g))
            .collect();
        if let Some(outlook) = self.outlook.as_mut() {
            // Least to gain by waiting first; the sort is stable, so ties
            // keep the longest-first order.
            let share = self.link.share(running.len() + 1);
            let gains: Vec<(usize, f64)> = candidates
                .iter()
                .map(|&g| (g, outlook.gain_of_waiting_ms(g, now_s, share)))
                .collect();
            let gain_of = |g: usize| gains.iter().find(|x| x.0 == g).map_or(0.0, |x| x.1);
            candidates.sort_by(|&a, &b| gain_of(a).total_cmp(&gain_of(b)));
        }
        let mut together: Vec<usize> = running.to_vec();
        let mut started = Vec::new();
        for g in candidates {
            if together.is_empty() {
                // Nothing runs: it goes, converging or not.
                together.push(g);
                started.push(g);
                continue;
            }
            if together.len() >= self.link.filling() {
                break;
            }
            if self.may_join(&together, g) {
                together.push(g);
                started.push(g);
            }
        }
        started
    }

    fn wake_after(&self, _now_s: f64) -> Option<f64> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: f64 = 1048576.0;

    fn guest(bulk_mib: f64, rate_mib_s: f64, wws_mib: f64) -> GuestForecast {
        GuestForecast {
            bulk_bytes: bulk_mib * MIB,
            dirty_bytes_per_s: rate_mib_s * MIB,
            wws_bytes: wws_mib * MIB,
        }
    }

    fn link(cap_mib_s: Option<f64>) -> PlanLink {
        PlanLink {
            link_bytes_per_s: 100.0 * MIB,
            per_migration_bytes_per_s: cap_mib_s.map(|c| c * MIB),
            max_downtime_s: 1.0,
        }
    }

    #[test]
    fn the_longest_goes_first() {
        let p = Planner::new(
            vec![
                guest(100.0, 0.0, 0.0),
                guest(900.0, 0.0, 0.0),
                guest(400.0, 50.0, 100.0),
            ],
            link(None),
        );
        // 900/100 = 9 s; 400/(100 − 50) = 8 s; 100/100 = 1 s.
        assert_eq!(p.order(), &[1, 2, 0]);
    }

    #[test]
    fn one_at_a_time_when_one_fills_the_link() {
        let mut p = Planner::new(vec![guest(100.0, 1.0, 10.0); 4], link(None));
        assert_eq!(p.start_now(0.0, &[], &[0, 1, 2, 3]).len(), 1);
        assert!(p.start_now(1.0, &[0], &[1, 2, 3]).is_empty());
    }

    #[test]
    fn as_many_as_fill_the_link() {
        // Cap 25: four fill the link at 25 each.
        let mut p = Planner::new(vec![guest(100.0, 1.0, 10.0); 6], link(Some(25.0)));
        assert_eq!(p.start_now(0.0, &[], &[0, 1, 2, 3, 4, 5]).len(), 4);
        // A guest that converges at no share it can get (40 MiB/s over
        // 200 MiB, capped at 25) costs the others nothing: the cap, not
        // the link, is every share.
        let hot = guest(500.0, 40.0, 200.0);
        assert!(!hot.converges_at(25.0 * MIB, 1.0));
        let mut p = Planner::new(
            vec![hot, hot, hot, guest(100.0, 1.0, 10.0)],
            link(Some(25.0)),
        );
        assert_eq!(p.start_now(0.0, &[], &[0, 1, 2, 3]).len(), 4);
    }

    #[test]
    fn a_guest_that_cannot_join_lets_a_later_one_in() {
        // Cap 45: three fill the link, at 33 each. Two easy guests run; the
        // next in line dirties 40 MiB/s (it converges at 45, not at 33), a
        // small one after it converges anywhere.
        let easy = guest(100.0, 0.0, 0.0);
        let hot = guest(800.0, 40.0, 400.0);
        let small = guest(50.0, 0.0, 0.0);
        let mut p = Planner::new(vec![easy, easy, hot, small], link(Some(45.0)));
        assert_eq!(p.order()[0], 2, "{:?}", p.order());
        assert_eq!(p.start_now(0.0, &[0, 1], &[2, 3]), vec![3]);
        // With one easy guest running, the hot one joins (45 each), and
        // then the small one may not: at 33 each the hot one would stop
        // converging.
        assert_eq!(p.start_now(0.0, &[0], &[2, 3]), vec![2]);
    }
}

//! Planning an evacuation from what each guest's profile says: as many
//! at once as the link can feed and each guest can still converge at,
//! each guest at its best moment while the others keep the link busy.
//!
//! The objective: the makespan plus λ·Σ downtime above the limit, with
//! every guest within its maximum. Three facts of the shared link set the
//! rule. Bytes are conserved: the link sends at most its bandwidth, so
//! running more migrations at once than it can feed at their cap only
//! splits it, and every split share lets each guest dirty more of what it
//! must send again. A guest converges at a share b only if its pages are
//! dirtied slower than they are sent (rate r < b; each round then leaves
//! r/b of the one before, T = bulk / (b − r) in all), or if its whole
//! writable working set fits the downtime its stop waits for at b. And
//! while other migrations fill the link, a guest that waits costs the
//! evacuation nothing: one at a time, the makespan is the sum of the
//! migrations' times, each at the moment it runs. So:
//!
//! 1. **How many at once**: the fewest migrations that fill the link
//!    (⌈link / cap⌉: one when a single migration can fill it), and a guest
//!    joins the running ones only if it converges at the share it would
//!    get (unless it converges at no share it can get: then its own
//!    convergence cannot be helped), and every running one that converges
//!    now still does at that share.
//! 2. **Which first**: the guest that loses most by waiting — whose
//!    predicted time now is lowest against its expected time at a later
//!    moment, the mean over the regimes its profile shows (the rate of
//!    each 5 s stretch, by decile; a regime in which it cannot converge
//!    counts as the time cap). A guest in a burst goes after one in its
//!    calm; a steady guest loses nothing either way, and among equals the
//!    longest goes first (LPT, Graham's rule for makespan on parallel
//!    machines). When the next in line cannot join, a later one that can,
//!    does (backfilling).
//! 3. **Which later**: a guest that cannot converge at its share now goes
//!    after every guest that can (started now, it would hold its share
//!    until its burst ends) — unless the link holds more than one
//!    migration and its expected time once it has waited for a regime it
//!    converges in is longer than all the others have left: then it is
//!    the evacuation's critical path and goes now, beside them (LPT's
//!    reason). A guest that converges in none of the regimes
//!    its profile shows, even alone on the link, is predicted to run to
//!    the time cap whenever it goes and at whatever share: such guests
//!    are attempted last and all at once (as soon as the running ones
//!    still converge beside them), so their time caps overlap instead of
//!    adding up — one at a time, k of them would cost k time caps.
//! 4. **When**: with an [`Outlook`], each waiting guest's forecast is read
//!    again at every event from its profile, taken on while it waits (a
//!    deferred guest that has calmed down is seen to); if its advice is
//!    asked, within each group the guest the advice expects to gain least
//!    by waiting goes first.
//!
//! Re-planned at every event (a migration's end): the rule is applied to
//! whoever is still waiting.
//!
//! Behind a rack's shared uplink a host's migrations get less than its
//! link while other hosts drain ([`Dispatcher::offer_bandwidth`]): the
//! shares of steps 1-3 are then of what the host is offered now, but a
//! guest counts as converging in no regime only if it does not at the
//! host's whole link, which it gets once the others are done.

use super::sim::{fair_share, Dispatcher};
use crate::advise::profile::{
    bucket_rates, dirtied_in_window_bytes, working_set_bytes, ProfileSample,
};

/// Seconds of profile a rate is averaged over: the recent rate is the
/// mean of the last few seconds, and each such stretch is a regime.
const RECENT_S: usize = 5;

/// The most migrations the plan counts as filling a link (a cap far below
/// the link's bandwidth would otherwise ask for more slots than any host
/// has guests).
const MAX_FILLING: usize = 4096;

/// Quantiles of the regimes' rates a forecast keeps.
const RATE_QUANTILES: usize = 10;

/// What the plan knows of a guest: what its profile says.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct GuestForecast {
    /// Bytes its bulk round sends (nonzero memory; a zero page is a
    /// header).
    pub bulk_bytes: f64,
    /// The rate it dirties distinct pages at now, bytes/s.
    pub dirty_bytes_per_s: f64,
    /// Its rate over each 5-second stretch of its profile, at
    /// the 5th, 15th, …, 95th percentile, bytes/s: the regimes a later
    /// start may meet.
    pub rate_quantiles_bytes_per_s: [f64; RATE_QUANTILES],
    /// Its writable working set, bytes.
    pub wws_bytes: f64,
}

impl GuestForecast {
    /// A guest that has always dirtied at `dirty_bytes_per_s`.
    pub fn steady(bulk_bytes: f64, dirty_bytes_per_s: f64, wws_bytes: f64) -> Self {
        Self {
            bulk_bytes,
            dirty_bytes_per_s,
            rate_quantiles_bytes_per_s: [dirty_bytes_per_s; RATE_QUANTILES],
            wws_bytes,
        }
    }

    /// What a profile says (`kairos advise`'s samples: 1 s windows, every
    /// 30th 5 s long): the mean rate of its last 5 seconds, the
    /// deciles of such means over the whole profile, the working set the
    /// long windows imply; `bulk_bytes` as known (the guest's nonzero
    /// memory, or its RAM). An empty profile reads as a guest that does not
    /// write.
    pub fn from_profile(samples: &[ProfileSample], ram_bytes: f64, bulk_bytes: f64) -> Self {
        let (per_s, _) = bucket_rates(samples, 1.0);
        let mean = |w: &[f64]| {
            if w.is_empty() {
                0.0
            } else {
                w.iter().sum::<f64>() / w.len() as f64
            }
        };
        let recent = mean(&per_s[per_s.len().saturating_sub(RECENT_S)..]);
        let mut regimes: Vec<f64> = per_s.windows(RECENT_S).map(mean).collect();
        if regimes.is_empty() {
            regimes.push(recent);
        }
        regimes.sort_by(f64::total_cmp);
        let mut quantiles = [0.0; RATE_QUANTILES];
        for (k, q) in quantiles.iter_mut().enumerate() {
            let at = (k as f64 + 0.5) / RATE_QUANTILES as f64;
            let index = ((at * regimes.len() as f64) as usize).min(regimes.len() - 1);
            *q = regimes[index];
        }
        Self {
            bulk_bytes,
            dirty_bytes_per_s: recent,
            rate_quantiles_bytes_per_s: quantiles,
            wws_bytes: working_set_bytes(samples, ram_bytes),
        }
    }

    /// Converges at a share of `share_bytes_per_s` now (see
    /// [`converges_with_rate`](Self::converges_with_rate)).
    pub fn converges_at(&self, share_bytes_per_s: f64, stop_downtime_s: f64) -> bool {
        self.converges_with_rate(self.dirty_bytes_per_s, share_bytes_per_s, stop_downtime_s)
    }

    /// Converges at a share of `share_bytes_per_s` while it dirties at
    /// `rate_bytes_per_s` (over the profile's 1 s windows): what a round as
    /// long as the stop's downtime dirties fits that downtime at that
    /// share. Rounds shorten while each dirties less than it sends, towards
    /// the length at which they balance; the stop comes if that length is
    /// at most the downtime. Read on the working-set curve
    /// ([`dirtied_in_window_bytes`]): over a window shorter than 1 s a
    /// guest dirties faster than its 1 s rate says, and a working set that
    /// fits the downtime whole always does.
    pub fn converges_with_rate(
        &self,
        rate_bytes_per_s: f64,
        share_bytes_per_s: f64,
        stop_downtime_s: f64,
    ) -> bool {
        let budget = share_bytes_per_s * stop_downtime_s;
        self.wws_bytes <= budget
            || dirtied_in_window_bytes(rate_bytes_per_s, self.wws_bytes, stop_downtime_s) < budget
    }

    /// The predicted migration time at a rate, s: a working set that fits
    /// the stop's downtime is sent with the bulk (at most what is dirtied
    /// while the bulk goes); otherwise the bulk net of what is dirtied
    /// meanwhile (the geometric series of rounds); the time cap when it
    /// converges at neither.
    fn time_with_rate_s(
        &self,
        rate_bytes_per_s: f64,
        share_bytes_per_s: f64,
        link: &PlanLink,
    ) -> f64 {
        let share = share_bytes_per_s.max(1.0);
        let t = if self.wws_bytes <= share * link.stop_downtime_s {
            let dirtied = rate_bytes_per_s * self.bulk_bytes / share;
            (self.bulk_bytes + self.wws_bytes.min(dirtied)) / share
        } else if self.converges_with_rate(rate_bytes_per_s, share, link.stop_downtime_s) {
            // It converges, so what it dirties over the downtime's window
            // is below the share; over rounds longer than that window the
            // 1 s rate is the one (a stop longer than 1 s: the slower).
            let stop_s = link.stop_downtime_s.max(f64::EPSILON);
            let window_rate =
                dirtied_in_window_bytes(rate_bytes_per_s, self.wws_bytes, stop_s) / stop_s;
            self.bulk_bytes / (share - rate_bytes_per_s.min(window_rate))
        } else {
            link.time_cap_s
        };
        t.min(link.time_cap_s)
    }

    /// The predicted migration time at a share if it starts now, s.
    pub fn time_at_s(&self, share_bytes_per_s: f64, link: &PlanLink) -> f64 {
        self.time_with_rate_s(self.dirty_bytes_per_s, share_bytes_per_s, link)
    }

    /// Converges at a share of `share_bytes_per_s` in none of the regimes
    /// its profile shows (nor now): whenever it starts, its migration is
    /// predicted to run to the time cap.
    pub fn converges_never_at(&self, share_bytes_per_s: f64, stop_downtime_s: f64) -> bool {
        std::iter::once(&self.dirty_bytes_per_s)
            .chain(&self.rate_quantiles_bytes_per_s)
            .all(|&r| !self.converges_with_rate(r, share_bytes_per_s, stop_downtime_s))
    }

    /// The expected migration time at a share if it waits for a regime it
    /// converges in, s: the mean over those regimes of its profile (the
    /// time cap when it converges in none). Waiting is re-checked at every
    /// event, so a guest that cannot converge now is started in such a
    /// regime; the wait itself costs nothing while others fill the link.
    pub fn waited_time_at_s(&self, share_bytes_per_s: f64, link: &PlanLink) -> f64 {
        let (sum_s, regimes) = self
            .rate_quantiles_bytes_per_s
            .iter()
            .filter(|&&r| self.converges_with_rate(r, share_bytes_per_s, link.stop_downtime_s))
            .fold((0.0, 0usize), |(sum, n), &r| {
                (
                    sum + self.time_with_rate_s(r, share_bytes_per_s, link),
                    n + 1,
                )
            });
        if regimes == 0 {
            link.time_cap_s
        } else {
            sum_s / regimes as f64
        }
    }

    /// The expected migration time at a share if it starts at a later
    /// moment, s: the mean over the regimes its profile shows.
    pub fn expected_time_at_s(&self, share_bytes_per_s: f64, link: &PlanLink) -> f64 {
        self.rate_quantiles_bytes_per_s
            .iter()
            .map(|&r| self.time_with_rate_s(r, share_bytes_per_s, link))
            .sum::<f64>()
            / RATE_QUANTILES as f64
    }
}

/// The link as the plan sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlanLink {
    /// The link's bandwidth, bytes/s.
    pub link_bytes_per_s: f64,
    /// The most one migration sends at, bytes/s (None: the link's).
    pub per_migration_bytes_per_s: Option<f64>,
    /// The downtime a guest's pending must fit for its stop policy to
    /// stop, s: the maximum for Kairos's per-guest stop, the limit for
    /// QEMU's rule.
    pub stop_downtime_s: f64,
    /// A migration still running this long is cancelled, s: what one that
    /// never converges costs.
    pub time_cap_s: f64,
    /// Seconds a migration takes from its start to sending its first byte
    /// (a management layer starting the destination QEMU), during which it
    /// does not use the link.
    pub setup_s: f64,
}

impl PlanLink {
    /// Each sender's share when `senders` send.
    pub fn share(&self, senders: usize) -> f64 {
        fair_share(
            self.link_bytes_per_s,
            self.per_migration_bytes_per_s,
            senders,
        )
    }

    /// The fewest migrations that fill the link.
    pub fn filling(&self) -> usize {
        self.per_migration_bytes_per_s.map_or(1, |cap| {
            (self.link_bytes_per_s / cap)
                .ceil()
                .clamp(1.0, MAX_FILLING as f64) as usize
        })
    }
}

/// Each waiting guest as its profile says while it waits, and what
/// waiting would gain it.
pub trait Outlook {
    /// `guest`'s forecast from its profile up to `now_s` (s into the
    /// evacuation); None to keep the one the plan has.
    fn forecast(&mut self, guest: usize, now_s: f64) -> Option<GuestForecast>;
    /// The ms `guest`'s migration is expected to save by starting later
    /// rather than at `now_s` (s into the evacuation) at a share of
    /// `share_bytes_per_s`; 0 when waiting is not advised.
    fn gain_of_waiting_ms(&mut self, guest: usize, now_s: f64, share_bytes_per_s: f64) -> f64;
}

/// Where a guest stands in the plan's order (first group first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Group {
    /// Cannot converge now, but longer than all the others have left.
    Critical,
    /// Converges now at the share it would get.
    Ready,
    /// Cannot converge now: after the rest.
    Deferred,
    /// Converges in none of the regimes its profile shows, even alone on
    /// the link: attempted once, with every other such guest at once,
    /// after the rest.
    Doomed,
}

/// A guest's place in the order: its group, what it loses by waiting
/// (its time now less its expected time later, s: lowest first), its time
/// now (longest first).
#[derive(Debug, Clone, Copy)]
struct Rank {
    group: Group,
    gain_of_waiting_s: f64,
    time_now_s: f64,
    /// Its expected time once it waits for a regime it converges in, s.
    waited_s: f64,
}

/// The planner, as the simulator (and the live evacuation) asks it.
pub struct Planner {
    forecasts: Vec<GuestForecast>,
    /// The host's own link: the most any share can be.
    link: PlanLink,
    /// What its migrations can have between them now, bytes/s (below the
    /// link's while a rack's uplink is shared with other hosts).
    available_bytes_per_s: f64,
    /// Each waiting guest's profile and advice, when known.
    outlook: Option<Box<dyn Outlook>>,
    /// Whether to order each group by the advice's gain of waiting.
    ask_advice: bool,
    /// When each guest was started, s into the evacuation (by index).
    started_at_s: Vec<Option<f64>>,
    /// The migrations running after the last start (what a wake-up is
    /// planned from).
    pipeline: Vec<usize>,
    /// The per-migration cap the plan was given (what a measured rate may
    /// only lower).
    given_per_migration_bytes_per_s: Option<f64>,
}

impl Planner {
    /// A plan for guests with these forecasts over `link`.
    pub fn new(forecasts: Vec<GuestForecast>, link: PlanLink) -> Self {
        Self {
            started_at_s: vec![None; forecasts.len()],
            pipeline: Vec::new(),
            forecasts,
            available_bytes_per_s: link.link_bytes_per_s,
            given_per_migration_bytes_per_s: link.per_migration_bytes_per_s,
            link,
            outlook: None,
            ask_advice: false,
        }
    }

    /// The same, reading each waiting guest's forecast from `outlook` at
    /// every event, and ordering each group by its advice if `ask_advice`.
    pub fn with_outlook(mut self, outlook: Box<dyn Outlook>, ask_advice: bool) -> Self {
        self.outlook = Some(outlook);
        self.ask_advice = ask_advice;
        self
    }

    /// The link as its migrations can use it now: its own, or less while
    /// other hosts share the uplink behind it.
    fn link_now(&self) -> PlanLink {
        PlanLink {
            link_bytes_per_s: self.link.link_bytes_per_s.min(self.available_bytes_per_s),
            ..self.link
        }
    }

    /// Each of `guests` ranked for a start at a share of
    /// `share_bytes_per_s`. Doomed is judged at the most a guest could
    /// ever get, its host's link alone: a guest that converges there
    /// waits for it.
    fn ranks(&self, guests: &[usize], share_bytes_per_s: f64) -> Vec<(usize, Rank)> {
        let link = &self.link;
        let mut ranks: Vec<(usize, Rank)> = guests
            .iter()
            .map(|&g| {
                let f = self.forecasts.get(g);
                let now = f.map_or(0.0, |f| f.time_at_s(share_bytes_per_s, link));
                let later = f.map_or(0.0, |f| f.expected_time_at_s(share_bytes_per_s, link));
                let ready =
                    f.is_none_or(|f| f.converges_at(share_bytes_per_s, link.stop_downtime_s));
                let doomed =
                    f.is_some_and(|f| f.converges_never_at(link.share(1), link.stop_downtime_s));
                let rank = Rank {
                    group: if ready {
                        Group::Ready
                    } else if doomed {
                        Group::Doomed
                    } else {
                        Group::Deferred
                    },
                    gain_of_waiting_s: now - later,
                    time_now_s: now,
                    waited_s: f.map_or(0.0, |f| f.waited_time_at_s(share_bytes_per_s, link)),
                };
                (g, rank)
            })
            .collect();
        let filling = self.link_now().filling();
        if filling > 1 {
            // What each guest is planned to take: now if it converges now,
            // if not its expected time once it has waited for a regime it
            // converges in; what the others have left, spread over the
            // link's slots.
            let planned_s = |r: &Rank| match r.group {
                Group::Ready => r.time_now_s,
                _ => r.waited_s,
            };
            let total_s: f64 = ranks.iter().map(|r| planned_s(&r.1)).sum();
            for (_, rank) in &mut ranks {
                let others_s = (total_s - planned_s(rank)) / filling as f64;
                let waits = matches!(rank.group, Group::Deferred | Group::Doomed);
                if waits && planned_s(rank) >= others_s {
                    rank.group = Group::Critical;
                }
            }
        }
        ranks.sort_by(|a, b| {
            a.1.group
                .cmp(&b.1.group)
                .then(a.1.gain_of_waiting_s.total_cmp(&b.1.gain_of_waiting_s))
                .then(b.1.time_now_s.total_cmp(&a.1.time_now_s))
                .then(a.0.cmp(&b.0))
        });
        ranks
    }

    /// The guests in the order the plan would start them all at once
    /// from the forecasts it has, each alone on the link.
    pub fn order(&self) -> Vec<usize> {
        let all: Vec<usize> = (0..self.forecasts.len()).collect();
        self.ranks(&all, self.link_now().share(1))
            .into_iter()
            .map(|(g, _)| g)
            .collect()
    }

    /// Whether `guest` may join `running`: it converges at the share it
    /// would get, or at none it could get (alone); and every running guest
    /// converging at their share now still converges at the new one.
    fn may_join(&self, running: &[usize], guest: usize) -> bool {
        let link = self.link_now();
        let stop_s = link.stop_downtime_s;
        let now = link.share(running.len());
        let then = link.share(running.len() + 1);
        let converges = |g: usize, share: f64| {
            self.forecasts
                .get(g)
                .is_none_or(|f| f.converges_at(share, stop_s))
        };
        let itself = converges(guest, then) || !converges(guest, link.share(1));
        itself
            && running
                .iter()
                .all(|&r| !converges(r, now) || converges(r, then))
    }
}

/// Times closer than this are the same moment, s.
const WAKE_EPSILON_S: f64 = 1e-9;

impl Planner {
    /// Whether one more migration may start beside `together` (the
    /// running ones and those starting now): while fewer than fill the
    /// link; and, when a migration prepares before it sends, whenever the
    /// link is predicted to free up within one preparation, so that the
    /// next one's preparation overlaps the others' sending instead of
    /// leaving the link idle after each end — but no earlier: a migration
    /// ready before the link frees shares it, and a smaller share lets
    /// each guest dirty more of what it must resend.
    fn has_room(&self, now_s: f64, together: &[usize]) -> bool {
        let filling = self.link_now().filling();
        if together.len() < filling {
            return true;
        }
        let setup_s = self.link.setup_s;
        setup_s > 0.0 && self.link_free_at_s(now_s, together) - now_s <= setup_s + WAKE_EPSILON_S
    }

    /// Whether `guest`, started to prepare while the link is full, may
    /// send at a filling slot's share once it frees: it converges there,
    /// or at no share it could get (alone).
    fn may_send_after(&self, guest: usize) -> bool {
        let link = self.link_now();
        self.forecasts.get(guest).is_none_or(|f| {
            f.converges_at(link.share(link.filling()), link.stop_downtime_s)
                || !f.converges_at(link.share(1), link.stop_downtime_s)
        })
    }

    /// Note the migrations starting now, and what runs with them.
    fn record_starts(&mut self, now_s: f64, running: &[usize], started: &[usize]) {
        for &g in started {
            if let Some(at) = self.started_at_s.get_mut(g) {
                *at = Some(now_s);
            }
        }
        self.pipeline = running.iter().chain(started).copied().collect();
    }

    /// When the link is predicted to have room for one more sender: the
    /// migrations of `pipeline` (running, or started now) laid out in the
    /// order they started on the slots that fill the link, each sending
    /// from the end of its preparation or once a slot frees (the later)
    /// for its predicted time at a slot's share; the earliest slot's end.
    fn link_free_at_s(&self, now_s: f64, pipeline: &[usize]) -> f64 {
        let link = self.link_now();
        let filling = link.filling();
        let share = link.share(filling);
        let mut started: Vec<(f64, usize)> = pipeline
            .iter()
            .map(|&g| {
                (
                    self.started_at_s.get(g).copied().flatten().unwrap_or(now_s),
                    g,
                )
            })
            .collect();
        started.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let mut slots = vec![f64::NEG_INFINITY; filling];
        for (start_s, g) in started {
            let Some(slot) = (0..filling).min_by(|&a, &b| slots[a].total_cmp(&slots[b])) else {
                break;
            };
            let sends_s = slots[slot].max(start_s + self.link.setup_s);
            let takes_s = self
                .forecasts
                .get(g)
                .map_or(0.0, |f| f.time_at_s(share, &link));
            // One past its predicted end is due any moment.
            slots[slot] = (sends_s + takes_s).max(now_s);
        }
        slots
            .iter()
            .copied()
            .fold(f64::INFINITY, f64::min)
            .max(now_s)
    }

    /// Whether every running guest converging at its share now still does
    /// once `joining` start beside it.
    fn may_join_all(&self, running: &[usize], joining: &[usize]) -> bool {
        let link = self.link_now();
        let stop_s = link.stop_downtime_s;
        let now = link.share(running.len());
        let then = link.share(running.len() + joining.len());
        let converges = |g: usize, share: f64| {
            self.forecasts
                .get(g)
                .is_none_or(|f| f.converges_at(share, stop_s))
        };
        running
            .iter()
            .all(|&r| !converges(r, now) || converges(r, then))
    }
}

impl Dispatcher for Planner {
    fn start_now(&mut self, now_s: f64, running: &[usize], waiting: &[usize]) -> Vec<usize> {
        let link_now = self.link_now();
        let share = link_now.share(running.len() + 1);
        if let Some(outlook) = self.outlook.as_mut() {
            for &g in waiting {
                if let (Some(f), Some(slot)) =
                    (outlook.forecast(g, now_s), self.forecasts.get_mut(g))
                {
                    *slot = f;
                }
            }
        }
        let mut ranked = self.ranks(waiting, share);
        if self.ask_advice {
            if let Some(outlook) = self.outlook.as_mut() {
                let mut keyed: Vec<(usize, Group, f64)> = ranked
                    .iter()
                    .map(|&(g, r)| (g, r.group, outlook.gain_of_waiting_ms(g, now_s, share)))
                    .collect();
                // Within each group, least to gain by waiting first; the
                // sort is stable, so ties keep the profile's order.
                keyed.sort_by(|a, b| a.1.cmp(&b.1).then(a.2.total_cmp(&b.2)));
                let old = std::mem::take(&mut ranked);
                ranked = keyed
                    .into_iter()
                    .filter_map(|(g, _, _)| old.iter().find(|x| x.0 == g).copied())
                    .collect();
            }
        }
        let doomed: Vec<usize> = ranked
            .iter()
            .filter(|(_, r)| r.group == Group::Doomed)
            .map(|&(g, _)| g)
            .collect();
        if !doomed.is_empty() && doomed.len() == ranked.len() {
            // Only guests that converge at no share are left: their
            // attempts overlap rather than add up, once the running ones
            // still converge beside them.
            let started = if self.may_join_all(running, &doomed) {
                doomed
            } else {
                Vec::new()
            };
            self.record_starts(now_s, running, &started);
            return started;
        }
        let mut together: Vec<usize> = running.to_vec();
        let mut started = Vec::new();
        for (g, rank) in ranked {
            if rank.group == Group::Doomed {
                continue;
            }
            if together.is_empty() {
                // Nothing runs: it goes, converging or not.
                together.push(g);
                started.push(g);
                continue;
            }
            if !self.has_room(now_s, &together) {
                break;
            }
            // Beyond the migrations that fill the link, one that starts
            // now prepares while they send and sends once the link frees:
            // it is judged at the share it will send at, and takes none
            // from the running ones.
            let prepares_ahead = together.len() >= link_now.filling();
            let joins = if prepares_ahead {
                self.may_send_after(g)
            } else {
                self.may_join(&together, g)
            };
            if joins {
                together.push(g);
                started.push(g);
            }
        }
        self.record_starts(now_s, running, &started);
        started
    }

    fn wake_after(&self, now_s: f64) -> Option<f64> {
        // With a preparation, the next one starts one preparation before
        // the link is predicted to free up.
        if self.link.setup_s <= 0.0 || self.pipeline.is_empty() {
            return None;
        }
        let at_s = self.link_free_at_s(now_s, &self.pipeline) - self.link.setup_s;
        (at_s > now_s + WAKE_EPSILON_S).then_some(at_s)
    }

    fn observe_setup_s(&mut self, setup_s: f64) {
        if setup_s.is_finite() && setup_s >= 0.0 {
            self.link.setup_s = setup_s;
        }
    }

    fn offer_bandwidth(&mut self, bytes_per_s: f64) {
        if bytes_per_s.is_finite() && bytes_per_s > 0.0 {
            self.available_bytes_per_s = bytes_per_s;
        }
    }

    /// The measured rate becomes the cap (below the one the plan was
    /// given, if any): a migration that cannot fill the link alone leaves
    /// room for more at once ([`PlanLink::filling`]), and each is judged
    /// at what it can send.
    fn observe_send_rate_bytes_per_s(&mut self, bytes_per_s: f64) {
        if bytes_per_s.is_finite() && bytes_per_s > 0.0 {
            let given = self.given_per_migration_bytes_per_s;
            self.link.per_migration_bytes_per_s =
                Some(given.map_or(bytes_per_s, |cap| cap.min(bytes_per_s)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: f64 = 1048576.0;

    fn guest(bulk_mib: f64, rate_mib_s: f64, wws_mib: f64) -> GuestForecast {
        GuestForecast::steady(bulk_mib * MIB, rate_mib_s * MIB, wws_mib * MIB)
    }

    fn link(cap_mib_s: Option<f64>) -> PlanLink {
        PlanLink {
            link_bytes_per_s: 100.0 * MIB,
            per_migration_bytes_per_s: cap_mib_s.map(|c| c * MIB),
            stop_downtime_s: 1.0,
            time_cap_s: 600.0,
            setup_s: 0.0,
        }
    }

    #[test]
    fn the_next_prepares_while_the_link_is_predicted_busy() {
        let mut p = Planner::new(
            vec![
                guest(400.0, 1.0, 8.0),
                guest(300.0, 1.0, 8.0),
                guest(200.0, 1.0, 8.0),
            ],
            PlanLink {
                setup_s: 5.0,
                ..link(None)
            },
        );
        // One migration fills the link: one goes alone...
        let first = p.start_now(0.0, &[], &[0, 1, 2]);
        assert_eq!(first.len(), 1);
        let a = first[0];
        let rest: Vec<usize> = (0..3).filter(|&g| g != a).collect();
        let alone_s = p.forecasts[a].time_at_s(p.link.share(1), &p.link);
        // ...and the next when the link is predicted to free up within
        // one preparation: at a's predicted end less 5 s.
        assert!(p.start_now(0.5, &[a], &rest).is_empty());
        let wake = p.wake_after(0.5).unwrap();
        assert!((wake - alone_s).abs() < 1e-9, "{wake} vs {alone_s}");
        let second = p.start_now(wake, &[a], &rest);
        assert_eq!(second.len(), 1);
        let b = second[0];
        let last: Vec<usize> = rest.iter().copied().filter(|&g| g != b).collect();
        // The link is then predicted busy until b's end: no third yet.
        assert!(p.start_now(wake + 0.5, &[a, b], &last).is_empty());
        let b_s = p.forecasts[b].time_at_s(p.link.share(1), &p.link);
        let then = p.wake_after(wake + 0.5).unwrap();
        assert!((then - (5.0 + alone_s + b_s - 5.0)).abs() < 1e-9, "{then}");
    }

    #[test]
    fn short_migrations_prepare_in_a_staggered_row() {
        // Each sends in 0.1 s but prepares 5 s: one starts every 0.1 s,
        // so the link sends them back to back from the first's 5 s on.
        let mut p = Planner::new(
            vec![guest(10.0, 0.0, 1.0); 4],
            PlanLink {
                setup_s: 5.0,
                ..link(None)
            },
        );
        let mut running = Vec::new();
        let mut waiting: Vec<usize> = (0..4).collect();
        let mut now = 0.0;
        let mut starts = Vec::new();
        while !waiting.is_empty() {
            for g in p.start_now(now, &running, &waiting) {
                starts.push(now);
                running.push(g);
                waiting.retain(|&w| w != g);
            }
            match p.wake_after(now) {
                Some(t) => now = t,
                None => break,
            }
        }
        assert_eq!(starts.len(), 4, "{starts:?}");
        assert!(starts[3] < 1.0, "{starts:?}");
        assert!(starts.windows(2).all(|w| w[1] > w[0]), "{starts:?}");
    }

    #[test]
    fn without_a_preparation_the_link_holds_the_fewest_that_fill_it() {
        let mut p = Planner::new(
            vec![guest(400.0, 1.0, 8.0), guest(300.0, 1.0, 8.0)],
            link(None),
        );
        let first = p.start_now(0.0, &[], &[0, 1]);
        assert_eq!(first.len(), 1);
        let other = 1 - first[0];
        assert_eq!(p.wake_after(0.0), None);
        assert!(p.start_now(5.0, &first, &[other]).is_empty());
        // A preparation measured live makes room for one more.
        p.observe_setup_s(4.0);
        assert_eq!(p.start_now(5.0, &first, &[other]), vec![other]);
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
        // Steady guests lose nothing by waiting: the longest first. 900/100
        // = 9 s; 400 MiB and the 100 MiB working set (it fits 1 s) at 100
        // MiB/s = 5 s; 100/100 = 1 s.
        assert_eq!(p.order(), vec![1, 2, 0]);
    }

    #[test]
    fn behind_a_shared_uplink_a_guest_that_needs_the_whole_link_waits_for_it() {
        // 900 MiB dirtying 70 MiB/s over 200 MiB: it converges at the
        // host's 100 MiB/s, not at 50.
        let heavy = guest(900.0, 70.0, 200.0);
        let light = guest(100.0, 1.0, 10.0);
        let mut p = Planner::new(vec![light, heavy], link(None));
        // The whole link: both converge, the longest goes first.
        assert_eq!(p.start_now(0.0, &[], &[0, 1]), vec![1]);
        // Half of it while other hosts drain: the light one goes first,
        // and the heavy one, which converges once it has the link, is not
        // given up on: it goes next, when nothing else is left.
        p.offer_bandwidth(50.0 * MIB);
        assert_eq!(p.start_now(0.0, &[], &[0, 1]), vec![0]);
        assert_eq!(p.start_now(5.0, &[], &[1]), vec![1]);
        // Nonsense offers are ignored.
        p.offer_bandwidth(f64::NAN);
        p.offer_bandwidth(0.0);
        assert_eq!(p.start_now(0.0, &[], &[0, 1]), vec![0]);
    }

    #[test]
    fn a_guest_that_cannot_converge_now_goes_last() {
        // 150 MiB/s over 400 MiB on a 100 MiB/s link: it converges now at
        // no share; half its profile was at 2 MiB/s.
        let mut bursting = guest(900.0, 150.0, 400.0);
        for q in &mut bursting.rate_quantiles_bytes_per_s[..5] {
            *q = 2.0 * MIB;
        }
        // Never calmer so far: it converges in no regime, so it goes after
        // the one that may calm down (with any others like it, at once).
        let hot = guest(300.0, 150.0, 400.0);
        let p = Planner::new(
            vec![
                bursting,
                guest(100.0, 1.0, 10.0),
                guest(200.0, 1.0, 10.0),
                hot,
            ],
            link(None),
        );
        assert_eq!(p.order(), vec![2, 1, 0, 3]);
    }

    #[test]
    fn a_guest_longer_than_the_rest_goes_now_beside_them() {
        // It converges at no share it can get: its migration runs to the
        // time cap. With four at a time (cap 25 MiB/s), deferred it would
        // run alone at the end: it goes first, beside the others.
        let hot = guest(500.0, 150.0, 400.0);
        let small = guest(100.0, 1.0, 10.0);
        let p = Planner::new(vec![small, small, hot], link(Some(25.0)));
        assert_eq!(p.order()[0], 2);
        // One at a time, waiting costs it nothing: it goes last.
        let p = Planner::new(vec![small, small, hot], link(None));
        assert_eq!(p.order()[2], 2);
    }

    #[test]
    fn a_guest_that_converges_once_it_calms_is_not_the_critical_path() {
        // In a burst now (150 MiB/s over 400 MiB: no share saves it), but
        // calm in nine regimes of ten: waiting for one costs the
        // evacuation nothing while the others fill the link, and then it
        // takes 500 MiB / 25 MiB/s = 20 s, not the time cap its one bad
        // regime would make the mean (0.9 × 20 + 0.1 × 600 = 78 s). The
        // others have 2 × 2000 MiB / 25 MiB/s = 160 s of work over four
        // slots, 40 s: more than its 20 s, so it waits, after them.
        let mut bursting = guest(500.0, 150.0, 400.0);
        for q in &mut bursting.rate_quantiles_bytes_per_s[..9] {
            *q = 0.0;
        }
        let link = link(Some(25.0));
        assert!((bursting.waited_time_at_s(25.0 * MIB, &link) - 20.0).abs() < 1e-6);
        let large = guest(2000.0, 0.0, 0.0);
        let p = Planner::new(vec![bursting, large, large], link);
        assert_eq!(p.order()[2], 0, "{:?}", p.order());
    }

    #[test]
    fn a_short_stop_needs_the_rate_over_its_own_window() {
        // 105 MiB/s distinct over 1 s windows, in a 113 MiB working set: a
        // 1 s round dirties 105 MiB, below the link's 119 MiB/s, but a
        // 0.3 s round dirties 62 MiB, far above the 36 MiB the link sends
        // in 0.3 s (the writes of a short round are less often repeats).
        let g = guest(500.0, 105.0, 113.0);
        assert!(g.converges_at(119.0 * MIB, 1.0));
        assert!(!g.converges_at(119.0 * MIB, 0.3));
        // Spread over all of RAM, the short window's rate is the 1 s one.
        let wide = guest(500.0, 105.0, 4096.0);
        assert!(wide.converges_at(119.0 * MIB, 0.3));
    }

    #[test]
    fn guests_that_converge_in_no_regime_go_last_all_at_once() {
        // 150 MiB/s over 400 MiB in every regime, on a 100 MiB/s link one
        // migration fills: no share saves them.
        let doomed = guest(300.0, 150.0, 400.0);
        assert!(doomed.converges_never_at(100.0 * MIB, 1.0));
        // One that calms down in half its regimes is not doomed.
        let mut calming = doomed;
        for q in &mut calming.rate_quantiles_bytes_per_s[..5] {
            *q = 2.0 * MIB;
        }
        assert!(!calming.converges_never_at(100.0 * MIB, 1.0));
        let small = guest(100.0, 1.0, 10.0);
        let mut p = Planner::new(vec![doomed, small, doomed, calming], link(None));
        assert_eq!(p.order(), vec![1, 3, 0, 2]);
        // One at a time while others wait, the doomed ones held back.
        assert_eq!(p.start_now(0.0, &[], &[0, 1, 2, 3]), vec![1]);
        assert_eq!(p.start_now(1.0, &[], &[0, 2, 3]), vec![3]);
        // Only doomed ones left: both at once, but not while a running
        // guest would stop converging at the share left to it (the small
        // one converges at 100/3 MiB/s, one dirtying 40 MiB/s does not).
        assert_eq!(p.start_now(2.0, &[1], &[0, 2]), vec![0, 2]);
        let busy = guest(800.0, 40.0, 400.0);
        let mut p = Planner::new(vec![doomed, doomed, busy], link(None));
        assert!(p.start_now(0.0, &[2], &[0, 1]).is_empty());
        assert_eq!(p.start_now(9.0, &[], &[0, 1]), vec![0, 1]);
    }

    #[test]
    fn a_profile_gives_the_recent_rate_and_the_regimes() {
        // 1 s windows: 20 s at 2 MiB/s, then 10 s at 50 MiB/s.
        let samples: Vec<ProfileSample> = (1..=30)
            .map(|t| ProfileSample {
                t_s: f64::from(t),
                window_s: 1.0,
                dirtied_bytes: if t <= 20 { 2.0 * MIB } else { 50.0 * MIB },
            })
            .collect();
        let f = GuestForecast::from_profile(&samples, 1024.0 * MIB, 500.0 * MIB);
        assert!((f.dirty_bytes_per_s - 50.0 * MIB).abs() < 1.0, "{f:?}");
        // 5 s stretches: 16 at 2 MiB/s, 4 between, 6 at 50 MiB/s.
        let q = f.rate_quantiles_bytes_per_s;
        assert!((q[0] - 2.0 * MIB).abs() < 1.0, "{f:?}");
        assert!((q[RATE_QUANTILES - 1] - 50.0 * MIB).abs() < 1.0, "{f:?}");
        assert!(q.windows(2).all(|w| w[0] <= w[1]), "{f:?}");
        let empty = GuestForecast::from_profile(&[], 1024.0 * MIB, 500.0 * MIB);
        assert_eq!(empty.dirty_bytes_per_s, 0.0);
    }

    #[test]
    fn one_at_a_time_when_one_fills_the_link() {
        let mut p = Planner::new(vec![guest(100.0, 1.0, 10.0); 4], link(None));
        assert_eq!(p.start_now(0.0, &[], &[0, 1, 2, 3]).len(), 1);
        assert!(p.start_now(1.0, &[0], &[1, 2, 3]).is_empty());
    }

    #[test]
    fn a_migration_measured_slower_than_the_link_makes_room_for_more() {
        let mut p = Planner::new(vec![guest(100.0, 1.0, 10.0); 6], link(None));
        let first = p.start_now(0.0, &[], &[0, 1, 2, 3, 4, 5]);
        assert_eq!(first.len(), 1);
        let waiting: Vec<usize> = (0..6).filter(|g| !first.contains(g)).collect();
        // Alone it sends at 25 of the link's 100 MiB/s: four fill it.
        p.observe_send_rate_bytes_per_s(25.0 * MIB);
        assert_eq!(p.start_now(1.0, &first, &waiting).len(), 3);
        // Garbage changes nothing.
        p.observe_send_rate_bytes_per_s(f64::NAN);
        p.observe_send_rate_bytes_per_s(0.0);
        assert_eq!(p.link.per_migration_bytes_per_s, Some(25.0 * MIB));
        // A cap the plan was given is only ever lowered by a measurement.
        let mut p = Planner::new(vec![guest(100.0, 1.0, 10.0)], link(Some(25.0)));
        p.observe_send_rate_bytes_per_s(40.0 * MIB);
        assert_eq!(p.link.per_migration_bytes_per_s, Some(25.0 * MIB));
        p.observe_send_rate_bytes_per_s(20.0 * MIB);
        assert_eq!(p.link.per_migration_bytes_per_s, Some(20.0 * MIB));
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

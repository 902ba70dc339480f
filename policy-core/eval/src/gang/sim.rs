//! Many guests migrating over one link at once (a host being emptied):
//! a fluid model of the shared link — the migrations sending at a time
//! share its bandwidth equally, as TCP streams of one bottleneck do — and
//! each guest's pre-copy as in the single-guest simulator's full-pass
//! model (a round sends every page pending at its start, then syncs; the
//! guest keeps writing meanwhile; the stop decision is the guest's own
//! policy's, at each sync). Event-driven: time jumps to the next moment a
//! migration's send ends, a sync ends, or a planned start comes, and every
//! guest runs up to it, so a share changes exactly when a migration starts
//! or ends. No noise on the link: each guest's bandwidth is its share.

use kairos_policy_core::decision::{Action, Reason};
use kairos_policy_core::observation::RoundObservation;
use kairos_policy_core::policies::ConvergencePolicy;
use serde::Serialize;

use super::rack::Rack;
use crate::outcome::{acted_on, MigrationStatus};
use crate::sim::guest::{DirtySet, Guest, PAGES_PER_MIB};
use crate::sim::pass::SendQueue;
use crate::sim::workload::Workload;
use crate::sim::{ReadyGuest, PAGE_SIZE_BYTES, SWITCHOVER_COST_MS, SYNC_COST_S};

/// Times closer than this are the same event, s.
const EPSILON_S: f64 = 1e-9;

/// One guest of the evacuation.
pub struct GangGuest<'a> {
    /// Its workload program (program time 0 is the evacuation's start
    /// minus `warmup_s`).
    pub workload: &'a Workload,
    /// Its stop policy.
    pub policy: Box<dyn ConvergencePolicy>,
    /// Seed of its guest.
    pub seed: u64,
}

/// The link and the evacuation's limits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GangConfig {
    /// The link's bandwidth, bytes/s, shared by the migrations sending.
    pub link_bytes_per_s: f64,
    /// The most one migration sends at, bytes/s (its `max-bandwidth`, or
    /// what one migration stream can push); None: the link's.
    pub per_migration_bytes_per_s: Option<f64>,
    /// Seconds every guest has run before the evacuation starts.
    pub warmup_s: f64,
    /// A migration still running this long after its start is cancelled
    /// (it frees its share), s.
    pub time_cap_s: f64,
    /// Seconds each migration takes from its start to its first sync,
    /// sending nothing (a management layer starting the destination QEMU:
    /// libvirt's prepare phase); the link is not used meanwhile.
    pub setup_s: f64,
}

impl GangConfig {
    /// Each sender's share when `senders` send: the link split equally,
    /// at most the per-migration cap (the cap binds every one alike, so
    /// equal shares are the max-min fair ones).
    pub fn share_bytes_per_s(&self, senders: usize) -> f64 {
        fair_share(
            self.link_bytes_per_s,
            self.per_migration_bytes_per_s,
            senders,
        )
    }
}

/// Each sender's share of a link of `link_bytes_per_s` when `senders`
/// send: the link split equally, at most the per-migration cap (the cap
/// binds every one alike, so equal shares are the max-min fair ones).
pub fn fair_share(link_bytes_per_s: f64, cap_bytes_per_s: Option<f64>, senders: usize) -> f64 {
    let fair = link_bytes_per_s / senders.max(1) as f64;
    cap_bytes_per_s.map_or(fair, |cap| fair.min(cap))
}

/// Who starts when: asked at every event of the evacuation (a migration
/// ending, a planned moment), it names the guests to start now.
pub trait Dispatcher {
    /// At `now_s`, with `running` migrating and `waiting` not started (by
    /// index): the guests to start now, from `waiting`.
    fn start_now(&mut self, now_s: f64, running: &[usize], waiting: &[usize]) -> Vec<usize>;
    /// The next moment after `now_s` it wants to be asked at even if no
    /// migration ends (a planned start), if any.
    fn wake_after(&self, now_s: f64) -> Option<f64>;
    /// From now on its migrations can have `bytes_per_s` between them at
    /// most (a host whose share of a rack's uplink is below its own
    /// link's); until told, its link's. A fixed plan ignores it.
    fn offer_bandwidth(&mut self, _bytes_per_s: f64) {}
    /// Migrations were seen to take `setup_s` (their mean, measured live)
    /// from their start to sending; a fixed plan ignores it.
    fn observe_setup_s(&mut self, _setup_s: f64) {}
    /// One migration was seen to send at `bytes_per_s` while it was the
    /// only one sending (measured live): the most each may be counted on
    /// for. A fixed plan ignores it.
    fn observe_send_rate_bytes_per_s(&mut self, _bytes_per_s: f64) {}
}

/// When each guest starts: at most `concurrency` migrations at a time,
/// started in `order` as slots free, none before its `not_before_s`.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    /// The guests' indices, first to go first.
    pub order: Vec<usize>,
    /// Migrations at a time (at least 1).
    pub concurrency: usize,
    /// Per guest (by index), the earliest start, s after the evacuation's
    /// start (empty: all at 0).
    pub not_before_s: Vec<f64>,
}

impl Schedule {
    fn not_before(&self, guest: usize) -> f64 {
        self.not_before_s.get(guest).copied().unwrap_or(0.0)
    }

    /// The first guest of the order not started yet.
    fn next_waiting(&self, waiting: &[usize]) -> Option<usize> {
        self.order.iter().copied().find(|g| waiting.contains(g))
    }
}

impl Dispatcher for Schedule {
    fn start_now(&mut self, now_s: f64, running: &[usize], waiting: &[usize]) -> Vec<usize> {
        let mut started = Vec::new();
        let mut left: Vec<usize> = waiting.to_vec();
        while running.len() + started.len() < self.concurrency.max(1) {
            match self.next_waiting(&left) {
                Some(g) if self.not_before(g) <= now_s + EPSILON_S => {
                    started.push(g);
                    left.retain(|&x| x != g);
                }
                _ => break,
            }
        }
        started
    }

    fn wake_after(&self, now_s: f64) -> Option<f64> {
        self.order
            .iter()
            .map(|&g| self.not_before(g))
            .filter(|&t| t > now_s + EPSILON_S)
            .min_by(f64::total_cmp)
    }
}

/// What one guest's migration did.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct GangRun {
    /// When it started, s after the evacuation's start.
    pub start_s: f64,
    /// When it ended, s after the evacuation's start.
    pub end_s: f64,
    /// How it ended.
    pub status: MigrationStatus,
    /// Why it ended (the policy's last reason).
    pub reason: Reason,
    /// Its downtime, ms (completed only).
    pub downtime_ms: Option<f64>,
    /// Syncs.
    pub rounds: u64,
    /// Bytes it sent.
    pub transferred_bytes: u64,
}

/// What the evacuation did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GangOutcome {
    /// Per guest, by index.
    pub runs: Vec<GangRun>,
    /// From the evacuation's start to the last migration's end, s.
    pub makespan_s: f64,
}

/// Where a guest's migration is.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    /// Not started.
    Waiting,
    /// Sending a round: bytes left of it.
    Sending { left_bytes: f64 },
    /// Syncing the dirty log until this time.
    Syncing { until_s: f64 },
    /// Stopped (the guest paused), sending what is left.
    Copying { left_bytes: f64, paused_s: f64 },
    /// Over.
    Done,
}

/// A send is over when less than this is left, bytes.
const SENT_BYTES: f64 = 0.5;

/// A guest and its migration's state.
struct Lane {
    guest: Guest,
    policy: Box<dyn ConvergencePolicy>,
    ram_bytes: u64,
    written: DirtySet,
    nonzero: DirtySet,
    queue: SendQueue,
    phase: Phase,
    start_s: f64,
    /// When its QEMU migration (and QEMU's clock) began: after the
    /// preparation.
    sync_clock_s: f64,
    round: u64,
    round_start_s: f64,
    round_bytes: u64,
    sent_bytes: u64,
    last_reason: Reason,
    run: Option<GangRun>,
}

impl Lane {
    fn new(g: GangGuest<'_>) -> Self {
        let (guest, nonzero, written) = ReadyGuest::new(g.workload, g.seed).into_parts();
        let pages = guest.page_count();
        Self {
            guest,
            policy: g.policy,
            ram_bytes: g.workload.ram_mib * PAGES_PER_MIB * PAGE_SIZE_BYTES,
            written,
            nonzero,
            queue: SendQueue::full(pages),
            phase: Phase::Waiting,
            start_s: 0.0,
            sync_clock_s: 0.0,
            round: 1,
            round_start_s: 0.0,
            round_bytes: 0,
            sent_bytes: 0,
            last_reason: Reason::Converging,
            run: None,
        }
    }

    /// Sending, and so taking a share of the link.
    fn sending(&self) -> bool {
        matches!(self.phase, Phase::Sending { .. } | Phase::Copying { .. })
    }

    /// Holding a slot of the schedule.
    fn active(&self) -> bool {
        !matches!(self.phase, Phase::Waiting | Phase::Done)
    }

    /// The guest running (not yet started: it is run up to its start when
    /// it starts; paused or gone: it does not run).
    fn running(&self) -> bool {
        matches!(self.phase, Phase::Sending { .. } | Phase::Syncing { .. })
    }

    /// Start the migration at `now_s` (program time `program_s`): its
    /// first sync comes after `setup_s` of preparation.
    fn begin(&mut self, now_s: f64, program_s: f64, setup_s: f64) {
        self.guest
            .run_until(program_s, &mut self.written, &mut self.nonzero);
        self.written.clear();
        self.start_s = now_s;
        self.round_start_s = now_s + setup_s;
        self.sync_clock_s = now_s + setup_s;
        self.round_bytes = 0;
        // QEMU's first sync: every page pending, nothing sent.
        self.phase = Phase::Syncing {
            until_s: now_s + setup_s,
        };
    }

    fn next_round(&mut self, now_s: f64) {
        self.round_start_s = now_s;
        let pending = self.queue.len_pages();
        self.round_bytes = self.queue.send(pending, &self.nonzero);
        self.phase = Phase::Sending {
            left_bytes: self.round_bytes as f64,
        };
    }

    fn end(&mut self, end_s: f64, status: MigrationStatus, downtime_ms: Option<f64>) {
        self.phase = Phase::Done;
        self.run = Some(GangRun {
            start_s: self.start_s,
            end_s,
            status,
            reason: self.last_reason,
            downtime_ms,
            rounds: self.round,
            transferred_bytes: self.sent_bytes,
        });
    }

    /// The sync that ends round `self.round` at `now_s` (round 1: the
    /// first sync, at the start, before anything is sent): the policy sees
    /// the round and decides (stop, go on, give up); `share_bytes_per_s`
    /// is the guest's share of the link now.
    fn sync(&mut self, now_s: f64, share_bytes_per_s: f64, cfg: &GangConfig) {
        self.sent_bytes += self.round_bytes;
        let dirtied_pages = self.queue.merge(&self.written);
        self.written.clear();
        // QEMU's clock starts with its migration, after the preparation.
        let elapsed_s = now_s - self.sync_clock_s;
        let round_s = (now_s - self.round_start_s).max(EPSILON_S);
        let observation = RoundObservation {
            round: self.round,
            elapsed_ms: (elapsed_s * 1000.0) as u64,
            dirtied_pages,
            pending_bytes: self.queue.len_pages() * PAGE_SIZE_BYTES,
            sent_bytes: self.sent_bytes,
            // QEMU's estimate: what the last round achieved (a round that
            // sent nothing reads as the share).
            bandwidth_bytes_per_s: if self.round_bytes > 0 {
                self.round_bytes as f64 / round_s
            } else {
                share_bytes_per_s
            },
            page_size_bytes: PAGE_SIZE_BYTES,
            ram_bytes: self.ram_bytes,
        };
        let decision = self.policy.observe(&observation);
        self.last_reason = decision.reason;
        self.guest
            .set_throttle(f64::from(decision.throttle_pct) / 100.0);
        self.guest.set_dirty_limit(decision.dirty_limit_bytes_per_s);
        match acted_on(&decision, &observation) {
            Action::StopAndCopy => {
                self.phase = Phase::Copying {
                    left_bytes: self.queue.wire_bytes(&self.nonzero) as f64,
                    paused_s: now_s,
                };
            }
            Action::Abort => self.end(now_s, MigrationStatus::Aborted, None),
            Action::Continue | Action::Fallback | Action::Escalate => {
                if now_s - self.start_s >= cfg.time_cap_s {
                    self.end(now_s, MigrationStatus::TimedOut, None);
                } else {
                    self.round += 1;
                    self.next_round(now_s);
                }
            }
        }
    }
}

/// Migrate `guests` over the link of `cfg`, started as `dispatcher` says.
pub fn simulate_gang(
    guests: Vec<GangGuest<'_>>,
    dispatcher: &mut dyn Dispatcher,
    cfg: &GangConfig,
) -> GangOutcome {
    simulate_rack(guests, dispatcher, cfg, None)
}

/// Each lane's rate when `sending` says which send: the one link's fair
/// share, or the rack's max-min fair shares (each host's link is the
/// link of `cfg`).
fn shares_into(cfg: &GangConfig, rack: Option<&Rack>, sending: &[bool], out: &mut Vec<f64>) {
    match rack {
        Some(rack) => rack.shares_into(
            cfg.link_bytes_per_s,
            cfg.per_migration_bytes_per_s,
            sending,
            out,
        ),
        None => {
            let share = cfg.share_bytes_per_s(sending.iter().filter(|&&s| s).count());
            out.clear();
            out.extend(sending.iter().map(|&s| if s { share } else { 0.0 }));
        }
    }
}

/// Migrate `guests` over the link of `cfg` — or, with a `rack`, each
/// guest over its host's link (the link of `cfg`) and all through the
/// rack's uplink — started as `dispatcher` says.
pub fn simulate_rack(
    guests: Vec<GangGuest<'_>>,
    dispatcher: &mut dyn Dispatcher,
    cfg: &GangConfig,
    rack: Option<&Rack>,
) -> GangOutcome {
    let mut lanes: Vec<Lane> = guests.into_iter().map(Lane::new).collect();
    let mut now_s: f64 = 0.0;
    let mut sending: Vec<bool> = Vec::with_capacity(lanes.len());
    let mut shares: Vec<f64> = Vec::with_capacity(lanes.len());
    let mut resumed: Vec<f64> = Vec::with_capacity(lanes.len());
    loop {
        let waiting: Vec<usize> = (0..lanes.len())
            .filter(|&i| lanes[i].phase == Phase::Waiting)
            .collect();
        let running: Vec<usize> = (0..lanes.len()).filter(|&i| lanes[i].active()).collect();
        for g in dispatcher.start_now(now_s, &running, &waiting) {
            if lanes.get(g).is_some_and(|l| l.phase == Phase::Waiting) {
                lanes[g].begin(now_s, cfg.warmup_s + now_s, cfg.setup_s.max(0.0));
            }
        }
        sending.clear();
        sending.extend(lanes.iter().map(Lane::sending));
        shares_into(cfg, rack, &sending, &mut shares);
        // The next event: a send or a sync ending, or a planned start.
        let mut next_s = f64::INFINITY;
        for (lane, &share) in lanes.iter().zip(&shares) {
            let at = match lane.phase {
                Phase::Sending { left_bytes } | Phase::Copying { left_bytes, .. } => {
                    now_s + left_bytes / share
                }
                Phase::Syncing { until_s } => until_s,
                Phase::Waiting | Phase::Done => f64::INFINITY,
            };
            next_s = next_s.min(at);
        }
        if lanes.iter().any(|l| l.phase == Phase::Waiting) {
            if let Some(wake_s) = dispatcher.wake_after(now_s) {
                next_s = next_s.min(wake_s);
            }
        }
        if !next_s.is_finite() {
            break;
        }
        let step_s = (next_s - now_s).max(0.0);
        now_s = next_s;
        for (i, lane) in lanes.iter_mut().enumerate() {
            let share = shares[i];
            if lane.running() {
                let program_s = cfg.warmup_s + now_s;
                lane.guest
                    .run_until(program_s, &mut lane.written, &mut lane.nonzero);
            }
            match lane.phase {
                Phase::Sending { left_bytes } => {
                    let left_bytes = left_bytes - share * step_s;
                    lane.phase = if left_bytes <= SENT_BYTES {
                        Phase::Syncing {
                            until_s: now_s + SYNC_COST_S,
                        }
                    } else {
                        Phase::Sending { left_bytes }
                    };
                }
                Phase::Copying {
                    left_bytes,
                    paused_s,
                } => {
                    let left_bytes = left_bytes - share * step_s;
                    if left_bytes <= SENT_BYTES {
                        let downtime_ms = (now_s - paused_s) * 1000.0 + SWITCHOVER_COST_MS;
                        lane.end(
                            now_s + SWITCHOVER_COST_MS / 1000.0,
                            MigrationStatus::Completed,
                            Some(downtime_ms),
                        );
                    } else {
                        lane.phase = Phase::Copying {
                            left_bytes,
                            paused_s,
                        };
                    }
                }
                Phase::Syncing { until_s } if until_s <= now_s + EPSILON_S => {
                    // Its share once it sends again.
                    sending[i] = true;
                    shares_into(cfg, rack, &sending, &mut resumed);
                    sending[i] = false;
                    lane.sync(now_s, resumed[i], cfg)
                }
                _ => {}
            }
        }
    }
    let runs: Vec<GangRun> = lanes
        .iter()
        .map(|l| {
            l.run.unwrap_or(GangRun {
                start_s: l.start_s,
                end_s: now_s,
                status: MigrationStatus::TimedOut,
                reason: l.last_reason,
                downtime_ms: None,
                rounds: 0,
                transferred_bytes: l.sent_bytes,
            })
        })
        .collect();
    let makespan_s = runs.iter().map(|r| r.end_s).fold(0.0, f64::max);
    GangOutcome { runs, makespan_s }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::{simulate, SimConfig};
    use kairos_policy_core::policies::{build_policy, PolicyKind};
    use kairos_policy_core::PolicyConfig;
    use std::path::Path;

    fn workload(text: &str) -> Workload {
        Workload::from_toml(text, Path::new("t.toml")).unwrap()
    }

    fn writer() -> Workload {
        workload("name='w'\nram_mib=256\n[[phase]]\nkind='write'\nseconds=1000\nwss_mib=48\nrate_mib_s=30\n")
    }

    fn guest(w: &Workload, kind: PolicyKind, seed: u64) -> GangGuest<'_> {
        GangGuest {
            workload: w,
            policy: build_policy(kind, &PolicyConfig::default()).unwrap(),
            seed,
        }
    }

    fn cfg() -> GangConfig {
        GangConfig {
            link_bytes_per_s: 100e6,
            per_migration_bytes_per_s: None,
            warmup_s: 10.0,
            time_cap_s: 300.0,
            setup_s: 0.0,
        }
    }

    #[test]
    fn one_guest_is_the_single_guest_simulator() {
        let w = writer();
        for kind in [PolicyKind::Qemu, PolicyKind::Predictive] {
            let single = simulate(
                &w,
                build_policy(kind, &PolicyConfig::default())
                    .unwrap()
                    .as_mut(),
                &SimConfig {
                    bandwidth_bytes_per_s: 100e6,
                    bandwidth_jitter: 0.0,
                    warmup_s: 10.0,
                    time_cap_s: 300.0,
                    ..SimConfig::default()
                },
                None,
            );
            let gang = simulate_gang(
                vec![guest(&w, kind, 1)],
                &mut Schedule {
                    order: vec![0],
                    concurrency: 1,
                    not_before_s: vec![],
                },
                &cfg(),
            );
            let run = gang.runs[0];
            assert_eq!(run.status, single.status, "{kind:?}");
            assert_eq!(run.rounds as usize, single.rounds.len(), "{kind:?}");
            assert!(
                ((run.end_s - run.start_s) * 1000.0 - single.total_time_ms).abs() < 0.01,
                "{kind:?}: {} vs {}",
                (run.end_s - run.start_s) * 1000.0,
                single.total_time_ms
            );
            let (d, e) = (run.downtime_ms.unwrap(), single.downtime_ms.unwrap());
            assert!((d - e).abs() < 0.01, "{kind:?}: {d} vs {e}");
        }
    }

    #[test]
    fn guests_at_once_share_the_link_and_one_at_a_time_queue() {
        let w = workload("name='i'\nram_mib=256\n[[phase]]\nkind='idle'\nseconds=1000\n");
        let run = |concurrency| {
            simulate_gang(
                (0..4).map(|s| guest(&w, PolicyKind::Qemu, s)).collect(),
                &mut Schedule {
                    order: vec![3, 1, 0, 2],
                    concurrency,
                    not_before_s: vec![],
                },
                &cfg(),
            )
        };
        let serial = run(1);
        let together = run(4);
        for o in [&serial, &together] {
            assert!(o
                .runs
                .iter()
                .all(|r| r.status == MigrationStatus::Completed));
        }
        // Serial: in the order given, each starting as the one before ends.
        let starts: Vec<f64> = [3, 1, 0, 2]
            .iter()
            .map(|&i| serial.runs[i].start_s)
            .collect();
        assert!(starts.windows(2).all(|p| p[0] < p[1]), "{starts:?}");
        // The link frees when the last bytes are sent; the switch-over
        // after it does not hold it.
        let gap_s = serial.runs[3].end_s - serial.runs[1].start_s;
        assert!(
            (gap_s - SWITCHOVER_COST_MS / 1000.0).abs() < 1e-6,
            "{gap_s}"
        );
        // An idle guest is one pass of its memory, a sync and the
        // switch-over: together, each sends four times as long as alone.
        let fixed_s = SYNC_COST_S + SWITCHOVER_COST_MS / 1000.0;
        let alone = serial.runs[3].end_s - serial.runs[3].start_s;
        for r in &together.runs {
            let took = r.end_s - r.start_s;
            let expected = 4.0 * (alone - fixed_s) + fixed_s;
            assert!((took - expected).abs() < 1e-6, "{took} vs {expected}");
        }
        // Bytes are bytes: the makespans agree within the syncs' costs.
        assert!((together.makespan_s / serial.makespan_s - 1.0).abs() < 0.02);
    }

    #[test]
    fn a_migration_capped_below_the_link_leaves_room_for_another() {
        let w = workload("name='i'\nram_mib=256\n[[phase]]\nkind='idle'\nseconds=1000\n");
        let capped = GangConfig {
            per_migration_bytes_per_s: Some(50e6),
            ..cfg()
        };
        let run = |concurrency| {
            simulate_gang(
                (0..2).map(|s| guest(&w, PolicyKind::Qemu, s)).collect(),
                &mut Schedule {
                    order: vec![0, 1],
                    concurrency,
                    not_before_s: vec![],
                },
                &capped,
            )
        };
        let (serial, together) = (run(1), run(2));
        // Each at its cap either way: together, in half the time.
        let alone = serial.runs[0].end_s - serial.runs[0].start_s;
        let both = together.runs[0].end_s - together.runs[0].start_s;
        assert!((alone - both).abs() < 1e-6, "{alone} {both}");
        assert!((together.makespan_s / serial.makespan_s - 0.5).abs() < 0.02);
    }

    #[test]
    fn a_start_waits_for_its_time() {
        let w = writer();
        let o = simulate_gang(
            vec![
                guest(&w, PolicyKind::Qemu, 1),
                guest(&w, PolicyKind::Qemu, 2),
            ],
            &mut Schedule {
                order: vec![0, 1],
                concurrency: 2,
                not_before_s: vec![0.0, 30.0],
            },
            &cfg(),
        );
        assert_eq!(o.runs[1].start_s, 30.0);
        assert!(o.runs[0].end_s < 30.0, "{:?}", o.runs[0]);
        assert!(o
            .runs
            .iter()
            .all(|r| r.status == MigrationStatus::Completed));
    }
}

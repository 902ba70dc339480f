//! Page-level simulation of QEMU's pre-copy loop with a policy in it.
//!
//! Round 1 is the sync at the start: every page is pending. QEMU sends
//! pending pages at the link bandwidth (zero pages cost [`ZERO_PAGE_BYTES`])
//! while the [`guest::Guest`] writes pages as its workload program says; a
//! sync adds what it wrote to the pages still pending ([`pass::SendQueue`]),
//! and the policy decides. When it says stop, the pending pages are sent
//! with the guest paused:
//! downtime = pending bytes / bandwidth + [`SWITCHOVER_COST_MS`].
//!
//! When the next sync comes is the [`SyncModel`]: after the whole pass, or,
//! as QEMU 10 does, as soon as what is left of it falls below QEMU's
//! threshold.

pub mod access;
pub mod guest;
pub mod link;
pub mod pass;
pub mod workload;

use serde::{Deserialize, Serialize};

use crate::oracle::StopCost;
use crate::outcome::{acted_on, MigrationStatus};
use guest::{DirtySet, Guest, PAGES_PER_MIB};
use kairos_policy_core::decision::{Action, Decision, Reason};
use kairos_policy_core::observation::RoundObservation;
use kairos_policy_core::policies::ConvergencePolicy;
use link::Link;
use pass::SendQueue;
use workload::Workload;

/// Page size of the simulated guest, bytes.
pub const PAGE_SIZE_BYTES: u64 = 4096;
/// Bytes on the wire for a zero page (QEMU sends a page header and a flag).
pub const ZERO_PAGE_BYTES: u64 = 16;
/// Fixed cost of the switch-over, ms: device state, stopping the vCPUs on
/// the source and starting them on the destination. The order of the
/// 19 ms downtime measured for a near-empty remainder on this test-bed.
pub const SWITCHOVER_COST_MS: f64 = 20.0;
/// Cost of one dirty-bitmap sync, seconds (also the shortest round).
pub const SYNC_COST_S: f64 = 0.002;

/// When the simulated QEMU syncs its dirty bitmap (and the policy decides).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SyncModel {
    /// After each whole pass over the pages the last sync found: a stop
    /// can only come at the end of a pass, and the oracle over the
    /// never-stop run's syncs is exact.
    #[default]
    FullPass,
    /// As QEMU 10 does with `max-bandwidth` set: it sends one rate-limit
    /// slot (bandwidth × 100 ms) at a time and syncs once what is left of
    /// the pass is below bandwidth × the downtime limit in force (the
    /// decision's `downtime_limit_ms`), so QEMU's rule stops mid-pass, and
    /// near the threshold syncs follow one another, one slot apart at
    /// most. The bandwidth is measured over 100 ms windows, and its noise
    /// drawn per window. The never-stop run's syncs are no longer the only
    /// places to stop, so there is no exact oracle.
    Threshold,
}

/// How to run a simulation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SimConfig {
    /// Link bandwidth (QEMU's `max-bandwidth`), bytes per second.
    pub bandwidth_bytes_per_s: f64,
    /// Relative per-round bandwidth noise, uniform in ±this.
    pub bandwidth_jitter: f64,
    /// Seed of the guest's page choices and of the bandwidth noise.
    pub seed: u64,
    /// Seconds the workload runs before the migration starts.
    pub warmup_s: f64,
    /// Give up after this long, seconds.
    pub time_cap_s: f64,
    /// When QEMU syncs.
    pub sync_model: SyncModel,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            bandwidth_bytes_per_s: 125e6,
            bandwidth_jitter: 0.05,
            seed: 1,
            warmup_s: 0.0,
            time_cap_s: 600.0,
            sync_model: SyncModel::FullPass,
        }
    }
}

/// One round of a simulated migration.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct SimRound {
    /// What the policy saw.
    pub observation: RoundObservation,
    /// What it said.
    pub decision: Decision,
    /// What stopping here would have cost.
    pub stop_cost: StopCost,
    /// The guest program's phase serial at this sync
    /// ([`guest::Guest::phase_serial`]): rounds with the same serial as the
    /// sync before them lie within one phase.
    pub phase_serial: u64,
}

/// The result of one simulated migration.
#[derive(Debug, Clone, Serialize)]
pub struct SimRun {
    /// Every round.
    pub rounds: Vec<SimRound>,
    /// How it ended: completed, aborted or timed-out.
    pub status: MigrationStatus,
    /// Reason of the last decision.
    pub reason: Reason,
    /// Total migration time, ms (to the end of stop-and-copy, or to the
    /// abort / time cap).
    pub total_time_ms: f64,
    /// Downtime, ms, when it converged.
    pub downtime_ms: Option<f64>,
    /// Bytes sent in all (QEMU's `ram.transferred`).
    pub transferred_bytes: u64,
    /// Times the policy escalated: throttles or dirty-rate limits started, and post-copy asked
    /// for (not simulated: the migration goes on).
    pub escalations: u32,
    /// Guest work lost to throttling (or a dirty-rate limit) during the migration, %.
    pub app_loss_pct: f64,
}

/// Pages QEMU sends before its next sync: the whole pass, or, in the
/// threshold model, one rate-limit slot's worth at a time (QEMU sends up to
/// `max-bandwidth` × 100 ms, then checks its estimate) until the rest,
/// counted as whole pages as QEMU's estimate does, is below
/// `threshold_bytes`; already below it, one slot.
fn pages_before_sync(cfg: &SimConfig, pending_pages: u64, threshold_bytes: f64) -> u64 {
    if cfg.sync_model == SyncModel::FullPass || threshold_bytes.is_nan() || threshold_bytes <= 0.0 {
        return pending_pages;
    }
    let slot_pages =
        ((cfg.bandwidth_bytes_per_s * link::WINDOW_S) / PAGE_SIZE_BYTES as f64).max(1.0) as u64;
    let below_pages = (threshold_bytes / PAGE_SIZE_BYTES as f64).ceil() as u64 - 1;
    let excess_pages = pending_pages.saturating_sub(below_pages);
    (excess_pages.div_ceil(slot_pages).max(1) * slot_pages).min(pending_pages)
}

/// Simulate one migration of `workload` under `policy`.
///
/// `stop_early_when` lets the oracle's never-stop run end as soon as a round
/// meets the given downtime (nothing later can be the oracle's choice).
pub fn simulate(
    workload: &Workload,
    policy: &mut dyn ConvergencePolicy,
    cfg: &SimConfig,
    stop_early_when_downtime_ms: Option<f64>,
) -> SimRun {
    let mut ready = ReadyGuest::new(workload, cfg.seed);
    // Warm-up: the workload runs before the migration starts.
    ready.advance_to(cfg.warmup_s);
    simulate_ready(workload, ready, policy, cfg, stop_early_when_downtime_ms)
}

/// A guest run up to some moment with nothing migrating, ready to be
/// migrated from there: cloned, one run up to a moment serves migrations
/// started at many later moments (the start-time oracle of `advise`).
#[derive(Clone)]
pub struct ReadyGuest {
    guest: Guest,
    nonzero: DirtySet,
    scratch: DirtySet,
    /// The program time it has been run to, s.
    at_s: f64,
}

impl ReadyGuest {
    /// `workload`'s guest at program time 0.
    pub fn new(workload: &Workload, seed: u64) -> Self {
        let guest = Guest::new(workload, seed);
        let pages = guest.page_count();
        let mut nonzero = DirtySet::new(pages);
        for page in 0..guest.initially_nonzero_pages() {
            nonzero.insert(page);
        }
        Self {
            guest,
            nonzero,
            scratch: DirtySet::new(pages),
            at_s: 0.0,
        }
    }

    /// Run the guest on to program time `t_s` (what it dirties is
    /// forgotten: nothing is migrating).
    pub fn advance_to(&mut self, t_s: f64) {
        self.guest
            .run_until(t_s, &mut self.scratch, &mut self.nonzero);
        self.scratch.clear();
        self.at_s = self.at_s.max(t_s);
    }

    /// The program time it has been run to, s.
    pub fn at_s(&self) -> f64 {
        self.at_s
    }

    /// The guest, its nonzero pages, and an empty dirty set of its size.
    pub(crate) fn into_parts(self) -> (Guest, DirtySet, DirtySet) {
        (self.guest, self.nonzero, self.scratch)
    }
}

/// Simulate one migration of `workload` started at the moment `ready` was
/// run to (the `warmup_s` of `cfg` is not used; see [`simulate`]).
pub fn simulate_ready(
    workload: &Workload,
    ready: ReadyGuest,
    policy: &mut dyn ConvergencePolicy,
    cfg: &SimConfig,
    stop_early_when_downtime_ms: Option<f64>,
) -> SimRun {
    let ReadyGuest {
        mut guest,
        mut nonzero,
        scratch: mut written,
        at_s: start_s,
    } = ready;
    let page_count = guest.page_count();
    let ram_bytes = workload.ram_mib * PAGES_PER_MIB * PAGE_SIZE_BYTES;

    let mut rounds = Vec::new();
    let mut now_s = start_s;
    let mut sent_bytes: u64 = 0;
    let mut round: u64 = 1;
    let mut queue = SendQueue::full(page_count);
    let mut pending_wire_bytes = queue.wire_bytes(&nonzero);
    let mut dirtied_pages = 0;
    let mut link = Link::new(cfg, workload.link, start_s);
    let mut escalations = 0;

    loop {
        let elapsed_s = now_s - start_s;
        let measured_bandwidth = link.estimate_bytes_per_s();
        let observation = RoundObservation {
            round,
            elapsed_ms: (elapsed_s * 1000.0) as u64,
            dirtied_pages,
            pending_bytes: queue.len_pages() * PAGE_SIZE_BYTES,
            sent_bytes,
            bandwidth_bytes_per_s: measured_bandwidth,
            page_size_bytes: PAGE_SIZE_BYTES,
            ram_bytes,
        };
        // What the link gives a stop now (noise, competing traffic).
        let final_bandwidth = link.bandwidth_at(round, now_s);
        let downtime_ms = pending_wire_bytes as f64 / final_bandwidth * 1000.0 + SWITCHOVER_COST_MS;
        let stop_cost = StopCost {
            round,
            total_time_ms: elapsed_s * 1000.0 + downtime_ms,
            downtime_ms,
        };
        let decision = policy.observe(&observation);
        rounds.push(SimRound {
            observation,
            decision,
            stop_cost,
            phase_serial: guest.phase_serial(),
        });
        // The throttle or dirty-rate limit the policy wants in force from
        // now on.
        let slowed = guest.throttle() > 0.0 || guest.dirty_limit_bytes_per_s() > 0.0;
        if (decision.throttle_pct > 0 || decision.dirty_limit_bytes_per_s > 0.0) && !slowed {
            escalations += 1;
        }
        guest.set_throttle(f64::from(decision.throttle_pct) / 100.0);
        guest.set_dirty_limit(decision.dirty_limit_bytes_per_s);
        let ending = match acted_on(&decision, &observation) {
            Action::StopAndCopy => Some((
                MigrationStatus::Completed,
                stop_cost.total_time_ms,
                Some(downtime_ms),
                sent_bytes + pending_wire_bytes,
            )),
            Action::Abort => Some((
                MigrationStatus::Aborted,
                elapsed_s * 1000.0,
                None,
                sent_bytes,
            )),
            // Post-copy is not simulated: the migration goes on.
            Action::Escalate => {
                escalations += 1;
                None
            }
            Action::Continue | Action::Fallback => None,
        };
        let out_of_time = stop_early_when_downtime_ms.is_some_and(|limit| downtime_ms <= limit)
            || elapsed_s >= cfg.time_cap_s;
        let ending = ending.or_else(|| {
            out_of_time.then_some((
                MigrationStatus::TimedOut,
                elapsed_s * 1000.0,
                None,
                sent_bytes,
            ))
        });
        if let Some((status, total_time_ms, downtime_ms, sent_bytes)) = ending {
            return SimRun {
                rounds,
                status,
                reason: decision.reason,
                total_time_ms,
                downtime_ms,
                transferred_bytes: sent_bytes,
                escalations,
                app_loss_pct: guest.throughput_loss_pct(),
            };
        }
        // Send until the next sync while the guest keeps writing.
        let threshold_bytes =
            observation.threshold_bytes(decision.downtime_limit_ms.max(decision.sync_below_ms));
        let pages = pages_before_sync(cfg, queue.len_pages(), threshold_bytes);
        let round_bytes = queue.send(pages, &nonzero);
        let duration_s = link.send(round, now_s, round_bytes, sent_bytes);
        guest.run_until(now_s + duration_s, &mut written, &mut nonzero);
        now_s += duration_s;
        sent_bytes += round_bytes;
        round += 1;
        dirtied_pages = queue.merge(&written);
        written.clear();
        pending_wire_bytes = queue.wire_bytes(&nonzero);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kairos_policy_core::policies::{build_policy, PolicyKind};
    use kairos_policy_core::PolicyConfig;
    use std::path::Path;

    fn workload(text: &str) -> Workload {
        Workload::from_toml(text, Path::new("t.toml")).unwrap()
    }

    #[test]
    fn static_wss_converges_at_the_hand_computed_round() {
        // 256 MiB guest, 32 MiB working set written sequentially at 4 MiB/s,
        // link 100 MB/s, no jitter. Round 1 sends 96 MiB of data + 160 MiB of
        // zero pages: 1.0066 s + 0.655 ms + 2 ms sync = 1.00922 s, during
        // which 4.0369 MiB = 1033 pages are written (sequential: all unique).
        // Round 2 sends 1033 pages (4.231 MB): 0.04431 s → 45 pages.
        // QEMU's threshold at 300 ms is 0.3 × measured bandwidth; round 2's
        // pending (4.23 MB) exceeds it? 0.3 × 95.5 MB/s = 28.6 MB: no, it
        // fits. So qemu stops at round 2.
        let w = workload("name='s'\nram_mib=256\n[[phase]]\nkind='write'\nseconds=1000\nwss_mib=32\nrate_mib_s=4\npattern='sequential'\n");
        let cfg = SimConfig {
            bandwidth_bytes_per_s: 100e6,
            bandwidth_jitter: 0.0,
            ..SimConfig::default()
        };
        let mut policy = build_policy(PolicyKind::Qemu, &PolicyConfig::default()).unwrap();
        let run = simulate(&w, policy.as_mut(), &cfg, None);
        assert_eq!(run.status, MigrationStatus::Completed);
        assert_eq!(run.rounds.len(), 2);
        let round1_s = (96.0 * 1048576.0 + 160.0 * 256.0 * 16.0) / 100e6 + SYNC_COST_S;
        let expected_pages = (round1_s * 4.0 * 256.0).ceil() as u64;
        assert_eq!(run.rounds[1].observation.dirtied_pages, expected_pages);
        let expected_downtime =
            expected_pages as f64 * 4096.0 / 100e6 * 1000.0 + SWITCHOVER_COST_MS;
        assert!((run.downtime_ms.unwrap() - expected_downtime).abs() < 1e-6);
    }

    #[test]
    fn a_guest_run_to_its_start_in_steps_migrates_as_after_a_warm_up() {
        let w = workload("name='c'\nram_mib=256\nrepeat=true\n[[phase]]\nkind='write'\nseconds=7\nwss_mib=64\nrate_mib_s=90\n[[phase]]\nkind='write'\nseconds=11\nwss_mib=8\nrate_mib_s=2\n");
        let cfg = SimConfig {
            warmup_s: 37.5,
            ..SimConfig::default()
        };
        let policy = || build_policy(PolicyKind::Predictive, &PolicyConfig::default()).unwrap();
        let warmed = simulate(&w, policy().as_mut(), &cfg, None);
        let mut ready = ReadyGuest::new(&w, cfg.seed);
        for t in 1..=37 {
            ready.advance_to(f64::from(t));
        }
        ready.advance_to(37.5);
        // A clone taken on the way does not disturb the original.
        let _ = ready.clone();
        let stepped = simulate_ready(&w, ready, policy().as_mut(), &cfg, None);
        assert_eq!(stepped.status, warmed.status);
        assert_eq!(stepped.rounds.len(), warmed.rounds.len());
        assert_eq!(stepped.total_time_ms, warmed.total_time_ms);
        assert_eq!(stepped.downtime_ms, warmed.downtime_ms);
    }

    #[test]
    fn dirty_rate_above_bandwidth_never_converges_under_qemu() {
        // 400 MiB working set written at 200 MiB/s over a 100 MB/s link.
        let w = workload("name='h'\nram_mib=512\n[[phase]]\nkind='write'\nseconds=1000\nwss_mib=400\nrate_mib_s=200\n");
        let cfg = SimConfig {
            bandwidth_bytes_per_s: 100e6,
            time_cap_s: 60.0,
            ..SimConfig::default()
        };
        let mut policy = build_policy(PolicyKind::Qemu, &PolicyConfig::default()).unwrap();
        let run = simulate(&w, policy.as_mut(), &cfg, None);
        assert_eq!(run.status, MigrationStatus::TimedOut);
        assert!(run.rounds.len() > 5);
    }

    #[test]
    fn a_throttle_that_does_not_slow_the_writer_is_released() {
        // The writer needs 0.5 % of a vCPU: no throttle QEMU offers (99 %
        // at most) cuts its pace, so once throttled rounds show that, the
        // policy lets the guest run at full speed again; it probes again
        // later, each time after a longer pause, and never keeps a
        // throttle longer than its confirmation.
        let w = workload("name='h'\nram_mib=512\n[[phase]]\nkind='write'\nseconds=1000\nwss_mib=400\nrate_mib_s=200\ncpu_share=0.005\n");
        let cfg = SimConfig {
            bandwidth_bytes_per_s: 100e6,
            time_cap_s: 60.0,
            ..SimConfig::default()
        };
        let policy_cfg = PolicyConfig {
            max_downtime_ms: 300.0,
            escalation: kairos_policy_core::Escalation::Throttle,
            ..PolicyConfig::default()
        };
        let mut policy = build_policy(PolicyKind::Predictive, &policy_cfg).unwrap();
        let run = simulate(&w, policy.as_mut(), &cfg, None);
        let pcts: Vec<u8> = run.rounds.iter().map(|r| r.decision.throttle_pct).collect();
        // Runs of throttled rounds (probes), and the pauses between them.
        let mut probes: Vec<(usize, usize)> = Vec::new();
        for (i, &pct) in pcts.iter().enumerate() {
            match probes.last_mut() {
                Some((_, end)) if pct > 0 && *end == i => *end = i + 1,
                _ if pct > 0 => probes.push((i, i + 1)),
                _ => {}
            }
        }
        assert!(probes.len() >= 2, "not tried again: {pcts:?}");
        // A probe lasts until no throttle is confirmed to help: the
        // confirmation's two rounds and the one that set it.
        assert!(
            probes.iter().all(|(start, end)| end - start <= 3),
            "kept a useless throttle: {pcts:?}"
        );
        let pauses: Vec<usize> = probes.windows(2).map(|w| w[1].0 - w[0].1).collect();
        assert!(
            pauses.windows(2).all(|p| p[1] > p[0]),
            "probes not ever rarer: {pcts:?}"
        );
        assert!(run.app_loss_pct < 10.0, "{}", run.app_loss_pct);
    }

    #[test]
    fn escalation_throttles_the_guest() {
        let w = workload("name='h'\nram_mib=512\n[[phase]]\nkind='write'\nseconds=1000\nwss_mib=400\nrate_mib_s=200\n");
        let cfg = SimConfig {
            bandwidth_bytes_per_s: 100e6,
            time_cap_s: 120.0,
            ..SimConfig::default()
        };
        let policy_cfg = PolicyConfig {
            escalation: kairos_policy_core::Escalation::Throttle,
            ..PolicyConfig::default()
        };
        let mut policy = build_policy(PolicyKind::Predictive, &policy_cfg).unwrap();
        let run = simulate(&w, policy.as_mut(), &cfg, None);
        assert!(run.escalations > 0);
        assert!(run.app_loss_pct > 0.0);
        assert_eq!(run.status, MigrationStatus::Completed, "{:?}", run.reason);
        assert!(run.downtime_ms.unwrap() <= policy_cfg.max_downtime_ms);
        // Without escalation nothing fits the maximum: at the safety cap on
        // bytes sent it gives up rather than stop above the maximum.
        let mut plain = build_policy(PolicyKind::Predictive, &PolicyConfig::default()).unwrap();
        let plain_run = simulate(&w, plain.as_mut(), &cfg, None);
        assert_eq!(plain_run.escalations, 0);
        assert_eq!(plain_run.reason, Reason::SafetyCap);
        assert_eq!(plain_run.status, MigrationStatus::Aborted);
        assert_eq!(plain_run.downtime_ms, None);
        assert!(plain_run.total_time_ms > run.total_time_ms);
    }

    #[test]
    fn a_shared_link_slows_the_migration() {
        let text = "name='l'\nram_mib=512\n[[phase]]\nkind='write'\nseconds=1000\nwss_mib=40\nrate_mib_s=40\n";
        let plain = workload(text);
        let shared = workload(&format!(
            "{text}[link]\nperiod_s = 1000\nshared_s = 1000\nshared_fraction = 0.5\n"
        ));
        let cfg = SimConfig::default();
        let run = |w: &Workload| {
            let mut p = build_policy(PolicyKind::Qemu, &PolicyConfig::default()).unwrap();
            simulate(w, p.as_mut(), &cfg, None)
        };
        let (a, b) = (run(&plain), run(&shared));
        assert_eq!(a.status, MigrationStatus::Completed);
        assert!(
            b.total_time_ms > 1.8 * a.total_time_ms,
            "{} vs {}",
            b.total_time_ms,
            a.total_time_ms
        );
    }
}

//! A host emptied live: its guests' migrations started when a
//! [`Dispatcher`] says (a fixed concurrency, or Kairos's planner), each
//! carried out on a thread of its own, the dispatcher asked again at every
//! end and at the moments it asked to be woken. A migration's slot frees
//! when it ends; the guest's check on arrival runs after that, beside the
//! next migrations. Ctrl-C stops starting migrations; each running one is
//! cancelled by its own follow loop, which waits for it to end, and is
//! reported as it ended (cancelled, or completed when the cancel came too
//! late).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use kairos_eval::gang::sim::Dispatcher;
use kairos_eval::outcome::MigrationStatus;
use serde::Serialize;

use super::interrupt;
use super::send_rate::{is_sending, SoloSendRate};

/// How often the evacuation shows its progress while nothing happens.
const STATUS_EVERY: Duration = Duration::from_secs(5);
/// The longest the dispatcher waits between two looks at the guests (a
/// signal is seen within it).
const TICK: Duration = Duration::from_millis(250);

/// Where one guest's migration is, as its thread reports it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MigrationProgress {
    /// QEMU's status (`setup`, `active`, …).
    pub status: String,
    /// Syncs so far.
    pub rounds: u64,
    /// Bytes still to send, as QEMU counts them.
    pub remaining_bytes: u64,
    /// Bytes sent so far, as QEMU counts them.
    pub transferred_bytes: u64,
    /// Time into the migration by QEMU's clock (`total-time`), ms.
    pub elapsed_ms: u64,
}

/// How one guest's migration ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GuestOutcome {
    /// How it ended.
    pub status: MigrationStatus,
    /// QEMU's (or libvirt's) total time, ms.
    pub total_time_ms: Option<f64>,
    /// Its downtime as the management layer measured it (libvirt: from
    /// the pause to the resume on the destination, its own hand-over
    /// included), ms.
    pub downtime_ms: Option<f64>,
    /// Its downtime as the source QEMU measured it, ms, when seen.
    pub qemu_downtime_ms: Option<f64>,
    /// Syncs.
    pub rounds: Option<u64>,
    /// Bytes sent.
    pub transferred_bytes: Option<u64>,
    /// The policy's last action and reason, when it was seen.
    pub decision: Option<String>,
    /// The guest's page check on arrival: true when it found no wrong
    /// page, None when the guest reports none.
    pub verified: Option<bool>,
    /// What went wrong, when it did not complete.
    pub error: Option<String>,
}

/// One guest's migration, as the evacuation runs it.
pub trait GuestMigration: Send {
    /// The guest's name.
    fn name(&self) -> &str;

    /// Migrate it; blocks until the migration ends. `progress` is told at
    /// every poll.
    fn migrate(&mut self, progress: &mut dyn FnMut(MigrationProgress)) -> Result<GuestOutcome>;

    /// After a completed migration: the guest's own check once it runs on
    /// the destination (true: nothing wrong), or None when there is none
    /// to read.
    fn verify_arrival(&mut self) -> Option<bool> {
        None
    }
}

/// One guest in the evacuation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvacuatedGuest {
    /// Its name.
    pub name: String,
    /// When its migration started, s after the evacuation's start (None:
    /// never started).
    pub start_s: Option<f64>,
    /// When it ended, s after the evacuation's start.
    pub end_s: Option<f64>,
    /// How it ended (None: never started).
    pub outcome: Option<GuestOutcome>,
}

/// What the evacuation did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evacuation {
    /// Per guest, in the order given.
    pub guests: Vec<EvacuatedGuest>,
    /// From the start to the last migration's end, s.
    pub makespan_s: f64,
    /// True when Ctrl-C (or SIGTERM) stopped it.
    pub interrupted: bool,
    /// What one migration sent at while it was the only one sending,
    /// bytes/s (told to the dispatcher; None: never measured).
    pub solo_send_rate_bytes_per_s: Option<f64>,
}

impl Evacuation {
    /// Guests whose migration completed with its page check clean (or no
    /// check to make).
    pub fn completed(&self) -> usize {
        self.guests
            .iter()
            .filter(|g| {
                g.outcome.as_ref().is_some_and(|o| {
                    o.status == MigrationStatus::Completed && o.verified != Some(false)
                })
            })
            .count()
    }
}

/// What a migration's thread tells the evacuation.
enum Message {
    Progress(usize, MigrationProgress),
    Ended(usize, Result<GuestOutcome>),
    /// The arrival check, after `Ended` (always sent, None when none).
    Verified(usize, Option<bool>),
}

/// Run the evacuation: start what `dispatcher` says, when it says, until
/// every guest has gone (or a signal stopped it).
pub fn evacuate(
    migrations: Vec<Box<dyn GuestMigration>>,
    dispatcher: &mut dyn Dispatcher,
) -> Result<Evacuation> {
    let started = Instant::now();
    let now_s = || started.elapsed().as_secs_f64();
    let names: Vec<String> = migrations.iter().map(|m| m.name().to_string()).collect();
    let mut guests: Vec<EvacuatedGuest> = names
        .iter()
        .map(|name| EvacuatedGuest {
            name: name.clone(),
            start_s: None,
            end_s: None,
            outcome: None,
        })
        .collect();
    let mut idle: Vec<Option<Box<dyn GuestMigration>>> = migrations.into_iter().map(Some).collect();
    let mut waiting: Vec<usize> = (0..idle.len()).collect();
    let mut running: Vec<usize> = Vec::new();
    let mut progress: Vec<MigrationProgress> = vec![MigrationProgress::default(); idle.len()];
    // Each migration's preparation (its start to QEMU's first status:
    // libvirt starting the destination), measured; their mean is told to
    // the dispatcher.
    let mut setups_s: Vec<f64> = Vec::new();
    // What one migration sends at alone, measured; told to the dispatcher.
    let mut solo = SoloSendRate::default();
    let (tx, rx) = mpsc::channel::<Message>();
    let mut workers = Vec::new();
    let mut interrupted = false;
    let mut last_status = Instant::now();
    // Threads whose arrival check has not reported yet.
    let mut checking = 0usize;
    loop {
        if !interrupted && interrupt::check().is_err() {
            interrupted = true;
            eprintln!(
                "[evacuate] interrupted: no more migrations start; cancelling the {} running",
                running.len()
            );
        }
        if !interrupted && !waiting.is_empty() {
            for g in dispatcher.start_now(now_s(), &running, &waiting) {
                let Some(migration) = idle.get_mut(g).and_then(Option::take) else {
                    continue;
                };
                waiting.retain(|&w| w != g);
                running.push(g);
                guests[g].start_s = Some(now_s());
                eprintln!(
                    "[evacuate {:>7.1} s] {} starts ({} running, {} waiting)",
                    now_s(),
                    names[g],
                    running.len(),
                    waiting.len()
                );
                workers.push(spawn(g, migration, tx.clone())?);
                checking += 1;
            }
        }
        if running.is_empty() && (waiting.is_empty() || interrupted) && checking == 0 {
            break;
        }
        if running.is_empty()
            && checking == 0
            && !interrupted
            && !waiting.is_empty()
            && dispatcher.wake_after(now_s()).is_none()
        {
            // Nothing runs and the dispatcher plans no later start: the
            // ones still waiting would wait for ever. They stay where they
            // are, reported as not started.
            eprintln!(
                "[evacuate] the plan starts none of the {} guests still waiting: {}",
                waiting.len(),
                waiting
                    .iter()
                    .map(|&g| names[g].as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            break;
        }
        let wait_s = dispatcher
            .wake_after(now_s())
            .map_or(TICK.as_secs_f64(), |t| t - now_s())
            .clamp(0.0, TICK.as_secs_f64());
        let wait = Duration::from_secs_f64(wait_s);
        match rx.recv_timeout(wait) {
            Ok(Message::Progress(g, p)) => {
                if progress[g].status.is_empty() && !p.status.is_empty() {
                    if let Some(start_s) = guests[g].start_s {
                        setups_s.push(now_s() - start_s);
                        let mean_s = setups_s.iter().sum::<f64>() / setups_s.len() as f64;
                        dispatcher.observe_setup_s(mean_s);
                    }
                }
                progress[g] = p;
                let senders: Vec<usize> = running
                    .iter()
                    .copied()
                    .filter(|&r| is_sending(&progress[r].status))
                    .collect();
                match senders.as_slice() {
                    // The one sending, in pre-copy: a sample of its rate.
                    [only] if *only == g && progress[g].status == "active" => {
                        let told = solo.rate_bytes_per_s().is_some();
                        let p = &progress[g];
                        if let Some(rate) =
                            solo.sample(g, p.elapsed_ms as f64 / 1000.0, p.transferred_bytes)
                        {
                            if !told {
                                eprintln!(
                                    "[evacuate {:>7.1} s] one migration alone sends at {:.0} MiB/s",
                                    now_s(),
                                    rate / 1048576.0
                                );
                            }
                            dispatcher.observe_send_rate_bytes_per_s(rate);
                        }
                    }
                    // Another guest sends alone (this one is being
                    // prepared): its stretch goes on.
                    [only] if *only != g => {}
                    _ => solo.end_stretch(),
                }
            }
            Ok(Message::Ended(g, result)) => {
                running.retain(|&r| r != g);
                let end_s = now_s();
                guests[g].end_s = Some(end_s);
                let outcome = result.unwrap_or_else(|e| GuestOutcome {
                    status: if interrupt::is_interruption(&e) {
                        MigrationStatus::Cancelled
                    } else {
                        MigrationStatus::Failed
                    },
                    total_time_ms: None,
                    downtime_ms: None,
                    qemu_downtime_ms: None,
                    rounds: None,
                    transferred_bytes: None,
                    decision: None,
                    verified: None,
                    error: Some(format!("{e:#}")),
                });
                eprintln!(
                    "[evacuate {end_s:>7.1} s] {} {} after {:.1} s{} ({} running, {} waiting)",
                    names[g],
                    outcome.status.name(),
                    end_s - guests[g].start_s.unwrap_or(end_s),
                    outcome
                        .downtime_ms
                        .map_or(String::new(), |d| format!(", downtime {d:.0} ms")),
                    running.len(),
                    waiting.len()
                );
                if let Some(error) = &outcome.error {
                    eprintln!("[evacuate] {}: {error}", names[g]);
                }
                guests[g].outcome = Some(outcome);
            }
            Ok(Message::Verified(g, verified)) => {
                checking = checking.saturating_sub(1);
                if let Some(outcome) = guests[g].outcome.as_mut() {
                    outcome.verified = verified;
                    if verified == Some(false) {
                        outcome.status = MigrationStatus::MemoryCorrupted;
                    }
                }
                match verified {
                    Some(true) => eprintln!(
                        "[evacuate {:>7.1} s] {}: pages verified on arrival",
                        now_s(),
                        names[g]
                    ),
                    Some(false) => eprintln!(
                        "[evacuate {:>7.1} s] {}: PAGES WRONG on arrival",
                        now_s(),
                        names[g]
                    ),
                    None => {}
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if last_status.elapsed() >= STATUS_EVERY && !running.is_empty() {
            last_status = Instant::now();
            let shown: Vec<String> = running
                .iter()
                .map(|&g| {
                    let p = &progress[g];
                    format!(
                        "{} {} sync {} {:.0} MiB left",
                        names[g],
                        if p.status.is_empty() {
                            "starting"
                        } else {
                            &p.status
                        },
                        p.rounds,
                        p.remaining_bytes as f64 / 1048576.0
                    )
                })
                .collect();
            eprintln!("[evacuate {:>7.1} s] {}", now_s(), shown.join(" | "));
        }
    }
    for worker in workers {
        worker
            .join()
            .map_err(|_| anyhow::anyhow!("a migration's thread panicked"))?;
    }
    let makespan_s = guests.iter().filter_map(|g| g.end_s).fold(0.0, f64::max);
    Ok(Evacuation {
        guests,
        makespan_s,
        interrupted,
        solo_send_rate_bytes_per_s: solo.rate_bytes_per_s(),
    })
}

/// Run `migration` on a thread of its own, reporting to `tx`.
fn spawn(
    g: usize,
    mut migration: Box<dyn GuestMigration>,
    tx: Sender<Message>,
) -> Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("evacuate {}", migration.name()))
        .spawn(move || {
            let progress_tx = tx.clone();
            // A panic is this guest's failure, not a hang of the whole
            // evacuation: its end is always told.
            let result = catch_unwind(AssertUnwindSafe(|| {
                migration.migrate(&mut |p| {
                    let _ = progress_tx.send(Message::Progress(g, p));
                })
            }))
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the migration's thread panicked")));
            let completed = matches!(&result, Ok(o) if o.status == MigrationStatus::Completed);
            let _ = tx.send(Message::Ended(g, result));
            let verified = if completed {
                catch_unwind(AssertUnwindSafe(|| migration.verify_arrival())).unwrap_or(None)
            } else {
                None
            };
            let _ = tx.send(Message::Verified(g, verified));
        })
        .context("starting a migration's thread")
}

#[cfg(test)]
mod tests {
    use super::*;
    use kairos_eval::gang::sim::Schedule;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// A migration that takes `take` and records how many ran at once.
    struct Timed {
        name: String,
        take: Duration,
        running: Arc<AtomicUsize>,
        most: Arc<AtomicUsize>,
        fail: bool,
    }

    impl GuestMigration for Timed {
        fn name(&self) -> &str {
            &self.name
        }

        fn migrate(&mut self, progress: &mut dyn FnMut(MigrationProgress)) -> Result<GuestOutcome> {
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.most.fetch_max(now, Ordering::SeqCst);
            progress(MigrationProgress {
                status: "active".into(),
                rounds: 1,
                remaining_bytes: 1 << 20,
                transferred_bytes: 0,
                elapsed_ms: 0,
            });
            std::thread::sleep(self.take);
            self.running.fetch_sub(1, Ordering::SeqCst);
            if self.fail {
                anyhow::bail!("the destination refused it");
            }
            Ok(GuestOutcome {
                status: MigrationStatus::Completed,
                total_time_ms: Some(self.take.as_secs_f64() * 1000.0),
                downtime_ms: Some(10.0),
                qemu_downtime_ms: Some(8.0),
                rounds: Some(1),
                transferred_bytes: Some(1),
                decision: None,
                verified: None,
                error: None,
            })
        }

        fn verify_arrival(&mut self) -> Option<bool> {
            Some(true)
        }
    }

    /// A migration that reports `samples` (status, QEMU's elapsed ms,
    /// bytes sent), 10 ms apart, then completes.
    struct Reporting {
        name: String,
        samples: Vec<(&'static str, u64, u64)>,
    }

    impl GuestMigration for Reporting {
        fn name(&self) -> &str {
            &self.name
        }

        fn migrate(&mut self, progress: &mut dyn FnMut(MigrationProgress)) -> Result<GuestOutcome> {
            for &(status, elapsed_ms, transferred_bytes) in &self.samples {
                progress(MigrationProgress {
                    status: status.into(),
                    rounds: 1,
                    remaining_bytes: 0,
                    transferred_bytes,
                    elapsed_ms,
                });
                std::thread::sleep(Duration::from_millis(10));
            }
            Ok(GuestOutcome {
                status: MigrationStatus::Completed,
                total_time_ms: None,
                downtime_ms: None,
                qemu_downtime_ms: None,
                rounds: Some(1),
                transferred_bytes: None,
                decision: None,
                verified: None,
                error: None,
            })
        }
    }

    /// Both at once; the send rates it was told.
    struct Spy {
        schedule: Schedule,
        rates: Vec<f64>,
    }

    impl Dispatcher for Spy {
        fn start_now(&mut self, now_s: f64, running: &[usize], waiting: &[usize]) -> Vec<usize> {
            self.schedule.start_now(now_s, running, waiting)
        }
        fn wake_after(&self, now_s: f64) -> Option<f64> {
            self.schedule.wake_after(now_s)
        }
        fn observe_send_rate_bytes_per_s(&mut self, bytes_per_s: f64) {
            self.rates.push(bytes_per_s);
        }
    }

    fn send_rates_told(second: &'static str) -> Vec<f64> {
        // vm0 sends 100 MB per second of QEMU's clock (a sample every
        // 100 ms of it); vm1 beside it, in `second` status throughout.
        let sender = (0..30u64)
            .map(|i| ("active", i * 100, i * 10_000_000))
            .collect();
        let beside = (0..30u64)
            .map(|i| (second, i * 100, i * 5_000_000))
            .collect();
        let list: Vec<Box<dyn GuestMigration>> = vec![
            Box::new(Reporting {
                name: "vm0".into(),
                samples: sender,
            }),
            Box::new(Reporting {
                name: "vm1".into(),
                samples: beside,
            }),
        ];
        let mut spy = Spy {
            schedule: Schedule {
                order: vec![0, 1],
                concurrency: 2,
                not_before_s: Vec::new(),
            },
            rates: Vec::new(),
        };
        let evacuation = evacuate(list, &mut spy).unwrap();
        assert_eq!(
            evacuation.solo_send_rate_bytes_per_s,
            spy.rates.last().copied()
        );
        spy.rates
    }

    #[test]
    fn a_migration_sending_beside_one_being_prepared_is_measured_alone() {
        let rates = send_rates_told("setup");
        let last = *rates.last().expect("no send rate told");
        assert!((last - 1e8).abs() < 1.0, "{rates:?}");
    }

    #[test]
    fn two_sending_at_once_are_not_measured_alone() {
        assert!(send_rates_told("active").is_empty());
    }

    fn guests(n: usize, fail: Option<usize>) -> (Vec<Box<dyn GuestMigration>>, Arc<AtomicUsize>) {
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let list = (0..n)
            .map(|i| {
                Box::new(Timed {
                    name: format!("vm{i}"),
                    take: Duration::from_millis(30),
                    running: Arc::clone(&running),
                    most: Arc::clone(&most),
                    fail: fail == Some(i),
                }) as Box<dyn GuestMigration>
            })
            .collect();
        (list, most)
    }

    #[test]
    fn a_fixed_concurrency_is_never_exceeded_and_every_guest_goes() {
        let (list, most) = guests(5, None);
        let mut schedule = Schedule {
            order: vec![4, 3, 2, 1, 0],
            concurrency: 2,
            not_before_s: Vec::new(),
        };
        let evacuation = evacuate(list, &mut schedule).unwrap();
        assert_eq!(most.load(Ordering::SeqCst), 2);
        assert_eq!(evacuation.completed(), 5);
        assert!(!evacuation.interrupted);
        // The order is the schedule's: vm4 started no later than vm0.
        let start = |i: usize| evacuation.guests[i].start_s.unwrap();
        assert!(start(4) <= start(0));
        let last_end = evacuation
            .guests
            .iter()
            .map(|g| g.end_s.unwrap())
            .fold(0.0, f64::max);
        assert_eq!(evacuation.makespan_s, last_end);
    }

    #[test]
    fn a_failed_migration_is_recorded_and_the_rest_go_on() {
        let (list, _) = guests(3, Some(1));
        let mut schedule = Schedule {
            order: vec![0, 1, 2],
            concurrency: 1,
            not_before_s: Vec::new(),
        };
        let evacuation = evacuate(list, &mut schedule).unwrap();
        assert_eq!(evacuation.completed(), 2);
        let failed = evacuation.guests[1].outcome.as_ref().unwrap();
        assert_eq!(failed.status, MigrationStatus::Failed);
        assert!(failed.error.as_deref().unwrap().contains("refused"));
    }

    #[test]
    fn a_planned_later_start_is_waited_for() {
        let (list, _) = guests(2, None);
        let mut schedule = Schedule {
            order: vec![0, 1],
            concurrency: 2,
            not_before_s: vec![0.0, 0.3],
        };
        let evacuation = evacuate(list, &mut schedule).unwrap();
        assert!(evacuation.guests[1].start_s.unwrap() >= 0.3);
        assert_eq!(evacuation.completed(), 2);
    }
}

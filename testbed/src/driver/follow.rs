//! A migration set going and followed until it ends.

use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::{json, Value};

use super::monitor::Monitor;
use crate::live::interrupt;

/// The statuses a migration ends in (QEMU's `MigrationStatus` names).
pub const FINAL_STATUSES: [&str; 3] = ["completed", "failed", "cancelled"];

/// How a migration is set going and stopped early.
pub trait Transfer {
    /// The source's monitor.
    fn source(&mut self) -> &mut dyn Monitor;

    /// Set the migration going (its settings already applied).
    fn start(&mut self) -> Result<()>;

    /// Ask it to stop early; it then ends `cancelled` (or, when the ask
    /// comes too late, as it would have).
    fn cancel(&mut self) -> Result<()>;

    /// Where it is now: the source's `query-migrate` answer, or, once the
    /// source can no longer answer (a management layer ends it with the
    /// migration), what the transfer knows of the end in the same shape.
    fn query(&mut self) -> Result<Value> {
        Ok(self.source().execute("query-migrate", None)?)
    }
}

/// A migration by QMP: the source's `migrate` to a URI the destination
/// listens on (`-incoming`), `migrate_cancel` to stop it.
pub struct QmpTransfer<'a> {
    source: &'a mut dyn Monitor,
    uri: String,
}

impl<'a> QmpTransfer<'a> {
    /// To `uri` (`tcp:ADDR:PORT`) from the QEMU behind `source`.
    pub fn new(source: &'a mut dyn Monitor, uri: String) -> Self {
        Self { source, uri }
    }
}

impl Transfer for QmpTransfer<'_> {
    fn source(&mut self) -> &mut dyn Monitor {
        self.source
    }

    fn start(&mut self) -> Result<()> {
        self.source
            .execute("migrate", Some(json!({ "uri": self.uri })))?;
        Ok(())
    }

    fn cancel(&mut self) -> Result<()> {
        self.source.execute("migrate_cancel", None)?;
        Ok(())
    }
}

/// How often to poll and how long to let the migration run.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Between two polls of the source.
    pub poll: Duration,
    /// From the start to the one cancel the driver sends.
    pub timeout: Duration,
}

/// One poll of a migration: the source's `query-migrate` answer.
#[derive(Debug, Clone, Copy)]
pub struct Progress<'a> {
    /// The answer.
    pub info: &'a Value,
    /// Its `status`.
    pub status: &'a str,
    /// True when the status is final (this is the last poll).
    pub ended: bool,
}

/// How a followed migration ended.
#[derive(Debug, Clone)]
pub struct Followed {
    /// The last `query-migrate` answer (its status final): the source's,
    /// or what the transfer knows of the end in that shape (libvirt: the
    /// destination's completed job).
    pub info: Value,
    /// True when the driver cancelled it at its timeout.
    pub timed_out: bool,
    /// True when a signal (Ctrl-C) made the driver cancel it; `info` says
    /// how it ended then (a cancel that came too late lets it complete).
    pub interrupted: bool,
}

impl Followed {
    /// The final status (`completed`, `failed`, `cancelled`).
    pub fn status(&self) -> &str {
        self.info["status"].as_str().unwrap_or("unknown")
    }
}

/// Start `transfer` and poll its source every `limits.poll` until its
/// status is final; cancel it once at `limits.timeout`. Each poll is
/// shown to `on_poll` (the last one too, with `ended`), which may act on
/// the source; `check_source` fails when the source is gone. On Ctrl-C
/// the migration is cancelled and waited for: how it ended, marked
/// `interrupted` (the interruption itself when it did not end).
pub fn follow(
    transfer: &mut dyn Transfer,
    limits: Limits,
    on_poll: &mut dyn FnMut(&mut dyn Monitor, Progress<'_>) -> Result<()>,
    check_source: &mut dyn FnMut() -> Result<()>,
) -> Result<Followed> {
    let started = Instant::now();
    transfer.start()?;
    let mut timed_out = false;
    loop {
        let info = transfer.query()?;
        let status = info["status"].as_str().unwrap_or("");
        let ended = FINAL_STATUSES.contains(&status);
        on_poll(
            transfer.source(),
            Progress {
                info: &info,
                status,
                ended,
            },
        )?;
        if ended {
            return Ok(Followed {
                info,
                timed_out,
                interrupted: false,
            });
        }
        if !timed_out && started.elapsed() > limits.timeout {
            timed_out = true;
            transfer.cancel()?;
        }
        check_source()?;
        if let Err(e) = interrupt::sleep(limits.poll) {
            // Cancelled, and seen to end, before the caller hears of the
            // interruption: no migration goes on behind its back.
            let _ = transfer.cancel();
            return match drain(transfer, limits.poll) {
                Some(info) => Ok(Followed {
                    info,
                    timed_out,
                    interrupted: true,
                }),
                None => Err(e),
            };
        }
    }
}

/// How long a cancelled migration is waited for after an interruption.
const DRAIN: Duration = Duration::from_secs(60);

/// Poll a cancelled migration until its status is final (at most
/// [`DRAIN`]), asking again to cancel every few seconds; the final
/// answer, or None when none came.
fn drain(transfer: &mut dyn Transfer, poll: Duration) -> Option<Value> {
    let started = Instant::now();
    let mut asked = Instant::now();
    while started.elapsed() < DRAIN {
        match transfer.query() {
            Ok(info) if FINAL_STATUSES.contains(&info["status"].as_str().unwrap_or("")) => {
                return Some(info);
            }
            Ok(_) => {}
            Err(_) => return None,
        }
        if asked.elapsed() >= Duration::from_secs(5) {
            let _ = transfer.cancel();
            asked = Instant::now();
        }
        std::thread::sleep(poll);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::scripted::Scripted;

    const FAST: Limits = Limits {
        poll: Duration::from_millis(1),
        timeout: Duration::from_secs(3600),
    };

    fn quiet(_: &mut dyn Monitor, _: Progress<'_>) -> Result<()> {
        Ok(())
    }

    #[test]
    fn it_follows_until_the_status_is_final_and_shows_every_poll() {
        let mut source = Scripted::with_statuses(&["setup", "active", "active", "completed"]);
        let mut seen = Vec::new();
        let followed = {
            let mut transfer = QmpTransfer::new(&mut source, "tcp:127.0.0.1:4444".into());
            follow(
                &mut transfer,
                FAST,
                &mut |_, p| {
                    seen.push((p.status.to_string(), p.ended));
                    Ok(())
                },
                &mut || Ok(()),
            )
            .unwrap()
        };
        assert_eq!(followed.status(), "completed");
        assert!(!followed.timed_out);
        assert_eq!(
            seen,
            [
                ("setup".to_string(), false),
                ("active".to_string(), false),
                ("active".to_string(), false),
                ("completed".to_string(), true)
            ]
        );
        assert_eq!(source.sent[0].0, "migrate");
        assert_eq!(
            source.sent[0].1,
            Some(json!({ "uri": "tcp:127.0.0.1:4444" }))
        );
        assert_eq!(source.count("migrate_cancel"), 0);
    }

    #[test]
    fn at_its_timeout_it_cancels_once() {
        let mut statuses = vec!["active"; 5];
        statuses.push("cancelled");
        let mut source = Scripted::with_statuses(&statuses);
        let followed = {
            let mut transfer = QmpTransfer::new(&mut source, "tcp:127.0.0.1:1".into());
            let limits = Limits {
                poll: Duration::from_millis(1),
                timeout: Duration::ZERO,
            };
            follow(&mut transfer, limits, &mut quiet, &mut || Ok(())).unwrap()
        };
        assert!(followed.timed_out);
        assert_eq!(followed.status(), "cancelled");
        assert_eq!(source.count("migrate_cancel"), 1);
    }

    #[test]
    fn a_dead_source_ends_the_follow_with_its_error() {
        let mut source = Scripted::with_statuses(&["active"]);
        let mut transfer = QmpTransfer::new(&mut source, "tcp:127.0.0.1:1".into());
        let err = follow(&mut transfer, FAST, &mut quiet, &mut || {
            anyhow::bail!("the source QEMU died")
        })
        .unwrap_err();
        assert!(err.to_string().contains("died"));
    }

    #[test]
    fn a_refused_migrate_is_returned_before_any_poll() {
        let mut source = Scripted::with_statuses(&["active"]);
        source.refuse("migrate");
        {
            let mut transfer = QmpTransfer::new(&mut source, "tcp:127.0.0.1:1".into());
            assert!(follow(&mut transfer, FAST, &mut quiet, &mut || Ok(())).is_err());
        }
        assert_eq!(source.count("query-migrate"), 0);
    }

    #[test]
    fn what_on_poll_sends_reaches_the_source() {
        let mut source = Scripted::with_statuses(&["active", "active", "completed"]);
        {
            let mut transfer = QmpTransfer::new(&mut source, "tcp:127.0.0.1:1".into());
            follow(
                &mut transfer,
                FAST,
                &mut |monitor, p| {
                    if !p.ended {
                        monitor.execute("migrate-start-postcopy", None)?;
                    }
                    Ok(())
                },
                &mut || Ok(()),
            )
            .unwrap();
        }
        assert_eq!(source.count("migrate-start-postcopy"), 2);
    }
}

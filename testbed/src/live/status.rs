//! Progress of a running migration: on a terminal, one status line
//! rewritten in place (round, pending, dirty rate, the policy's last
//! decision and reason, elapsed); elsewhere (CI logs), a plain line every
//! few seconds.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use super::rounds::QmpRound;

/// How often a plain (non-terminal) progress line is printed.
const PLAIN_EVERY: Duration = Duration::from_secs(5);
/// Bytes in a MiB.
const MIB: f64 = 1048576.0;

/// The status line of one migration.
pub struct StatusLine {
    label: String,
    tty: bool,
    started: Instant,
    last_plain: Option<Instant>,
    shown: bool,
}

impl StatusLine {
    /// A status line for `label` (e.g. `hot-wss / predictive`), on
    /// standard error.
    pub fn new(label: String) -> Self {
        Self {
            label,
            tty: std::io::stderr().is_terminal(),
            started: Instant::now(),
            last_plain: None,
            shown: false,
        }
    }

    /// The text for the latest sync (or QEMU's status before any).
    pub fn text(
        &self,
        status: &str,
        latest: Option<&QmpRound>,
        previous: Option<&QmpRound>,
    ) -> String {
        let elapsed = self.started.elapsed().as_secs_f64();
        let Some(r) = latest else {
            return format!("[{}] {elapsed:6.1} s  {status}", self.label);
        };
        let rate = previous.filter(|p| r.time > p.time).map(|p| {
            r.dirtied_pages as f64 * r.page_size as f64 / ((r.time - p.time) as f64 / 1000.0) / MIB
        });
        let throttle = if r.throttle_percentage > 0 {
            format!("  throttle {} %", r.throttle_percentage)
        } else {
            String::new()
        };
        let sync_below = if r.sync_below > 0 {
            format!("  next sync below {} ms", r.sync_below)
        } else {
            String::new()
        };
        format!(
            "[{}] {elapsed:6.1} s  {status}  round {}  pending {:.1} MiB  dirty {}  {} ({}){throttle}{sync_below}",
            self.label,
            r.round,
            r.pending as f64 / MIB,
            rate.map_or("-".to_string(), |x| format!("{x:.1} MiB/s")),
            r.action,
            r.reason
        )
    }

    /// Show the latest state.
    pub fn update(&mut self, status: &str, latest: Option<&QmpRound>, previous: Option<&QmpRound>) {
        let text = self.text(status, latest, previous);
        let mut err = std::io::stderr().lock();
        if self.tty {
            let _ = write!(err, "\r\x1b[2K{text}");
            let _ = err.flush();
            self.shown = true;
        } else if self.last_plain.is_none_or(|t| t.elapsed() >= PLAIN_EVERY) {
            let _ = writeln!(err, "{text}");
            self.last_plain = Some(Instant::now());
        }
    }

    /// End the line (terminal only), so later output starts afresh.
    pub fn finish(&mut self) {
        if self.tty && self.shown {
            let _ = writeln!(std::io::stderr());
            self.shown = false;
        }
    }
}

impl Drop for StatusLine {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_names_round_pending_rate_and_decision() {
        let line = StatusLine::new("hot-wss / predictive".into());
        let r = |observed: u64, time: u64| QmpRound {
            observed,
            round: observed,
            time,
            dirtied_pages: 25_600,
            pending: 104_857_600,
            transferred: 0,
            bandwidth: 125_000_000,
            page_size: 4096,
            ram_size: 1 << 30,
            action: "continue".into(),
            reason: "trough-ahead".into(),
            forecast_pending: 0,
            stop_cost: None,
            throttle_percentage: 0,
            sync_below: 0,
        };
        let text = line.text("active", Some(&r(2, 1000)), Some(&r(1, 0)));
        assert!(text.contains("round 2"), "{text}");
        assert!(text.contains("pending 100.0 MiB"), "{text}");
        assert!(text.contains("dirty 100.0 MiB/s"), "{text}");
        assert!(text.contains("continue (trough-ahead)"), "{text}");
        assert!(!text.contains("next sync below"), "{text}");
        let asked = QmpRound {
            sync_below: 640,
            ..r(3, 2000)
        };
        let text = line.text("active", Some(&asked), Some(&r(2, 1000)));
        assert!(text.contains("next sync below 640 ms"), "{text}");
        assert!(line.text("setup", None, None).contains("setup"));
    }
}

//! What one migration sends at when it sends alone, measured during an
//! evacuation: the most the plan may count on per migration.
//!
//! A migration can send slower than the link allows (its sender thread
//! short of CPU on a crowded host, the destination slow to receive); the
//! planner then runs more at once (`PlanLink::filling`). It is measured,
//! not assumed: the bytes a migration sent over the time it was the only
//! one sending (in pre-copy, QEMU status `active`; the others running were
//! still being prepared, or none), summed over every such stretch of the
//! evacuation. Time is QEMU's own (`total-time` of each answer), so a poll
//! answered late, or an answer repeated once QEMU's part is over and the
//! management layer's goes on, adds no time it did not send in.

/// The time alone the rate must be measured over before it is told: a
/// few of QEMU's polls, so one late poll does not make it.
pub const MEASURED_OVER_S: f64 = 2.0;

/// QEMU statuses in which a migration sends over the link.
pub fn is_sending(status: &str) -> bool {
    matches!(
        status,
        "active" | "postcopy-active" | "pre-switchover" | "device"
    )
}

/// The sending-alone rate, accumulated over the evacuation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SoloSendRate {
    /// The last sample of the guest sending alone, while it still is
    /// (index, QEMU's elapsed seconds, bytes transferred).
    last: Option<(usize, f64, u64)>,
    /// Bytes sent alone so far.
    sent_bytes: f64,
    /// Seconds spent sending alone so far.
    alone_s: f64,
}

impl SoloSendRate {
    /// A sample of guest `guest`, the only migration sending, in pre-copy:
    /// `elapsed_s` into its migration by QEMU's clock, `transferred_bytes`
    /// sent so far. Returns the rate (bytes/s) once measured over
    /// [`MEASURED_OVER_S`].
    pub fn sample(&mut self, guest: usize, elapsed_s: f64, transferred_bytes: u64) -> Option<f64> {
        if let Some((g, then_s, then_bytes)) = self.last {
            let took_s = elapsed_s - then_s;
            if g == guest && took_s > 0.0 && transferred_bytes >= then_bytes {
                self.sent_bytes += (transferred_bytes - then_bytes) as f64;
                self.alone_s += took_s;
            }
        }
        if !elapsed_s.is_finite() {
            self.last = None;
        } else {
            self.last = Some((guest, elapsed_s, transferred_bytes));
        }
        self.rate_bytes_per_s()
    }

    /// No migration, or more than one, sends now: the stretch alone ends.
    pub fn end_stretch(&mut self) {
        self.last = None;
    }

    /// The rate measured so far, once over [`MEASURED_OVER_S`].
    pub fn rate_bytes_per_s(&self) -> Option<f64> {
        (self.alone_s >= MEASURED_OVER_S).then(|| self.sent_bytes / self.alone_s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_is_what_was_sent_alone_over_the_time_alone() {
        let mut r = SoloSendRate::default();
        assert_eq!(r.sample(0, 0.0, 0), None);
        assert_eq!(r.sample(0, 1.0, 50), None);
        // Another one sends: that second does not count.
        r.end_stretch();
        assert_eq!(r.sample(0, 3.0, 100), None);
        assert_eq!(r.sample(0, 4.0, 150), Some(50.0));
    }

    #[test]
    fn an_answer_repeated_adds_no_time() {
        let mut r = SoloSendRate::default();
        r.sample(0, 0.0, 0);
        r.sample(0, 1.0, 100);
        // QEMU's part is over: the same answer again and again.
        assert_eq!(r.sample(0, 1.0, 100), None);
        assert_eq!(r.sample(0, 1.0, 100), None);
        assert_eq!(r.sample(0, 2.0, 200), Some(100.0));
    }

    #[test]
    fn a_new_guest_alone_starts_its_own_stretch() {
        let mut r = SoloSendRate::default();
        r.sample(0, 0.0, 0);
        r.sample(0, 1.5, 300);
        // Guest 1 alone next (its own clock): its first sample only marks
        // where it was.
        assert_eq!(r.sample(1, 0.2, 1_000), None);
        assert_eq!(r.sample(1, 0.7, 1_100), Some(400.0 / 2.0));
    }

    #[test]
    fn a_counter_that_goes_back_is_not_counted() {
        let mut r = SoloSendRate::default();
        r.sample(0, 0.0, 500);
        assert_eq!(r.sample(0, 3.0, 100), None);
        assert_eq!(r.sample(0, 5.0, 300), Some(100.0));
    }

    #[test]
    fn the_statuses_that_send() {
        for s in ["active", "postcopy-active", "pre-switchover", "device"] {
            assert!(is_sending(s), "{s}");
        }
        for s in [
            "",
            "setup",
            "completed",
            "failed",
            "cancelled",
            "postcopy-paused",
        ] {
            assert!(!is_sending(s), "{s}");
        }
    }
}

//! What one migration sends at when it sends alone, measured during an
//! evacuation: the most the plan may count on per migration.
//!
//! A migration can send slower than the link allows (its sender thread
//! short of CPU on a crowded host, the destination slow to receive); the
//! planner then runs more at once (`PlanLink::filling`). It is measured,
//! not assumed: the bytes a migration sent over the time it was the only
//! one sending (QEMU status `active`; the others running were still being
//! prepared, or none), summed over every such stretch of the evacuation.

/// The time alone the rate must be measured over before it is told: a
/// few of QEMU's polls, so one late poll does not make it.
pub const MEASURED_OVER_S: f64 = 2.0;

/// The sending-alone rate, accumulated over the evacuation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SoloSendRate {
    /// The guest sending alone at the last sample, when it was seen
    /// (index, seconds, bytes transferred).
    last: Option<(usize, f64, u64)>,
    /// Bytes sent alone so far.
    sent_bytes: f64,
    /// Seconds spent sending alone so far.
    alone_s: f64,
}

impl SoloSendRate {
    /// A sample of guest `guest` at `now_s`, `transferred_bytes` sent so
    /// far, `alone` when it is the only migration sending. Returns the
    /// rate (bytes/s) once measured over [`MEASURED_OVER_S`].
    pub fn sample(
        &mut self,
        guest: usize,
        now_s: f64,
        transferred_bytes: u64,
        alone: bool,
    ) -> Option<f64> {
        if !alone {
            self.last = None;
            return None;
        }
        if let Some((g, then_s, then_bytes)) = self.last {
            let elapsed_s = now_s - then_s;
            if g == guest && elapsed_s > 0.0 && transferred_bytes >= then_bytes {
                self.sent_bytes += (transferred_bytes - then_bytes) as f64;
                self.alone_s += elapsed_s;
            }
        }
        self.last = Some((guest, now_s, transferred_bytes));
        self.rate_bytes_per_s()
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
        assert_eq!(r.sample(0, 0.0, 0, true), None);
        assert_eq!(r.sample(0, 1.0, 50, true), None);
        // Another one sends: that second does not count.
        assert_eq!(r.sample(0, 2.0, 80, false), None);
        assert_eq!(r.sample(0, 3.0, 100, true), None);
        assert_eq!(r.sample(0, 4.0, 150, true), Some(50.0));
    }

    #[test]
    fn a_new_guest_alone_starts_its_own_stretch() {
        let mut r = SoloSendRate::default();
        r.sample(0, 0.0, 0, true);
        r.sample(0, 1.5, 300, true);
        // Guest 1 alone next: its first sample only marks where it was.
        assert_eq!(r.sample(1, 2.0, 1_000, true), None);
        assert_eq!(r.sample(1, 2.5, 1_100, true), Some(400.0 / 2.0));
    }

    #[test]
    fn a_counter_that_goes_back_is_not_counted() {
        let mut r = SoloSendRate::default();
        r.sample(0, 0.0, 500, true);
        assert_eq!(r.sample(0, 3.0, 100, true), None);
        assert_eq!(r.sample(0, 5.0, 300, true), Some(100.0));
    }
}

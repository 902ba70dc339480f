//! What the policy sees: one record per dirty-bitmap sync round.

/// One dirty-bitmap sync round of a pre-copy migration, as the migration
/// thread sees it right after the sync.
///
/// Counters are cumulative where their name says so (`sent_bytes`), per round
/// otherwise (`dirtied_pages`). Nothing here is trusted: every policy passes it
/// through [`crate::input_guard::InputGuard`] first.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct RoundObservation {
    /// Sync round number, 1 for the sync at the start of the migration.
    pub round: u64,
    /// Time since the migration started, in milliseconds.
    pub elapsed_ms: u64,
    /// Pages newly found dirty by this sync.
    pub dirtied_pages: u64,
    /// Bytes still to send right after this sync.
    pub pending_bytes: u64,
    /// Bytes sent since the migration started.
    pub sent_bytes: u64,
    /// Measured migration bandwidth, in bytes per second.
    pub bandwidth_bytes_per_s: f64,
    /// Target page size in bytes.
    pub page_size_bytes: u64,
    /// Guest RAM size in bytes.
    pub ram_bytes: u64,
}

impl RoundObservation {
    /// Downtime in milliseconds that stopping now would cost at the measured
    /// bandwidth (QEMU's own estimate: pending / bandwidth).
    pub fn implied_downtime_ms(&self) -> f64 {
        self.pending_bytes as f64 / self.bandwidth_bytes_per_s * 1000.0
    }

    /// QEMU's switch-over threshold in bytes: bandwidth × downtime limit.
    pub fn threshold_bytes(&self, downtime_limit_ms: f64) -> f64 {
        self.bandwidth_bytes_per_s * downtime_limit_ms / 1000.0
    }
}

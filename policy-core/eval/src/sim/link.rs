//! The migration link over time, and QEMU's estimate of its bandwidth.
//!
//! In the full-pass model a round runs at one bandwidth, drawn for the
//! round (noise) at the share of the link it starts in, and QEMU's
//! estimate is what the last round achieved. In the threshold model the
//! bandwidth is drawn per 100 ms window at the share of that window, a send
//! crosses windows, and the estimate is what the last 100 ms achieved (QEMU
//! updates its estimate every 100 ms).

use std::collections::VecDeque;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::workload::LinkProfile;
use super::{SimConfig, SyncModel, SYNC_COST_S};

/// QEMU's bandwidth window (and rate-limit slot), seconds.
pub const WINDOW_S: f64 = 0.1;

/// Noise of draw `index` (a round, or a window): the same for every policy.
fn noisy_bandwidth(cfg: &SimConfig, index: u64) -> f64 {
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let u: f64 = rng.random_range(-1.0..=1.0);
    cfg.bandwidth_bytes_per_s * (1.0 + cfg.bandwidth_jitter * u)
}

/// The link a simulated migration sends over.
pub struct Link<'a> {
    cfg: &'a SimConfig,
    profile: Option<LinkProfile>,
    /// Program time at which the migration started, s.
    start_s: f64,
    /// (program time, bytes sent so far) at window edges and round ends
    /// over the last window and a bit: the threshold model's estimate.
    sent_at: VecDeque<(f64, u64)>,
    estimate_bytes_per_s: f64,
}

impl<'a> Link<'a> {
    /// The link of a migration started at program time `start_s`, its
    /// estimate first the nominal bandwidth.
    pub fn new(cfg: &'a SimConfig, profile: Option<LinkProfile>, start_s: f64) -> Self {
        let mut sent_at = VecDeque::new();
        sent_at.push_back((start_s, 0));
        Self {
            cfg,
            profile,
            start_s,
            sent_at,
            estimate_bytes_per_s: cfg.bandwidth_bytes_per_s,
        }
    }

    /// QEMU's current bandwidth estimate, bytes/s.
    pub fn estimate_bytes_per_s(&self) -> f64 {
        self.estimate_bytes_per_s
    }

    fn share_at(&self, now_s: f64) -> f64 {
        self.profile.map_or(1.0, |l| l.share_at(now_s))
    }

    fn window_index(&self, now_s: f64) -> u64 {
        ((now_s - self.start_s) / WINDOW_S).max(0.0) as u64
    }

    /// The bandwidth at program time `now_s` in round `round`: what a stop
    /// starting then, or a round starting then (full-pass model), gets.
    pub fn bandwidth_at(&self, round: u64, now_s: f64) -> f64 {
        let index = match self.cfg.sync_model {
            SyncModel::FullPass => round,
            SyncModel::Threshold => 1 + self.window_index(now_s),
        };
        noisy_bandwidth(self.cfg, index) * self.share_at(now_s)
    }

    /// Send `bytes` from program time `now_s` in round `round`, then sync;
    /// `sent_bytes` is the total sent before. Returns the round's length,
    /// s (sync included), and updates the estimate.
    pub fn send(&mut self, round: u64, now_s: f64, bytes: u64, sent_bytes: u64) -> f64 {
        match self.cfg.sync_model {
            SyncModel::FullPass => {
                let bandwidth = self.bandwidth_at(round, now_s);
                let duration_s = bytes as f64 / bandwidth + SYNC_COST_S;
                // A pass that sent nothing reads as the link's bandwidth.
                self.estimate_bytes_per_s = if bytes > 0 {
                    bytes as f64 / duration_s
                } else {
                    bandwidth
                };
                duration_s
            }
            SyncModel::Threshold => {
                let mut t_s = now_s;
                let mut left = bytes as f64;
                while left > 0.0 {
                    // At least 1 µs a step, whatever the rounding at an edge.
                    let window_end_s = (self.start_s
                        + (self.window_index(t_s) + 1) as f64 * WINDOW_S)
                        .max(t_s + 1e-6);
                    let span_s = window_end_s - t_s;
                    let rate = self.bandwidth_at(round, t_s);
                    let can = rate * span_s;
                    if can >= left {
                        t_s += left / rate;
                        left = 0.0;
                    } else {
                        t_s = window_end_s;
                        left -= can;
                    }
                    self.record(t_s, sent_bytes + (bytes as f64 - left) as u64);
                }
                t_s += SYNC_COST_S;
                self.record(t_s, sent_bytes + bytes);
                self.update_estimate(t_s);
                t_s - now_s
            }
        }
    }

    fn record(&mut self, t_s: f64, sent_bytes: u64) {
        self.sent_at.push_back((t_s, sent_bytes));
        // Keep one point at or before a window ago, and what follows.
        while self.sent_at.len() > 2 && self.sent_at[1].0 <= t_s - WINDOW_S {
            self.sent_at.pop_front();
        }
    }

    /// The estimate: bytes sent over the last window (interpolated at its
    /// start), once a window has passed.
    fn update_estimate(&mut self, now_s: f64) {
        let (Some(&(t0, b0)), Some(&(t_end, b_end))) = (self.sent_at.front(), self.sent_at.back())
        else {
            return;
        };
        if t_end - t0 < WINDOW_S {
            return;
        }
        let from_s = now_s - WINDOW_S;
        let bytes_at_from = match self.sent_at.get(1) {
            Some(&(t1, b1)) if t1 > t0 => {
                b0 as f64 + (b1 - b0) as f64 * ((from_s - t0) / (t1 - t0)).clamp(0.0, 1.0)
            }
            _ => b0 as f64,
        };
        let measured = (b_end as f64 - bytes_at_from) / WINDOW_S;
        if measured > 0.0 && measured.is_finite() {
            self.estimate_bytes_per_s = measured;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(model: SyncModel) -> SimConfig {
        SimConfig {
            bandwidth_bytes_per_s: 100e6,
            bandwidth_jitter: 0.0,
            sync_model: model,
            ..SimConfig::default()
        }
    }

    #[test]
    fn a_send_across_a_shared_window_slows_down_there() {
        let cfg = cfg(SyncModel::Threshold);
        // Shared at 0.5 from 0.1 s to 0.2 s of every second.
        let profile = LinkProfile {
            period_s: 1.0,
            shared_s: 0.2,
            shared_fraction: 0.5,
        };
        let mut link = Link::new(&cfg, Some(profile), 0.1);
        // 15 MB: 5 MB in the shared window (0.1-0.2 s), 10 MB at full rate.
        let duration_s = link.send(1, 0.1, 15_000_000, 0);
        assert!(
            (duration_s - (0.2 + SYNC_COST_S)).abs() < 1e-9,
            "{duration_s}"
        );
        // The estimate is the last 100 ms: 10 MB less the sync's share.
        let expected = (100e6 * (WINDOW_S - SYNC_COST_S)) / WINDOW_S;
        assert!(
            (link.estimate_bytes_per_s() - expected).abs() < 1.0,
            "{}",
            link.estimate_bytes_per_s()
        );
    }

    #[test]
    fn the_full_pass_estimate_is_the_last_round() {
        let cfg = cfg(SyncModel::FullPass);
        let mut link = Link::new(&cfg, None, 0.0);
        let duration_s = link.send(1, 0.0, 10_000_000, 0);
        assert!((duration_s - (0.1 + SYNC_COST_S)).abs() < 1e-12);
        assert!((link.estimate_bytes_per_s() - 10e6 / duration_s).abs() < 1e-6);
        link.send(2, duration_s, 0, 10_000_000);
        assert_eq!(link.estimate_bytes_per_s(), 100e6);
    }
}

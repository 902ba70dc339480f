//! Each simulated guest's advice during an evacuation: its profile taken
//! as time goes on (what `kairos advise` would have sampled of it so far)
//! and the advice at the share it would get — what the planner's
//! [`Outlook`] asks.

use kairos_policy_core::cost::Objective;

use super::plan::{GuestForecast, Outlook};
use crate::advise::profile::SimulatedProfiler;
use crate::advise::{advise, AdviseConfig, Verdict};
use crate::sim::workload::Workload;

/// How far ahead a waiting guest's advice looks, s: the longest cycle it
/// looks for, so a trough within one cycle is found.
const HORIZON_S: f64 = 120.0;

/// The advice of every guest of a simulated evacuation.
pub struct SimulatedOutlook {
    profilers: Vec<SimulatedProfiler>,
    ram_bytes: Vec<f64>,
    bulk_bytes: Vec<f64>,
    /// Program time at the evacuation's start, s.
    warmup_s: f64,
    objective: Objective,
}

impl SimulatedOutlook {
    /// The guests (with their seeds and the bytes each bulk round sends),
    /// `warmup_s` into their programs at the evacuation's start.
    pub fn new(guests: &[(&Workload, u64, f64)], warmup_s: f64, objective: Objective) -> Self {
        Self {
            profilers: guests
                .iter()
                .map(|&(w, seed, _)| SimulatedProfiler::new(w, seed))
                .collect(),
            ram_bytes: guests
                .iter()
                .map(|&(w, _, _)| w.ram_mib as f64 * 1048576.0)
                .collect(),
            bulk_bytes: guests.iter().map(|&(_, _, bulk)| bulk).collect(),
            warmup_s,
            objective,
        }
    }
}

impl Outlook for SimulatedOutlook {
    fn forecast(&mut self, guest: usize, now_s: f64) -> Option<GuestForecast> {
        let profiler = self.profilers.get_mut(guest)?;
        profiler.extend_to(self.warmup_s + now_s);
        Some(GuestForecast::from_profile(
            profiler.samples(),
            self.ram_bytes[guest],
            self.bulk_bytes[guest],
        ))
    }

    fn gain_of_waiting_ms(&mut self, guest: usize, now_s: f64, share_bytes_per_s: f64) -> f64 {
        let Some(profiler) = self.profilers.get_mut(guest) else {
            return 0.0;
        };
        profiler.extend_to(self.warmup_s + now_s);
        let cfg = AdviseConfig {
            bulk_bytes: self.bulk_bytes[guest],
            horizon_s: HORIZON_S,
            // While other guests use the link, a wait costs the
            // evacuation nothing.
            wait_weight: 0.0,
            ..AdviseConfig::new(self.ram_bytes[guest], share_bytes_per_s, self.objective)
        };
        let advice = advise(profiler.samples(), &cfg);
        if advice.verdict == Verdict::Wait {
            advice.gain_ms.max(0.0)
        } else {
            0.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn a_guest_before_its_trough_gains_by_waiting_and_a_steady_one_does_not() {
        let cyclic = Workload::from_toml(
            "name='c'\nram_mib=512\nrepeat=true\n[[phase]]\nkind='write'\nseconds=20\nwss_mib=200\nrate_mib_s=200\n[[phase]]\nkind='write'\nseconds=40\nwss_mib=16\nrate_mib_s=4\n",
            Path::new("c.toml"),
        )
        .unwrap();
        let steady = Workload::from_toml(
            "name='s'\nram_mib=512\n[[phase]]\nkind='write'\nseconds=1000\nwss_mib=32\nrate_mib_s=8\n",
            Path::new("s.toml"),
        )
        .unwrap();
        let objective = Objective {
            downtime_limit_ms: 300.0,
            max_downtime_ms: 1000.0,
            downtime_weight: 10.0,
        };
        let bulk = 100.0 * 1048576.0;
        let mut outlook =
            SimulatedOutlook::new(&[(&cyclic, 1, bulk), (&steady, 1, bulk)], 0.0, objective);
        // 240 s in: the cyclic guest's burst is starting (each minute's
        // first 20 s), its trough 20 s away.
        assert!(outlook.gain_of_waiting_ms(0, 240.0, 125e6) > 0.0);
        assert_eq!(outlook.gain_of_waiting_ms(1, 240.0, 125e6), 0.0);
    }
}

//! A rack being emptied: several hosts, each draining its guests over its
//! own link, all of them through one uplink they share.
//!
//! The bandwidth model is max-min fairness on that two-level tree, as TCP
//! streams settle on it: on its host's link each migration gets an equal
//! share (at most the per-migration cap), and when the hosts together
//! would send more than the uplink carries, the uplink is filled evenly
//! — every migration gets the same rate x, except those whose host's link
//! already holds them below x, which keep their lower rate. With one host
//! and an uplink at least its link this is the one-link model of
//! [`sim`](super::sim), exactly.
//!
//! Each host plans (or runs its fixed plan) on its own ([`RackDispatcher`]):
//! a host's operator sees its guests and its link. The uplink shows up in
//! the shares its migrations get, and the dispatcher tells each host's plan
//! what it can expect of it at every event: the uplink split evenly among
//! the hosts still draining, at most the host's own link (with equal
//! numbers of migrations per host, what max-min fairness gives each).

use super::sim::{fair_share, Dispatcher};

/// The rack's shape: where each guest is, and the uplink.
#[derive(Debug, Clone, PartialEq)]
pub struct Rack {
    /// Each guest's host (by the guest's index).
    pub host_of: Vec<usize>,
    /// The uplink every host's migrations cross, bytes/s.
    pub uplink_bytes_per_s: f64,
}

impl Rack {
    /// `guests` dealt to `hosts` hosts in turn (guest i on host i mod
    /// hosts).
    pub fn dealt(guests: usize, hosts: usize, uplink_bytes_per_s: f64) -> Self {
        Self {
            host_of: (0..guests).map(|i| i % hosts.max(1)).collect(),
            uplink_bytes_per_s,
        }
    }

    /// Hosts in the rack.
    pub fn hosts(&self) -> usize {
        self.host_of.iter().max().map_or(0, |&h| h + 1)
    }

    /// Each guest's rate, bytes/s, when the guests `sending` says send
    /// (0 for the others): each host's link of `host_link_bytes_per_s`
    /// split evenly among its senders, at most `cap_bytes_per_s` each,
    /// then the uplink filled evenly (max-min fair). Written into `out`.
    pub fn shares_into(
        &self,
        host_link_bytes_per_s: f64,
        cap_bytes_per_s: Option<f64>,
        sending: &[bool],
        out: &mut Vec<f64>,
    ) {
        let hosts = self.hosts();
        let mut senders = vec![0usize; hosts];
        for (g, &s) in sending.iter().enumerate() {
            if s {
                if let Some(&h) = self.host_of.get(g) {
                    senders[h] += 1;
                }
            }
        }
        // Each host's rate per sender on its own link.
        let mut own: Vec<(f64, usize)> = senders
            .iter()
            .filter(|&&n| n > 0)
            .map(|&n| (fair_share(host_link_bytes_per_s, cap_bytes_per_s, n), n))
            .collect();
        // The uplink's level: raise every sender's rate evenly until the
        // uplink is full, a host's senders stopping at their own rate.
        own.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut left_bytes_per_s = self.uplink_bytes_per_s;
        let mut flows_left: usize = own.iter().map(|&(_, n)| n).sum();
        let mut level = f64::INFINITY;
        for &(rate, n) in &own {
            let even = left_bytes_per_s / flows_left as f64;
            if rate <= even {
                left_bytes_per_s -= rate * n as f64;
                flows_left -= n;
            } else {
                level = even;
                break;
            }
        }
        out.clear();
        out.extend(
            sending
                .iter()
                .enumerate()
                .map(|(g, &s)| match (s, self.host_of.get(g)) {
                    (true, Some(&h)) => {
                        fair_share(host_link_bytes_per_s, cap_bytes_per_s, senders[h]).min(level)
                    }
                    _ => 0.0,
                }),
        );
    }
}

/// Each host's own dispatcher, over its own guests: asked at every event,
/// each says which of its waiting guests start.
pub struct RackDispatcher {
    /// Per host: its guests' indices in the rack, and its dispatcher
    /// (which knows them as 0, 1, … in that order).
    hosts: Vec<(Vec<usize>, Box<dyn Dispatcher>)>,
    /// Each host's own link, bytes/s.
    host_link_bytes_per_s: f64,
    /// The uplink they share, bytes/s.
    uplink_bytes_per_s: f64,
}

impl RackDispatcher {
    /// One dispatcher per host of `rack`, each host on a link of
    /// `host_link_bytes_per_s`, made by `make` from the host's index and
    /// its guests' indices in the rack.
    pub fn new(
        rack: &Rack,
        host_link_bytes_per_s: f64,
        mut make: impl FnMut(usize, &[usize]) -> Box<dyn Dispatcher>,
    ) -> Self {
        let hosts = (0..rack.hosts())
            .map(|h| {
                let guests: Vec<usize> = (0..rack.host_of.len())
                    .filter(|&g| rack.host_of[g] == h)
                    .collect();
                let dispatcher = make(h, &guests);
                (guests, dispatcher)
            })
            .collect();
        Self {
            hosts,
            host_link_bytes_per_s,
            uplink_bytes_per_s: rack.uplink_bytes_per_s,
        }
    }
}

/// The positions in `guests` of the members of `of`.
fn local(guests: &[usize], of: &[usize]) -> Vec<usize> {
    guests
        .iter()
        .enumerate()
        .filter(|(_, g)| of.contains(g))
        .map(|(i, _)| i)
        .collect()
}

impl Dispatcher for RackDispatcher {
    fn start_now(&mut self, now_s: f64, running: &[usize], waiting: &[usize]) -> Vec<usize> {
        let draining = self
            .hosts
            .iter()
            .filter(|(guests, _)| {
                guests
                    .iter()
                    .any(|g| running.contains(g) || waiting.contains(g))
            })
            .count()
            .max(1);
        let offered = self
            .host_link_bytes_per_s
            .min(self.uplink_bytes_per_s / draining as f64);
        let mut started = Vec::new();
        for (guests, dispatcher) in &mut self.hosts {
            dispatcher.offer_bandwidth(offered);
            let waiting_here = local(guests, waiting);
            if waiting_here.is_empty() {
                continue;
            }
            let running_here = local(guests, running);
            for i in dispatcher.start_now(now_s, &running_here, &waiting_here) {
                if let Some(&g) = guests.get(i) {
                    started.push(g);
                }
            }
        }
        started
    }

    fn wake_after(&self, now_s: f64) -> Option<f64> {
        self.hosts
            .iter()
            .filter_map(|(_, d)| d.wake_after(now_s))
            .min_by(f64::total_cmp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gang::sim::Schedule;

    fn shares(rack: &Rack, link: f64, cap: Option<f64>, sending: &[bool]) -> Vec<f64> {
        let mut out = Vec::new();
        rack.shares_into(link, cap, sending, &mut out);
        out
    }

    #[test]
    fn one_host_under_a_wide_uplink_is_one_link() {
        let rack = Rack::dealt(3, 1, 1e12);
        let s = shares(&rack, 90.0, None, &[true, true, false]);
        assert_eq!(s, vec![45.0, 45.0, 0.0]);
        let s = shares(&rack, 90.0, Some(20.0), &[true, true, true]);
        assert_eq!(s, vec![20.0, 20.0, 20.0]);
    }

    #[test]
    fn the_uplink_is_filled_evenly_and_a_host_held_lower_keeps_its_rate() {
        // Hosts 0 and 1, links of 100 each, uplink 120. Host 0 sends four
        // migrations (25 each on its link), host 1 one (100 on its link):
        // the uplink's level x solves 4·min(25, x) + min(100, x) = 120,
        // x = 24: every one gets 24.
        let rack = Rack {
            host_of: vec![0, 0, 0, 0, 1],
            uplink_bytes_per_s: 120.0,
        };
        let s = shares(&rack, 100.0, None, &[true; 5]);
        for x in &s {
            assert!((x - 24.0).abs() < 1e-9, "{s:?}");
        }
        // Uplink 150: host 0's four keep 25 (their own link's share), host
        // 1's one gets the rest, 50.
        let rack = Rack {
            uplink_bytes_per_s: 150.0,
            ..rack
        };
        let s = shares(&rack, 100.0, None, &[true; 5]);
        assert_eq!(s, vec![25.0, 25.0, 25.0, 25.0, 50.0]);
        assert!(s.iter().sum::<f64>() <= 150.0 + 1e-9);
    }

    #[test]
    fn a_narrow_uplink_slows_every_host() {
        use crate::gang::sim::{simulate_rack, GangConfig, GangGuest};
        use crate::sim::workload::Workload;
        use kairos_policy_core::policies::{build_policy, PolicyKind};
        use kairos_policy_core::PolicyConfig;
        let w = Workload::from_toml(
            "name='i'\nram_mib=256\n[[phase]]\nkind='idle'\nseconds=1000\n",
            std::path::Path::new("i.toml"),
        )
        .unwrap();
        let cfg = GangConfig {
            link_bytes_per_s: 100e6,
            per_migration_bytes_per_s: None,
            warmup_s: 1.0,
            time_cap_s: 300.0,
            setup_s: 0.0,
        };
        // Two hosts of two idle guests, each host one at a time.
        let run = |uplink: f64| {
            let rack = Rack::dealt(4, 2, uplink);
            let guests = (0..4)
                .map(|seed| GangGuest {
                    workload: &w,
                    policy: build_policy(PolicyKind::Qemu, &PolicyConfig::default()).unwrap(),
                    seed,
                })
                .collect();
            let mut d = RackDispatcher::new(&rack, 100e6, |_, guests| {
                Box::new(Schedule {
                    order: (0..guests.len()).collect(),
                    concurrency: 1,
                    not_before_s: vec![],
                })
            });
            simulate_rack(guests, &mut d, &cfg, Some(&rack))
        };
        let wide = run(200e6);
        let narrow = run(100e6);
        // Through an uplink as wide as both links, the hosts drain side by
        // side at their links' rate; through one as wide as one link, at
        // half of it: twice as long (the syncs and switch-overs aside).
        let ratio = narrow.makespan_s / wide.makespan_s;
        assert!((ratio - 2.0).abs() < 0.05, "{ratio}");
        // Side by side: each host's first guest starts at once.
        assert_eq!(wide.runs[0].start_s, 0.0);
        assert_eq!(wide.runs[1].start_s, 0.0);
    }

    #[test]
    fn each_host_dispatches_its_own_guests() {
        // Two hosts, each one at a time in its own order.
        let rack = Rack::dealt(4, 2, 1e9);
        let mut d = RackDispatcher::new(&rack, 1e9, |_, guests| {
            Box::new(Schedule {
                order: (0..guests.len()).rev().collect(),
                concurrency: 1,
                not_before_s: vec![],
            })
        });
        // Host 0 holds guests 0 and 2, host 1 guests 1 and 3: each starts
        // its last first.
        let mut started = d.start_now(0.0, &[], &[0, 1, 2, 3]);
        started.sort_unstable();
        assert_eq!(started, vec![2, 3]);
        // Host 0's ended; host 1's runs.
        assert_eq!(d.start_now(5.0, &[3], &[0, 1]), vec![0]);
    }

    /// A dispatcher that records what it is offered.
    struct Offered(std::rc::Rc<std::cell::RefCell<Vec<f64>>>);

    impl Dispatcher for Offered {
        fn start_now(&mut self, _: f64, _: &[usize], _: &[usize]) -> Vec<usize> {
            Vec::new()
        }
        fn wake_after(&self, _: f64) -> Option<f64> {
            None
        }
        fn offer_bandwidth(&mut self, bytes_per_s: f64) {
            self.0.borrow_mut().push(bytes_per_s);
        }
    }

    #[test]
    fn each_host_is_offered_its_even_share_of_the_uplink_among_those_still_draining() {
        // Four hosts of 100 behind an uplink of 200: 50 each while all
        // four drain, 100 (their own link) once two are left.
        let rack = Rack::dealt(8, 4, 200.0);
        let seen = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        let mut d = RackDispatcher::new(&rack, 100.0, |_, _| Box::new(Offered(seen.clone())));
        d.start_now(0.0, &[0, 1], &[2, 3, 4, 5, 6, 7]);
        assert_eq!(*seen.borrow(), vec![50.0; 4]);
        seen.borrow_mut().clear();
        // Guests 0 and 4 (host 0) and 1 and 5 (host 1) are done: the two
        // hosts left get their own link's 100 (every host is told).
        d.start_now(9.0, &[2], &[3, 7]);
        assert_eq!(*seen.borrow(), vec![100.0; 4]);
    }
}

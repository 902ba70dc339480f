//! The simulated guest: writes pages at the times its workload program says.
//!
//! Writes happen at exact times (one every 1/rate seconds within a write
//! phase) and land on pages drawn from a seeded generator, so the same seed
//! gives the same page sequence however the migration's rounds cut time.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::access::PageChooser;
use super::workload::{PhaseKind, Workload, RESERVED_MIB};

/// Pages per MiB at 4 KiB pages.
pub const PAGES_PER_MIB: u64 = 256;
/// Bytes in a MiB.
const MIB_BYTES: f64 = (PAGES_PER_MIB * super::PAGE_SIZE_BYTES) as f64;

/// Set of dirty pages: a bitmap plus the list of set pages, so clearing
/// costs the number of dirty pages rather than the guest size.
#[derive(Debug, Clone)]
pub struct DirtySet {
    bits: Vec<u64>,
    pages: Vec<u32>,
}

impl DirtySet {
    /// An empty set over `page_count` pages.
    pub fn new(page_count: u64) -> Self {
        Self {
            bits: vec![0; page_count.div_ceil(64) as usize],
            pages: Vec::new(),
        }
    }

    /// Mark `page` dirty.
    pub fn insert(&mut self, page: u64) {
        let (word, bit) = ((page / 64) as usize, page % 64);
        if let Some(w) = self.bits.get_mut(word) {
            if *w & (1 << bit) == 0 {
                *w |= 1 << bit;
                self.pages.push(page as u32);
            }
        }
    }

    /// True when `page` is dirty.
    pub fn contains(&self, page: u64) -> bool {
        self.bits
            .get((page / 64) as usize)
            .is_some_and(|w| w & (1 << (page % 64)) != 0)
    }

    /// The dirty pages, in the order they were first written.
    pub fn pages(&self) -> impl Iterator<Item = u64> + '_ {
        self.pages.iter().map(|&p| u64::from(p))
    }

    /// Number of dirty pages.
    pub fn len(&self) -> u64 {
        self.pages.len() as u64
    }

    /// True when no page is dirty.
    pub fn is_empty(&self) -> bool {
        self.pages.is_empty()
    }

    /// Forget every dirty page.
    pub fn clear(&mut self) {
        for &p in &self.pages {
            self.bits[(p / 64) as usize] = 0;
        }
        self.pages.clear();
    }
}

/// The guest's program counter over its workload.
#[derive(Clone)]
pub struct Guest {
    workload: Workload,
    page_count: u64,
    wss_base_page: u64,
    rng: ChaCha8Rng,
    phase_index: usize,
    /// Phases entered so far (counting repeats): changes when the program
    /// moves to another phase.
    phases_entered: u64,
    phase_end_s: f64,
    /// Past the last phase of a non-repeating workload: idle for ever.
    finished: bool,
    /// Where the current write phase's writes land.
    chooser: Option<PageChooser>,
    phase_start_s: f64,
    next_write_s: f64,
    now_s: f64,
    throttle: f64,
    /// Dirty-rate limit in force, bytes/s (0: none).
    dirty_limit_bytes_per_s: f64,
    busy_s: f64,
    work_done_s: f64,
}

impl Guest {
    /// A guest running `workload` from time 0 with page choices from `seed`.
    pub fn new(workload: &Workload, seed: u64) -> Self {
        let mut guest = Self {
            workload: workload.clone(),
            page_count: workload.ram_mib * PAGES_PER_MIB,
            wss_base_page: RESERVED_MIB * PAGES_PER_MIB,
            rng: ChaCha8Rng::seed_from_u64(seed),
            phase_index: 0,
            phases_entered: 0,
            phase_end_s: 0.0,
            finished: false,
            chooser: None,
            phase_start_s: 0.0,
            next_write_s: 0.0,
            now_s: 0.0,
            throttle: 0.0,
            dirty_limit_bytes_per_s: 0.0,
            busy_s: 0.0,
            work_done_s: 0.0,
        };
        guest.enter_phase(0, 0.0);
        guest
    }

    /// Guest RAM in pages.
    pub fn page_count(&self) -> u64 {
        self.page_count
    }

    /// Pages that hold data (not zero) before the migration starts: the
    /// reserved area and the largest working set, which the load generator
    /// fills before its program begins.
    pub fn initially_nonzero_pages(&self) -> u64 {
        let wss_pages = (self.workload.max_wss_mib() * PAGES_PER_MIB as f64).ceil() as u64;
        (self.wss_base_page + wss_pages).min(self.page_count)
    }

    fn enter_phase(&mut self, index: usize, start_s: f64) {
        self.phase_index = index;
        self.phases_entered += 1;
        let phase = &self.workload.phases[index];
        self.phase_end_s = start_s + phase.seconds;
        self.next_write_s = start_s;
        self.phase_start_s = start_s;
        self.chooser = (phase.kind == PhaseKind::Write)
            .then(|| PageChooser::new(phase, self.page_count - self.wss_base_page));
    }

    fn next_phase(&mut self) {
        let next = self.phase_index + 1;
        if next < self.workload.phases.len() {
            self.enter_phase(next, self.phase_end_s);
        } else if self.workload.repeat {
            self.enter_phase(0, self.phase_end_s);
        } else {
            self.finished = true;
        }
    }

    /// The share of its pace the current phase keeps under the throttle
    /// (the CPU left to it over the CPU it needs) and the dirty-rate limit
    /// (the limit over its write rate: a phase that does not write is not
    /// slowed by it, as KVM's dirty ring only sleeps vCPUs that write).
    fn progress(&self) -> f64 {
        let phase = &self.workload.phases[self.phase_index];
        let needs = match phase.kind {
            PhaseKind::Write => phase.cpu_share,
            PhaseKind::Cpu | PhaseKind::Idle => 1.0,
        };
        let cpu_bound = ((1.0 - self.throttle) / needs).min(1.0);
        let write_rate_bytes_per_s = match phase.kind {
            PhaseKind::Write => phase.rate_mib_s * MIB_BYTES,
            PhaseKind::Cpu | PhaseKind::Idle => 0.0,
        };
        if self.dirty_limit_bytes_per_s > 0.0 && write_rate_bytes_per_s > 0.0 {
            cpu_bound.min(self.dirty_limit_bytes_per_s / write_rate_bytes_per_s)
        } else {
            cpu_bound
        }
    }

    fn is_busy(&self) -> bool {
        !self.finished && self.workload.phases[self.phase_index].kind != PhaseKind::Idle
    }

    fn account(&mut self, until_s: f64) {
        let dt = (until_s - self.now_s).max(0.0);
        if self.is_busy() {
            self.busy_s += dt;
            self.work_done_s += dt * self.progress();
        }
        self.now_s = until_s;
    }

    /// The pages the next write touches.
    fn pick_span(&mut self) -> std::ops::Range<u64> {
        let t_s = self.next_write_s - self.phase_start_s;
        let offsets = self
            .chooser
            .as_mut()
            .map_or(0..1, |c| c.next_span(&mut self.rng, t_s));
        self.wss_base_page + offsets.start..self.wss_base_page + offsets.end
    }

    /// Run the guest until `until_s`, marking every page it writes in
    /// `dirty` and in `nonzero`. Returns the number of pages written
    /// (counted once per write that touches them).
    pub fn run_until(&mut self, until_s: f64, dirty: &mut DirtySet, nonzero: &mut DirtySet) -> u64 {
        let mut writes = 0;
        while !self.finished && self.now_s < until_s {
            let phase = &self.workload.phases[self.phase_index];
            let segment_end = self.phase_end_s.min(until_s);
            if phase.kind == PhaseKind::Write {
                let rate_pages_s = phase.rate_mib_s * PAGES_PER_MIB as f64 * self.progress();
                if rate_pages_s > 0.0 {
                    let span_pages = self.chooser.as_ref().map_or(1, PageChooser::span_pages);
                    let interval = span_pages as f64 / rate_pages_s;
                    while self.next_write_s < segment_end {
                        for page in self.pick_span() {
                            dirty.insert(page);
                            nonzero.insert(page);
                            writes += 1;
                        }
                        self.next_write_s += interval;
                    }
                } else {
                    self.next_write_s = segment_end;
                }
            }
            self.account(segment_end);
            if segment_end >= self.phase_end_s {
                self.next_phase();
            }
        }
        if self.now_s < until_s {
            self.account(until_s);
        }
        writes
    }

    /// Phases entered so far, counting repeats (and the idle end of a
    /// finished program as one more): equal at two times when no phase
    /// boundary lies between them.
    pub fn phase_serial(&self) -> u64 {
        self.phases_entered + u64::from(self.finished)
    }

    /// Set the fraction of guest time taken away by throttling, [0, 0.99].
    pub fn set_throttle(&mut self, throttle: f64) {
        self.throttle = throttle.clamp(0.0, 0.99);
    }

    /// Current throttle.
    pub fn throttle(&self) -> f64 {
        self.throttle
    }

    /// Cap the guest's writes at `bytes_per_s` (0 or less: no cap), as
    /// QEMU's dirty-limit does: only writing phases are slowed.
    pub fn set_dirty_limit(&mut self, bytes_per_s: f64) {
        self.dirty_limit_bytes_per_s = if bytes_per_s.is_finite() {
            bytes_per_s.max(0.0)
        } else {
            0.0
        };
    }

    /// Current dirty-rate limit, bytes/s (0: none).
    pub fn dirty_limit_bytes_per_s(&self) -> f64 {
        self.dirty_limit_bytes_per_s
    }

    /// Fraction of the busy guest's work lost to throttling so far, in %.
    pub fn throughput_loss_pct(&self) -> f64 {
        if self.busy_s > 0.0 {
            100.0 * (1.0 - self.work_done_s / self.busy_s)
        } else {
            0.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn workload(text: &str) -> Workload {
        Workload::from_toml(text, Path::new("t.toml")).unwrap()
    }

    #[test]
    fn writes_at_the_programmed_rate_and_stays_in_the_wss() {
        let w = workload("name='w'\nram_mib=256\n[[phase]]\nkind='write'\nseconds=10\nwss_mib=16\nrate_mib_s=8\n");
        let mut g = Guest::new(&w, 1);
        let mut dirty = DirtySet::new(g.page_count());
        let mut nonzero = DirtySet::new(g.page_count());
        let writes = g.run_until(1.0, &mut dirty, &mut nonzero);
        assert_eq!(writes, 8 * 256);
        // Uniform writes of 2048 pages into 4096: about 1 - e^-0.5 = 39 % unique.
        let unique = dirty.len() as f64 / 4096.0;
        assert!((unique - 0.393).abs() < 0.03, "{unique}");
    }

    #[test]
    fn span_writes_touch_whole_aligned_spans_at_the_same_byte_rate() {
        // 64 KiB writes (16 pages) at 8 MiB/s into 16 MiB: 128 writes in
        // 1 s, 2048 pages, in whole 16-page spans of 256.
        let w = workload("name='w'\nram_mib=256\n[[phase]]\nkind='write'\nseconds=10\nwss_mib=16\nrate_mib_s=8\nwrite_kib=64\n");
        let mut g = Guest::new(&w, 1);
        let mut dirty = DirtySet::new(g.page_count());
        let mut nonzero = DirtySet::new(g.page_count());
        assert_eq!(g.run_until(1.0, &mut dirty, &mut nonzero), 8 * 256);
        let base = g.wss_base_page;
        for span in 0..256 {
            let pages = (0..16)
                .filter(|i| dirty.contains(base + span * 16 + i))
                .count();
            assert!(pages == 0 || pages == 16, "span {span}: {pages} of 16");
        }
        // 128 draws over 256 spans: about 1 - e^-0.5 = 39 % of them.
        let unique = dirty.len() as f64 / 4096.0;
        assert!((unique - 0.393).abs() < 0.08, "{unique}");
    }

    #[test]
    fn a_span_must_be_a_power_of_two_kib_and_only_in_write_phases() {
        let bad = |text: &str| {
            Workload::from_toml(text, Path::new("t.toml"))
                .unwrap_err()
                .to_string()
        };
        let write =
            "name='w'\nram_mib=256\n[[phase]]\nkind='write'\nseconds=1\nwss_mib=16\nrate_mib_s=8\n";
        assert!(bad(&format!("{write}write_kib=12\n")).contains("write_kib"));
        assert!(bad(&format!("{write}write_kib=2\n")).contains("write_kib"));
        assert!(
            bad("name='w'\nram_mib=256\n[[phase]]\nkind='cpu'\nseconds=1\nwrite_kib=64\n")
                .contains("write_kib")
        );
    }

    #[test]
    fn same_seed_same_pages_whatever_the_cuts() {
        let w = workload("name='w'\nram_mib=256\nrepeat=true\n[[phase]]\nkind='write'\nseconds=0.3\nwss_mib=16\nrate_mib_s=8\n[[phase]]\nkind='idle'\nseconds=0.2\n");
        let run = |cuts: &[f64]| {
            let mut g = Guest::new(&w, 9);
            let mut dirty = DirtySet::new(g.page_count());
            let mut nonzero = DirtySet::new(g.page_count());
            for &c in cuts {
                g.run_until(c, &mut dirty, &mut nonzero);
            }
            nonzero.pages.clone()
        };
        assert_eq!(run(&[2.0]), run(&[0.1, 0.35, 0.9, 1.3, 2.0]));
    }

    #[test]
    fn throttle_reduces_writes_and_counts_as_loss() {
        let w = workload("name='w'\nram_mib=256\n[[phase]]\nkind='write'\nseconds=10\nwss_mib=16\nrate_mib_s=8\n");
        let mut g = Guest::new(&w, 1);
        g.set_throttle(0.5);
        let mut dirty = DirtySet::new(g.page_count());
        let mut nonzero = DirtySet::new(g.page_count());
        assert_eq!(g.run_until(1.0, &mut dirty, &mut nonzero), 1024);
        assert!((g.throughput_loss_pct() - 50.0).abs() < 1e-9);
    }

    #[test]
    fn dirty_limit_slows_only_the_writing_phase() {
        // 1 s writing at 8 MiB/s, then 1 s of CPU work; limit 2 MiB/s.
        let w = workload("name='w'\nram_mib=256\n[[phase]]\nkind='write'\nseconds=1\nwss_mib=16\nrate_mib_s=8\n[[phase]]\nkind='cpu'\nseconds=1\n");
        let mut g = Guest::new(&w, 1);
        g.set_dirty_limit(2.0 * MIB_BYTES);
        let mut dirty = DirtySet::new(g.page_count());
        let mut nonzero = DirtySet::new(g.page_count());
        assert_eq!(g.run_until(1.0, &mut dirty, &mut nonzero), 2 * 256);
        g.run_until(2.0, &mut dirty, &mut nonzero);
        // The write phase kept a quarter of its pace, the CPU phase all:
        // (0.75 + 0) / 2 of the busy time lost. A 75 % CPU throttle,
        // which cuts the writes as much, would have lost 75 %.
        assert!(
            (g.throughput_loss_pct() - 37.5).abs() < 1e-9,
            "{}",
            g.throughput_loss_pct()
        );
        g.set_dirty_limit(f64::NAN);
        assert_eq!(g.dirty_limit_bytes_per_s(), 0.0);
    }
}

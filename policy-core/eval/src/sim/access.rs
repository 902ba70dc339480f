//! Where a write phase's next write lands: one chooser the simulator and
//! the real guest's load generator (kairos-load) share, so a program
//! writes the same way in both.
//!
//! Patterns: uniform over the working set, Zipf ranks (hot pages first),
//! sequential sweeps, and two tiers (hot and cold). The working set may
//! grow or shrink linearly over the phase (`wss_end_mib`); a Zipf rank or
//! a sweep beyond the current set wraps into it. A write touches the
//! aligned span of `write_kib` that holds the chosen page (a sweep moves
//! a span at a time).

use rand::Rng;
use rand_distr::{Distribution, Zipf};

use super::workload::{Pattern, Phase};

/// Pages per MiB (4 KiB pages).
const PAGES_PER_MIB: f64 = 256.0;

/// The page chooser of one write phase.
#[derive(Debug, Clone)]
pub struct PageChooser {
    pattern: Pattern,
    zipf: Option<Zipf<f64>>,
    cursor: u64,
    start_pages: u64,
    end_pages: u64,
    seconds: f64,
    hot_fraction: f64,
    hot_share: f64,
    /// Pages one write touches.
    span_pages: u64,
    /// Pages the chooser may touch: the buffer (or guest area) it writes.
    max_pages: u64,
}

impl PageChooser {
    /// The chooser of `phase`, its working set capped at `max_pages`.
    pub fn new(phase: &Phase, max_pages: u64) -> Self {
        let pages = |mib: f64| ((mib * PAGES_PER_MIB) as u64).clamp(1, max_pages.max(1));
        let start_pages = pages(phase.wss_mib);
        let end_pages = phase.wss_end_mib.map_or(start_pages, pages);
        let zipf = match phase.pattern {
            Pattern::Zipf => Zipf::new(start_pages.max(end_pages) as f64, phase.zipf_theta).ok(),
            _ => None,
        };
        Self {
            pattern: phase.pattern,
            zipf,
            cursor: 0,
            start_pages,
            end_pages,
            seconds: phase.seconds,
            hot_fraction: phase.hot_fraction,
            hot_share: phase.hot_share,
            span_pages: (phase.write_kib / 4).max(1),
            max_pages: max_pages.max(1),
        }
    }

    /// Pages one write touches.
    pub fn span_pages(&self) -> u64 {
        self.span_pages
    }

    /// The offsets into the working set the next write touches, made `t_s`
    /// seconds into the phase: the aligned span holding the page the
    /// pattern chose (that page alone for one-page writes, drawn exactly
    /// as [`Self::next`] draws it), cut at the end of the area.
    pub fn next_span<R: Rng>(&mut self, rng: &mut R, t_s: f64) -> std::ops::Range<u64> {
        if self.span_pages == 1 {
            let offset = self.next(rng, t_s);
            return offset..offset + 1;
        }
        let offset = if self.pattern == Pattern::Sequential {
            let wss = self.wss_pages_at(t_s);
            let offset = self.cursor.saturating_mul(self.span_pages) % wss;
            self.cursor += 1;
            offset
        } else {
            self.next(rng, t_s)
        };
        let first = offset - offset % self.span_pages;
        first..(first + self.span_pages).min(self.max_pages)
    }

    /// The working set `t_s` seconds into the phase, pages (at least 1).
    pub fn wss_pages_at(&self, t_s: f64) -> u64 {
        if self.start_pages == self.end_pages || self.seconds <= 0.0 {
            return self.start_pages;
        }
        let f = (t_s / self.seconds).clamp(0.0, 1.0);
        let pages = self.start_pages as f64 + (self.end_pages as f64 - self.start_pages as f64) * f;
        (pages.round() as u64).max(1)
    }

    /// The offset into the working set of the next write, made `t_s`
    /// seconds into the phase.
    pub fn next<R: Rng>(&mut self, rng: &mut R, t_s: f64) -> u64 {
        let wss = self.wss_pages_at(t_s);
        match (self.pattern, &self.zipf) {
            (Pattern::Zipf, Some(z)) => (z.sample(rng) as u64).saturating_sub(1) % wss,
            (Pattern::Sequential, _) => {
                let offset = self.cursor % wss;
                self.cursor += 1;
                offset
            }
            (Pattern::HotCold, _) => {
                let hot = ((wss as f64 * self.hot_fraction) as u64).clamp(1, wss);
                let u = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
                let draw = rng.next_u64();
                if u < self.hot_share || hot == wss {
                    draw % hot
                } else {
                    hot + draw % (wss - hot)
                }
            }
            _ => rng.next_u64() % wss,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::workload::PhaseKind;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn phase(pattern: Pattern, wss_mib: f64, wss_end_mib: Option<f64>) -> Phase {
        Phase {
            kind: PhaseKind::Write,
            seconds: 10.0,
            wss_mib,
            rate_mib_s: 10.0,
            pattern,
            zipf_theta: 0.99,
            cpu_share: 1.0,
            wss_end_mib,
            hot_fraction: 0.1,
            hot_share: 0.9,
            write_kib: 4,
        }
    }

    #[test]
    fn a_write_touches_the_aligned_span_that_holds_its_page() {
        let mut p = phase(Pattern::Uniform, 40.0, None);
        p.write_kib = 64; // 16 pages
        let mut c = PageChooser::new(&p, 1 << 20);
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        for _ in 0..1000 {
            let span = c.next_span(&mut rng, 0.0);
            assert_eq!(span.start % 16, 0, "{span:?}");
            assert_eq!(span.end - span.start, 16, "{span:?}");
            assert!(span.start < 10_240, "{span:?}");
        }
        // A sweep moves a span at a time and wraps into the set.
        p.pattern = Pattern::Sequential;
        let mut c = PageChooser::new(&p, 1 << 20);
        let starts: Vec<u64> = (0..3).map(|_| c.next_span(&mut rng, 0.0).start).collect();
        assert_eq!(starts, [0, 16, 32]);
        // A span is cut at the end of the area it may touch.
        p.write_kib = 2048; // 512 pages, more than the area's 100
        let mut c = PageChooser::new(&p, 100);
        assert_eq!(c.next_span(&mut rng, 0.0), 0..100);
    }

    #[test]
    fn one_page_writes_draw_as_next_does() {
        let p = phase(Pattern::Zipf, 40.0, None);
        let (mut a, mut b) = (PageChooser::new(&p, 1 << 20), PageChooser::new(&p, 1 << 20));
        let (mut ra, mut rb) = (ChaCha8Rng::seed_from_u64(5), ChaCha8Rng::seed_from_u64(5));
        for _ in 0..100 {
            let page = b.next(&mut rb, 2.0);
            assert_eq!(a.next_span(&mut ra, 2.0), page..page + 1);
        }
    }

    #[test]
    fn hot_pages_take_their_share_of_the_writes() {
        let mut c = PageChooser::new(&phase(Pattern::HotCold, 40.0, None), 1 << 20);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let hot = 1024; // 10 % of 10 240 pages
        let n = 20_000;
        let on_hot = (0..n).filter(|_| c.next(&mut rng, 0.0) < hot).count();
        let share = on_hot as f64 / n as f64;
        assert!((0.88..0.92).contains(&share), "{share}");
    }

    #[test]
    fn a_growing_working_set_is_reached_by_the_end_of_the_phase() {
        let c = PageChooser::new(&phase(Pattern::Uniform, 4.0, Some(40.0)), 1 << 20);
        assert_eq!(c.wss_pages_at(0.0), 1024);
        assert_eq!(c.wss_pages_at(5.0), 5632);
        assert_eq!(c.wss_pages_at(10.0), 10_240);
        assert_eq!(c.wss_pages_at(99.0), 10_240);
        let mut c = c;
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        assert!((0..1000).all(|_| c.next(&mut rng, 0.0) < 1024));
        assert!((0..1000).any(|_| c.next(&mut rng, 10.0) >= 1024));
        // Shrinking: a sweep wraps into the smaller set.
        let mut s = PageChooser::new(&phase(Pattern::Sequential, 40.0, Some(4.0)), 1 << 20);
        assert!((0..5000).all(|_| s.next(&mut rng, 10.0) < 1024));
    }

    #[test]
    fn a_fixed_uniform_set_draws_as_before() {
        // One draw per write, modulo the set: the stream of earlier pages.
        let mut c = PageChooser::new(&phase(Pattern::Uniform, 4.0, None), 1 << 20);
        let mut a = ChaCha8Rng::seed_from_u64(3);
        let mut b = ChaCha8Rng::seed_from_u64(3);
        for _ in 0..100 {
            assert_eq!(c.next(&mut a, 1.0), b.next_u64() % 1024);
        }
    }
}

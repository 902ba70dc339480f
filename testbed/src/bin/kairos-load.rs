//! `kairos-load`: the guest's load generator. Runs a workload program (the
//! same TOML the simulator reads) on real memory and reports once a second
//! on standard output:
//!
//! `kairos-load t=12.0 phase=2/write ops_per_s=30720 max_gap_ms=3 verify_errors=0`
//!
//! `max_gap_ms` is the longest the generator's own loop went without running
//! in that second: a migration's downtime shows up there as seen by the
//! guest. `verify_errors` counts pages found not to hold what was last
//! written to them (see [`Buffer`]); it must stay 0.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use kairos_eval::sim::access::PageChooser;
use kairos_eval::sim::workload::{PhaseKind, Workload};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

const PAGE_BYTES: usize = 4096;
/// How often the pacing loop wakes up.
const TICK: Duration = Duration::from_millis(5);

fn usage() -> ! {
    eprintln!("usage: kairos-load WORKLOAD.toml [--seconds N] [--seed N]");
    std::process::exit(2);
}

struct Args {
    workload: PathBuf,
    seconds: Option<f64>,
    seed: u64,
}

fn parse_args() -> Args {
    let mut args = std::env::args().skip(1);
    let mut workload = None;
    let mut seconds = None;
    let mut seed = 1;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => seconds = args.next().and_then(|v| v.parse().ok()).or_else(|| usage()),
            "--seed" => {
                seed = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| usage())
            }
            "-h" | "--help" => usage(),
            _ if workload.is_none() => workload = Some(PathBuf::from(arg)),
            _ => usage(),
        }
    }
    Args {
        workload: workload.unwrap_or_else(|| usage()),
        seconds,
        seed,
    }
}

/// Words per 4 KiB page.
const PAGE_WORDS: usize = PAGE_BYTES / 8;
/// Pages verified per loop tick (a full sweep takes pages / this ticks).
const VERIFY_PAGES_PER_TICK: usize = 2048;

/// The memory the workload writes, touched a page at a time, and checked.
///
/// Every page holds a stamp in word 0, its complement in word 1, and a
/// fixed pattern everywhere else; the stamp each page should hold is kept
/// in `expected` (guest memory too, so it migrates with the pages). A page
/// that a migration lost, zeroed or took from the wrong round fails the
/// check. Accesses are volatile: the buffer is never read by the workload
/// itself, and without them the compiler may drop the writes, and the
/// allocation with them.
struct Buffer {
    words: Vec<u64>,
    expected: Vec<u64>,
    verify_cursor: usize,
    verify_errors: u64,
}

fn pattern(word_index: usize) -> u64 {
    (word_index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1
}

impl Buffer {
    fn new(mib: f64) -> Self {
        let pages = ((mib * 256.0) as usize).max(1);
        let mut words: Vec<u64> = (0..pages * PAGE_WORDS).map(pattern).collect();
        let expected: Vec<u64> = (0..pages).map(|p| p as u64 | (1 << 63)).collect();
        for (page, &stamp) in expected.iter().enumerate() {
            words[page * PAGE_WORDS] = stamp;
            words[page * PAGE_WORDS + 1] = !stamp;
        }
        std::hint::black_box(&mut words);
        Self {
            words,
            expected,
            verify_cursor: 0,
            verify_errors: 0,
        }
    }

    fn pages(&self) -> usize {
        self.expected.len()
    }

    fn touch(&mut self, page: usize, stamp: u64) {
        let page = page % self.pages();
        let at = page * PAGE_WORDS;
        let words = self.words[at..at + 2].as_mut_ptr();
        // SAFETY: both words lie inside the live, aligned Vec<u64>.
        unsafe {
            std::ptr::write_volatile(words, stamp);
            std::ptr::write_volatile(words.add(1), !stamp);
        }
        self.expected[page] = stamp;
    }

    /// Check the next slice of pages; returns the first bad page found.
    fn verify_some(&mut self) -> Option<usize> {
        let mut first_bad = None;
        for _ in 0..VERIFY_PAGES_PER_TICK.min(self.pages()) {
            let page = self.verify_cursor;
            self.verify_cursor = (self.verify_cursor + 1) % self.pages();
            let at = page * PAGE_WORDS;
            let probe = at + 2 + page % (PAGE_WORDS - 2);
            let p = self.words.as_ptr();
            // SAFETY: at, at + 1 and probe lie inside the live Vec<u64>.
            let (stamp, check, fill) = unsafe {
                (
                    std::ptr::read_volatile(p.add(at)),
                    std::ptr::read_volatile(p.add(at + 1)),
                    std::ptr::read_volatile(p.add(probe)),
                )
            };
            if stamp != self.expected[page] || check != !stamp || fill != pattern(probe) {
                self.verify_errors += 1;
                first_bad.get_or_insert(page);
            }
        }
        first_bad
    }
}

fn main() {
    let args = parse_args();
    let workload = match Workload::from_file(&args.workload) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("kairos-load: {e}");
            std::process::exit(1);
        }
    };
    let mut buffer = Buffer::new(workload.max_wss_mib().max(1.0));
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    let start = Instant::now();
    let stdout = std::io::stdout();
    println!(
        "kairos-load: running '{}' ({} phases, {:.0} MiB buffer)",
        workload.name,
        workload.phases.len(),
        workload.max_wss_mib()
    );

    let mut phase_index = 0;
    let mut phase_start = Instant::now();
    let mut finished = false;
    let mut report_at = start + Duration::from_secs(1);
    let mut ops_this_second = 0u64;
    let mut max_gap = Duration::ZERO;
    let mut last_tick = Instant::now();
    let mut writes_due = 0.0f64;
    let mut stamp = 0u64;
    // Where the current write phase's writes land (the simulator's own
    // chooser), made when the phase is entered.
    let mut chooser: Option<PageChooser> = None;
    let mut chooser_for = usize::MAX;

    loop {
        let now = Instant::now();
        max_gap = max_gap.max(now - last_tick);
        let dt = (now - last_tick).as_secs_f64();
        last_tick = now;
        if args
            .seconds
            .is_some_and(|s| (now - start).as_secs_f64() >= s)
        {
            break;
        }
        if !finished && (now - phase_start).as_secs_f64() >= workload.phases[phase_index].seconds {
            phase_start = now;
            phase_index += 1;
            if phase_index == workload.phases.len() {
                if workload.repeat {
                    phase_index = 0;
                } else {
                    finished = true;
                    phase_index -= 1;
                }
            }
            writes_due = 0.0;
            chooser_for = usize::MAX;
        }
        let phase = &workload.phases[phase_index];
        let kind = if finished {
            PhaseKind::Idle
        } else {
            phase.kind
        };
        match kind {
            PhaseKind::Idle => std::thread::sleep(TICK),
            PhaseKind::Cpu => {
                let until = now + TICK;
                let mut x = stamp | 1;
                while Instant::now() < until {
                    for _ in 0..1000 {
                        x = x
                            .wrapping_mul(6364136223846793005)
                            .wrapping_add(1442695040888963407);
                    }
                    ops_this_second += 1;
                }
                stamp = std::hint::black_box(x);
            }
            PhaseKind::Write => {
                if chooser_for != phase_index {
                    chooser = Some(PageChooser::new(phase, buffer.pages() as u64));
                    chooser_for = phase_index;
                }
                let t_s = (now - phase_start).as_secs_f64();
                // The rate counts pages touched; a write touches a span.
                let span_pages = chooser.as_ref().map_or(1, PageChooser::span_pages) as f64;
                writes_due += phase.rate_mib_s * 256.0 * dt / span_pages;
                while writes_due >= 1.0 {
                    let span = chooser
                        .as_mut()
                        .map_or(0..1, |c| c.next_span(&mut rng, t_s));
                    for page in span {
                        stamp += 1;
                        buffer.touch(page as usize, stamp);
                    }
                    writes_due -= 1.0;
                    ops_this_second += 1;
                }
                std::thread::sleep(TICK);
            }
        }
        if let Some(page) = buffer.verify_some() {
            println!("kairos-load: VERIFY FAILED: page {page} does not hold what was written");
        }
        if now >= report_at {
            let mut out = stdout.lock();
            let kind_name = match kind {
                PhaseKind::Idle => "idle",
                PhaseKind::Cpu => "cpu",
                PhaseKind::Write => "write",
            };
            let _ = writeln!(
                out,
                "kairos-load t={:.1} phase={}/{} ops_per_s={} max_gap_ms={} verify_errors={}",
                (now - start).as_secs_f64(),
                phase_index + 1,
                kind_name,
                ops_this_second,
                max_gap.as_millis(),
                buffer.verify_errors
            );
            let _ = out.flush();
            ops_this_second = 0;
            max_gap = Duration::ZERO;
            report_at += Duration::from_secs(1);
            if report_at < now {
                report_at = now + Duration::from_secs(1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sweep(buffer: &mut Buffer) -> Option<usize> {
        let mut first = None;
        for _ in 0..buffer.pages().div_ceil(VERIFY_PAGES_PER_TICK) {
            if let Some(p) = buffer.verify_some() {
                first.get_or_insert(p);
            }
        }
        first
    }

    #[test]
    fn intact_pages_pass_and_touched_pages_stay_consistent() {
        let mut b = Buffer::new(8.0);
        for (i, page) in [3usize, 700, 2047, 3].iter().enumerate() {
            b.touch(*page, 1000 + i as u64);
        }
        assert_eq!(sweep(&mut b), None);
        assert_eq!(b.verify_errors, 0);
    }

    #[test]
    fn a_stale_or_zeroed_page_is_caught() {
        let mut b = Buffer::new(8.0);
        b.touch(42, 7);
        // A migration that sent page 42 from an older round.
        b.words[42 * PAGE_WORDS] = 6;
        b.words[42 * PAGE_WORDS + 1] = !6;
        // A page that arrived as zeroes.
        let at = 99 * PAGE_WORDS;
        b.words[at..at + PAGE_WORDS].fill(0);
        assert_eq!(sweep(&mut b), Some(42));
        assert_eq!(b.verify_errors, 2);
    }
}

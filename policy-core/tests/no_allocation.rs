//! Proves the per-round path does not allocate: a counting global allocator
//! sees zero allocations across thousands of observe calls.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use kairos_policy_core::policies::{build_policy, PolicyKind};
use kairos_policy_core::{Escalation, PolicyConfig, RoundObservation};

struct CountingAllocator;

thread_local! {
    /// Only allocations made on the measuring thread count: the test
    /// harness and the other tests allocate on their own threads whenever
    /// they like.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn count_allocation() {
    if COUNTING.try_with(Cell::get).unwrap_or(false) {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
    }
}

fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

// SAFETY: forwards every call unchanged to the system allocator, which
// upholds GlobalAlloc's contract; the counter has no effect on memory.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_allocation();
        // SAFETY: same layout contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: ptr was allocated by System.alloc with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_allocation();
        // SAFETY: ptr/layout come from this allocator, as realloc requires.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

fn observation(round: u64) -> RoundObservation {
    // A cycling workload with phase changes, so every detector and model runs.
    let phase = (round / 25) % 3;
    let pending =
        [90_000_000u64, 30_000_000, 250_000_000][phase as usize] + (round * 7919 % 13) * 1_000_000;
    RoundObservation {
        round,
        elapsed_ms: round * 700,
        dirtied_pages: pending / 4096,
        pending_bytes: pending,
        sent_bytes: round * 100_000_000,
        bandwidth_bytes_per_s: 125e6 + (round % 5) as f64 * 1e6,
        page_size_bytes: 4096,
        ram_bytes: 8 << 30,
    }
}

#[test]
fn observe_does_not_allocate() {
    for escalation in [Escalation::None, Escalation::Auto, Escalation::DirtyLimit] {
        observe_does_not_allocate_with(escalation);
    }
}

fn observe_does_not_allocate_with(escalation: Escalation) {
    let cfg = PolicyConfig {
        max_rounds: u64::MAX,
        max_elapsed_ms: u64::MAX,
        max_sent_ram_multiple: 1e12,
        escalation,
        ..PolicyConfig::default()
    };
    for &kind in PolicyKind::ALL {
        let mut policy = build_policy(kind, &cfg).unwrap();
        let before = allocations();
        COUNTING.with(|c| c.set(true));
        for round in 1..=5000 {
            std::hint::black_box(policy.observe(&observation(round)));
        }
        policy.reset();
        let garbage = RoundObservation {
            bandwidth_bytes_per_s: f64::NAN,
            ..observation(1)
        };
        std::hint::black_box(policy.observe(&garbage));
        COUNTING.with(|c| c.set(false));
        let after = allocations();
        assert_eq!(
            after - before,
            0,
            "{kind} allocated {} times in 5000 rounds",
            after - before
        );
    }
}

#[test]
fn the_counter_sees_an_allocation() {
    COUNTING.with(|c| c.set(true));
    let before = allocations();
    let v: Vec<u64> = std::hint::black_box(Vec::with_capacity(16));
    let after = allocations();
    COUNTING.with(|c| c.set(false));
    drop(v);
    assert!(after > before, "the counting allocator is not in use");
}

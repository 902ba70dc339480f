//! A byte-stream driver of the C ABI, shared by the proptest in
//! `tests/fuzz_api.rs` and the libFuzzer target in `fuzz/` (feature
//! `api-stream`): any input is a program of create/observe/state/history/
//! reset/free calls, with any bit patterns in the config and the rounds
//! (NaN, infinities, wrapped counters, unknown enum values …). It checks
//! the contract the C side relies on: a NULL handle comes with a message;
//! NULL handles and rounds answer `FALLBACK`; the state counts the rounds
//! observed since the last reset; the history is in order and never longer
//! than that; a throttle is never above 99 %.

use std::ffi::CStr;
use std::ptr;

use crate::{
    kairos_config_default, kairos_policy_free, kairos_policy_history, kairos_policy_new,
    kairos_policy_observe, kairos_policy_reset, kairos_policy_state, KairosAction, KairosConfig,
    KairosEscalation, KairosPolicy, KairosRecord, KairosRound, KairosState,
};

const POLICIES: [&CStr; 8] = [
    c"qemu",
    c"xen",
    c"nova",
    c"kubevirt-stall",
    c"kubevirt-ramp",
    c"predictive",
    c"observe",
    c"no-such-policy",
];

/// Reads values out of the fuzz input, yielding zeros once it runs dry.
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn u8(&mut self) -> u8 {
        let (first, rest) = self.0.split_first().map_or((0, &[][..]), |(f, r)| (*f, r));
        self.0 = rest;
        first
    }
    fn u64(&mut self) -> u64 {
        (0..8).fold(0u64, |acc, _| (acc << 8) | u64::from(self.u8()))
    }
    /// Mostly plausible numbers, sometimes raw bit patterns.
    fn f64(&mut self) -> f64 {
        match self.u8() % 4 {
            0 => f64::from_bits(self.u64()),
            1 => f64::from(self.u8()) * 10.0,
            _ => (self.u64() % 2_000_000_000) as f64,
        }
    }
    fn counter(&mut self) -> u64 {
        if self.u8() % 3 == 0 {
            self.u64()
        } else {
            self.u64() % (1 << 34)
        }
    }
}

/// Drive the C ABI with one input: any bytes are a valid program. Panics
/// (an assertion) when the library breaks its contract.
pub fn run(input: &[u8]) {
    let mut bytes = Bytes(input);
    let mut handle: *mut KairosPolicy = ptr::null_mut();
    let mut observed_since_reset = 0u64;
    // The escalation the live handle was created with.
    let mut escalation = 0u32;
    while !bytes.0.is_empty() {
        match bytes.u8() % 7 {
            0 => {
                // SAFETY: freeing our own handle (or NULL) once.
                unsafe { kairos_policy_free(handle) };
                let mut cfg = std::mem::MaybeUninit::<KairosConfig>::uninit();
                // SAFETY: writes a full KairosConfig into cfg.
                unsafe { kairos_config_default(cfg.as_mut_ptr()) };
                // SAFETY: initialised just above.
                let mut cfg = unsafe { cfg.assume_init() };
                cfg.policy = POLICIES[usize::from(bytes.u8()) % POLICIES.len()].as_ptr();
                if bytes.u8() % 2 == 0 {
                    cfg.downtime_limit_ms = bytes.f64();
                    cfg.max_downtime_ms = bytes.f64();
                    cfg.max_rounds = bytes.u64();
                    cfg.horizon_rounds = u32::from(bytes.u8());
                    cfg.non_convergence_action = u32::from(bytes.u8() % 4);
                    cfg.downtime_weight = bytes.f64();
                    cfg.history_rounds = u32::from(bytes.u8());
                    cfg.escalation = u32::from(bytes.u8() % 6);
                    cfg.max_throttle_pct = u32::from(bytes.u8());
                }
                let mut err = [0 as std::os::raw::c_char; 64];
                // SAFETY: cfg is valid with a static policy name; err has 64 bytes.
                handle = unsafe { kairos_policy_new(&cfg, err.as_mut_ptr(), err.len()) };
                if handle.is_null() {
                    assert!(
                        err.contains(&0) && err[0] != 0,
                        "NULL handle without a message"
                    );
                }
                observed_since_reset = 0;
                escalation = cfg.escalation;
            }
            1..=3 => {
                let round = KairosRound {
                    round: bytes.counter(),
                    elapsed_ms: bytes.counter(),
                    dirtied_pages: bytes.counter(),
                    pending_bytes: bytes.counter(),
                    sent_bytes: bytes.counter(),
                    bandwidth_bytes_per_s: bytes.f64(),
                    page_size_bytes: if bytes.u8() % 2 == 0 {
                        4096
                    } else {
                        bytes.u64()
                    },
                    ram_bytes: if bytes.u8() % 2 == 0 {
                        1 << 30
                    } else {
                        bytes.u64()
                    },
                };
                // SAFETY: handle is ours (or NULL); round is a valid local.
                let action = unsafe { kairos_policy_observe(handle, &round) };
                if handle.is_null() {
                    assert_eq!(action, KairosAction::Fallback);
                } else {
                    observed_since_reset += 1;
                }
            }
            4 => {
                let mut state = KairosState::default();
                // SAFETY: handle is ours (or NULL); state is a valid local.
                let rc = unsafe { kairos_policy_state(handle, &mut state) };
                if handle.is_null() {
                    assert_eq!(rc, -1);
                } else {
                    assert_eq!(rc, 0);
                    assert_eq!(state.rounds_observed, observed_since_reset);
                    assert!(state.throttle_pct <= 99, "throttle {}", state.throttle_pct);
                    // A rate limit only with dirty-limit escalation, and
                    // then never a CPU throttle; a limit is a finite rate.
                    let limit = state.dirty_limit_bytes_per_s;
                    assert!(limit.is_finite() && limit >= 0.0, "dirty limit {limit}");
                    if escalation == KairosEscalation::DirtyLimit as u32 {
                        assert_eq!(state.throttle_pct, 0, "{state:?}");
                    } else {
                        assert_eq!(limit, 0.0, "escalation {escalation}: {state:?}");
                    }
                    let mut records = [KairosRecord::default(); 8];
                    // SAFETY: handle is ours; records has room for 8.
                    let n = unsafe { kairos_policy_history(handle, 0, records.as_mut_ptr(), 8) };
                    assert!(n <= 8 && n as u64 <= observed_since_reset);
                    for pair in records[..n].windows(2) {
                        assert_eq!(
                            pair[1].state.rounds_observed,
                            pair[0].state.rounds_observed + 1
                        );
                    }
                    if n > 0 && n < 8 {
                        assert_eq!(records[n - 1].state.rounds_observed, observed_since_reset);
                    }
                }
            }
            5 => {
                // SAFETY: handle is ours (or NULL), used by this thread only.
                unsafe { kairos_policy_reset(handle) };
                observed_since_reset = 0;
            }
            _ => {
                // SAFETY: NULL round is allowed and must answer Fallback.
                let action = unsafe { kairos_policy_observe(handle, ptr::null()) };
                assert_eq!(action, KairosAction::Fallback);
            }
        }
    }
    // SAFETY: freeing our own handle (or NULL) once.
    unsafe { kairos_policy_free(handle) };
}

//! C ABI of the Kairos convergence policy: `libkairos.a` and `kairos.h`.
//!
//! One [`KairosPolicy`] per migration. The migration thread calls
//! [`kairos_policy_observe`] once per dirty-bitmap sync round; any thread may
//! read the latest decision with [`kairos_policy_state`] and the recent
//! rounds with [`kairos_policy_history`]. No panic crosses this boundary:
//! every entry point runs its body under `guard`, which catches a panic
//! and returns the entry point's safe answer (NULL, `FALLBACK`, -1, 0, or
//! nothing); a panic while observing also breaks the handle, which then
//! answers `KAIROS_ACTION_FALLBACK` (apply QEMU's own rule) for good.
//!
//! The handle is split by who touches what: the `engine` (the
//! policy and its counters) is used only through `observe`/`reset`, which
//! the contract restricts to one thread at a time, and lives in an
//! `UnsafeCell` so no `&mut` to the whole handle ever exists; what readers
//! see (the latest state and the history ring) lives behind a `Mutex`.

#[cfg(feature = "api-stream")]
pub mod api_stream;
mod history;
mod types;

use std::cell::UnsafeCell;
use std::ffi::CStr;
use std::os::raw::c_char;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Mutex, MutexGuard};

use kairos_policy_core::input_guard::fallback_decision;
use kairos_policy_core::{
    build_policy, Action, ConvergencePolicy, Decision, Escalation, ModelKind, NonConvergenceAction,
    PolicyConfig, PolicyKind, Reason, RoundObservation,
};

use history::History;
use types::copy_c_string;
pub use types::{
    KairosAction, KairosConfig, KairosEscalation, KairosModel, KairosNonConvergenceAction,
    KairosReason, KairosRecord, KairosRound, KairosState,
};

/// ABI version of this header; bumped on any incompatible change.
pub const KAIROS_ABI_VERSION: u32 = 4;

/// Default number of rounds the history ring keeps.
pub const KAIROS_DEFAULT_HISTORY_ROUNDS: u32 = 1024;
/// Most rounds a history ring may keep.
pub const KAIROS_MAX_HISTORY_ROUNDS: u32 = 65536;

/// The longest the throttle in `KairosState::throttle_pct` may stop the
/// guest at a time, ns (QEMU: `cpu_throttle_set_max_sleep()`, which
/// shortens the throttle's 10 ms slice, down to 1 ms, wherever a sleep of
/// `p / (100 - p)` slices would be longer): 99 ms, what a 1 ms slice gives
/// at 99 %, against 990 ms with QEMU's default slice. A literal for
/// cbindgen; equal to the policy core's `THROTTLE_MAX_SLEEP_NS` (checked
/// at compile time).
pub const KAIROS_THROTTLE_MAX_SLEEP_NS: u64 = 99_000_000;
const _: () = assert!(KAIROS_THROTTLE_MAX_SLEEP_NS == kairos_policy_core::THROTTLE_MAX_SLEEP_NS);

/// Set in the process's environment, `kairos_policy_new` refuses every
/// policy: a test of the caller's fallback (QEMU's qtest
/// `/migration/convergence/policy-refused`).
const REFUSE_POLICY_ENV: &str = "KAIROS_REFUSE_POLICY";

/// What only the observing thread touches.
struct Engine {
    policy: Box<dyn ConvergencePolicy>,
    downtime_limit_ms: f64,
    /// Set when the policy panicked: every later round is a fallback.
    broken: bool,
    rounds_observed: u64,
}

/// What any thread may read.
struct Shared {
    latest: KairosState,
    history: History,
}

/// A policy instance for one migration (opaque).
pub struct KairosPolicy {
    /// Used only by `kairos_policy_observe` and `kairos_policy_reset`.
    engine: UnsafeCell<Engine>,
    /// The latest state and the recent rounds, for readers.
    shared: Mutex<Shared>,
}

// SAFETY: `engine` is reached only through `kairos_policy_observe` and
// `kairos_policy_reset`, whose contract (in kairos.h and their `# Safety`
// sections) is that one thread at a time calls them on a handle; every other
// thread only calls `kairos_policy_state`/`_history`, which touch `shared`
// alone, behind its Mutex. The engine's policy is `Send` (the trait
// requires it), so handing the handle between threads is sound too.
unsafe impl Sync for KairosPolicy {}

impl KairosPolicy {
    fn shared(&self) -> MutexGuard<'_, Shared> {
        self.shared
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Run an entry point's body, answering `on_panic` if it panics: no unwind
/// ever reaches the C caller (it would be undefined behaviour, or abort
/// QEMU).
fn guard<T>(on_panic: T, body: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(on_panic)
}

/// The library version, a static NUL-terminated string.
#[no_mangle]
pub extern "C" fn kairos_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// The ABI version the library was built with (compare with
/// KAIROS_ABI_VERSION from the header).
#[no_mangle]
pub extern "C" fn kairos_abi_version() -> u32 {
    KAIROS_ABI_VERSION
}

/// Fill `config` with the defaults (policy "predictive", limit 300 ms,
/// maximum 1000 ms, downtime weight 10, history of 1024 rounds, no
/// escalation, throttle at most 99 %). Does nothing when `config` is NULL.
///
/// # Safety
/// `config` is NULL or points to writable memory for one KairosConfig.
#[no_mangle]
pub unsafe extern "C" fn kairos_config_default(config: *mut KairosConfig) {
    if config.is_null() {
        return;
    }
    let Some(value) = guard(None, || Some(default_c_config())) else {
        return;
    };
    // SAFETY: checked non-NULL; the caller guarantees it is writable.
    unsafe { config.write(value) };
}

/// The defaults as a C configuration.
fn default_c_config() -> KairosConfig {
    let d = PolicyConfig::default();
    KairosConfig {
        policy: PolicyKind::Predictive.c_name().as_ptr(),
        downtime_limit_ms: d.downtime_limit_ms,
        max_downtime_ms: d.max_downtime_ms,
        downtime_weight: d.downtime_weight,
        max_rounds: d.max_rounds,
        max_elapsed_ms: d.max_elapsed_ms,
        max_sent_ram_multiple: d.max_sent_ram_multiple,
        horizon_rounds: d.forecast.horizon_rounds as u32,
        non_convergence_action: d.non_convergence_action.into(),
        history_rounds: KAIROS_DEFAULT_HISTORY_ROUNDS,
        escalation: d.escalation.into(),
        max_throttle_pct: u32::from(d.max_throttle_pct),
    }
}

/// Write `message` into the caller's error buffer, truncated and
/// NUL-terminated; nothing when `buf` is NULL or `len` is 0.
///
/// # Safety
/// `buf` is NULL or has `len` writable bytes.
unsafe fn write_error(message: &str, buf: *mut c_char, len: usize) {
    if buf.is_null() || len == 0 {
        return;
    }
    // SAFETY: non-NULL, and the caller guarantees `len` writable bytes.
    let out = unsafe { std::slice::from_raw_parts_mut(buf, len) };
    copy_c_string(message, out);
}

/// The policy kind, its configuration and its history size from a C
/// configuration, or the message saying which field is wrong.
///
/// # Safety
/// `config.policy` is NULL or a NUL-terminated string.
unsafe fn parse_config(config: &KairosConfig) -> Result<(PolicyKind, PolicyConfig, usize), String> {
    if config.policy.is_null() {
        return Err("policy name is NULL".into());
    }
    // SAFETY: non-NULL, and the caller guarantees a NUL-terminated string.
    let name = unsafe { CStr::from_ptr(config.policy) };
    let name = name
        .to_str()
        .map_err(|_| "policy name is not UTF-8".to_string())?;
    let kind = PolicyKind::from_name(name).map_err(|e| e.to_string())?;
    let non_convergence_action = NonConvergenceAction::try_from(config.non_convergence_action)
        .map_err(|e| format!("non_convergence_action: {e}"))?;
    let escalation =
        Escalation::try_from(config.escalation).map_err(|e| format!("escalation: {e}"))?;
    let max_throttle_pct = u8::try_from(config.max_throttle_pct)
        .ok()
        .filter(|p| (1..=99).contains(p))
        .ok_or_else(|| {
            format!(
                "invalid max_throttle_pct: {} (must be in [1, 99])",
                config.max_throttle_pct
            )
        })?;
    if !(1..=KAIROS_MAX_HISTORY_ROUNDS).contains(&config.history_rounds) {
        return Err(format!(
            "invalid history_rounds: {} (must be in [1, {KAIROS_MAX_HISTORY_ROUNDS}])",
            config.history_rounds
        ));
    }
    let mut cfg = PolicyConfig {
        downtime_limit_ms: config.downtime_limit_ms,
        max_downtime_ms: config.max_downtime_ms,
        downtime_weight: config.downtime_weight,
        max_rounds: config.max_rounds,
        max_elapsed_ms: config.max_elapsed_ms,
        max_sent_ram_multiple: config.max_sent_ram_multiple,
        non_convergence_action,
        escalation,
        max_throttle_pct,
        ..PolicyConfig::default()
    };
    cfg.forecast.horizon_rounds = config.horizon_rounds as usize;
    cfg.validate().map_err(|e| e.to_string())?;
    Ok((kind, cfg, config.history_rounds as usize))
}

/// Create a policy. Returns NULL on an invalid configuration (nothing is
/// clamped) and writes a readable message naming the field into `error` (at
/// most `error_len` bytes, NUL-terminated) when `error` is not NULL. All the
/// memory the policy will use is allocated here.
///
/// With `KAIROS_REFUSE_POLICY` set in the process's environment (to
/// anything), every call returns NULL with a message saying so: how a
/// caller's handling of a policy that cannot be created is tested.
///
/// # Safety
/// `config` is NULL or points to a KairosConfig whose `policy` is NULL or a
/// NUL-terminated string; `error` is NULL or has `error_len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn kairos_policy_new(
    config: *const KairosConfig,
    error: *mut c_char,
    error_len: usize,
) -> *mut KairosPolicy {
    let result = catch_unwind(|| {
        if config.is_null() {
            return Err("config is NULL".to_string());
        }
        if std::env::var_os(REFUSE_POLICY_ENV).is_some() {
            return Err(format!(
                "{REFUSE_POLICY_ENV} is set in the environment: no policy is created"
            ));
        }
        // SAFETY: checked non-NULL; the caller guarantees it is readable.
        let config = unsafe { &*config };
        // SAFETY: the caller guarantees `policy` is NULL or NUL-terminated.
        let (kind, cfg, history_rounds) = unsafe { parse_config(config) }?;
        let policy = build_policy(kind, &cfg).map_err(|e| e.to_string())?;
        Ok(Box::new(KairosPolicy {
            engine: UnsafeCell::new(Engine {
                policy,
                downtime_limit_ms: cfg.downtime_limit_ms,
                broken: false,
                rounds_observed: 0,
            }),
            shared: Mutex::new(Shared {
                latest: KairosState::default(),
                history: History::with_capacity(history_rounds),
            }),
        }))
    });
    let message = match result {
        Ok(Ok(handle)) => return Box::into_raw(handle),
        Ok(Err(message)) => message,
        Err(_) => "internal error while creating the policy".to_string(),
    };
    // SAFETY: the caller guarantees `error` is NULL or has `error_len` bytes.
    guard((), || unsafe { write_error(&message, error, error_len) });
    std::ptr::null_mut()
}

impl Engine {
    /// Decide one round; a panic inside the policy breaks the engine for
    /// good and is answered, like bad input, with a fallback.
    fn decide(&mut self, obs: &RoundObservation) -> (Action, Reason, Decision) {
        self.rounds_observed = self.rounds_observed.saturating_add(1);
        let fallback =
            |reason, limit_ms| (Action::Fallback, reason, fallback_decision(obs, limit_ms));
        if self.broken {
            return fallback(Reason::InternalError, self.downtime_limit_ms);
        }
        let policy = &mut self.policy;
        match catch_unwind(AssertUnwindSafe(|| policy.observe(obs))) {
            Ok(d) if d.reason == Reason::BadInputFallback => {
                (Action::Fallback, Reason::BadInputFallback, d)
            }
            Ok(d) => (d.action, d.reason, d),
            Err(_) => {
                self.broken = true;
                fallback(Reason::InternalError, self.downtime_limit_ms)
            }
        }
    }
}

/// Observe one sync round and decide. NULL handle or round → Fallback.
/// Invalid values (NaN, zero bandwidth, time going backwards, counters
/// wrapping …) → Fallback with reason BAD_INPUT_FALLBACK. Never allocates.
///
/// # Safety
/// `policy` is NULL or a handle from kairos_policy_new() not yet freed,
/// used by one thread at a time for observe/reset; `round` is NULL or
/// readable.
#[no_mangle]
pub unsafe extern "C" fn kairos_policy_observe(
    policy: *mut KairosPolicy,
    round: *const KairosRound,
) -> KairosAction {
    if policy.is_null() || round.is_null() {
        return Action::Fallback;
    }
    // SAFETY: checked non-NULL; the caller guarantees a live handle.
    let handle = unsafe { &*policy };
    // SAFETY: checked non-NULL; the caller guarantees it is readable.
    let round = unsafe { *round };
    guard(Action::Fallback, || {
        // SAFETY: only observe/reset reach the engine, and the caller
        // guarantees one thread at a time calls them on this handle: this is
        // the only reference to it now.
        let engine = unsafe { &mut *handle.engine.get() };
        let (action, reason, decision) = engine.decide(&RoundObservation::from(&round));
        let state = KairosState::after(engine.rounds_observed, action, reason, &decision);
        let mut shared = handle.shared();
        shared.latest = state;
        shared.history.push(KairosRecord { round, state });
        action
    })
}

/// Copy the latest decision and forecast into `out`. Safe to call from any
/// thread while the migration thread observes. Returns 0, or -1 when
/// `policy` or `out` is NULL.
///
/// # Safety
/// `policy` is NULL or a live handle; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn kairos_policy_state(
    policy: *const KairosPolicy,
    out: *mut KairosState,
) -> i32 {
    if policy.is_null() || out.is_null() {
        return -1;
    }
    // SAFETY: checked non-NULL; the caller guarantees a live handle.
    let handle = unsafe { &*policy };
    guard(-1, || {
        // Only `shared` is read, behind its Mutex.
        let state = handle.shared().latest;
        // SAFETY: checked non-NULL; the caller guarantees it is writable.
        unsafe { out.write(state) };
        0
    })
}

/// Copy, oldest first, up to `max` of the recorded rounds whose
/// `state.rounds_observed` is above `after` (0: from the oldest kept) into
/// `out`; returns how many were copied. The ring keeps the last
/// `history_rounds` rounds: a caller that finds a gap in
/// `state.rounds_observed` lost those rounds. Safe to call from any thread
/// while the migration thread observes. NULL `policy` or `out` → 0.
///
/// # Safety
/// `policy` is NULL or a live handle; `out` is NULL or has room for `max`
/// records.
#[no_mangle]
pub unsafe extern "C" fn kairos_policy_history(
    policy: *const KairosPolicy,
    after: u64,
    out: *mut KairosRecord,
    max: usize,
) -> usize {
    if policy.is_null() || out.is_null() || max == 0 {
        return 0;
    }
    // SAFETY: checked non-NULL; the caller guarantees a live handle.
    let handle = unsafe { &*policy };
    guard(0, || {
        // Only `shared` is read, behind its Mutex.
        let shared = handle.shared();
        let mut copied = 0;
        for record in shared.history.after(after).take(max) {
            // SAFETY: `copied < max`, and the caller guarantees room for `max`.
            unsafe { out.add(copied).write(*record) };
            copied += 1;
        }
        copied
    })
}

/// Forget the migration (cancelled, failed or restarted): the policy, its
/// state and its history start afresh. NULL is ignored.
///
/// # Safety
/// `policy` is NULL or a live handle, not used by another thread for
/// observe/reset at the same time.
#[no_mangle]
pub unsafe extern "C" fn kairos_policy_reset(policy: *mut KairosPolicy) {
    if policy.is_null() {
        return;
    }
    // SAFETY: checked non-NULL; the caller guarantees a live handle.
    let handle = unsafe { &*policy };
    // SAFETY: only observe/reset reach the engine, one thread at a time.
    let engine = unsafe { &mut *handle.engine.get() };
    let policy = &mut engine.policy;
    if catch_unwind(AssertUnwindSafe(|| policy.reset())).is_err() {
        engine.broken = true;
    }
    engine.rounds_observed = 0;
    guard((), || {
        let mut shared = handle.shared();
        shared.latest = KairosState::default();
        shared.history.clear();
    });
}

/// Free a policy. NULL is ignored.
///
/// # Safety
/// `policy` is NULL or a handle from kairos_policy_new() not freed before;
/// no other thread uses it any more.
#[no_mangle]
pub unsafe extern "C" fn kairos_policy_free(policy: *mut KairosPolicy) {
    if policy.is_null() {
        return;
    }
    // SAFETY: the caller hands back ownership of a Box made by
    // kairos_policy_new, used by no other thread any more.
    let handle = unsafe { Box::from_raw(policy) };
    // A panic in a destructor leaks what was not dropped yet, never unwinds
    // into the caller.
    guard((), || drop(handle));
}

/// Stable kebab-case name of an action value (static string); "unknown" for
/// a value outside the enum.
#[no_mangle]
pub extern "C" fn kairos_action_name(action: u32) -> *const c_char {
    Action::try_from(action)
        .map_or(c"unknown", Action::c_name)
        .as_ptr()
}

/// Stable kebab-case name of a reason value (static string); "unknown" for
/// a value outside the enum.
#[no_mangle]
pub extern "C" fn kairos_reason_name(reason: u32) -> *const c_char {
    Reason::try_from(reason)
        .map_or(c"unknown", Reason::c_name)
        .as_ptr()
}

/// Stable kebab-case name of a model value (static string); "unknown" for a
/// value outside the enum.
#[no_mangle]
pub extern "C" fn kairos_model_name(model: u32) -> *const c_char {
    ModelKind::try_from(model)
        .map_or(c"unknown", ModelKind::c_name)
        .as_ptr()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A policy that panics on its second round.
    struct Panicky(u32);

    impl ConvergencePolicy for Panicky {
        fn kind(&self) -> PolicyKind {
            PolicyKind::Qemu
        }
        fn observe(&mut self, obs: &RoundObservation) -> Decision {
            self.0 += 1;
            assert!(self.0 < 2, "boom");
            fallback_decision(obs, 300.0)
        }
        fn reset(&mut self) {}
    }

    /// A policy that panics wherever `panics_in` says.
    struct PanicsIn(&'static str);

    impl ConvergencePolicy for PanicsIn {
        fn kind(&self) -> PolicyKind {
            PolicyKind::Qemu
        }
        fn observe(&mut self, obs: &RoundObservation) -> Decision {
            assert_ne!(self.0, "observe", "boom in observe");
            fallback_decision(obs, 300.0)
        }
        fn reset(&mut self) {
            assert_ne!(self.0, "reset", "boom in reset");
        }
    }

    impl Drop for PanicsIn {
        fn drop(&mut self) {
            assert_ne!(self.0, "drop", "boom in drop");
        }
    }

    fn handle_with(policy: Box<dyn ConvergencePolicy>) -> *mut KairosPolicy {
        Box::into_raw(Box::new(KairosPolicy {
            engine: UnsafeCell::new(Engine {
                policy,
                downtime_limit_ms: 300.0,
                broken: false,
                rounds_observed: 0,
            }),
            shared: Mutex::new(Shared {
                latest: KairosState::default(),
                history: History::with_capacity(4),
            }),
        }))
    }

    fn c_round() -> KairosRound {
        KairosRound {
            round: 1,
            elapsed_ms: 0,
            dirtied_pages: 0,
            pending_bytes: 1 << 30,
            sent_bytes: 0,
            bandwidth_bytes_per_s: 1e8,
            page_size_bytes: 4096,
            ram_bytes: 1 << 30,
        }
    }

    fn state_of(handle: *mut KairosPolicy) -> KairosState {
        let mut state = KairosState::default();
        // SAFETY: a live handle of this test; `state` is writable.
        assert_eq!(unsafe { kairos_policy_state(handle, &mut state) }, 0);
        state
    }

    /// The next round of `handle` is a fallback for an internal error (the
    /// handle is broken for good); then the handle is freed.
    fn assert_broken_then_free(handle: *mut KairosPolicy) {
        // SAFETY: a live handle and a readable round, one thread.
        let action = unsafe { kairos_policy_observe(handle, &c_round()) };
        assert_eq!(action, Action::Fallback);
        assert_eq!(state_of(handle).reason, Reason::InternalError);
        // SAFETY: our handle, freed once.
        unsafe { kairos_policy_free(handle) };
    }

    #[test]
    fn observe_answers_fallback_when_the_policy_panics() {
        assert_broken_then_free(handle_with(Box::new(PanicsIn("observe"))));
    }

    #[test]
    fn reset_survives_a_panicking_policy_and_breaks_the_handle() {
        let handle = handle_with(Box::new(PanicsIn("reset")));
        // SAFETY: a live handle, one thread.
        unsafe { kairos_policy_reset(handle) };
        assert_broken_then_free(handle);
    }

    #[test]
    fn free_does_not_unwind_when_a_destructor_panics() {
        let handle = handle_with(Box::new(PanicsIn("drop")));
        // SAFETY: our handle, freed once; a panic here would fail the test.
        unsafe { kairos_policy_free(handle) };
    }

    #[test]
    fn readers_and_observe_go_on_after_the_shared_lock_was_poisoned() {
        let handle = handle_with(Box::new(PanicsIn("nowhere")));
        // SAFETY: a live handle; only `shared` is touched, behind its Mutex.
        let shared = unsafe { &(*handle).shared };
        let poisoned = std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let _lock = shared.lock().unwrap();
                    panic!("boom while holding the lock");
                })
                .join()
        });
        assert!(poisoned.is_err() && shared.is_poisoned());
        // SAFETY: a live handle and a readable round, one thread.
        let action = unsafe { kairos_policy_observe(handle, &c_round()) };
        assert_eq!(action, Action::Fallback); // PanicsIn's own fallback decision
        assert_eq!(state_of(handle).rounds_observed, 1);
        let mut out = [KairosRecord::default(); 2];
        // SAFETY: a live handle; `out` has room for 2 records.
        let copied = unsafe { kairos_policy_history(handle, 0, out.as_mut_ptr(), 2) };
        assert_eq!(copied, 1);
        // SAFETY: our handle, freed once.
        unsafe { kairos_policy_free(handle) };
    }

    #[test]
    fn a_panicking_policy_falls_back_for_good() {
        let mut engine = Engine {
            policy: Box::new(Panicky(0)),
            downtime_limit_ms: 300.0,
            broken: false,
            rounds_observed: 0,
        };
        let obs = RoundObservation::from(&c_round());
        let (first, _, _) = engine.decide(&obs);
        assert_eq!(first, Action::Fallback); // the policy's own fallback
        let (action, reason, _) = engine.decide(&obs);
        assert_eq!((action, reason), (Action::Fallback, Reason::InternalError));
        assert!(engine.broken);
        let (action, reason, _) = engine.decide(&obs);
        assert_eq!((action, reason), (Action::Fallback, Reason::InternalError));
        assert_eq!(engine.rounds_observed, 3);
    }
}

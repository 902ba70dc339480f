//! C ABI of the Kairos convergence policy: `libkairos.a` and `kairos.h`.
//!
//! One [`KairosPolicy`] per migration. The migration thread calls
//! [`kairos_policy_observe`] once per dirty-bitmap sync round; any thread may
//! read the latest decision with [`kairos_policy_state`]. No panic crosses
//! this boundary: a panic inside the policy is caught, and the handle then
//! answers [`KairosAction::Fallback`] (apply QEMU's own rule) for good.

mod types;

use std::ffi::CStr;
use std::os::raw::c_char;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Mutex;

use kairos_policy_core::input_guard::fallback_decision;
use kairos_policy_core::{
    build_policy, ConvergencePolicy, Decision, NonConvergenceAction, PolicyConfig, PolicyKind,
    Reason, RoundObservation,
};

use types::copy_c_string;
pub use types::{KairosAction, KairosConfig, KairosReason, KairosRound, KairosState};

/// ABI version of this header; bumped on any incompatible change.
pub const KAIROS_ABI_VERSION: u32 = 1;

/// A policy instance for one migration (opaque).
pub struct KairosPolicy {
    /// Touched only by the migration thread.
    policy: Box<dyn ConvergencePolicy>,
    downtime_limit_ms: f64,
    /// Set when the policy panicked: every later round is a fallback.
    broken: bool,
    rounds_observed: u64,
    /// The latest state, read by other threads.
    latest: Mutex<KairosState>,
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
/// maximum 1000 ms). Does nothing when `config` is NULL.
///
/// # Safety
/// `config` is NULL or points to writable memory for one KairosConfig.
#[no_mangle]
pub unsafe extern "C" fn kairos_config_default(config: *mut KairosConfig) {
    if config.is_null() {
        return;
    }
    let d = PolicyConfig::default();
    let value = KairosConfig {
        policy: c"predictive".as_ptr(),
        downtime_limit_ms: d.downtime_limit_ms,
        max_downtime_ms: d.max_downtime_ms,
        max_rounds: d.max_rounds,
        max_elapsed_ms: d.max_elapsed_ms,
        max_sent_ram_multiple: d.max_sent_ram_multiple,
        horizon_rounds: d.forecast.horizon_rounds as u32,
        non_convergence_action: 0,
    };
    // SAFETY: checked non-NULL; the caller guarantees it is writable.
    unsafe { config.write(value) };
}

fn write_error(message: &str, buf: *mut c_char, len: usize) {
    if buf.is_null() || len == 0 {
        return;
    }
    // SAFETY: the caller guarantees `buf` has `len` writable bytes.
    let out = unsafe { std::slice::from_raw_parts_mut(buf, len) };
    copy_c_string(message, out);
}

fn parse_config(config: &KairosConfig) -> Result<(PolicyKind, PolicyConfig), String> {
    if config.policy.is_null() {
        return Err("policy name is NULL".into());
    }
    // SAFETY: non-NULL, and the caller guarantees a NUL-terminated string.
    let name = unsafe { CStr::from_ptr(config.policy) };
    let name = name
        .to_str()
        .map_err(|_| "policy name is not UTF-8".to_string())?;
    let kind = PolicyKind::from_name(name).map_err(|e| e.to_string())?;
    let mut cfg = PolicyConfig {
        downtime_limit_ms: config.downtime_limit_ms,
        max_downtime_ms: config.max_downtime_ms,
        max_rounds: config.max_rounds,
        max_elapsed_ms: config.max_elapsed_ms,
        max_sent_ram_multiple: config.max_sent_ram_multiple,
        non_convergence_action: match config.non_convergence_action {
            0 => NonConvergenceAction::Escalate,
            1 => NonConvergenceAction::StopBestEffort,
            2 => NonConvergenceAction::KeepGoing,
            other => {
                return Err(format!(
                    "invalid non_convergence_action: {other} (must be 0, 1 or 2)"
                ))
            }
        },
        ..PolicyConfig::default()
    };
    cfg.forecast.horizon_rounds = config.horizon_rounds as usize;
    cfg.validate().map_err(|e| e.to_string())?;
    Ok((kind, cfg))
}

/// Create a policy. Returns NULL on an invalid configuration (nothing is
/// clamped) and writes a readable message into `error` (at most `error_len`
/// bytes, NUL-terminated) when `error` is not NULL.
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
        // SAFETY: checked non-NULL; the caller guarantees it is readable.
        let config = unsafe { &*config };
        let (kind, cfg) = parse_config(config)?;
        let policy = build_policy(kind, &cfg).map_err(|e| e.to_string())?;
        Ok(Box::new(KairosPolicy {
            policy,
            downtime_limit_ms: cfg.downtime_limit_ms,
            broken: false,
            rounds_observed: 0,
            latest: Mutex::new(KairosState::default()),
        }))
    });
    match result {
        Ok(Ok(handle)) => Box::into_raw(handle),
        Ok(Err(message)) => {
            write_error(&message, error, error_len);
            std::ptr::null_mut()
        }
        Err(_) => {
            write_error("internal error while creating the policy", error, error_len);
            std::ptr::null_mut()
        }
    }
}

fn observation(round: &KairosRound) -> RoundObservation {
    RoundObservation {
        round: round.round,
        elapsed_ms: round.elapsed_ms,
        dirtied_pages: round.dirtied_pages,
        pending_bytes: round.pending_bytes,
        sent_bytes: round.sent_bytes,
        bandwidth_bytes_per_s: round.bandwidth_bytes_per_s,
        page_size_bytes: round.page_size_bytes,
        ram_bytes: round.ram_bytes,
    }
}

fn publish(handle: &KairosPolicy, action: KairosAction, reason: KairosReason, decision: &Decision) {
    let mut state = KairosState {
        rounds_observed: handle.rounds_observed,
        action,
        reason,
        downtime_limit_ms: decision.downtime_limit_ms,
        period_rounds: decision.forecast.period_rounds,
        forecast_dirty_rate_bytes_per_s: decision.forecast.dirty_rate_bytes_per_s,
        wws_bytes: decision.forecast.wws_bytes,
        ..KairosState::default()
    };
    if let Some(next) = decision.forecast.next() {
        state.forecast_pending_bytes = next.pending_bytes;
        state.forecast_pending_lo_bytes = next.pending_lo_bytes;
        state.forecast_pending_hi_bytes = next.pending_hi_bytes;
    }
    copy_c_string(decision.forecast.model.as_str(), &mut state.model);
    let mut guard = handle
        .latest
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    *guard = state;
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
        return KairosAction::Fallback;
    }
    // SAFETY: checked non-NULL; the caller guarantees a live handle used by
    // this thread only for observe/reset.
    let handle = unsafe { &mut *policy };
    // SAFETY: checked non-NULL; the caller guarantees it is readable.
    let obs = observation(unsafe { &*round });
    handle.rounds_observed = handle.rounds_observed.saturating_add(1);
    let (action, reason, decision) = if handle.broken {
        let d = fallback_decision(&obs, handle.downtime_limit_ms);
        (KairosAction::Fallback, KairosReason::InternalError, d)
    } else {
        match catch_unwind(AssertUnwindSafe(|| handle.policy.observe(&obs))) {
            Ok(d) if d.reason == Reason::BadInputFallback => {
                (KairosAction::Fallback, KairosReason::BadInputFallback, d)
            }
            Ok(d) => (d.action.into(), d.reason.into(), d),
            Err(_) => {
                handle.broken = true;
                let d = fallback_decision(&obs, handle.downtime_limit_ms);
                (KairosAction::Fallback, KairosReason::InternalError, d)
            }
        }
    };
    publish(handle, action, reason, &decision);
    action
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
    // SAFETY: checked non-NULL; only the Mutex-protected field is read, so
    // sharing with the observing thread is sound.
    let latest = unsafe { &(*policy).latest };
    let state = *latest
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    // SAFETY: checked non-NULL; the caller guarantees it is writable.
    unsafe { out.write(state) };
    0
}

/// Forget the migration (cancelled, failed or restarted). NULL is ignored.
///
/// # Safety
/// `policy` is NULL or a live handle, not used by another thread for
/// observe/reset at the same time.
#[no_mangle]
pub unsafe extern "C" fn kairos_policy_reset(policy: *mut KairosPolicy) {
    if policy.is_null() {
        return;
    }
    // SAFETY: checked non-NULL; the caller guarantees exclusive use.
    let handle = unsafe { &mut *policy };
    if catch_unwind(AssertUnwindSafe(|| handle.policy.reset())).is_err() {
        handle.broken = true;
    }
    handle.rounds_observed = 0;
    let mut guard = handle
        .latest
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    *guard = KairosState::default();
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
    // SAFETY: the caller hands back ownership of a Box made by kairos_policy_new.
    drop(unsafe { Box::from_raw(policy) });
}

/// Stable kebab-case name of an action code (static string); "unknown" for
/// a value outside the enum.
#[no_mangle]
pub extern "C" fn kairos_action_name(action: u32) -> *const c_char {
    let name: &CStr = match action {
        0 => c"continue",
        1 => c"stop-and-copy",
        2 => c"escalate",
        3 => c"abort",
        4 => c"fallback",
        _ => c"unknown",
    };
    name.as_ptr()
}

/// Stable kebab-case name of a reason code (static string); "unknown" for a
/// value outside the enum.
#[no_mangle]
pub extern "C" fn kairos_reason_name(reason: u32) -> *const c_char {
    let name: &CStr = match reason {
        0 => c"none",
        1 => c"warmup",
        2 => c"below-threshold",
        3 => c"above-threshold",
        4 => c"converging",
        5 => c"trough-ahead",
        6 => c"convergence-point",
        7 => c"trough-now",
        8 => c"no-convergence-forecast",
        9 => c"safety-cap",
        10 => c"bad-input-fallback",
        11 => c"iteration-cap",
        12 => c"sent-bytes-cap",
        13 => c"completion-timeout",
        14 => c"stall-local-minimum",
        15 => c"stall-hopeless",
        16 => c"progress-timeout",
        17 => c"never-stop",
        18 => c"internal-error",
        _ => c"unknown",
    };
    name.as_ptr()
}

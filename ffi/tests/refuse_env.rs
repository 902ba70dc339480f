//! `KAIROS_REFUSE_POLICY` in the environment makes `kairos_policy_new`
//! refuse every policy, saying why (its own test binary: the variable is
//! process-wide).

use std::ffi::CStr;
use std::os::raw::c_char;

use kairos::{kairos_config_default, kairos_policy_free, kairos_policy_new, KairosConfig};

fn create() -> (bool, String) {
    let mut config = std::mem::MaybeUninit::<KairosConfig>::uninit();
    // SAFETY: kairos_config_default writes every field of the config.
    let config = unsafe {
        kairos_config_default(config.as_mut_ptr());
        config.assume_init()
    };
    let mut error = [0 as c_char; 256];
    // SAFETY: a valid config; `error` has its length's bytes.
    let handle = unsafe { kairos_policy_new(&config, error.as_mut_ptr(), error.len()) };
    let created = !handle.is_null();
    // SAFETY: a handle from kairos_policy_new (free takes NULL too).
    unsafe { kairos_policy_free(handle) };
    // SAFETY: kairos_policy_new NUL-terminates what it writes; zeroed else.
    let message = unsafe { CStr::from_ptr(error.as_ptr()) }
        .to_string_lossy()
        .into_owned();
    (created, message)
}

#[test]
fn the_environment_variable_refuses_every_policy_and_says_so() {
    assert_eq!(create(), (true, String::new()));
    std::env::set_var("KAIROS_REFUSE_POLICY", "1");
    let (created, message) = create();
    std::env::remove_var("KAIROS_REFUSE_POLICY");
    assert!(!created);
    assert!(message.contains("KAIROS_REFUSE_POLICY"), "{message}");
    assert!(create().0);
}

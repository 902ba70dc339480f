//! Fuzzing the C ABI with proptest: random byte streams through the
//! driver `kairos::api_stream::run` (the same driver the libFuzzer target in
//! `ffi/fuzz/` runs for millions of inputs; `scripts/fuzz.sh`). Every panic
//! counts as a failure, even one the C boundary catches (see
//! `panic_counter`).

mod panic_counter;

use kairos::api_stream::run;
use panic_counter::panics_so_far;
use proptest::prelude::*;

/// Run one input and fail if anything panicked on the way.
fn run_without_a_panic(input: &[u8]) {
    let before = panics_so_far();
    run(input);
    assert_eq!(panics_so_far(), before, "the input {input:?} panicked");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_byte_streams_never_panic(input in prop::collection::vec(any::<u8>(), 0..2048)) {
        run_without_a_panic(&input);
    }
}

#[test]
fn a_long_plausible_stream_runs() {
    // Create a predictive policy, then many observations.
    let mut input = vec![0u8, 5, 1];
    for i in 0..2000u32 {
        input.extend_from_slice(&[1, 1]);
        input.extend_from_slice(&u64::from(i).to_be_bytes());
        input.extend(std::iter::repeat_n(7u8, 60));
    }
    run_without_a_panic(&input);
}

#[test]
fn the_panic_counter_sees_a_caught_panic() {
    // The counter must see what catch_unwind swallows, or the tests above
    // could not fail on a caught panic.
    let before = panics_so_far();
    let caught = std::panic::catch_unwind(|| panic!("counted"));
    assert!(caught.is_err());
    assert!(panics_so_far() > before);
}

//! Fuzzing the C ABI with proptest: random byte streams through the
//! driver `kairos::api_stream::run` (the same driver the libFuzzer target in
//! `ffi/fuzz/` runs for millions of inputs; `scripts/fuzz.sh`).

use kairos::api_stream::run;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_byte_streams_never_crash(input in prop::collection::vec(any::<u8>(), 0..2048)) {
        run(&input);
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
    run(&input);
}

//! Any byte string is a program of calls into the C ABI
//! (`kairos::api_stream::run`): libFuzzer searches for one that crashes,
//! leaks, reads out of bounds or breaks the contract the C side relies on.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    kairos::api_stream::run(data);
});

//! Every input the libFuzzer target (ffi/fuzz, `scripts/fuzz.sh`) ever
//! crashed on, kept as a regression test. libFuzzer counts any panic as a
//! crash, even one the C boundary catches (the handle then answers
//! FALLBACK for good), so this test does too (see `panic_counter`).

mod panic_counter;

use kairos::api_stream::run;
use panic_counter::panics_so_far;

#[test]
fn inputs_that_crashed_the_fuzzer_run_without_a_panic() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-regressions");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).expect("tests/fuzz-regressions") {
        let path = entry.unwrap().path();
        let before = panics_so_far();
        run(&std::fs::read(&path).unwrap());
        count += 1;
        assert_eq!(panics_so_far(), before, "{} panicked", path.display());
    }
    assert!(count > 0, "no regression inputs in {}", dir.display());
}

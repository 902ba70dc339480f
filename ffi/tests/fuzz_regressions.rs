//! Every input the libFuzzer target (ffi/fuzz, `scripts/fuzz.sh`) ever
//! crashed on, kept as a regression test. libFuzzer counts any panic as a
//! crash, even one the C boundary catches (the handle then answers
//! FALLBACK for good), so this test does too: it runs alone in its own
//! process with a panic hook that counts.

use std::sync::atomic::{AtomicUsize, Ordering};

use kairos::api_stream::run;

static PANICS: AtomicUsize = AtomicUsize::new(0);

#[test]
fn inputs_that_crashed_the_fuzzer_run_without_a_panic() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Ordering::SeqCst);
        default_hook(info);
    }));
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-regressions");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).expect("tests/fuzz-regressions") {
        let path = entry.unwrap().path();
        run(&std::fs::read(&path).unwrap());
        count += 1;
        assert_eq!(
            PANICS.load(Ordering::SeqCst),
            0,
            "{} panicked",
            path.display()
        );
    }
    assert!(count > 0, "no regression inputs in {}", dir.display());
}

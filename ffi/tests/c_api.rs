//! Builds the C tests under `tests/c/` against `libkairos.a` and the
//! checked-in header, runs them, and checks the header is the generated one.

use std::path::{Path, PathBuf};
use std::process::Command;

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `target/<profile>/`, where cargo put libkairos.a.
fn target_profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps")
        .to_path_buf()
}

#[test]
fn checked_in_header_matches_the_generated_one() {
    let generated =
        std::fs::read_to_string(concat!(env!("OUT_DIR"), "/kairos.h")).expect("generated header");
    let checked_in =
        std::fs::read_to_string(manifest_dir().join("include/kairos.h")).expect("include/kairos.h");
    assert!(
        generated == checked_in,
        "ffi/include/kairos.h is stale: copy {}/kairos.h over it and review the API change",
        env!("OUT_DIR")
    );
}

#[test]
fn c_tests_pass() {
    let lib = target_profile_dir().join("libkairos.a");
    assert!(
        lib.exists(),
        "{} not built: run `cargo build -p kairos-ffi` first (scripts/test.sh does)",
        lib.display()
    );
    let out_dir = target_profile_dir().join("c-tests");
    std::fs::create_dir_all(&out_dir).unwrap();
    let exe = out_dir.join("test_api");
    let compiler = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
    let status = Command::new(&compiler)
        .args([
            "-std=c99",
            "-D_POSIX_C_SOURCE=200809L",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-g",
            "-O1",
            "-I",
        ])
        .arg(manifest_dir().join("include"))
        .arg(manifest_dir().join("tests/c/test_api.c"))
        .arg(&lib)
        .args(["-lpthread", "-ldl", "-lm", "-o"])
        .arg(&exe)
        .status()
        .expect("run the C compiler");
    assert!(status.success(), "compiling the C tests failed");
    let output = Command::new(&exe).output().expect("run the C tests");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "C tests failed:\n{stdout}{stderr}");
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
}

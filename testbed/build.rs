//! Stamps the binary with the commit of the code it was built from, so
//! every run it makes can say which code made it (`KAIROS_CODE_COMMIT`:
//! the full hash, `-dirty` when tracked files differ from it, `unknown`
//! outside a git checkout).

use std::path::PathBuf;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() {
    let commit = git(&["rev-parse", "HEAD"]);
    let dirty =
        git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    let stamp = match commit {
        Some(c) if dirty => format!("{c}-dirty"),
        Some(c) => c,
        None => "unknown".to_string(),
    };
    println!("cargo:rustc-env=KAIROS_CODE_COMMIT={stamp}");
    // Rebuild the stamp when HEAD moves or the index changes (a worktree's
    // git dir is not the checkout's .git).
    if let Some(dir) = git(&["rev-parse", "--absolute-git-dir"]) {
        let dir = PathBuf::from(dir);
        for file in ["HEAD", "index"] {
            println!("cargo:rerun-if-changed={}", dir.join(file).display());
        }
        if let Some(common) = git(&["rev-parse", "--git-common-dir"]) {
            let common = PathBuf::from(common);
            let common = if common.is_absolute() {
                common
            } else {
                std::env::current_dir()
                    .map(|d| d.join(&common))
                    .unwrap_or(common)
            };
            println!(
                "cargo:rerun-if-changed={}",
                common.join("refs/heads").display()
            );
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}

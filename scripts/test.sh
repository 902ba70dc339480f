#!/usr/bin/env bash
# Sets up what the tests need and runs every test: formatting, lints, the
# declared minimum Rust versions (the library built with Debian's rustc),
# the licences of what QEMU links (cargo deny), unit, integration and
# property tests of the
# whole workspace (the kairos CLI's end-to-end tests among them), the C tests
# of libkairos, then the patched QEMU: its build, upstream's migration-test
# with the policy off and forced on beside libvirt's virsh migrate, then
# real migrations of a real guest.
set -euo pipefail
cd "$(dirname "$0")/.."

# Each stage's header says when it began and how long the run has taken,
# so a slow CI run shows where its time went.
started=$(date +%s)
stage() { echo "== [$(date -u +%T), +$(( $(date +%s) - started )) s] $*"; }

bash scripts/setup.sh

stage "cargo fmt --check"
cargo fmt --all -- --check

stage "minimum supported Rust version"
python3 scripts/check-msrv.py

stage "cargo deny: what QEMU links (ffi/deny.toml: GPLv2-compatible licences, one version of each crate), then the workspace"
cargo deny --manifest-path ffi/Cargo.toml --config ffi/deny.toml check licenses bans sources
cargo deny check --hide-inclusion-graph licenses bans sources

stage "libkairos.a with Debian's rustc 1.85 (what a distribution's QEMU build has)"
bash scripts/check-debian-rustc.sh

stage "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

stage "cargo build --workspace (libkairos.a for the C tests)"
cargo build --workspace

stage "cargo test --workspace"
cargo test --workspace

stage "results pages: each re-rendered from the runs stored in the repository matches the committed one"
bash scripts/report.sh --check

stage "C tests under valgrind memcheck"
# --fair-sched=yes: valgrind runs one thread at a time, and test_api's
# concurrent-reader test has a reader that takes the policy's lock in a
# loop; with the default scheduler (and without the reader's yield) it
# could starve the writer for good (two CI rehearsals hung there).
valgrind -q --fair-sched=yes --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite \
    target/debug/c-tests/test_api

stage "libkairos.a for C programs: only kairos_* exported, at most 1.5 MiB, links with glib"
bash scripts/build-libkairos.sh
size_kib=$(( $(stat -c %s build/lib/libkairos.a) / 1024 ))
[ "$size_kib" -le 1536 ] || { echo "libkairos.a is $size_kib KiB, above the 1536 KiB goal" >&2; exit 1; }
cc -std=c99 -Wall -Werror -Ibuild/include $(pkg-config --cflags glib-2.0) ffi/tests/c/test_glib_link.c \
    build/lib/libkairos.a $(pkg-config --libs glib-2.0) -lpthread -ldl -lm -o target/test_glib_link
target/test_glib_link

stage "patched QEMU: build; upstream migration-test beside libvirt (virsh migrate --live between two libvirtd instances, policy off and predictive, the destination daemon killed); then end-to-end migrations"
bash scripts/qemu-tests.sh
stage "done"

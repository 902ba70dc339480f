#!/usr/bin/env bash
# Sets up what the tests need and runs every test: formatting, lints, unit,
# integration and property tests of the whole workspace, the C tests of
# libkairos, an end-to-end run of the kairos CLI, then the patched QEMU:
# its build, upstream's migration-test with the policy off and forced on,
# and a real migration of a real guest.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

echo "== cargo build --workspace (libkairos.a for the C tests)"
cargo build --workspace

echo "== cargo test --workspace"
cargo test --workspace

echo "== C tests under valgrind memcheck"
valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite \
    target/debug/c-tests/test_api

echo "== libkairos.a for C programs: only kairos_* exported, links with glib"
bash scripts/build-libkairos.sh
cc -std=c99 -Wall -Werror -Ibuild/include $(pkg-config --cflags glib-2.0) ffi/tests/c/test_glib_link.c \
    build/lib/libkairos.a $(pkg-config --libs glib-2.0) -lpthread -ldl -lm -o target/test_glib_link
target/test_glib_link

echo "== CLI end-to-end"
bash scripts/cli-e2e.sh

echo "== patched QEMU: build, upstream migration-test, end-to-end migration"
bash scripts/qemu-tests.sh

echo "== libvirt: virsh migrate --live between two libvirtd instances, policy off and predictive"
bash scripts/libvirt-migrate-test.sh

#!/usr/bin/env bash
# The main job: sets up everything on a fresh machine (packages, the
# patched QEMU 10.0, libkairos, the test guest, the kairos CLI) and runs a
# real comparison: the Kairos guest under phase-changing and hot workloads,
# migrated between two QEMU processes in two network namespaces joined by a
# link shaped to 1 Gbit/s, with QEMU's own rule, auto-converge and Kairos's
# `predictive` policy. Prints the table and where the raw runs, logs and
# per-round traces are.
#
# Extra arguments go to `kairos compare` (e.g. --repeat 3).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
bash scripts/build-qemu.sh
bash scripts/build-guest.sh
echo "== building kairos (release)" >&2
cargo build --release -q -p kairos-testbed
out=build/demo
echo "== kairos compare: phase-change, hot-wss x qemu, auto-converge, predictive" >&2
target/release/kairos compare --suite phase-change,hot-wss \
    --policies qemu,auto-converge,predictive --repeat 1 --timeout-s 60 --netns \
    --out "$out" "$@"
echo "per-round traces: $out/runs/*/trace.csv (replay: target/release/kairos replay --trace FILE)" >&2

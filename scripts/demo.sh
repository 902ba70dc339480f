#!/usr/bin/env bash
# The main job: sets up everything on a fresh machine (packages, the
# patched QEMU 10.0, libkairos, the test guest, the kairos CLI) and runs a
# real comparison: the Kairos guest under a phase-changing workload, a hot
# working set and redis (redis-server + redis-benchmark), migrated between
# two QEMU processes in two network namespaces joined by a link shaped to
# 1 Gbit/s, under QEMU's rule at the downtime limit and at the maximum,
# auto-converge, KubeVirt's downtime ramp and stall detector, and Kairos's
# `predictive`, each workload's oracle from a never-stop migration, costs at
# the downtime weights 3, 10 and 30. Prints the tables and where the plots,
# raw runs, logs and per-round traces are. The full comparison, every static
# limit with repeats at one commit, is scripts/sweep.sh (docs/results-sweep.md).
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
# A fresh comparison every time (kairos compare would keep earlier runs).
rm -rf "$out"
echo "== kairos compare: phase-change, hot-wss, redis x qemu, qemu@1000, auto-converge, kubevirt-ramp, kubevirt-stall, predictive" >&2
target/release/kairos compare --suite phase-change,hot-wss,redis \
    --policies qemu,qemu@max,auto-converge,kubevirt-ramp,kubevirt-stall,predictive \
    --downtime-weights 3,10,30 --repeat 1 --timeout-s 75 --oracle-s 45 --out "$out" "$@"
echo "plots:" >&2
ls "$out"/plots/*.png >&2
echo "tables: $out/summary.md; cells: $out/summary.csv; every run: $out/runs.csv; raw runs and logs: $out/runs/" >&2
echo "per-round traces: $out/runs/*/trace.csv (replay: target/release/kairos replay --trace FILE --explain)" >&2

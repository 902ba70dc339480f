#!/usr/bin/env bash
# Regenerates docs/results.md: real migrations of the Kairos guest between
# two patched QEMUs in two network namespaces (a veth pair shaped to
# 1 Gbit/s), every workload × policy repeated, each workload's oracle from a
# never-stop migration, the goal ratios, and the plots (docs/results/).
#
#   bash scripts/results.sh            # about 70 minutes on 2 cores
#   REPEAT=5 bash scripts/results.sh   # more repeats
#
# Resumable: the raw runs are kept in build/results and finished ones are
# not run again (delete build/results to start over).
set -euo pipefail
cd "$(dirname "$0")/.."

REPEAT=${REPEAT:-3}
WORKLOADS=${WORKLOADS:-phase-change,periodic,write-then-cpu,hot-wss,ycsb-a,redis}
POLICIES=${POLICIES:-qemu,auto-converge,predictive}
# Every other policy once, on two workloads (the library's emulations of
# Xen, Nova and KubeVirt run inside the patched QEMU; post-copy after 5 rounds).
OTHER_WORKLOADS=${OTHER_WORKLOADS:-phase-change,hot-wss}
OTHER_POLICIES=${OTHER_POLICIES:-postcopy-after,xen,nova,kubevirt-stall,kubevirt-ramp}
out=build/results
others=build/results-others

bash scripts/setup.sh
bash scripts/build-qemu.sh
bash scripts/build-guest.sh
cargo build --release -q -p kairos-testbed

echo "== kairos compare: $WORKLOADS x $POLICIES, $REPEAT repeats (raw runs: $out/runs)" >&2
target/release/kairos compare --suite "$WORKLOADS" --policies "$POLICIES" \
    --repeat "$REPEAT" --timeout-s 60 --oracle-s 60 --netns --out "$out"

echo "== kairos compare: $OTHER_WORKLOADS x $OTHER_POLICIES, once (raw runs: $others/runs)" >&2
target/release/kairos compare --suite "$OTHER_WORKLOADS" --policies "$OTHER_POLICIES" \
    --repeat 1 --timeout-s 60 --oracle-s 0 --netns --out "$others"

rm -rf docs/results
mkdir -p docs/results
cp "$out"/plots/*.png docs/results/
python3 scripts/render_results.py "$out" "$WORKLOADS" "$POLICIES" "$REPEAT" \
    "$(git rev-parse --short HEAD)" "$others" "$OTHER_WORKLOADS" "$OTHER_POLICIES" >docs/results.md.tmp
mv docs/results.md.tmp docs/results.md
echo "wrote docs/results.md and docs/results/*.png" >&2

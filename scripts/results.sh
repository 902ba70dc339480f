#!/usr/bin/env bash
# Regenerates docs/results.md: real migrations of the Kairos guest between
# two QEMUs in two network namespaces (a veth pair shaped to 1 Gbit/s), in
# one run per section:
#   1. every workload × QEMU's rule at the limit and at the maximum,
#      auto-converge, KubeVirt's ramp and stall detector, and predictive at
#      each downtime weight, repeated, with each workload's oracle;
#   2. a 4 GiB guest (db-4g) under the same policies;
#   3. QEMU's rule on the unpatched binary next to the patched one recording
#      every sync, to show the recording changes nothing.
#
#   bash scripts/results.sh            # about two hours on 2 cores
#   REPEAT=3 bash scripts/results.sh   # more repeats
#
# Resumable: the raw runs are kept under build/results* and finished ones
# are not run again (delete them to start over).
set -euo pipefail
cd "$(dirname "$0")/.."

REPEAT=${REPEAT:-2}
WORKLOADS=${WORKLOADS:-phase-change,periodic,write-then-cpu,hot-wss,ycsb-a,redis}
POLICIES=${POLICIES:-qemu,qemu@max,auto-converge,kubevirt-ramp,kubevirt-stall,predictive}
WEIGHTS=${WEIGHTS:-3,10,30}
# KubeVirt's stall detector needs 40 s of history before it acts.
TIMEOUT_S=${TIMEOUT_S:-90}

bash scripts/setup.sh
bash scripts/build-qemu.sh
bash scripts/build-qemu.sh --vanilla
bash scripts/build-guest.sh
cargo build --release -q -p kairos-testbed
kairos=target/release/kairos

echo "== 1. $WORKLOADS x $POLICIES, weights $WEIGHTS, $REPEAT repeats" >&2
$kairos compare --suite "$WORKLOADS" --policies "$POLICIES" --downtime-weights "$WEIGHTS" \
    --repeat "$REPEAT" --timeout-s "$TIMEOUT_S" --oracle-s 60 --out build/results

echo "== 2. a 4 GiB guest: db-4g x the same policies, once" >&2
$kairos compare --suite db-4g --ram-mib 4096 --warmup-s 25 --policies "$POLICIES" \
    --downtime-weights "$WEIGHTS" --repeat 1 --timeout-s 180 --oracle-s 120 --out build/results-4g

echo "== 3. QEMU's rule, unpatched binary (the patched one's runs are in section 1)" >&2
$kairos compare --suite phase-change,hot-wss --policies qemu,qemu@max --vanilla-qemu \
    --downtime-weights 10 --repeat "$REPEAT" --timeout-s "$TIMEOUT_S" --oracle-s 0 \
    --out build/results-vanilla

rm -rf docs/results
mkdir -p docs/results
cp build/results/plots/*.png build/results-4g/plots/*.png docs/results/
python3 scripts/render_results.py --title "Measured results: live migrations" \
    --command "bash scripts/results.sh" --preamble docs/results-preamble.md \
    --section build/results "Six workloads, 1 GiB guest" \
    --section build/results-4g "A 4 GiB guest" \
    --section build/results-vanilla "QEMU's rule on the unpatched binary" \
    --plots docs/results --out docs/results.md
echo "wrote docs/results.md and docs/results/*.png" >&2

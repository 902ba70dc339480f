#!/usr/bin/env bash
# The reliability soak (not part of CI: over an hour): one 512 MiB guest
# migrated back and forth between two patched QEMUs in two network
# namespaces HOPS times with the policy on (predictive, throttle
# escalation), its workload changing phase across hops, every hop verified
# by the guest's own page check; then, on the same kind of guest, every
# fault an operator meets (FAULT_HOPS hops, a fault on each, each retried).
# Stores the two runs (docs/results/runs/reliability.jsonl.gz) and renders
# docs/reliability.md from them (kairos report reliability, scripts/report.sh).
#
# The soak's link is 2 Gbit/s (BANDWIDTH_MBIT): its job is reliability over
# many hops, not convergence figures, and the faster link halves its time
# (about 3.6 s a hop, an hour for 1000, against 6.3 s at 1 Gbit/s); the
# fault hops keep the test-bed's 1 Gbit/s link.
#
#   bash scripts/soak.sh                 # 1000 hops + 25 fault hops
#   HOPS=50 FAULT_HOPS=5 bash scripts/soak.sh
set -euo pipefail
cd "$(dirname "$0")/.."
HOPS=${HOPS:-1000}
FAULT_HOPS=${FAULT_HOPS:-25}
BANDWIDTH_MBIT=${BANDWIDTH_MBIT:-2000}

bash scripts/setup.sh
bash scripts/build-qemu.sh
bash scripts/build-guest.sh
cargo build --release -q -p kairos-testbed
kairos=target/release/kairos
rm -rf build/soak build/soak-faults
status=0
echo "== soak: $HOPS hops" >&2
$kairos soak --hops "$HOPS" --ram-mib 512 --escalation throttle --bandwidth-mbit "$BANDWIDTH_MBIT" \
    --out build/soak || status=1
echo "== faults: $FAULT_HOPS hops, each with a fault" >&2
$kairos soak --hops "$FAULT_HOPS" --ram-mib 512 --escalation throttle --fault all \
    --timeout-s 60 --out build/soak-faults || status=1
# The runs (and the fuzzing log, if scripts/fuzz.sh has run) are stored in
# the repository and the page is rendered from them (scripts/report.sh).
fuzz=()
[ -f build/fuzz/runs.txt ] && fuzz=(--fuzz build/fuzz/runs.txt)
$kairos report pack-reliability --soak build/soak --faults build/soak-faults "${fuzz[@]}" \
    --out docs/results/runs/reliability.jsonl.gz || status=1
bash scripts/report.sh || status=1
exit $status

#!/usr/bin/env bash
# The reliability soak (not part of CI: over an hour): one 512 MiB guest
# migrated back and forth between two patched QEMUs in two network
# namespaces HOPS times with the policy on (predictive, throttle
# escalation), its workload changing phase across hops, every hop verified
# by the guest's own page check; then, on the same kind of guest, every
# fault an operator meets (FAULT_HOPS hops, a fault on each, each retried).
# Writes docs/reliability.md from what the two runs report.
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
python3 scripts/render_reliability.py --soak build/soak --faults build/soak-faults \
    --fuzz build/fuzz/runs.txt --soak-bandwidth-mbit "$BANDWIDTH_MBIT" \
    --command "bash scripts/soak.sh" --out docs/reliability.md
exit $status

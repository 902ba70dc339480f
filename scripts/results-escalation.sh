#!/usr/bin/env bash
# Regenerates docs/results-escalation.md: the strict case (maximum downtime =
# limit = 300 ms), where no stop fits and a policy can only slow the guest or
# leave pre-copy. Real migrations over the shaped link (network namespaces,
# 1 Gbit/s), in one run per section:
#   1. predictive with throttle escalation against QEMU's rule, auto-converge
#      and auto-converge with cpu-throttle-tailslow;
#   2. predictive with post-copy escalation against post-copy after 5 rounds.
#
#   bash scripts/results-escalation.sh          # REPEAT=5 (150 migrations): 1 h 40 min on 2 cores
#   REPEAT=6 bash scripts/results-escalation.sh # one run more a cell, kept runs reused
#
# Resumable: raw runs stay under build/results-escalation*; finished ones are
# not run again (delete them to start over).
set -euo pipefail
cd "$(dirname "$0")/.."

REPEAT=${REPEAT:-5}
WORKLOADS=${WORKLOADS:-hot-wss,phase-change,write-then-cpu,redis,sysbench-memory}
LIMIT_MS=${LIMIT_MS:-300}
TIMEOUT_S=${TIMEOUT_S:-90}

bash scripts/setup.sh
bash scripts/build-qemu.sh
bash scripts/build-guest.sh
cargo build --release -q -p kairos-testbed
kairos=target/release/kairos
strict=(--downtime-limit-ms "$LIMIT_MS" --max-downtime-ms "$LIMIT_MS" --downtime-weights 10
        --repeat "$REPEAT" --timeout-s "$TIMEOUT_S" --oracle-s 0)

echo "== 1. throttle: $WORKLOADS, maximum = limit = $LIMIT_MS ms" >&2
$kairos compare --suite "$WORKLOADS" --policies qemu,auto-converge,auto-converge-tailslow,predictive \
    --escalation throttle "${strict[@]}" --out build/results-escalation-throttle

echo "== 2. post-copy: $WORKLOADS, maximum = limit = $LIMIT_MS ms" >&2
$kairos compare --suite "$WORKLOADS" --policies postcopy-after,predictive \
    --escalation postcopy "${strict[@]}" --out build/results-escalation-postcopy

# The runs are stored in the repository and the page rendered from them
# (scripts/report.sh, checked in CI).
$kairos report pack --runs build/results-escalation-throttle/runs \
    --out docs/results/runs/escalation-throttle.jsonl.gz
$kairos report pack --runs build/results-escalation-postcopy/runs \
    --out docs/results/runs/escalation-postcopy.jsonl.gz
bash scripts/report.sh
echo "wrote docs/results-escalation.md" >&2

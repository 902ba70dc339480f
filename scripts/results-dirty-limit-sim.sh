#!/usr/bin/env bash
# Regenerates docs/results-dirty-limit-sim.md: predictive's escalation as a
# CPU throttle against the same escalation as a dirty-rate limit
# (--escalation dirty-limit), in the simulator, on the workload catalogue,
# maximum = limit = 300 ms, seeds 1-3. Simulation only: the limit needs
# KVM's dirty ring, which this test-bed (TCG) does not have. About three
# minutes. The runs are stored in docs/results/runs/dirty-limit-sim.jsonl.gz
# and the page is rendered from them by `kairos report dirty-limit`
# (scripts/report.sh, checked in CI).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
cargo build --release -q -p kairos-testbed
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

packs=()
for escalation in throttle dirty-limit; do
    for seed in 1 2 3; do
        echo "== simulating the suite: --escalation $escalation --seed $seed" >&2
        target/release/kairos sim --suite testbed/workloads --policy predictive \
            --max-downtime-ms 300 --escalation "$escalation" --seed "$seed" --json \
            >"$out/$escalation-$seed.jsonl"
        packs+=(--sim "$escalation=$out/$escalation-$seed.jsonl")
    done
done
target/release/kairos report pack-sim "${packs[@]}" --out docs/results/runs/dirty-limit-sim.jsonl.gz
bash scripts/report.sh
echo "wrote docs/results-dirty-limit-sim.md" >&2

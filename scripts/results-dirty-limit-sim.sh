#!/usr/bin/env bash
# Regenerates docs/results-dirty-limit-sim.md: predictive's escalation as a
# CPU throttle against the same escalation as a dirty-rate limit
# (--escalation dirty-limit), in the simulator, on the workload catalogue,
# maximum = limit = 300 ms, seeds 1-3. Simulation only: the limit needs
# KVM's dirty ring, which this test-bed (TCG) does not have. About three
# minutes.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
cargo build --release -q -p kairos-testbed
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

runs=()
for escalation in throttle dirty-limit; do
    for seed in 1 2 3; do
        echo "== simulating the suite: --escalation $escalation --seed $seed" >&2
        target/release/kairos sim --suite testbed/workloads --policy predictive \
            --max-downtime-ms 300 --escalation "$escalation" --seed "$seed" --json \
            >"$out/$escalation-$seed.jsonl"
        runs+=(--run "$escalation=$out/$escalation-$seed.jsonl")
    done
done
python3 scripts/render_dirty_limit_sim.py "${runs[@]}" \
    --command "bash scripts/results-dirty-limit-sim.sh" --out docs/results-dirty-limit-sim.md
echo "wrote docs/results-dirty-limit-sim.md" >&2

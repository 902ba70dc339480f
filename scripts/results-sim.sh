#!/usr/bin/env bash
# Regenerates docs/results-sim.md: the simulated comparison of every policy
# on the workload catalogue, the goal checks, and the criterion figure of one
# observe+decide round. Takes about two minutes.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
cargo build --release -q -p kairos-testbed
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

echo "== simulating the suite" >&2
target/release/kairos sim --suite testbed/workloads --policy all --json >"$out/sim.jsonl"
echo "== criterion: observe_round" >&2
cargo bench -q -p kairos-policy-core --bench observe -- --noplot >"$out/bench.txt" 2>&1
python3 scripts/render_results_sim.py "$out/sim.jsonl" target/criterion "$(rustc --version)" >docs/results-sim.md
echo "wrote docs/results-sim.md" >&2

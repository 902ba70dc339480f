#!/usr/bin/env bash
# Regenerates docs/results-sim.md: the simulated comparison of every policy
# and baseline on the workload catalogue at the downtime weights 3, 10 and
# 30, the goal checks, forecast quality, a Pareto plot per workload
# (docs/results-sim/), and the criterion figures of one decision. About five
# minutes.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
cargo build --release -q -p kairos-testbed
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
rm -rf docs/results-sim
mkdir -p docs/results-sim

sims=()
for weight in 3 10 30; do
    echo "== simulating the suite at λ = $weight" >&2
    plots=()
    [ "$weight" = 10 ] && plots=(--plot-dir docs/results-sim)
    target/release/kairos sim --suite testbed/workloads --policy all --downtime-weight "$weight" \
        --forecast-quality --json "${plots[@]}" >"$out/sim-w$weight.jsonl"
    sims+=(--sim "$weight=$out/sim-w$weight.jsonl")
done
echo "== criterion: one decision, in Rust and through the C ABI" >&2
cargo bench -q -p kairos-policy-core --bench observe -- --noplot >"$out/bench.txt" 2>&1
cargo bench -q -p kairos-ffi --bench c_abi -- --noplot >>"$out/bench.txt" 2>&1
python3 scripts/render_results_sim.py "${sims[@]}" --criterion target/criterion \
    --rustc "$(rustc --version)" --plots docs/results-sim --out docs/results-sim.md
echo "wrote docs/results-sim.md and docs/results-sim/*.png" >&2

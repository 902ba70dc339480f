#!/usr/bin/env bash
# Regenerates docs/results-sim.md: the simulated comparison of every policy
# and baseline on the workload catalogue at the downtime weights 3, 10 and
# 30, the goal checks, forecast quality (steady, deciding and phase-change
# rounds) and a Pareto plot per workload (docs/results-sim/). The runs are
# stored in docs/results/runs/sim.jsonl.gz and the page is rendered from
# them by `kairos report sim` (scripts/report.sh, checked in CI). A few
# minutes. The per-round decision time is measured by
# scripts/bench-compare.sh, not here.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
cargo build --release -q -p kairos-testbed
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
rm -rf docs/results-sim
mkdir -p docs/results-sim

packs=()
for weight in 3 10 30; do
    echo "== simulating the suite at λ = $weight" >&2
    plots=()
    [ "$weight" = 10 ] && plots=(--plot-dir docs/results-sim)
    target/release/kairos sim --suite testbed/workloads --policy all --downtime-weight "$weight" \
        --forecast-quality --json "${plots[@]}" >"$out/sim-w$weight.jsonl"
    packs+=(--sim "catalogue=$out/sim-w$weight.jsonl")
done
target/release/kairos report pack-sim "${packs[@]}" --out docs/results/runs/sim.jsonl.gz
bash scripts/report.sh
echo "wrote docs/results-sim.md and docs/results-sim/*.png" >&2

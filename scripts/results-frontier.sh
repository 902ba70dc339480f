#!/usr/bin/env bash
# Regenerates docs/results-frontier.md: `predictive` against QEMU's rule at
# every static downtime-limit from 100 to 1000 ms, on random workload
# programs the policies were never tuned on (scripts/gen_workloads.py), at
# the downtime weights 3, 10 and 30. Simulation only; about five minutes.
#
#   bash scripts/results-frontier.sh               # seed 7, 60 programs
#   SEED=8 COUNT=100 bash scripts/results-frontier.sh
set -euo pipefail
cd "$(dirname "$0")/.."

SEED=${SEED:-7}
COUNT=${COUNT:-60}
STATICS=qemu@100,qemu@200,qemu@300,qemu@400,qemu@500,qemu@600,qemu@700,qemu@800,qemu@900,qemu@1000

bash scripts/setup.sh
cargo build --release -q -p kairos-testbed
out=build/frontier
rm -rf "$out"
python3 scripts/gen_workloads.py --seed "$SEED" --count "$COUNT" --out "$out/workloads"
sims=()
for weight in 3 10 30; do
    echo "== simulating $COUNT programs at λ = $weight" >&2
    target/release/kairos sim --suite "$out/workloads" --policy "predictive,$STATICS,auto-converge" \
        --downtime-limit-ms 300 --max-downtime-ms 1000 --downtime-weight "$weight" \
        --json >"$out/sim-w$weight.jsonl"
    sims+=(--sim "$weight=$out/sim-w$weight.jsonl")
done
python3 scripts/render_frontier.py "${sims[@]}" --seed "$SEED" --count "$COUNT" \
    --command "SEED=$SEED COUNT=$COUNT bash scripts/results-frontier.sh" --out docs/results-frontier.md

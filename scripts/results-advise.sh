#!/usr/bin/env bash
# Regenerates docs/advise.md's simulated half: `kairos advise` judged in the
# simulator on the catalogue's workloads — at 12 moments spread over each
# workload's cycle, the migration (under `predictive`) started at once,
# where `advise` says (re-advised while waiting, as live), where its first
# advice alone says, where the ALMA-style rule says, and (cyclic programs)
# the best start in hindsight over one cycle, a bound — at the wait
# weights ω = 0 (waiting is free), 0.1 (the default) and 1 (a second of
# waiting costs a second of migration), and on the cyclic programs held out
# from its design (testbed/workloads-held-out/advise). Stores the
# judgements (docs/results/runs/advise-sim.jsonl.gz) and renders the page
# from them with the live runs when stored (scripts/results-advise-live.sh).
# About 15 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
TRIALS=${TRIALS:-12}
WORKLOADS=${WORKLOADS:-batch-cycle gc-cycle periodic idle-then-burst bursty hot-wss phase-change static-small ramping skewed}
# Cyclic programs held out from the advice's design (never tuned on).
HELD_OUT=${HELD_OUT:-web-45s etl-110s}

bash scripts/setup.sh
cargo build --release -q -p kairos-testbed
kairos=target/release/kairos
out=build/advise-eval
rm -rf "$out"
mkdir -p "$out"
evals=()
for omega in 0 0.1 1; do
    for w in $WORKLOADS $HELD_OUT; do
        file="testbed/workloads/$w.toml"
        [ -f "$file" ] || file="testbed/workloads-held-out/advise/$w.toml"
        echo "== $w, ω = $omega" >&2
        $kairos advise --workload "$file" --trials "$TRIALS" \
            --wait-weight "$omega" --json >>"$out/omega-$omega.jsonl"
    done
    evals+=(--eval "$omega=$out/omega-$omega.jsonl")
done
$kairos report pack-advise "${evals[@]}" --held-out "$(echo $HELD_OUT | tr ' ' ',')" \
    --code-commit "$(git rev-parse HEAD)$(git diff --quiet HEAD -- policy-core testbed || echo -dirty)" \
    --out docs/results/runs/advise-sim.jsonl.gz
$kairos report advise --sim docs/results/runs/advise-sim.jsonl.gz \
    --live docs/results/runs/advise-live.jsonl.gz --page docs/advise.md

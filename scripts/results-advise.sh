#!/usr/bin/env bash
# Regenerates docs/advise.md: `kairos advise` judged in the simulator on the
# catalogue's workloads — at 12 moments spread over each workload's cycle,
# the migration (under `predictive`) started at once, where `advise` says,
# and where the ALMA-style rule says — at the wait weights ω = 0 (waiting
# is free), 0.1 (the default) and 1 (a second of waiting costs a second of
# migration), and on the cyclic programs held out from its design
# (testbed/workloads-held-out/advise). A few minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
TRIALS=${TRIALS:-12}
WORKLOADS=${WORKLOADS:-batch-cycle gc-cycle periodic idle-then-burst bursty hot-wss phase-change static-small ramping skewed}
# Cyclic programs held out from the advice's design (never tuned on).
HELD_OUT=${HELD_OUT:-web-45s etl-110s}

bash scripts/setup.sh
cargo build --release -q -p kairos-testbed
out=build/advise-eval
rm -rf "$out"
mkdir -p "$out"
for omega in 0 0.1 1; do
    for w in $WORKLOADS $HELD_OUT; do
        file="testbed/workloads/$w.toml"
        [ -f "$file" ] || file="testbed/workloads-held-out/advise/$w.toml"
        echo "== $w, ω = $omega" >&2
        target/release/kairos advise --workload "$file" --trials "$TRIALS" \
            --wait-weight "$omega" --json >>"$out/omega-$omega.jsonl"
    done
done
python3 scripts/render_advise.py --eval 0="$out/omega-0.jsonl" --eval 0.1="$out/omega-0.1.jsonl" \
    --eval 1="$out/omega-1.jsonl" --command "bash scripts/results-advise.sh" \
    --commit "$(git rev-parse HEAD)$(git diff --quiet HEAD -- policy-core testbed || echo -dirty)" \
    --held-out "$(echo $HELD_OUT | tr ' ' ',')" --out docs/advise.md

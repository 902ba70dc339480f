#!/usr/bin/env bash
# The live half of docs/advise.md: start rules compared on real guests
# (`kairos starts`). Per workload, under `predictive`: 10 migrations
# started at random moments of its cycle, 5 where `kairos advise` says
# (240 s of profile, then the wait, re-advised every 5 s) and 5 where the
# ALMA-style rule says; each run first waits a random delay drawn over the
# workload's cycle. Workloads: three catalogue cycles (periodic 20 s,
# batch-cycle 60 s, gc-cycle 90 s), the two cyclic programs held out from
# the advice's design (web-45s, etl-110s) and two acyclic ones (hot-wss,
# phase-change). 140 migrations, most with 4 minutes of profile: about
# 10 hours on 2 cores, so never in CI. Resumable: finished runs in
# build/starts are kept; run it again to go on.
#
#   bash scripts/results-advise-live.sh          run (or resume), then pack and render
#   PACK_ONLY=1 bash scripts/results-advise-live.sh   pack the runs made so far and render
set -euo pipefail
cd "$(dirname "$0")/.."
WORKLOADS=${WORKLOADS:-periodic,batch-cycle,gc-cycle,testbed/workloads-held-out/advise/web-45s.toml,testbed/workloads-held-out/advise/etl-110s.toml,hot-wss,phase-change}
OUT=${OUT:-build/starts}
WAIT_WEIGHT=${WAIT_WEIGHT:-0.1}

bash scripts/setup.sh
cargo build --release -q -p kairos-testbed
kairos=target/release/kairos
if [ -z "${PACK_ONLY:-}" ]; then
    $kairos starts --suite "$WORKLOADS" --policy predictive --random 10 --advised 5 --alma 5 \
        --wait-weight "$WAIT_WEIGHT" --timeout-s 180 --order-seed 27 --out "$OUT"
fi
$kairos report pack --runs "$OUT/runs" --out docs/results/runs/advise-live.jsonl.gz
$kairos report advise --sim docs/results/runs/advise-sim.jsonl.gz \
    --live docs/results/runs/advise-live.jsonl.gz --page docs/advise.md

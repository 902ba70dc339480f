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
# 11 hours on 2 cores, so it runs in the background, resumable, never in CI.
#
# One commit: `start` pins HEAD (tracked files must be clean) and builds
# that commit's code apart, in a worktree under build/advise-live/root, so
# later work on main changes nothing in the campaign; every run records
# the commit (kairos starts refuses to resume another commit's runs).
#
#   bash scripts/results-advise-live.sh start    pin HEAD, build its code, run in the background
#   bash scripts/results-advise-live.sh resume   go on with the pinned campaign (on a fresh clone,
#                                                from the runs the repository keeps in
#                                                docs/results/runs/advise-live.jsonl.gz)
#   bash scripts/results-advise-live.sh status   runs done and planned, the log's tail
#   bash scripts/results-advise-live.sh stop     stop it (the run under way is made again on resume)
#   bash scripts/results-advise-live.sh run      what start and resume run, in the foreground
#   bash scripts/results-advise-live.sh guard    stop it while a test run is on the machine
#   bash scripts/results-advise-live.sh pack     store the runs made so far
#                                                (docs/results/runs/advise-live.jsonl.gz) and
#                                                render docs/advise.md from them
#
# The campaign machinery is scripts/lib/campaign.sh (shared with scripts/sweep.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

CAMPAIGN=advise-live
CAMPAIGN_PACK=docs/results/runs/advise-live.jsonl.gz
WORKLOADS=periodic,batch-cycle,gc-cycle,testbed/workloads-held-out/advise/web-45s.toml,testbed/workloads-held-out/advise/etl-110s.toml,hot-wss,phase-change
RANDOM_RUNS=10
ADVISED_RUNS=5
ALMA_RUNS=5
WAIT_WEIGHT=0.1
TIMEOUT_S=180
ORDER_SEED=27
# shellcheck source=scripts/lib/campaign.sh
. scripts/lib/campaign.sh

campaign_command() {
    exec target/release/kairos starts --suite "$WORKLOADS" --policy predictive \
        --random "$RANDOM_RUNS" --advised "$ADVISED_RUNS" --alma "$ALMA_RUNS" \
        --wait-weight "$WAIT_WEIGHT" --timeout-s "$TIMEOUT_S" --order-seed "$ORDER_SEED" \
        --root "$root" --out "$out"
}

campaign_total() {
    echo $(( $(tr ',' '\n' <<<"$WORKLOADS" | wc -l) * (RANDOM_RUNS + ADVISED_RUNS + ALMA_RUNS) ))
}

# Every page from the stored runs (scripts/report.sh renders docs/advise.md
# with these, saying how many of the planned runs are stored).
campaign_render() {
    bash scripts/report.sh
}

campaign_main "$@"

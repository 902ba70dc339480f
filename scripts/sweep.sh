#!/usr/bin/env bash
# The live sweep: real migrations of every workload under QEMU's rule at
# every static downtime-limit from 300 to 1000 ms (steps of 100 ms),
# auto-converge, KubeVirt's ramp and predictive at the downtime weights 3,
# 10 and 30; 5 repeats a cell, interleaved (one run of every cell per pass,
# in an order drawn from a seed). Workloads: six catalogue workloads and
# benchmarks, and ten held-out random programs
# (testbed/workloads-held-out/sweep: eight 1 GiB guests, two 4 GiB ones).
# 16 workloads x 13 cells x 5 repeats = 1040 migrations: 10-15 hours on
# 2 cores, so it runs in the background, resumable, never in CI.
#
# One commit: `start` pins HEAD (tracked files must be clean) and builds
# that commit's code apart, in a worktree under build/sweep/root (QEMU with
# its libkairos, the guest, the kairos CLI), so later work on main changes
# nothing in the campaign; every run records the commit (kairos compare
# refuses to resume a campaign with another commit's binary).
#
#   bash scripts/sweep.sh start    pin HEAD, build its code, run in the background
#   bash scripts/sweep.sh resume   go on with the pinned campaign in the background
#                                  (after stop, a reboot or a crash; on a fresh
#                                  clone, from the runs the repository keeps:
#                                  their commit is pinned, they are not run again)
#   bash scripts/sweep.sh status   runs done and left, the time left, the log's tail
#   bash scripts/sweep.sh stop     stop it (the run under way is dropped, made again on resume)
#   bash scripts/sweep.sh run      what start and resume run, in the foreground
#   bash scripts/sweep.sh guard    what start and resume also start: while a test run
#                                  (.ci/run or scripts/test.sh) is on this machine, the
#                                  sweep is stopped (its run under way dropped, so no
#                                  stored run shares the machine with it) and resumed
#                                  a minute after it ends
#   bash scripts/sweep.sh pack     store the runs made so far in the repository
#                                  (docs/results/runs/sweep.jsonl.gz), and the
#                                  sweep's programs simulated by its own build
#                                  (sweep-sim.jsonl.gz), and render
#                                  docs/results-sweep.md from them (scripts/report.sh)
#
# Raw runs: build/sweep/out/runs (one JSON, trace and guest logs per run).
# The campaign machinery (pin, worktree, background, guard, resume from
# the pack) is scripts/lib/campaign.sh, shared with the other live campaigns.
set -euo pipefail
cd "$(dirname "$0")/.."

CAMPAIGN=sweep
CAMPAIGN_PACK=docs/results/runs/sweep.jsonl.gz
WORKLOADS=hot-wss,phase-change,periodic,redis,ycsb-a,sysbench-memory
PROGRAMS=testbed/workloads-held-out/sweep
POLICIES=qemu@300,qemu@400,qemu@500,qemu@600,qemu@700,qemu@800,qemu@900,qemu@1000,auto-converge,kubevirt-ramp,predictive
WEIGHTS=3,10,30
REPEAT=5
TIMEOUT_S=120
ORDER_SEED=61206
# shellcheck source=scripts/lib/campaign.sh
. scripts/lib/campaign.sh

suite() {
    local list=$WORKLOADS f
    for f in "$root/$PROGRAMS"/*.toml; do list+=",$f"; done
    echo "$list"
}

campaign_command() {
    exec target/release/kairos compare --suite "$(suite)" --policies "$POLICIES" \
        --downtime-weights "$WEIGHTS" --repeat "$REPEAT" --oracle-s 0 \
        --timeout-s "$TIMEOUT_S" --order interleaved --order-seed "$ORDER_SEED" \
        --root "$root" --out "$out"
}

campaign_total() {
    local workloads cells
    workloads=$(( $(tr ',' '\n' <<<"$WORKLOADS" | wc -l) + $(find "$PROGRAMS" -maxdepth 1 -name '*.toml' | wc -l) ))
    cells=$(( $(tr ',' '\n' <<<"$POLICIES" | wc -l) - 1 + $(tr ',' '\n' <<<"$WEIGHTS" | wc -l) ))
    echo $(( workloads * cells * REPEAT ))
}

# The page's simulated counterpart: the sweep's programs simulated by the
# sweep's own build (its commit, not main's), as the live guests ran them:
# the live warm-up (the program's migrate_at_s, else kairos run's default,
# DEFAULT_WARMUP_S = 8 s) and the sweep's timeout as the time cap.
campaign_render() {
    local sims statics files name weight file warmup packs
    [ -x "$root/target/release/kairos" ] || die "no sweep build at $root (bash scripts/sweep.sh start)"
    sims=$(mktemp -d)
    trap 'rm -rf "$sims"' EXIT
    statics=$(tr ',' '\n' <<<"$POLICIES" | grep '^qemu@' | paste -sd,)
    files=()
    for name in ${WORKLOADS//,/ }; do
        [ -f "testbed/workloads/$name.toml" ] && files+=("testbed/workloads/$name.toml")
    done
    files+=("$PROGRAMS"/*.toml)
    packs=()
    for weight in ${WEIGHTS//,/ }; do
        log_line "simulating ${#files[@]} programs at λ = $weight with the sweep's build"
        for file in "${files[@]}"; do
            warmup=()
            grep -q '^migrate_at_s' "$file" || warmup=(--warmup-s 8)
            "$root/target/release/kairos" sim --workload "$file" --policy "$statics,predictive" \
                --downtime-limit-ms 300 --max-downtime-ms 1000 --downtime-weight "$weight" \
                --time-cap-s "$TIMEOUT_S" "${warmup[@]}" --json 2>/dev/null
        done >"$sims/w$weight.jsonl"
        packs+=(--sim "sweep=$sims/w$weight.jsonl")
    done
    target/release/kairos report pack-sim "${packs[@]}" --code-commit "$(cat "$commit_file")" \
        --out docs/results/runs/sweep-sim.jsonl.gz
    bash scripts/report.sh
}

campaign_main "$@"

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
set -euo pipefail
cd "$(dirname "$0")/.."
main=$(pwd)
top=$main/build/sweep
root=$top/root
out=$top/out
log=$top/log
pidfile=$top/pid
guard_pidfile=$top/guard.pid
commit_file=$top/COMMIT

WORKLOADS=hot-wss,phase-change,periodic,redis,ycsb-a,sysbench-memory
PROGRAMS=testbed/workloads-held-out/sweep
POLICIES=qemu@300,qemu@400,qemu@500,qemu@600,qemu@700,qemu@800,qemu@900,qemu@1000,auto-converge,kubevirt-ramp,predictive
WEIGHTS=3,10,30
REPEAT=5
TIMEOUT_S=120
ORDER_SEED=61206

log_line() { printf '[sweep] %s\n' "$*" >&2; }
die() { log_line "$*"; exit 1; }

running_pid() {
    local pid
    [ -f "${1:-$pidfile}" ] || return 1
    pid=$(cat "${1:-$pidfile}")
    kill -0 "$pid" 2>/dev/null || return 1
    echo "$pid"
}

# A test run on this machine: CI's command or the README's test command.
tests_running() {
    pgrep -f '(^|/| )[.]ci/run|scripts/test[.]sh' >/dev/null
}

stop_sweep() {
    local pid
    if pid=$(running_pid); then
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid"
        log_line "stopped (pid $pid); bash scripts/sweep.sh resume goes on"
        return 0
    fi
    return 1
}

# Keep the machine to the tests while they run: stop the sweep when they
# start, resume it once they have been gone for a minute.
guard() {
    local paused=0 quiet=0
    while :; do
        if tests_running; then
            quiet=0
            if stop_sweep; then
                paused=1
                log_line "a test run started: sweep stopped until it ends"
            fi
        elif [ "$paused" = 1 ]; then
            quiet=$((quiet + 5))
            if [ "$quiet" -ge 60 ]; then
                paused=0
                in_background
            fi
        fi
        sleep 5
    done
}

start_guard() {
    if ! running_pid "$guard_pidfile" >/dev/null; then
        setsid nohup bash "$main/scripts/sweep.sh" guard >>"$log" 2>&1 </dev/null &
        echo $! >"$guard_pidfile"
    fi
}

# The pinned commit's code, built in its worktree (idempotent: the builds
# are incremental, the download caches are shared with main's).
build_root() {
    local commit=$1
    if [ ! -e "$root/.git" ]; then
        log_line "worktree of $commit at $root"
        git worktree add -q --detach "$root" "$commit"
    fi
    [ "$(git -C "$root" rev-parse HEAD)" = "$commit" ] ||
        die "$root is not at the pinned commit $commit: remove it (git worktree remove --force $root)"
    [ -z "$(git -C "$root" status --porcelain --untracked-files=no)" ] ||
        die "$root has local changes: the campaign's code must be its commit's"
    mkdir -p "$root/build/qemu" "$root/build/guest"
    for cache in qemu/download guest/download; do
        if [ -d "$main/build/$cache" ] && [ ! -e "$root/build/$cache" ]; then
            cp -al "$main/build/$cache" "$root/build/$cache"
        fi
    done
    (
        cd "$root"
        bash scripts/build-qemu.sh
        bash scripts/build-guest.sh
        cargo build --release -q -p kairos-testbed
    )
}

suite() {
    local list=$WORKLOADS f
    for f in "$root/$PROGRAMS"/*.toml; do list+=",$f"; done
    echo "$list"
}

run_campaign() {
    [ -f "$commit_file" ] || die "no campaign: bash scripts/sweep.sh start"
    local commit
    commit=$(cat "$commit_file")
    bash scripts/setup.sh
    build_root "$commit"
    log_line "campaign at $commit: $REPEAT repeats, out $out"
    cd "$root"
    exec target/release/kairos compare --suite "$(suite)" --policies "$POLICIES" \
        --downtime-weights "$WEIGHTS" --repeat "$REPEAT" --oracle-s 0 \
        --timeout-s "$TIMEOUT_S" --order interleaved --order-seed "$ORDER_SEED" \
        --root "$root" --out "$out"
}

# A fresh clone has no campaign on disk, but the repository keeps the runs
# packed so far: put them back (kairos report unpack) and pin their commit,
# so resume goes on where the last pack left off instead of starting over.
restore_from_pack() {
    local pack=docs/results/runs/sweep.jsonl.gz commit
    [ ! -f "$commit_file" ] && [ -f "$pack" ] || return 0
    log_line "no campaign on disk: restoring the runs of $pack"
    cargo build --release -q -p kairos-testbed
    target/release/kairos report unpack --records "$pack" --out "$out"
    commit=$(sed -n 's/.*"code_commit": *"\([0-9a-f]\{40\}\)".*/\1/p' "$out/campaign.json")
    [ -n "$commit" ] || die "$out/campaign.json names no commit"
    echo "$commit" >"$commit_file"
}

in_background() {
    local pid
    if pid=$(running_pid); then
        die "already running (pid $pid): bash scripts/sweep.sh status"
    fi
    mkdir -p "$top"
    if tests_running; then
        die "a test run is on this machine: the sweep waits for it (bash scripts/sweep.sh resume later)"
    fi
    setsid nohup bash "$main/scripts/sweep.sh" run >>"$log" 2>&1 </dev/null &
    echo $! >"$pidfile"
    log_line "running in the background (pid $!); log: $log; bash scripts/sweep.sh status"
}

status() {
    local done total workloads cells pid
    workloads=$(( $(tr ',' '\n' <<<"$WORKLOADS" | wc -l) + $(find "$PROGRAMS" -maxdepth 1 -name '*.toml' | wc -l) ))
    cells=$(( $(tr ',' '\n' <<<"$POLICIES" | wc -l) - 1 + $(tr ',' '\n' <<<"$WEIGHTS" | wc -l) ))
    total=$(( workloads * cells * REPEAT ))
    done=$( (find "$out/runs" -maxdepth 1 -name '*.json' 2>/dev/null || true) | wc -l)
    if [ -f "$commit_file" ]; then
        echo "campaign at $(cat "$commit_file")"
    else
        echo "no campaign (bash scripts/sweep.sh start)"
        return 0
    fi
    if pid=$(running_pid); then echo "running (pid $pid)"; else echo "not running"; fi
    if pid=$(running_pid "$guard_pidfile"); then echo "guard on (pid $pid)"; else echo "guard off"; fi
    echo "runs kept: $done of $total"
    [ -f "$log" ] && grep -E '^\[[0-9]+/[0-9]+' "$log" | tail -n 3
    return 0
}

case "${1:-}" in
    start)
        [ ! -f "$commit_file" ] ||
            die "a campaign is pinned at $(cat "$commit_file"): resume it, or move build/sweep away to start over"
        [ -z "$(git status --porcelain --untracked-files=no)" ] ||
            die "tracked files differ from HEAD: commit first (the campaign's runs must be one commit's)"
        mkdir -p "$top"
        git rev-parse HEAD >"$commit_file"
        in_background
        start_guard
        ;;
    resume)
        mkdir -p "$top"
        restore_from_pack
        in_background
        start_guard
        ;;
    guard) guard ;;
    run) run_campaign ;;
    status) status ;;
    pack)
        cargo build --release -q -p kairos-testbed
        target/release/kairos report pack --runs "$out/runs" --out docs/results/runs/sweep.jsonl.gz
        # The page's simulated counterpart: the sweep's programs simulated
        # by the sweep's own build (its commit, not main's), as the live
        # guests ran them: the live warm-up (the program's migrate_at_s,
        # else kairos run's default, DEFAULT_WARMUP_S = 8 s) and the
        # sweep's timeout as the time cap.
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
        ;;
    stop)
        if pid=$(running_pid "$guard_pidfile"); then
            kill -TERM "$pid"
        fi
        stop_sweep || log_line "not running"
        ;;
    *)
        awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" >&2
        exit 2
        ;;
esac

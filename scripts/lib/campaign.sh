# A live campaign at one commit, run in the background, resumable across
# stops, reboots and fresh clones. Sourced by a campaign's script
# (scripts/sweep.sh, scripts/results-advise-live.sh), which sets
#
#   CAMPAIGN        its name: its files are under build/$CAMPAIGN
#   CAMPAIGN_PACK   the repository's packed runs (docs/results/runs/NAME.jsonl.gz)
#
# and defines
#
#   campaign_command    run in the pinned worktree ($root), storing runs
#                       under $out: exec the kairos command that makes them
#   campaign_total      the number of runs the campaign plans
#   campaign_render     after the runs are packed: the page(s) made from them
#
# then calls `campaign_main "$@"`. Subcommands:
#
#   start    pin HEAD (tracked files must be clean), build its code apart in a
#            worktree (build/NAME/root: QEMU with its libkairos, the guest, the
#            kairos CLI), run in the background
#   resume   go on with the pinned campaign in the background (after a stop,
#            a reboot or a crash; on a fresh clone, from the runs the
#            repository keeps in CAMPAIGN_PACK: their commit is pinned, they
#            are not run again)
#   status   runs kept and planned, the log's tail
#   stop     stop it (the run under way is dropped, made again on resume)
#   run      what start and resume run, in the foreground
#   guard    what start and resume also start: while a test run (.ci/run or
#            scripts/test.sh) is on this machine the campaign is stopped (its
#            run under way dropped, so no stored run shares the machine with
#            the tests) and resumed a minute after it ends
#   pack     store the runs made so far in CAMPAIGN_PACK and render
#
# Raw runs: build/NAME/out/runs (one JSON, trace and guest logs per run).

main=$(pwd)
script=$main/scripts/$(basename "${BASH_SOURCE[1]}")
top=$main/build/$CAMPAIGN
root=$top/root
out=$top/out
log=$top/log
pidfile=$top/pid
guard_pidfile=$top/guard.pid
commit_file=$top/COMMIT

log_line() { printf '[%s] %s\n' "$CAMPAIGN" "$*" >&2; }
die() {
    log_line "$*"
    exit 1
}

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

stop_campaign() {
    local pid
    if pid=$(running_pid); then
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid"
        log_line "stopped (pid $pid); bash ${script#"$main"/} resume goes on"
        return 0
    fi
    return 1
}

# Keep the machine to the tests while they run: stop the campaign when
# they start, resume it once they have been gone for a minute.
guard() {
    local paused=0 quiet=0
    while :; do
        if tests_running; then
            quiet=0
            if stop_campaign; then
                paused=1
                log_line "a test run started: stopped until it ends"
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
        setsid nohup bash "$script" guard >>"$log" 2>&1 </dev/null &
        echo $! >"$guard_pidfile"
    fi
}

# The download and compiler caches a worktree's build starts from: main's
# own build, or CAMPAIGN_CACHE_FROM (another tree's build/ directory).
seed_caches() {
    local from=${CAMPAIGN_CACHE_FROM:-$main/build} cache
    for cache in qemu/download qemu/ccache guest/download; do
        if [ -d "$from/$cache" ] && [ ! -e "$root/build/$cache" ]; then
            cp -al "$from/$cache" "$root/build/$cache"
        fi
    done
}

# The pinned commit's code, built in its worktree (idempotent: the builds
# are incremental).
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
    seed_caches
    (
        cd "$root"
        bash scripts/build-qemu.sh
        bash scripts/build-guest.sh
        cargo build --release -q -p kairos-testbed
    )
}

run_campaign() {
    [ -f "$commit_file" ] || die "no campaign: bash ${script#"$main"/} start"
    local commit
    commit=$(cat "$commit_file")
    bash scripts/setup.sh
    build_root "$commit"
    log_line "campaign at $commit: out $out"
    cd "$root"
    campaign_command
}

# A fresh clone has no campaign on disk, but the repository may keep the
# runs packed so far: put them back (kairos report unpack) and pin their
# commit, so resume goes on where the last pack left off.
restore_from_pack() {
    local commit
    [ ! -f "$commit_file" ] && [ -f "$CAMPAIGN_PACK" ] || return 0
    log_line "no campaign on disk: restoring the runs of $CAMPAIGN_PACK"
    cargo build --release -q -p kairos-testbed
    target/release/kairos report unpack --records "$CAMPAIGN_PACK" --out "$out"
    commit=$(sed -n 's/.*"code_commit": *"\([0-9a-f]\{40\}\)".*/\1/p' "$out/campaign.json")
    [ -n "$commit" ] || die "$out/campaign.json names no commit"
    echo "$commit" >"$commit_file"
}

in_background() {
    local pid
    if pid=$(running_pid); then
        die "already running (pid $pid): bash ${script#"$main"/} status"
    fi
    mkdir -p "$top"
    if tests_running; then
        die "a test run is on this machine: the campaign waits for it (bash ${script#"$main"/} resume later)"
    fi
    setsid nohup bash "$script" run >>"$log" 2>&1 </dev/null &
    echo $! >"$pidfile"
    log_line "running in the background (pid $!); log: $log; bash ${script#"$main"/} status"
}

status() {
    local done pid
    if [ -f "$commit_file" ]; then
        echo "campaign at $(cat "$commit_file")"
    else
        echo "no campaign (bash ${script#"$main"/} start)"
        return 0
    fi
    if pid=$(running_pid); then echo "running (pid $pid)"; else echo "not running"; fi
    if pid=$(running_pid "$guard_pidfile"); then echo "guard on (pid $pid)"; else echo "guard off"; fi
    done=$( (find "$out/runs" -maxdepth 1 -name '*.json' 2>/dev/null || true) | wc -l)
    echo "runs kept: $done of $(campaign_total)"
    [ -f "$log" ] && grep -E '^\[[0-9]+/[0-9]+' "$log" | tail -n 3
    return 0
}

usage() {
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$script" >&2
    exit 2
}

campaign_main() {
    case "${1:-}" in
        start)
            [ ! -f "$commit_file" ] ||
                die "a campaign is pinned at $(cat "$commit_file"): resume it, or move build/$CAMPAIGN away to start over"
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
            target/release/kairos report pack --runs "$out/runs" --out "$CAMPAIGN_PACK"
            campaign_render
            ;;
        stop)
            if pid=$(running_pid "$guard_pidfile"); then
                kill -TERM "$pid"
            fi
            stop_campaign || log_line "not running"
            ;;
        *) usage ;;
    esac
}

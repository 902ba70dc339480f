#!/usr/bin/env bash
# Fuzzes the C ABI with libFuzzer (cargo fuzz, AddressSanitizer with its
# leak checker): the target ffi/fuzz/fuzz_targets/api_sequence.rs runs any
# byte string as a program of create/observe/state/history/reset/free calls
# (kairos::api_stream). Needs a nightly toolchain (cargo fuzz passes
# sanitizer flags only nightly accepts); installs cargo-fuzz if missing.
#
#   bash scripts/fuzz.sh              # 10 million inputs (about 1.5 k inputs/s per job here once the corpus has grown: about 2 h)
#   JOBS=2 bash scripts/fuzz.sh       # the same 10 million split over 2 libFuzzer processes (one per core: about 1 h)
#   RUNS=100000 bash scripts/fuzz.sh  # a short run
#   MAX_TOTAL_S=2400 bash scripts/fuzz.sh  # stop after 40 min (or RUNS)
#
# With JOBS=N, N libFuzzer processes run RUNS/N inputs each on the same
# corpus directory (libFuzzer reloads it, so each picks up what the others
# found); their logs are build/fuzz/last-J.log and the summary line adds
# their counts. The first job to find something stops the others. The corpus is kept in build/fuzz/corpus (so a second run
# continues from it), crashes go to build/fuzz/artifacts; the summary line is
# appended to build/fuzz/runs.txt. Exit status 1 on a crash, leak or contract
# failure in any job.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-10000000}
MAX_TOTAL_S=${MAX_TOTAL_S:-0}   # 0: no time limit
JOBS=${JOBS:-1}
case "$JOBS" in ''|*[!0-9]*|0) echo "[fuzz] JOBS must be a positive integer, got '$JOBS'" >&2; exit 2 ;; esac
log() { printf '[fuzz] %s\n' "$*" >&2; }

if ! grep -q '^nightly' <<<"$(rustup toolchain list 2>/dev/null)"; then
    log "installing the nightly toolchain (rustup)"
    rustup toolchain install nightly --profile minimal || {
        log "no nightly toolchain and none installable here: cargo fuzz cannot run (the proptest stream in ffi/tests/fuzz_api.rs still runs in scripts/test.sh)"
        exit 1
    }
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    log "installing cargo-fuzz"
    cargo install -q cargo-fuzz --locked
fi
mkdir -p build/fuzz/corpus build/fuzz/artifacts
corpus_before=$(find build/fuzz/corpus -type f | wc -l)
log "api_sequence: $RUNS inputs in $JOBS job(s), corpus build/fuzz/corpus ($corpus_before files)"
# Build once before the jobs start, so they do not race for cargo's lock.
(cd ffi && cargo +nightly fuzz build api_sequence)
start=$(date +%s)
runs_per_job=$(( (RUNS + JOBS - 1) / JOBS ))
pids=()
for j in $(seq 1 "$JOBS"); do
    (cd ffi && exec cargo +nightly fuzz run api_sequence ../build/fuzz/corpus -- \
        -runs="$runs_per_job" -max_total_time="$MAX_TOTAL_S" -max_len=4096 -rss_limit_mb=2048 \
        -artifact_prefix=../build/fuzz/artifacts/ -print_final_stats=1) >"build/fuzz/last-$j.log" 2>&1 &
    pids+=("$!")
done
# A stopped script stops its jobs; a job that fails (a crash, a leak)
# stops the others, so the run ends at the first finding.
# (cargo fuzz runs the fuzzer as its child: stop both.)
stop_jobs() {
    local pid
    for pid in "${pids[@]}"; do
        pkill -TERM -P "$pid" 2>/dev/null || true
        kill "$pid" 2>/dev/null || true
    done
}
trap stop_jobs EXIT
interrupted=0
trap 'interrupted=1; stop_jobs' INT TERM
rc=0
while [ -n "$(jobs -pr)" ]; do
    job_rc=0
    wait -n || job_rc=$?
    if [ "$job_rc" -ne 0 ] && [ "$rc" -eq 0 ] && [ "$interrupted" -eq 0 ]; then
        rc=$job_rc
        log "a job exited $job_rc: stopping the others"
        stop_jobs
    fi
done
trap - EXIT INT TERM
# Stopped by the operator: still summed up and recorded, with exit 130.
[ "$interrupted" -eq 0 ] || rc=130
secs=$(( $(date +%s) - start ))
corpus_after=$(find build/fuzz/corpus -type f | wc -l)
corpus_kib=$(du -sk build/fuzz/corpus | cut -f1)
total=0
per_job=()
for j in $(seq 1 "$JOBS"); do
    tail -5 "build/fuzz/last-$j.log" >&2
    n=$(grep -aE '^Done [0-9]+ runs' "build/fuzz/last-$j.log" | tail -1 | awk '{print $2}') || true
    if [ -z "$n" ]; then
        # No Done line (a crash or an interrupt): the last status line's count.
        n=$(grep -aoE '^#[0-9]+' "build/fuzz/last-$j.log" | tail -1 | tr -d '#') || true
        per_job+=("${n:-0} (no 'Done' line)")
    else
        per_job+=("$n")
    fi
    total=$(( total + ${n:-0} ))
done
crashes=$(find build/fuzz/artifacts -type f | wc -l)
summary="$(date -u +%F) rev $(git rev-parse --short HEAD): $total inputs in $JOBS job(s) [${per_job[*]}] in ${secs} s; exit $rc; corpus $corpus_before -> $corpus_after files ($corpus_kib KiB); artifacts $crashes"
echo "$summary" | tee -a build/fuzz/runs.txt
exit "$rc"

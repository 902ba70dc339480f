#!/usr/bin/env bash
# Fuzzes the C ABI with libFuzzer (cargo fuzz, AddressSanitizer with its
# leak checker): the target ffi/fuzz/fuzz_targets/api_sequence.rs runs any
# byte string as a program of create/observe/state/history/reset/free calls
# (kairos::api_stream). Needs a nightly toolchain (cargo fuzz passes
# sanitizer flags only nightly accepts); installs cargo-fuzz if missing.
#
#   bash scripts/fuzz.sh              # 10 million inputs (1.5–2 k inputs/s here once the corpus has grown: over an hour)
#   RUNS=100000 bash scripts/fuzz.sh  # a short run
#   MAX_TOTAL_S=2400 bash scripts/fuzz.sh  # stop after 40 min (or RUNS)
#
# The corpus is kept in build/fuzz/corpus (so a second run continues from
# it), crashes go to build/fuzz/artifacts; the summary line is appended to
# build/fuzz/runs.txt. Exit status 1 on a crash, leak or contract failure.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-10000000}
MAX_TOTAL_S=${MAX_TOTAL_S:-0}   # 0: no time limit
log() { printf '[fuzz] %s\n' "$*" >&2; }

if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
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
log "api_sequence: $RUNS inputs, corpus build/fuzz/corpus ($corpus_before files)"
start=$(date +%s)
set +e
(cd ffi && cargo +nightly fuzz run api_sequence ../build/fuzz/corpus -- \
    -runs="$RUNS" -max_total_time="$MAX_TOTAL_S" -max_len=4096 -rss_limit_mb=2048 \
    -artifact_prefix=../build/fuzz/artifacts/ -print_final_stats=1) 2>&1 | tee build/fuzz/last.log
rc=${PIPESTATUS[0]}
set -e
secs=$(( $(date +%s) - start ))
corpus_after=$(find build/fuzz/corpus -type f | wc -l)
corpus_kib=$(du -sk build/fuzz/corpus | cut -f1)
done_line=$(grep -E '^Done [0-9]+ runs' build/fuzz/last.log | tail -1 || true)
crashes=$(find build/fuzz/artifacts -type f | wc -l)
summary="$(date -u +%F) rev $(git rev-parse --short HEAD): ${done_line:-no 'Done' line} in ${secs} s; exit $rc; corpus $corpus_before -> $corpus_after files ($corpus_kib KiB); artifacts $crashes"
echo "$summary" | tee -a build/fuzz/runs.txt
exit "$rc"

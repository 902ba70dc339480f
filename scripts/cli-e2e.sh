#!/usr/bin/env bash
# End-to-end checks of the kairos CLI: a simulated suite, a trace written by
# the simulator and read back by replay, and clear errors on bad input.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release -q -p kairos-testbed
kairos=target/release/kairos
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

fail() { echo "cli-e2e: FAIL: $*" >&2; exit 1; }
passed=0

# 1. A simulated comparison in JSON: predictive converges on the hot working
#    set where qemu does not.
"$kairos" sim --workload testbed/workloads/hot-wss.toml --policy qemu,predictive --time-cap-s 60 \
    --trace-dir "$tmp/traces" --json >"$tmp/sim.jsonl" 2>"$tmp/sim.err"
python3 - "$tmp/sim.jsonl" <<'PY' || fail "sim JSON"
import json, sys
rows = {r["policy"]: r for r in map(json.loads, open(sys.argv[1]))}
for key in ["workload", "policy", "converged", "rounds", "total_time_ms", "downtime_ms",
            "sent_bytes", "oracle_total_time_ms", "oracle_downtime_ms"]:
    assert key in rows["predictive"], key
assert rows["qemu"]["converged"] is False, rows["qemu"]
assert rows["predictive"]["converged"] is True, rows["predictive"]
assert rows["predictive"]["downtime_ms"] <= 1000, rows["predictive"]
PY
passed=$((passed + 1))

# 2. The trace the simulator wrote replays.
trace="$tmp/traces/hot-wss.never-stop.csv"
[ -s "$trace" ] || fail "no trace written"
"$kairos" replay --trace "$trace" --policy all --json >"$tmp/replay.jsonl"
[ "$(wc -l <"$tmp/replay.jsonl")" -eq 6 ] || fail "replay should print one line per policy"
grep -q '"policy":"predictive","converged":true' "$tmp/replay.jsonl" || fail "predictive did not stop in replay"
passed=$((passed + 1))

# 3. Bad input gives a clear error naming the file or flag, and exit 1.
expect_error() {
    local what=$1 pattern=$2; shift 2
    if "$@" >"$tmp/out" 2>"$tmp/err"; then fail "$what: succeeded"; fi
    grep -q -- "$pattern" "$tmp/err" || { cat "$tmp/err" >&2; fail "$what: error does not mention '$pattern'"; }
    passed=$((passed + 1))
}
printf 'name = "x"\nram_mib = 1024\n[[phase]]\nkind = "write"\nseconds = 5\nwss_mib = 4000\nrate_mib_s = 10\n' >"$tmp/bad.toml"
expect_error "bad workload field" "phase\[1\].wss_mib" "$kairos" sim --workload "$tmp/bad.toml"
expect_error "missing workload" "nope.toml" "$kairos" sim --workload "$tmp/nope.toml"
expect_error "unknown policy" "unknown policy 'fast'" "$kairos" sim --workload testbed/workloads/idle.toml --policy fast
expect_error "bad bandwidth" "bandwidth-mbit" "$kairos" sim --workload testbed/workloads/idle.toml --bandwidth-mbit 0
printf 'round,time_ms\n1,2\n' >"$tmp/bad.csv"
expect_error "bad trace header" "bad.csv" "$kairos" replay --trace "$tmp/bad.csv"
expect_error "max below limit" "max_downtime_ms" "$kairos" sim --workload testbed/workloads/idle.toml --max-downtime-ms 10
# The live commands check their flags before starting anything.
expect_error "profile: unknown workload" "unknown workload .nope." "$kairos" profile --workload nope
expect_error "profile: bad mode" "--mode" "$kairos" profile --workload idle --mode fast
expect_error "profile: zero duration" "--duration-s" "$kairos" profile --workload idle --duration-s 0
expect_error "compare: negative oracle" "--oracle-s" "$kairos" compare --suite idle --oracle-s=-1
expect_error "run: dirty-limit" "dirty ring" "$kairos" run --workload idle --policy dirty-limit

echo "cli-e2e: $passed passed, 0 failed"

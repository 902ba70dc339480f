#!/usr/bin/env bash
# Tests of the patched QEMU (run by scripts/test.sh):
#  1. upstream's own migration-test -m quick on the patched binary with the
#     policy off, and again with -global
#     migration.x-convergence-policy=predictive forced on every QEMU it
#     starts;
#  2. the end-to-end smoke test: a real guest under a phase-changing
#     workload migrated between two patched QEMUs with `predictive`
#     (scripts/migrate_smoke.py), with QMP negative tests;
#  3. a small real comparison (hot-wss, qemu vs predictive over the shaped
#     link, with the workload's never-stop oracle) with assertions;
#  4. kairos profile of phase-change and of sysbench memory in the guest.
# Guests run with TCG: /dev/kvm is hidden (bind-mounted over by /dev/null
# in a private mount namespace), so QEMU's probes fall back to TCG.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

bash scripts/build-qemu.sh
bash scripts/build-guest.sh
cargo build --release -q -p kairos-testbed

qemu=$root/build/bin/qemu-system-x86_64
mtest=$root/build/bin/migration-test
data=$(dirname "$(readlink -f "$qemu")")/qemu-bundle/usr/local/share/qemu
logs=$root/build/test-logs
mkdir -p "$logs"

# Run "$@" with /dev/kvm hidden, when there is one to hide.
without_kvm() {
    if [ -e /dev/kvm ]; then
        unshare -m sh -c 'mount --bind /dev/null /dev/kvm && exec "$@"' sh "$@"
    else
        "$@"
    fi
}

# migration-test takes the target from the binary's name, so the wrapper
# keeps the name and lives in its own directory.
mkdir -p "$root/build/bin/predictive"
wrapper=$root/build/bin/predictive/qemu-system-x86_64
cat >"$wrapper" <<WRAP
#!/bin/sh
exec "$qemu" -global migration.x-convergence-policy=predictive "\$@"
WRAP
chmod +x "$wrapper"

run_migration_test() {
    local name=$1 binary=$2
    echo "== migration-test -m quick ($name)"
    if QTEST_QEMU_BINARY=$binary without_kvm "$mtest" -m quick --tap -k >"$logs/migration-test-$name.tap" 2>&1; then
        grep -c '^ok ' "$logs/migration-test-$name.tap" | sed "s/^/  ok: /"
    else
        grep -E '^not ok|^# ' "$logs/migration-test-$name.tap" | tail -20 >&2
        echo "migration-test ($name) failed, see $logs/migration-test-$name.tap" >&2
        return 1
    fi
}
run_migration_test policy-off "$qemu"
run_migration_test policy-predictive "$wrapper"

echo "== end-to-end smoke: phase-change workload, predictive"
without_kvm python3 scripts/migrate_smoke.py --qemu "$qemu" --data-dir "$data" \
    --kernel build/guest/vmlinuz --initrd build/guest/initrd.img \
    --kairos target/release/kairos --keep "$logs/smoke" | tee "$logs/smoke.json"

echo "== a small real comparison: hot-wss x qemu, predictive over a shaped link"
rm -rf "$logs/compare"
target/release/kairos compare --suite hot-wss --policies qemu,predictive --repeat 1 \
    --timeout-s 30 --oracle-s 20 --warmup-s 5 --netns --out "$logs/compare" >/dev/null
python3 - "$logs/compare/runs" <<'PY'
import json, sys, os
runs = {f.split("__")[1].removesuffix(".json"): json.load(open(os.path.join(sys.argv[1], f)))
        for f in os.listdir(sys.argv[1]) if f.endswith(".json")}
q, p, o = runs["qemu"], runs["predictive"], runs["oracle"]
summary = open(os.path.join(sys.argv[1], "..", "summary.md")).read()
checks = [
    (q["status"] == "timed-out", f"qemu should not converge on hot-wss: {q['status']}"),
    (p["converged"], f"predictive did not converge: {p['status']}"),
    (p["reason"] in ("convergence-point", "trough-now", "below-threshold"), f"predictive's reason: {p['reason']}"),
    (p["downtime_ms"] is not None and p["downtime_ms"] <= 1000, f"predictive downtime {p['downtime_ms']} ms over the 1000 ms maximum"),
    (p["total_time_ms"] < 30000, f"predictive took {p['total_time_ms']} ms"),
    (p["verify_errors"] == 0, "the guest found corrupted pages"),
    (p["link"] == "netns", "not run over the shaped link"),
    (o["trace_rounds"] >= 5, f"the never-stop oracle run has {o['trace_rounds']} rounds in 20 s"),
    (o["at_max"]["meets_bound"] and o["at_max"]["downtime_ms"] <= 1000, f"oracle within max: {o['at_max']}"),
    (p["total_time_ms"] <= 3 * o["at_max"]["total_time_ms"], f"predictive {p['total_time_ms']} ms vs oracle {o['at_max']['total_time_ms']} ms"),
    ("*oracle, downtime ≤ 1000 ms*" in summary, "summary.md has no oracle row"),
]
failed = [msg for ok, msg in checks if not ok]
for msg in failed:
    print("compare: FAIL:", msg, file=sys.stderr)
print(f"compare: {len(checks) - len(failed)} passed, {len(failed)} failed")
print(f"  qemu: {q['status']}; predictive: {p['total_time_ms']/1000:.1f} s, downtime {p['downtime_ms']:.0f} ms, {p['reason']}")
sys.exit(1 if failed else 0)
PY

# --- kairos profile: the guest without migration -----------------------------------
# phase-change: kairos-load writes changing content, which page-sampling sees;
# sysbench memory rewrites the same bytes, which it does not (docs/testbed.md).
for w in phase-change sysbench-memory; do
    echo "== kairos profile: $w in the guest without migration, 6 s"
    rm -rf "$logs/profile-$w"
    target/release/kairos profile --workload "$w" --duration-s 6 \
        --out "$logs/profile-$w" >/dev/null 2>"$logs/profile-$w.err" ||
        { cat "$logs/profile-$w.err" >&2; exit 1; }
    python3 - "$logs/profile-$w" "$w" <<'PY'
import csv, os, sys
out, workload = sys.argv[1], sys.argv[2]
rows = list(csv.DictReader(open(os.path.join(out, "profile.csv"))))
num = lambda r, k: float(r[k]) if r[k] else None
checks = [
    (len(rows) >= 4, f"{len(rows)} profile rows for 6 s"),
    (all(num(r, "dirty_rate_mib_per_s") is not None for r in rows), "a second without a dirty rate"),
    (all((num(r, "ops_per_s") or 0) > 0 for r in rows), "the workload reported no throughput"),
    (all(num(r, "guest_mem_used_mib") for r in rows), "no guest memory figure"),
    (os.path.getsize(os.path.join(out, "profile.png")) > 10000, "profile.png too small"),
]
if workload == "phase-change":
    checks.append((min(num(r, "dirty_rate_mib_per_s") for r in rows) > 30,
                   "phase-change dirties under 30 MiB/s"))
else:
    checks.append((all(num(r, "guest_cpu_busy_pct") > 90 for r in rows),
                   "sysbench does not keep the guest's CPU busy"))
failed = [msg for ok, msg in checks if not ok]
for msg in failed:
    print(f"profile {workload}: FAIL:", msg, file=sys.stderr)
print(f"profile {workload}: {len(checks) - len(failed)} passed, {len(failed)} failed")
sys.exit(1 if failed else 0)
PY
done

#!/usr/bin/env bash
# Live evacuations through libvirt: a source and a destination libvirtd on
# this machine (scripts/lib/libvirt-hosts.sh: two network namespaces over
# a link shaped with tc), the Kairos guest booted on the source once per
# guest named, then `kairos evacuate --connect SRC --to DST` empties the
# source under each plan named. Every evacuation starts from fresh guests
# (booted, warmed up); with --repeat N the plans are interleaved (repeat r
# runs them rotated by r), never one plan's repeats back to back. After
# each: every guest runs on the destination with its page check clean,
# none is left on the source.
#
#   bash scripts/evacuate-live.sh [--guests NAME:WORKLOAD:MIB,...]
#        [--plans planned,1,2,4,all] [--repeat N] [--policy NAME]
#        [--warmup-s S] [--profile-s S] [--mbit N] [--out DIR]
#
# Reports: OUT/runs/rR-PLAN.json (kairos evacuate --report), a line per
# evacuation in OUT/evacuations.tsv. Needs the patched QEMU
# (scripts/build-qemu.sh) and the guest (scripts/build-guest.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '[evacuate-live] %s\n' "$*" >&2; }

guests="vm1:hot-wss:1024,vm2:periodic:1024,vm3:gc-cycle:1024,vm4:static-small:512"
plans=planned
repeat=1
policy=predictive
warmup_s=20
profile_s=20
mbit=1000
out=build/evacuate-live
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
while [ $# -gt 0 ]; do
    case $1 in -h|--help) usage ;; esac
    [ $# -ge 2 ] || { echo "evacuate-live: $1 needs a value" >&2; exit 2; }
    case $1 in
        --guests) guests=$2 ;;
        --plans) plans=$2 ;;
        --repeat) repeat=$2 ;;
        --policy) policy=$2 ;;
        --warmup-s) warmup_s=$2 ;;
        --profile-s) profile_s=$2 ;;
        --mbit) mbit=$2 ;;
        --out) out=$2 ;;
        *) echo "evacuate-live: unknown option $1" >&2; usage ;;
    esac
    shift 2
done
[[ $repeat =~ ^[1-9][0-9]*$ ]] || { echo "evacuate-live: --repeat must be a number >= 1" >&2; exit 2; }
IFS=, read -r -a guest_list <<<"$guests"
IFS=, read -r -a plan_list <<<"$plans"
for g in "${guest_list[@]}"; do
    [[ $g =~ ^[A-Za-z0-9_-]+:[a-z0-9-]+:[0-9]+$ ]] ||
        { echo "evacuate-live: --guests: '$g' is not NAME:WORKLOAD:MIB" >&2; exit 2; }
    w=$(cut -d: -f2 <<<"$g")
    [ -f "testbed/workloads/$w.toml" ] ||
        { echo "evacuate-live: --guests: no workload '$w' in testbed/workloads" >&2; exit 2; }
done

bash scripts/setup.sh
cargo build --release -q -p kairos-testbed
kairos=$(pwd)/target/release/kairos

. scripts/lib/libvirt-hosts.sh
lv_hosts_init evacuate-live
cleanup() {
    local rc=$?
    set +e
    if [ "$rc" -ne 0 ]; then
        log "FAILED; daemon logs:"
        for f in "$LV_WORK"/*/log/libvirtd.log; do
            [ -f "$f" ] && { echo "--- $f"; tail -15 "$f"; } >&2
        done
    fi
    lv_hosts_down
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
lv_link_up "$mbit"
lv_start_daemon src 8f1a6e2c-3b7d-4c1e-9a55-0000000000c1
lv_start_daemon dst 8f1a6e2c-3b7d-4c1e-9a55-0000000000d2
mkdir -p "$out/runs"

# Boot every guest on the source and let them warm up.
boot_guests() {
    local g name workload mib
    for g in "${guest_list[@]}"; do
        IFS=: read -r name workload mib <<<"$g"
        lv_domain_xml "$name" "$mib" "$workload" "$LV_WORK/$name-serial.log" >"$LV_WORK/$name.xml"
        : >"$LV_WORK/$name-serial.log"
        virsh -c "$LV_SRC" create "$LV_WORK/$name.xml" >/dev/null
    done
    for g in "${guest_list[@]}"; do
        lv_wait_for_load "$LV_WORK/${g%%:*}-serial.log" 120
    done
    log "${#guest_list[@]} guests run their load; warming up ${warmup_s} s"
    sleep "$warmup_s"
}

# Every guest on the destination, running; none on the source; then gone.
check_and_clear() {
    local g name state bad=0
    for g in "${guest_list[@]}"; do
        name=${g%%:*}
        state=$(virsh -c "$LV_DST" domstate "$name" 2>/dev/null || echo absent)
        [ "$state" = running ] || { log "$name is '$state' on the destination"; bad=1; }
        if virsh -c "$LV_SRC" list --name | grep -qx "$name"; then
            log "$name is still on the source"
            bad=1
        fi
        # The evacuation defines each guest on the destination.
        virsh -c "$LV_DST" destroy "$name" >/dev/null 2>&1 || true
        virsh -c "$LV_DST" undefine "$name" >/dev/null 2>&1 || true
        virsh -c "$LV_SRC" destroy "$name" >/dev/null 2>&1 || true
    done
    return "$bad"
}

failures=0
n=${#plan_list[@]}
for r in $(seq "$repeat"); do
    for i in $(seq 0 $((n - 1))); do
        plan=${plan_list[$(((i + r - 1) % n))]}
        report=$out/runs/r$r-$plan.json
        log "repeat $r of $repeat, plan '$plan' at a time"
        boot_guests
        rc=0
        "$kairos" evacuate --connect "$LV_SRC" --to "$LV_DST" --migrate-host "$LV_DST_ADDR" \
            --at-a-time "$plan" --policy "$policy" --profile-s "$profile_s" \
            --bandwidth-mbit "$mbit" --report "$report" || rc=$?
        [ "$rc" -ne 130 ] || exit 130
        check_and_clear || rc=1
        if [ "$rc" -ne 0 ]; then
            failures=$((failures + 1))
            log "repeat $r, plan '$plan': FAILED (exit $rc)"
        fi
        makespan=$(python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["evacuation"]["makespan_s"], 1))' "$report" 2>/dev/null || echo -)
        printf '%s\t%s\t%s\t%s\n' "$r" "$plan" "$makespan" "$rc" >>"$out/evacuations.tsv"
    done
done
[ "$failures" -eq 0 ] || { log "$failures evacuations failed"; exit 1; }
log "ok: $((repeat * n)) evacuations, every guest arrived running with its pages intact (reports in $out/runs)"

#!/usr/bin/env bash
# `virsh migrate --live` between two libvirt daemons on this one machine,
# with the patched QEMU as the domain's emulator: once with the convergence
# policy off and once with `predictive`, and checks what came back; then a
# migration whose destination daemon is killed mid-migration, and its retry.
#
# Each daemon is its own "host" as libvirt sees it: its own network
# namespace and address (a veth pair between the two, shaped to 1 Gbit/s
# with tc), its own hostname (UTS namespace), its own host_uuid, and its
# own sockets, state, cache, log and config directories (a private mount
# namespace binds them over /run/libvirt, /var/lib/libvirt, ...). /dev/kvm
# is hidden from both (guests run under TCG here).
#
# Needs build/bin/qemu-system-x86_64 (scripts/build-qemu.sh) and the guest
# (scripts/build-guest.sh). Installs libvirt from Debian's packages.
# Everything it starts is stopped and removed on any exit.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '[libvirt-test] %s\n' "$*" >&2; }

. scripts/lib/libvirt-hosts.sh
lv_hosts_init libvirt-test
work=$LV_WORK
src_addr=$LV_SRC_ADDR
dst_addr=$LV_DST_ADDR
cleanup() {
    local rc=$?
    set +e
    if [ "$rc" -ne 0 ]; then
        log "FAILED; daemon and guest logs:"
        for f in "$work"/*/log/libvirtd.log "$work"/*/log/qemu/*.log "$work"/*-serial.log; do
            [ -f "$f" ] && { echo "--- $f"; tail -25 "$f"; } >&2
        done
    fi
    lv_hosts_down
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

lv_link_up 1000
log "starting two libvirtd instances"
lv_start_daemon src 8f1a6e2c-3b7d-4c1e-9a55-0000000000a1
lv_start_daemon dst 8f1a6e2c-3b7d-4c1e-9a55-0000000000b2
SRC=$LV_SRC
DST=$LV_DST
src_host=$(virsh -c "$SRC" hostname)
dst_host=$(virsh -c "$DST" hostname)
log "source host $src_host, destination host $dst_host"
[ "$src_host" != "$dst_host" ] || { echo "libvirt-test: both daemons report hostname $src_host" >&2; exit 1; }

migrate() {
    local policy=$1 how=$2 fault=${3:-none} label=$1
    [ "$how" = qmp ] && label=$1-qmp
    [ "$fault" = dst-daemon-killed ] && label=$1-retry
    local name=kairos-lv-$label serial=$work/$label-serial
    local globals=""
    if [ "$policy" != off ] && [ "$how" = cmdline ]; then
        globals="<qemu:arg value='-global'/><qemu:arg value='migration.x-convergence-policy=$policy'/>
    <qemu:arg value='-global'/><qemu:arg value='migration.x-convergence-max-downtime=1000'/>
    <qemu:arg value='-global'/><qemu:arg value='migration.x-convergence-downtime-weight=10'/>"
    fi
    lv_domain_xml "$name" 1024 phase-change "$serial.log" "$globals" >"$work/$name.xml"
    virsh -c "$SRC" create "$work/$name.xml" >/dev/null
    lv_wait_for_load "$serial.log" 90 || exit 1
    if [ "$how" = qmp ]; then
        virsh -c "$SRC" qemu-monitor-command "$name" \
            "{\"execute\":\"migrate-set-parameters\",\"arguments\":{\"x-convergence-policy\":\"$policy\",\"x-convergence-max-downtime\":1000,\"x-convergence-downtime-weight\":10}}" >/dev/null
        # Read the whole answer before matching: `virsh ... | grep -q` under
        # pipefail fails when grep exits before virsh has written its last
        # byte (SIGPIPE), whatever the answer says.
        local params
        params=$(virsh -c "$SRC" qemu-monitor-command "$name" '{"execute":"query-migrate-parameters"}')
        grep -q "\"x-convergence-policy\":\"$policy\"" <<<"$params" ||
            { echo "libvirt-test: migrate-set-parameters through libvirt did not take: $params" >&2; exit 1; }
    fi
    sleep 6
    [ "$fault" = dst-daemon-killed ] && kill_dst_daemon_mid_migration "$name" "$serial"
    log "$label: virsh migrate --live --verbose $name (phase-change, 1 Gbit/s link)"
    local out=$work/$label-migrate.out
    # Poll the source's query-migrate while it runs, through libvirt.
    poll_convergence "$name" >"$work/$label-convergence.log" &
    local poller=$!
    timeout 300 virsh -c "$SRC" migrate --live --verbose "$name" "$DST" \
        "tcp://$dst_addr:49152" --bandwidth 119 >"$out" 2>&1 || {
        kill "$poller" 2>/dev/null
        echo "libvirt-test: virsh migrate failed:" >&2
        cat "$out" >&2
        exit 1
    }
    kill "$poller" 2>/dev/null || true
    wait "$poller" 2>/dev/null || true
    sed 's/\r/\n/g' "$out" | grep -v '^$' | tail -2 >&2
    # Where does it run now?
    local state
    state=$(virsh -c "$DST" domstate "$name" 2>&1)
    [ "$state" = running ] || { echo "libvirt-test: on the destination the domain is '$state'" >&2; exit 1; }
    if grep -qx "$name" <<<"$(virsh -c "$SRC" list --all --name)"; then
        echo "libvirt-test: $name is still on the source" >&2
        exit 1
    fi
    local job
    job=$(virsh -c "$DST" domjobinfo "$name" --completed)
    echo "$job" >"$work/$label-jobinfo.txt"
    local total downtime
    total=$(awk -F: '/^Time elapsed:/{gsub(/[^0-9]/,"",$2); print $2; exit}' <<<"$job")
    downtime=$(awk -F: '/^Total downtime:/{gsub(/[^0-9]/,"",$2); print $2; exit}' <<<"$job")
    [ -n "$total" ] && [ -n "$downtime" ] || { echo "libvirt-test: domjobinfo --completed gave no times:" >&2; echo "$job" >&2; exit 1; }
    local decision=-
    if [ "$policy" != off ]; then
        local seen
        seen=$(tail -1 "$work/$label-convergence.log" 2>/dev/null || true)
        # The members come in no fixed order.
        local action reason
        action=$(grep -o '"action":"[a-z-]*"' <<<"$seen" | cut -d'"' -f4 || true)
        reason=$(grep -o '"reason":"[a-z-]*"' <<<"$seen" | cut -d'"' -f4 || true)
        [ -n "$action" ] && decision=$action/$reason
        decision=${decision:--}
        log "$label: query-migrate through libvirt showed: ${seen:-nothing (migration finished between polls)}"
        grep -q "\"policy\":\"$policy\"" "$work/$label-convergence.log" ||
            { echo "libvirt-test: query-migrate through libvirt never showed policy $policy" >&2; exit 1; }
        # A fresh policy state: never more rounds than this migration's own
        # dirty-bitmap syncs (a state carried over from a failed attempt
        # would be ahead).
        local stale
        stale=$(awk '{ s = $1; sub(/^sync=/, "", s); if (match($0, /"rounds":[0-9]+/)) {
                    r = substr($0, RSTART + 9, RLENGTH - 9); if (s != "?" && r + 0 > s + 0) print } }' \
                "$work/$label-convergence.log")
        [ -z "$stale" ] || { echo "libvirt-test: $label: the policy's state was not fresh: $stale" >&2; exit 1; }
    fi
    # The guest still works on the destination: its load generator reports.
    guest_alive "$serial" "$label, after the migration" >/dev/null || exit 1
    virsh -c "$DST" destroy "$name" >/dev/null
    echo "$label $total $downtime $decision"
}

# guest_alive SERIAL WHAT: the guest's load generator (its serial log
# SERIAL.log) still reports over 3 s and has found no page wrong; prints
# how many reports it made, or says why not (WHAT: where) and fails.
guest_alive() {
    local serial=$1 what=$2 before after
    before=$(grep -ac "kairos-load t=" "$serial.log" || true)
    sleep 3
    after=$(grep -ac "kairos-load t=" "$serial.log" || true)
    [ "$after" -gt "$before" ] || { echo "libvirt-test: $what: the guest's load stopped" >&2; return 1; }
    if grep -aq "verify_errors=[1-9]" "$serial.log"; then
        echo "libvirt-test: $what: the guest found corrupted pages" >&2
        return 1
    fi
    echo $((after - before))
}

# poll_convergence NAME: the source's query-migrate twice a second, through
# libvirt, one line per answer: "sync=N {convergence member}".
poll_convergence() {
    local name=$1 answer conv sync
    while sleep 0.5; do
        answer=$(virsh -c "$SRC" qemu-monitor-command "$name" '{"execute":"query-migrate"}' 2>/dev/null) || continue
        conv=$(grep -o '"convergence":{[^}]*}' <<<"$answer") || continue
        sync=$(grep -o '"dirty-sync-count":[0-9]*' <<<"$answer" | cut -d: -f2)
        echo "sync=${sync:-?} $conv"
    done
}

# kill_dst_daemon_mid_migration NAME SERIAL: starts `virsh migrate`, kills
# the destination libvirtd (SIGKILL) once pre-copy has run for a second,
# and checks what an operator needs then: the migration fails, the guest
# runs on the source with its memory intact, and the restarted destination
# daemon removes the half-migrated incoming domain; the caller then retries.
kill_dst_daemon_mid_migration() {
    local name=$1 serial=$2 out=$work/daemon-killed-migrate.out
    log "dst-daemon-killed: virsh migrate --live $name, the destination libvirtd killed mid-migration"
    timeout 300 virsh -c "$SRC" migrate --live "$name" "$DST" "tcp://$dst_addr:49152" \
        --bandwidth 119 >"$out" 2>&1 &
    local mig=$! active=no
    for _ in $(seq 150); do
        if grep -q '"status":"active"' <<<"$(virsh -c "$SRC" qemu-monitor-command "$name" \
                '{"execute":"query-migrate"}' 2>/dev/null)"; then
            active=yes
            break
        fi
        sleep 0.2
    done
    [ "$active" = yes ] || { echo "libvirt-test: dst-daemon-killed: the migration never became active" >&2; cat "$out" >&2; exit 1; }
    sleep 1
    # (migrate runs in a command substitution, where set -e is off: every
    # step that matters is checked by hand.)
    kill -9 "$(cat "$work/dst/run/libvirtd.pid")" ||
        { echo "libvirt-test: dst-daemon-killed: could not kill the destination libvirtd" >&2; exit 1; }
    if wait "$mig"; then
        echo "libvirt-test: dst-daemon-killed: virsh migrate succeeded although the destination daemon died" >&2
        exit 1
    fi
    log "dst-daemon-killed: virsh migrate failed as it must: $(tr '\r\n' '  ' <"$out" | sed 's/  */ /g' | tail -c 200)"
    local state
    state=$(virsh -c "$SRC" domstate "$name" 2>&1)
    [ "$state" = running ] || { echo "libvirt-test: dst-daemon-killed: on the source the domain is '$state'" >&2; exit 1; }
    local reports
    reports=$(guest_alive "$serial" "dst-daemon-killed, on the source") || exit 1
    log "dst-daemon-killed: the guest runs on the source ($reports reports in 3 s, no page wrong); restarting the destination daemon"
    lv_start_daemon dst 8f1a6e2c-3b7d-4c1e-9a55-0000000000b2 || exit 1
    local left=yes names
    for _ in $(seq 100); do
        names=$(virsh -c "$DST" list --all --name) ||
            { echo "libvirt-test: dst-daemon-killed: the restarted destination daemon does not answer" >&2; exit 1; }
        grep -qx "$name" <<<"$names" || { left=no; break; }
        sleep 0.2
    done
    [ "$left" = no ] || { echo "libvirt-test: dst-daemon-killed: the restarted destination daemon kept the half-migrated $name" >&2; exit 1; }
}

results=()
results+=("$(migrate off cmdline)")
results+=("$(migrate predictive cmdline)")
results+=("$(migrate predictive qmp)")
results+=("$(migrate predictive cmdline dst-daemon-killed)")
echo
echo "virsh domjobinfo --completed on the destination (phase-change guest, 1 Gbit/s link):"
printf '%-17s %14s %12s  %s\n' policy total_time_ms downtime_ms "last decision/reason"
for r in "${results[@]}"; do
    set -- $r
    printf '%-17s %14s %12s  %s\n' "$1" "$2" "$3" "$4"
done
echo
echo "virsh domjobinfo --completed (predictive, on the destination):"
cat "$work/predictive-jobinfo.txt"
log "ok: all four migrations completed (the last after a failed attempt whose destination daemon was killed), the guest runs on the destination daemon, the policy's decision came through libvirt"

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
root=$(pwd)
log() { printf '[libvirt-test] %s\n' "$*" >&2; }

qemu=$root/build/bin/qemu-system-x86_64
for f in "$qemu" build/guest/vmlinuz build/guest/initrd.img; do
    [ -e "$f" ] || { echo "libvirt-test: $f missing (scripts/build-qemu.sh, scripts/build-guest.sh)" >&2; exit 1; }
done
qemu=$(readlink -f "$qemu")
datadir=$(dirname "$qemu")/qemu-bundle/usr/local/share/qemu

. scripts/lib/packages.sh
ensure_packages libvirt-test libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients \
    iproute2 util-linux

# libvirtd resolves its built-in QEMU user before reading qemu.conf (which
# sets root here): create it as Debian's libvirt-daemon-system would.
if ! getent passwd libvirt-qemu >/dev/null; then
    log "creating the system user libvirt-qemu"
    getent group libvirt-qemu >/dev/null || groupadd --system libvirt-qemu
    useradd --system --gid libvirt-qemu --home-dir /var/lib/libvirt --no-create-home \
        --shell /usr/sbin/nologin libvirt-qemu
fi

work=$(mktemp -d /tmp/kairos-libvirt.XXXXXX)
tag=$$
src_ns=kairos-lv-src-$tag
dst_ns=kairos-lv-dst-$tag
src_addr=10.214.0.1
dst_addr=10.214.0.2
pids=()
cleanup() {
    local rc=$?
    set +e
    for side in src dst; do
        sock=$work/$side/run/libvirt-sock
        [ -S "$sock" ] || continue
        for dom in $(virsh -c "qemu:///system?socket=$sock" list --name 2>/dev/null); do
            virsh -c "qemu:///system?socket=$sock" destroy "$dom" >/dev/null 2>&1
        done
    done
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
    for pid in "${pids[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null
    done
    # QEMUs a killed daemon left behind run in the daemons' namespaces.
    for ns in "$src_ns" "$dst_ns"; do
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done
        ip netns del "$ns" 2>/dev/null
    done
    if [ "$rc" -ne 0 ]; then
        log "FAILED; daemon and guest logs:"
        for f in "$work"/*/log/libvirtd.log "$work"/*/log/qemu/*.log "$work"/*-serial.log; do
            [ -f "$f" ] && { echo "--- $f"; tail -25 "$f"; } >&2
        done
    fi
    rm -rf "$work"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the link: two namespaces, a veth pair shaped to 1 Gbit/s ---------------------
log "network namespaces $src_ns ($src_addr) and $dst_ns ($dst_addr)"
ip netns add "$src_ns"
ip netns add "$dst_ns"
ip link add "klv$tag-s" type veth peer name "klv$tag-d"
ip link set "klv$tag-s" netns "$src_ns"
ip link set "klv$tag-d" netns "$dst_ns"
for spec in "$src_ns klv$tag-s $src_addr" "$dst_ns klv$tag-d $dst_addr"; do
    set -- $spec
    ip -n "$1" addr add "$3/30" dev "$2"
    ip -n "$1" link set "$2" up
    ip -n "$1" link set lo up
    tc -n "$1" qdisc add dev "$2" root tbf rate 1gbit burst 256kb latency 50ms
done

# --- two daemons -----------------------------------------------------------------
start_daemon() {
    local side=$1 ns=$2 uuid=$3 d=$work/$1
    mkdir -p "$d"/{run,lib,cache,log,etc,bin}
    ln -sfn "$qemu" "$d/bin/qemu-system-x86_64"
    cat >"$d/etc/libvirtd.conf" <<EOF
unix_sock_dir = "$d/run"
unix_sock_rw_perms = "0700"
auth_unix_rw = "none"
auth_unix_ro = "none"
host_uuid = "$uuid"
log_outputs = "3:file:$d/log/libvirtd.log"
EOF
    cat >"$d/etc/qemu.conf" <<EOF
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
cgroup_controllers = [ ]
namespaces = [ ]
stdio_handler = "file"
migration_address = "$dst_addr"
EOF
    : >"$d/etc/libvirt.conf"
    # A private mount namespace: the daemon's directories over the standard
    # ones, /dev/kvm hidden; a UTS namespace for its own hostname.
    ip netns exec "$ns" unshare --mount --uts --propagation private sh -c '
        set -e
        d=$1
        hostname "kairos-$2"
        mount --bind "$d/etc" /etc/libvirt
        mkdir -p /run/libvirt /var/lib/libvirt /var/cache/libvirt /var/log/libvirt
        mount --bind "$d/run" /run/libvirt
        mount --bind "$d/lib" /var/lib/libvirt
        mount --bind "$d/cache" /var/cache/libvirt
        mount --bind "$d/log" /var/log/libvirt
        if [ -e /dev/kvm ]; then mount --bind /dev/null /dev/kvm; fi
        # The patched emulator is the one libvirt finds as qemu-system-x86_64.
        export PATH="$d/bin:$PATH"
        exec libvirtd --config "$d/etc/libvirtd.conf" --pid-file "$d/run/libvirtd.pid"
    ' sh "$d" "$side" >"$d/log/stdout.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 100); do
        [ -S "$d/run/libvirt-sock" ] && virsh -c "qemu:///system?socket=$d/run/libvirt-sock" hostname >/dev/null 2>&1 && return 0
        kill -0 "${pids[-1]}" 2>/dev/null || break
        sleep 0.2
    done
    echo "libvirt-test: libvirtd ($side) did not come up:" >&2
    cat "$d/log/stdout.log" >&2
    tail -20 "$d/log/libvirtd.log" >&2 || true
    return 1
}
log "starting two libvirtd instances"
start_daemon src "$src_ns" 8f1a6e2c-3b7d-4c1e-9a55-0000000000a1
start_daemon dst "$dst_ns" 8f1a6e2c-3b7d-4c1e-9a55-0000000000b2
SRC="qemu:///system?socket=$work/src/run/libvirt-sock"
DST="qemu:///system?socket=$work/dst/run/libvirt-sock"
src_host=$(virsh -c "$SRC" hostname)
dst_host=$(virsh -c "$DST" hostname)
log "source host $src_host, destination host $dst_host"
[ "$src_host" != "$dst_host" ] || { echo "libvirt-test: both daemons report hostname $src_host" >&2; exit 1; }

# --- one migration -----------------------------------------------------------------
# migrate POLICY HOW: boots a transient domain on the source with the
# policy set on the emulator's command line (HOW=cmdline) or per migration
# through libvirt's QMP passthrough (HOW=qmp), as docs/libvirt.md shows;
# migrates it live, checks where it runs, prints
# "LABEL total_ms downtime_ms decision" (the policy's last decision as
# query-migrate, polled through libvirt, showed it).
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
    cat >"$work/$name.xml" <<EOF
<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>$name</name>
  <memory unit='MiB'>1024</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>$root/build/guest/vmlinuz</kernel>
    <initrd>$root/build/guest/initrd.img</initrd>
    <cmdline>console=ttyS0 quiet kairos.workload=phase-change</cmdline>
  </os>
  <!-- Without <acpi/>, libvirt 9.0 passes -no-acpi, which QEMU 10 dropped. -->
  <features><acpi/></features>
  <devices>
    <controller type='usb' model='none'/>
    <emulator>$qemu</emulator>
    <serial type='file'><source path='$serial.log' append='on'/><target port='0'/></serial>
    <memballoon model='none'/>
  </devices>
  <qemu:commandline>
    <qemu:arg value='-L'/><qemu:arg value='$datadir'/>
    $globals
  </qemu:commandline>
</domain>
EOF
    virsh -c "$SRC" create "$work/$name.xml" >/dev/null
    for _ in $(seq 450); do
        grep -aq "kairos-load t=" "$serial.log" 2>/dev/null && break
        sleep 0.2
    done
    grep -aq "kairos-load t=" "$serial.log" || { echo "libvirt-test: the guest did not start its load; see $serial.log" >&2; exit 1; }
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
    start_daemon dst "$dst_ns" 8f1a6e2c-3b7d-4c1e-9a55-0000000000b2 || exit 1
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

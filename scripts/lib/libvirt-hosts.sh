# Two libvirt "hosts" on this one machine, for the libvirt test and the
# live evacuation: each daemon in its own network namespace and address (a
# veth pair between the two, shaped with tc), its own hostname (UTS
# namespace), its own host_uuid, and its own sockets, state, cache, log and
# config directories (a private mount namespace binds them over
# /run/libvirt, /var/lib/libvirt, ...). /dev/kvm is hidden from both
# (guests run under TCG here). Sourced from the repository's root.
#
#   lv_hosts_init PREFIX        packages, the QEMU user, a work directory;
#                               sets LV_WORK, LV_QEMU, LV_DATADIR, LV_SRC_NS,
#                               LV_DST_NS, LV_SRC_ADDR, LV_DST_ADDR
#   lv_link_up MBIT             the two namespaces and the shaped link
#   lv_start_daemon SIDE UUID   a daemon (SIDE: src or dst); LV_SRC / LV_DST
#                               are their connection URIs
#   lv_domain_xml NAME MIB WORKLOAD SERIAL [EXTRA_QEMU_ARGS_XML]
#                               a domain of the Kairos guest, printed
#   lv_wait_for_load SERIAL [TIMEOUT_S]   its load generator reports
#   lv_hosts_down               destroy every domain, stop the daemons,
#                               remove the namespaces (and LV_WORK unless
#                               LV_KEEP_WORK=1)
#
# Needs build/bin/qemu-system-x86_64 (scripts/build-qemu.sh) and the guest
# (scripts/build-guest.sh).

lv_log() { printf '[%s] %s\n' "$LV_PREFIX" "$*" >&2; }

lv_hosts_init() {
    LV_PREFIX=$1
    local f
    LV_QEMU=$(pwd)/build/bin/qemu-system-x86_64
    for f in "$LV_QEMU" build/guest/vmlinuz build/guest/initrd.img; do
        [ -e "$f" ] || { echo "$LV_PREFIX: $f missing (scripts/build-qemu.sh, scripts/build-guest.sh)" >&2; return 1; }
    done
    LV_QEMU=$(readlink -f "$LV_QEMU")
    LV_DATADIR=$(dirname "$LV_QEMU")/qemu-bundle/usr/local/share/qemu
    . scripts/lib/packages.sh
    ensure_packages "$LV_PREFIX" libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients \
        iproute2 util-linux
    # libvirtd resolves its built-in QEMU user before reading qemu.conf
    # (which sets root here): create it as Debian's libvirt-daemon-system
    # would.
    if ! getent passwd libvirt-qemu >/dev/null; then
        lv_log "creating the system user libvirt-qemu"
        getent group libvirt-qemu >/dev/null || groupadd --system libvirt-qemu
        useradd --system --gid libvirt-qemu --home-dir /var/lib/libvirt --no-create-home \
            --shell /usr/sbin/nologin libvirt-qemu
    fi
    LV_WORK=$(mktemp -d /tmp/kairos-libvirt.XXXXXX)
    LV_TAG=$$
    LV_SRC_NS=kairos-lv-src-$LV_TAG
    LV_DST_NS=kairos-lv-dst-$LV_TAG
    LV_SRC_ADDR=10.214.0.1
    LV_DST_ADDR=10.214.0.2
    LV_PIDS=()
}

lv_link_up() {
    local mbit=$1 spec
    lv_log "network namespaces $LV_SRC_NS ($LV_SRC_ADDR) and $LV_DST_NS ($LV_DST_ADDR), ${mbit} Mbit/s"
    ip netns add "$LV_SRC_NS"
    ip netns add "$LV_DST_NS"
    ip link add "klv$LV_TAG-s" type veth peer name "klv$LV_TAG-d"
    ip link set "klv$LV_TAG-s" netns "$LV_SRC_NS"
    ip link set "klv$LV_TAG-d" netns "$LV_DST_NS"
    for spec in "$LV_SRC_NS klv$LV_TAG-s $LV_SRC_ADDR" "$LV_DST_NS klv$LV_TAG-d $LV_DST_ADDR"; do
        set -- $spec
        ip -n "$1" addr add "$3/30" dev "$2"
        ip -n "$1" link set "$2" up
        ip -n "$1" link set lo up
        tc -n "$1" qdisc add dev "$2" root tbf rate "${mbit}mbit" burst 256kb latency 50ms
    done
}

# The connection URI of a side's daemon.
lv_uri() { echo "qemu:///system?socket=$LV_WORK/$1/run/libvirt-sock"; }

lv_start_daemon() {
    local side=$1 uuid=$2 d=$LV_WORK/$1 ns migration_address
    case $side in
        src) ns=$LV_SRC_NS migration_address=$LV_SRC_ADDR ;;
        dst) ns=$LV_DST_NS migration_address=$LV_DST_ADDR ;;
        *) echo "lv_start_daemon: side $side is not src or dst" >&2; return 1 ;;
    esac
    mkdir -p "$d"/{run,lib,cache,log,etc,bin}
    ln -sfn "$LV_QEMU" "$d/bin/qemu-system-x86_64"
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
migration_address = "$migration_address"
EOF
    : >"$d/etc/libvirt.conf"
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
        export PATH="$d/bin:$PATH"
        exec libvirtd --config "$d/etc/libvirtd.conf" --pid-file "$d/run/libvirtd.pid"
    ' sh "$d" "$side" >"$d/log/stdout.log" 2>&1 &
    LV_PIDS+=($!)
    local _
    for _ in $(seq 100); do
        [ -S "$d/run/libvirt-sock" ] && virsh -c "$(lv_uri "$side")" hostname >/dev/null 2>&1 && {
            case $side in src) LV_SRC=$(lv_uri src) ;; dst) LV_DST=$(lv_uri dst) ;; esac
            return 0
        }
        kill -0 "${LV_PIDS[-1]}" 2>/dev/null || break
        sleep 0.2
    done
    echo "$LV_PREFIX: libvirtd ($side) did not come up:" >&2
    cat "$d/log/stdout.log" >&2
    tail -20 "$d/log/libvirtd.log" >&2 || true
    return 1
}

lv_domain_xml() {
    local name=$1 mib=$2 workload=$3 serial=$4 extra=${5:-}
    cat <<EOF
<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>$name</name>
  <memory unit='MiB'>$mib</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>$(pwd)/build/guest/vmlinuz</kernel>
    <initrd>$(pwd)/build/guest/initrd.img</initrd>
    <cmdline>console=ttyS0 quiet kairos.workload=$workload</cmdline>
  </os>
  <!-- Without <acpi/>, libvirt 9.0 passes -no-acpi, which QEMU 10 dropped. -->
  <features><acpi/></features>
  <devices>
    <controller type='usb' model='none'/>
    <emulator>$LV_QEMU</emulator>
    <serial type='file'><source path='$serial' append='on'/><target port='0'/></serial>
    <memballoon model='none'/>
  </devices>
  <qemu:commandline>
    <qemu:arg value='-L'/><qemu:arg value='$LV_DATADIR'/>
    $extra
  </qemu:commandline>
</domain>
EOF
}

lv_wait_for_load() {
    local serial=$1 timeout_s=${2:-90} _
    for _ in $(seq $((timeout_s * 5))); do
        grep -aq "kairos-load t=" "$serial" 2>/dev/null && return 0
        sleep 0.2
    done
    echo "$LV_PREFIX: the guest did not start its load; see $serial" >&2
    return 1
}

lv_hosts_down() {
    local side sock dom pid ns _
    # A cleanup: every step is tried, whatever the one before did.
    set +e
    for side in src dst; do
        sock=$LV_WORK/$side/run/libvirt-sock
        [ -S "$sock" ] || continue
        for dom in $(virsh -c "qemu:///system?socket=$sock" list --name 2>/dev/null); do
            virsh -c "qemu:///system?socket=$sock" destroy "$dom" >/dev/null 2>&1
        done
    done
    for pid in "${LV_PIDS[@]}"; do kill "$pid" 2>/dev/null; done
    for pid in "${LV_PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null
    done
    # QEMUs a killed daemon left behind run in the daemons' namespaces.
    for ns in "$LV_SRC_NS" "$LV_DST_NS"; do
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done
        ip netns del "$ns" 2>/dev/null
    done
    [ "${LV_KEEP_WORK:-0}" = 1 ] || rm -rf "$LV_WORK"
    return 0
}

#!/usr/bin/env bash
# Builds the Kairos test guest: Debian's cloud kernel, an initramfs with
# busybox-static, the static load generator kairos-load and the workload
# programs of testbed/workloads/, and real benchmarks from Debian's packages
# with the libraries they link: memcached driven by kairos-kv (a YCSB-style
# client written here: no YCSB package exists in the registries), sysbench
# (memory), redis-server + redis-benchmark, and fio (on a file in the guest's
# RAM-backed root). kairos-meter turns each benchmark's progress output into
# the once-a-second report line the test-bed reads. The kernel command line
# picks the workload: kairos.workload=NAME (default: idle), a workload
# program's name or one of ycsb-a, ycsb-b, sysbench-memory, redis, fio.
#
#   build/guest/vmlinuz
#   build/guest/initrd.img
#
# Idempotent: packages are downloaded once; the initramfs is rebuilt every
# run (a few seconds) so it always carries the current load generator.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
out=$root/build/guest
dl=$out/download
mkdir -p "$dl"
log() { printf '[build-guest] %s\n' "$*" >&2; }

. scripts/lib/packages.sh
ensure_packages build-guest cpio gzip busybox-static libc6-dev libevent-2.1-7 libsasl2-2 \
    libssl3 sysbench redis-tools fio

# --- kernel ------------------------------------------------------------------
if [ ! -f "$out/vmlinuz" ] || [ ! -d "$dl/kernel/lib/modules" ]; then
    flavour=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
    if [ -z "$flavour" ]; then
        apt-get update -qq
        flavour=$(apt-cache depends linux-image-cloud-amd64 | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
    fi
    [ -n "$flavour" ] || { echo "build-guest: cannot resolve linux-image-cloud-amd64" >&2; exit 1; }
    log "downloading $flavour"
    (cd "$dl" && apt-get download -qq "$flavour" 2>&1 | grep -v unsandboxed >&2 || true)
    deb=$(ls "$dl"/"$flavour"_*.deb | head -1)
    rm -rf "$dl/kernel" && mkdir -p "$dl/kernel"
    dpkg-deb -x "$deb" "$dl/kernel"
    cp "$(ls "$dl"/kernel/boot/vmlinuz-* | head -1)" "$out/vmlinuz.tmp"
    mv "$out/vmlinuz.tmp" "$out/vmlinuz"
fi

# --- memcached (for the YCSB-style benchmark) --------------------------------
if [ ! -x "$dl/memcached/usr/bin/memcached" ]; then
    log "downloading memcached"
    (cd "$dl" && apt-get download -qq memcached 2>&1 | grep -v unsandboxed >&2 || true)
    rm -rf "$dl/memcached" && mkdir -p "$dl/memcached"
    dpkg-deb -x "$(ls "$dl"/memcached_*.deb | head -1)" "$dl/memcached"
fi

# --- load generators -----------------------------------------------------------
log "building kairos-load, kairos-kv and kairos-meter (static)"
RUSTFLAGS="-C target-feature=+crt-static" cargo build -q --release \
    --target x86_64-unknown-linux-gnu -p kairos-testbed \
    --bin kairos-load --bin kairos-kv --bin kairos-meter
static=$root/target/x86_64-unknown-linux-gnu/release

# --- initramfs ---------------------------------------------------------------
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{bin,dev,proc,sys,tmp,workloads,etc}
echo "root:x:0:0:root:/:/bin/sh" >"$stage/etc/passwd"
echo "root:x:0:" >"$stage/etc/group"
cp /bin/busybox "$stage/bin/busybox"
for tool in kairos-load kairos-kv kairos-meter; do
    cp "$static/$tool" "$stage/bin/$tool"
    strip "$stage/bin/$tool" 2>/dev/null || true
done
# A dynamic benchmark binary, with the libraries ldd names at their paths.
add_dynamic() {
    local bin=$1 name=$2 lib
    cp -L "$bin" "$stage/bin/$name"
    for lib in $(ldd "$bin" | awk '/=> \//{print $3} /^\t\/lib/{print $1}'); do
        [ -e "$stage$lib" ] && continue
        mkdir -p "$stage$(dirname "$lib")"
        cp -L "$lib" "$stage$lib"
    done
}
add_dynamic "$dl/memcached/usr/bin/memcached" memcached
add_dynamic /usr/bin/sysbench sysbench
add_dynamic /usr/bin/fio fio
add_dynamic /usr/bin/redis-benchmark redis-benchmark
# Debian's redis-server is redis-check-rdb called by another name.
add_dynamic /usr/bin/redis-check-rdb redis-check-rdb
ln -s redis-check-rdb "$stage/bin/redis-server"
cp testbed/workloads/*.toml "$stage/workloads/"
# The kernel's fw_cfg driver (a module in Debian's cloud kernel): kairos run
# hands the guest the workload program it was given through QEMU's fw_cfg,
# so a program from anywhere runs without rebuilding this image.
fw_cfg_ko=$(find "$dl/kernel/lib/modules" -name 'qemu_fw_cfg.ko*' | head -1)
[ -n "$fw_cfg_ko" ] || { echo "build-guest: no qemu_fw_cfg module in $dl/kernel" >&2; exit 1; }
mkdir -p "$stage/lib/modules"
case "$fw_cfg_ko" in
    *.xz) xz -dc "$fw_cfg_ko" >"$stage/lib/modules/qemu_fw_cfg.ko" ;;
    *.zst) zstd -qdc "$fw_cfg_ko" >"$stage/lib/modules/qemu_fw_cfg.ko" ;;
    *) cp "$fw_cfg_ko" "$stage/lib/modules/qemu_fw_cfg.ko" ;;
esac
cat >"$stage/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sys /sys
/bin/busybox mount -t devtmpfs dev /dev
/bin/busybox --install -s /bin
workload=idle
for arg in $(cat /proc/cmdline); do
    case "$arg" in kairos.workload=*) workload=${arg#kairos.workload=} ;; esac
done
ip link set lo up
# A workload program handed over through fw_cfg replaces the built-in one.
insmod /lib/modules/qemu_fw_cfg.ko 2>/dev/null
program=/sys/firmware/qemu_fw_cfg/by_name/opt/kairos/workload.toml/raw
if [ -f "$program" ]; then
    cp "$program" "/workloads/$workload.toml"
    echo "kairos-guest: workload program from fw_cfg"
fi
echo "kairos-guest: up, workload $workload"
# The guest's own CPU and memory use, once a second (for kairos profile).
guest_stats() {
    set -- $(head -1 /proc/stat)
    busy0=$(($2 + $3 + $4 + $7 + $8)); total0=$((busy0 + $5 + $6))
    while sleep 1; do
        set -- $(head -1 /proc/stat)
        busy=$(($2 + $3 + $4 + $7 + $8)); total=$((busy + $5 + $6))
        mem=$(awk '/^MemTotal:/{t=$2} /^MemAvailable:/{a=$2} END{printf "%d", (t-a)/1024}' /proc/meminfo)
        dt=$((total - total0)); [ "$dt" -gt 0 ] || dt=1
        echo "kairos-guest-stat cpu_busy_pct=$((100 * (busy - busy0) / dt)) mem_used_mib=$mem"
        busy0=$busy; total0=$total
    done
}
guest_stats &
case "$workload" in
    ycsb-a|ycsb-b)
        memcached -u root -m 512 -t 1 -l 127.0.0.1 -p 11211 &
        /bin/kairos-kv --workload "${workload#ycsb-}" --records 20000 --value-bytes 4000 &
        ;;
    sysbench-memory)
        # Writes a 256 MiB buffer over and over: a large, steady WWS.
        (sysbench memory --memory-block-size=256M --memory-total-size=0 --time=0 \
            --report-interval=1 --memory-oper=write --threads=1 run |
            kairos-meter --format sysbench --name sysbench-memory) &
        ;;
    redis)
        redis-server --port 6379 --bind 127.0.0.1 --save '' --appendonly no \
            --protected-mode no --daemonize no >/tmp/redis.log 2>&1 &
        (sleep 2; redis-benchmark -t set -n 2000000000 -r 50000 -d 4000 -c 4 |
            kairos-meter --format redis --name redis) &
        ;;
    fio)
        # Random 4 KiB writes to a 256 MiB file in the RAM-backed root.
        (fio --name=kairos --filename=/tmp/fio.dat --size=256M --rw=randwrite \
            --bs=4k --ioengine=psync --time_based --runtime=1000000 \
            --status-interval=1 --output-format=terse |
            kairos-meter --format fio-terse --name fio --block-bytes 4096) &
        ;;
    *)
        if [ -f "/workloads/$workload.toml" ]; then
            /bin/kairos-load "/workloads/$workload.toml" &
        else
            echo "kairos-guest: no workload '$workload' in /workloads"
        fi
        ;;
esac
sleep 5
echo "kairos-guest: $(grep -E '^(MemTotal|MemFree|AnonPages)' /proc/meminfo | tr -s ' ' | tr '\n' ' ')"
while true; do sleep 3600; done
INIT
chmod +x "$stage/init"
(cd "$stage" && find . | cpio -o -H newc --quiet | gzip -1 >"$out/initrd.img.tmp")
mv "$out/initrd.img.tmp" "$out/initrd.img"
log "ok: $out/vmlinuz $out/initrd.img ($(du -k "$out/initrd.img" | cut -f1) KiB)"

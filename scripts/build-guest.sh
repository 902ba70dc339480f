#!/usr/bin/env bash
# Builds the Kairos test guest: Debian's cloud kernel, an initramfs with
# busybox-static, the static load generator kairos-load and the workload
# programs of testbed/workloads/, and memcached (Debian's, with the libraries
# it links) driven by kairos-kv, a YCSB-style client. The kernel command line
# picks the workload: kairos.workload=NAME (default: idle), a workload
# program's name or ycsb-a / ycsb-b.
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

need=()
for pkg in cpio gzip busybox-static libc6-dev libevent-2.1-7 libsasl2-2 libssl3; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if ((${#need[@]})); then
    log "apt-get install ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need[@]}" >/dev/null
fi

# --- kernel ------------------------------------------------------------------
if [ ! -f "$out/vmlinuz" ]; then
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
log "building kairos-load and kairos-kv (static)"
RUSTFLAGS="-C target-feature=+crt-static" cargo build -q --release \
    --target x86_64-unknown-linux-gnu -p kairos-testbed --bin kairos-load --bin kairos-kv
loadgen=$root/target/x86_64-unknown-linux-gnu/release/kairos-load
kvclient=$root/target/x86_64-unknown-linux-gnu/release/kairos-kv

# --- initramfs ---------------------------------------------------------------
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{bin,dev,proc,sys,tmp,workloads,etc}
echo "root:x:0:0:root:/:/bin/sh" >"$stage/etc/passwd"
echo "root:x:0:" >"$stage/etc/group"
cp /bin/busybox "$stage/bin/busybox"
cp "$loadgen" "$stage/bin/kairos-load"
cp "$kvclient" "$stage/bin/kairos-kv"
strip "$stage/bin/kairos-load" "$stage/bin/kairos-kv" 2>/dev/null || true
cp "$dl/memcached/usr/bin/memcached" "$stage/bin/memcached"
# memcached is dynamic: bring the libraries ldd names, at the same paths.
for lib in $(ldd "$dl/memcached/usr/bin/memcached" | awk '/=> \//{print $3} /^\t\/lib/{print $1}'); do
    mkdir -p "$stage$(dirname "$lib")"
    cp -L "$lib" "$stage$lib"
done
cp testbed/workloads/*.toml "$stage/workloads/"
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
echo "kairos-guest: up, workload $workload"
case "$workload" in
    ycsb-a|ycsb-b)
        memcached -u root -m 512 -t 1 -l 127.0.0.1 -p 11211 &
        /bin/kairos-kv --workload "${workload#ycsb-}" --records 20000 --value-bytes 4000 &
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

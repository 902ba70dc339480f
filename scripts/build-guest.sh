#!/usr/bin/env bash
# Builds the Kairos test guest: Debian's cloud kernel, an initramfs with
# busybox-static, the static load generator kairos-load and the workload
# programs of testbed/workloads/. The kernel command line picks the
# workload: kairos.workload=NAME (default: idle).
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
for pkg in cpio gzip busybox-static libc6-dev; do
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

# --- load generator ------------------------------------------------------------
log "building kairos-load (static)"
RUSTFLAGS="-C target-feature=+crt-static" cargo build -q --release \
    --target x86_64-unknown-linux-gnu -p kairos-testbed --bin kairos-load
loadgen=$root/target/x86_64-unknown-linux-gnu/release/kairos-load

# --- initramfs ---------------------------------------------------------------
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{bin,dev,proc,sys,tmp,workloads}
cp /bin/busybox "$stage/bin/busybox"
cp "$loadgen" "$stage/bin/kairos-load"
strip "$stage/bin/kairos-load" 2>/dev/null || true
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
echo "kairos-guest: up, workload $workload"
if [ -f "/workloads/$workload.toml" ]; then
    /bin/kairos-load "/workloads/$workload.toml" &
else
    echo "kairos-guest: no workload '$workload' in /workloads"
fi
sleep 5
echo "kairos-guest: $(grep -E '^(MemTotal|MemFree|AnonPages)' /proc/meminfo | tr -s ' ' | tr '\n' ' ')"
while true; do sleep 3600; done
INIT
chmod +x "$stage/init"
(cd "$stage" && find . | cpio -o -H newc --quiet | gzip -1 >"$out/initrd.img.tmp")
mv "$out/initrd.img.tmp" "$out/initrd.img"
log "ok: $out/vmlinuz $out/initrd.img ($(du -k "$out/initrd.img" | cut -f1) KiB)"

#!/usr/bin/env bash
# Builds what QEMU links (kairos-ffi: libkairos.a and kairos.h) with the
# rustc a Debian QEMU build would use: Debian's packaged rustc 1.85
# (rustc-web/cargo-web 1.85 on Debian 12, rustc 1.85 on Debian 13), in its
# own target directory. The library's rust-version says 1.85
# (scripts/check-msrv.py checks no dependency needs more); this proves it
# with the compiler itself. The packages install /usr/bin/rustc and
# /usr/bin/cargo; rustup's toolchain in ~/.cargo/bin stays first on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."

want=1.85
log() { printf '[debian-rustc] %s\n' "$*" >&2; }
if ! grep -q "^rustc $want\." <<<"$(/usr/bin/rustc --version 2>/dev/null)"; then
    export DEBIAN_FRONTEND=noninteractive
    version=$(apt-cache madison rustc-web 2>/dev/null | awk -v w="$want." '$3 ~ "^" w {print $3; exit}')
    if [ -z "$version" ]; then
        apt-get update -qq
        version=$(apt-cache madison rustc-web | awk -v w="$want." '$3 ~ "^" w {print $3; exit}')
    fi
    [ -n "$version" ] || { echo "check-debian-rustc: no rustc-web $want in the archive" >&2; exit 1; }
    log "apt-get install rustc-web=$version cargo-web=$version"
    apt-get install -y -qq "rustc-web=$version" "cargo-web=$version" \
        "libstd-rust-web-dev=$version" "libstd-rust-web-$want=$version" >/dev/null
fi
log "$(/usr/bin/rustc --version), $(/usr/bin/cargo --version)"
RUSTC=/usr/bin/rustc /usr/bin/cargo build --locked --release -q -p kairos-ffi \
    --target-dir target/debian-rustc
log "ok: kairos-ffi (libkairos.a) builds with Debian's rustc $want"

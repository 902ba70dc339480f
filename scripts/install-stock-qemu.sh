#!/usr/bin/env bash
# Installs a stock QEMU of the series the patches apply to: Debian's
# qemu-system-x86 10.0.x from bookworm-backports (the distribution's own
# build, every feature it ships, no Kairos patch), at /usr/bin. The
# compatibility test (scripts/tests/test_compat.py) migrates a guest from
# the patched QEMU to it and back. Idempotent; prints the binary's path.
#
#   bash scripts/install-stock-qemu.sh
#
# It installs the package system-wide, as an operator's host has it; it
# also brings qemu-system-data and seabios of that release, which the
# patched build's firmware links (scripts/build-qemu.sh) then share, so
# both sides load the same option ROMs (their sizes must match for the
# ROMs' RAM blocks to migrate).
set -euo pipefail

log() { printf '[install-stock-qemu] %s\n' "$*" >&2; }

stock=/usr/bin/qemu-system-x86_64
series=10.0
version_of() { "$1" --version 2>/dev/null | sed -n '1s/^QEMU emulator version \([0-9.]*\).*/\1/p'; }

if [ -x "$stock" ] && [[ "$(version_of "$stock")" == "$series".* ]]; then
    echo "$stock"
    exit 0
fi

list=/etc/apt/sources.list.d/kairos-stock-qemu.sources
if [ ! -f "$list" ]; then
    log "adding bookworm-backports ($list)"
    cat >"$list" <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
fi
export DEBIAN_FRONTEND=noninteractive
log "apt-get install -t bookworm-backports qemu-system-x86"
apt-get update -qq
apt-get install -y -qq --no-install-recommends -t bookworm-backports qemu-system-x86 >/dev/null
got=$(version_of "$stock")
if [[ "$got" != "$series".* ]]; then
    echo "install-stock-qemu: $stock is QEMU ${got:-(no version)}, not $series.x" >&2
    exit 1
fi
log "QEMU $got ($(dpkg-query -W -f='${Version}' qemu-system-x86))"
echo "$stock"

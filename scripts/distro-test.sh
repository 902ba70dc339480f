#!/usr/bin/env bash
# The distribution build of the patched QEMU, tested (not part of CI: the
# build alone takes about 15 minutes on 2 cores):
#   1. builds it (scripts/build-qemu.sh --distro; incremental after the
#      first time) and the Kairos guest;
#   2. scripts/tests/test_distro_tls.py: a guest with a virtio-net NIC and
#      a VNC display migrated over TLS between two QEMUs of that build,
#      `predictive` deciding; a source without TLS refused;
#   3. scripts/tests/test_compat.py with that build as the patched QEMU:
#      to Debian's stock 10.0 and back, policy off and on.
# Guests run with TCG (/dev/kvm hidden). Logs in build/test-logs/.
#
#   bash scripts/distro-test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

run_hidden() {
    if [ -e /dev/kvm ]; then
        unshare -m sh -c 'mount --bind /dev/null /dev/kvm && exec "$@"' sh "$@"
    else
        "$@"
    fi
}
python3 -c 'import pytest' 2>/dev/null || python3 -m pip install -q pytest==8.3.4
bash scripts/build-qemu.sh --distro
bash scripts/build-guest.sh
bash scripts/install-stock-qemu.sh >/dev/null
KAIROS_PATCHED_QEMU=$(pwd)/build/bin-distro/qemu-system-x86_64 run_hidden \
    python3 -m pytest -v -rA -p no:cacheprovider \
    scripts/tests/test_distro_tls.py scripts/tests/test_compat.py

#!/usr/bin/env bash
# The distribution build of the patched QEMU, tested (not part of CI: the
# build alone takes about 15 minutes on 2 cores):
#   1. builds it (scripts/build-qemu.sh --distro; incremental after the
#      first time) and the Kairos guest, and installs it
#      (scripts/install-qemu.sh; removed again at the end unless it was
#      installed before): what is tested is what a host runs, its
#      firmware and modules found where the installed binary looks;
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

# shellcheck source=scripts/lib/run-hidden.sh
. scripts/lib/run-hidden.sh
python3 -c 'import pytest' 2>/dev/null || python3 -m pip install -q pytest==8.3.4
bash scripts/build-qemu.sh --distro
bash scripts/build-guest.sh
bash scripts/install-stock-qemu.sh >/dev/null
installed_before=0
prefix=$(python3 -c 'import json, sys; print(next(o["value"] for o in json.load(open(sys.argv[1])) if o["name"] == "prefix"))' \
    build/qemu/build-distro/meson-info/intro-buildoptions.json)
[ -f "$prefix/share/kairos-qemu/install-log.txt" ] && installed_before=1
qemu=$(bash scripts/install-qemu.sh)
if [ "$installed_before" = 0 ]; then
    trap 'bash scripts/install-qemu.sh --uninstall' EXIT
fi
bash scripts/install-qemu.sh --check
KAIROS_PATCHED_QEMU=$qemu run_hidden \
    python3 -m pytest -v -rA -p no:cacheprovider \
    scripts/tests/test_distro_tls.py scripts/tests/test_compat.py

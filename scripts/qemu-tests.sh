#!/usr/bin/env bash
# Tests of the patched QEMU and the live test-bed (run by scripts/test.sh):
# builds QEMU, the guest and kairos, then runs scripts/tests/test_qemu.py
# with pytest — upstream's migration-test (with the convergence qtests) with
# the policy off and forced on, a real guest migrated by `predictive`, a
# small real comparison over the shaped link, and kairos profile — and
# scripts/tests/test_frontier.py, the static-frontier campaign's generator
# and renderer on a few programs. Guests run
# with TCG: /dev/kvm is hidden (bind-mounted over by /dev/null in a private
# mount namespace), so QEMU's probes fall back to TCG.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/build-qemu.sh
bash scripts/build-guest.sh
cargo build --release -q -p kairos-testbed
python3 -c 'import pytest' 2>/dev/null || python3 -m pip install -q pytest==8.3.4
mkdir -p build/test-logs

run_hidden() {
    if [ -e /dev/kvm ]; then
        unshare -m sh -c 'mount --bind /dev/null /dev/kvm && exec "$@"' sh "$@"
    else
        "$@"
    fi
}
run_hidden python3 -m pytest -v -rA --durations=0 -p no:cacheprovider scripts/tests/test_qemu.py \
    scripts/tests/test_frontier.py \
    --junitxml=build/test-logs/qemu-tests.xml

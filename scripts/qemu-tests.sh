#!/usr/bin/env bash
# Tests of the patched QEMU and the live test-bed (run by scripts/test.sh):
# builds QEMU (the patched tree with the library and without it, both with
# -Werror), checks every patch with QEMU's checkpatch, builds the guest and
# kairos, then runs with pytest scripts/tests/test_qemu.py — upstream's
# migration-test (with the convergence qtests) with the policy off and
# forced on, the convergence qtests of the build without the library, a
# real guest migrated by `predictive`, a small real comparison over the
# shaped link, kairos profile —, scripts/tests/test_frontier.py (the
# static-frontier campaign's generator and renderer on a few programs) and
# scripts/tests/test_qapi_names.py (QAPI's enums against the library's
# names). Guests run with TCG: /dev/kvm is hidden (bind-mounted over by
# /dev/null in a private mount namespace), so QEMU's probes fall back to
# TCG.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/build-qemu.sh
bash scripts/build-qemu.sh --no-library
# The series in upstream style: QEMU's own checkpatch on every patch.
for patch in $(grep -v '^#' qemu-patches/series); do
    build/qemu/src-kairos/scripts/checkpatch.pl "qemu-patches/$patch" >build/checkpatch.log 2>&1 || {
        cat build/checkpatch.log >&2; echo "qemu-tests: checkpatch: $patch" >&2; exit 1; }
    grep -q "^total: 0 errors, 0 warnings" build/checkpatch.log || {
        cat build/checkpatch.log >&2; echo "qemu-tests: checkpatch warns on $patch" >&2; exit 1; }
done
echo "checkpatch: $(grep -vc '^#' qemu-patches/series) patches, 0 errors, 0 warnings"
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
    scripts/tests/test_frontier.py scripts/tests/test_qapi_names.py \
    --junitxml=build/test-logs/qemu-tests.xml

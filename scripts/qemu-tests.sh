#!/usr/bin/env bash
# Tests of the patched QEMU and the live test-bed (run by scripts/test.sh),
# with pytest. migration-test mostly waits (for a pass to end, for QMP
# events), so its runs go in the background as soon as their tree is built:
#   1. builds the patched tree with the library (-Werror) and starts
#      scripts/tests/test_migration_test.py on it: upstream's migration-test
#      with the policy off and forced on, and the convergence qtests that
#      need --full;
#   2. meanwhile builds the tree without the library (-Werror), checks
#      every patch with QEMU's checkpatch, builds the guest and kairos, and
#      runs scripts/libvirt-migrate-test.sh (virsh migrate --live between
#      two libvirt daemons) and a short live evacuation through libvirt
#      (scripts/evacuate-live.sh, two small guests);
#   3. then, alone, because they time migrations: the convergence qtests of
#      the tree without the library, scripts/tests/test_qemu.py (a real
#      guest migrated by `predictive`, a small real comparison over the
#      shaped link, kairos profile and advise, the faults of kairos soak),
#      scripts/tests/test_record.py (kairos record in shadow mode on a
#      real guest migrated into a file), scripts/tests/test_compat.py (a
#      guest migrated from the patched QEMU to Debian's stock 10.0 and
#      back, policy off and on; scripts/install-stock-qemu.sh installs
#      it), scripts/tests/test_frontier.py
#      (the static-frontier campaign's generator and renderer on a few
#      programs), scripts/tests/test_distro_features.py (the distribution
#      build's configure options, from Debian's source package, without
#      building it) and
#      scripts/tests/test_qapi_names.py (QAPI's enums against the library's
#      names).
# Guests run with TCG: /dev/kvm is hidden (bind-mounted over by /dev/null
# in a private mount namespace), so QEMU's probes fall back to TCG.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/lib/run-hidden.sh
. scripts/lib/run-hidden.sh
pytest_args=(-v -rA --durations=0 -p no:cacheprovider)
python3 -c 'import pytest' 2>/dev/null || python3 -m pip install -q pytest==8.3.4
python3 -c 'import prometheus_client' 2>/dev/null || python3 -m pip install -q prometheus-client==0.21.1
mkdir -p build/test-logs

bash scripts/build-qemu.sh
# upstream's migration-test on this tree starts now, in the background in
# its own process group (killed with everything it started if this script
# stops early); the rest is built and the libvirt test runs meanwhile.
qtests_log=build/test-logs/migration-test.log
set -m
run_hidden python3 -m pytest "${pytest_args[@]}" scripts/tests/test_migration_test.py \
    -k "not without_the_library" --junitxml=build/test-logs/migration-test.xml \
    </dev/null >"$qtests_log" 2>&1 &
qtests=$!
set +m
trap '[ -z "$qtests" ] || kill -- -"$qtests" 2>/dev/null || true' EXIT
echo "migration-test: running in the background (pytest's output: $qtests_log)"

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
bash scripts/install-stock-qemu.sh >/dev/null

libvirt_rc=0
bash scripts/libvirt-migrate-test.sh || libvirt_rc=$?
# A short live evacuation through libvirt: two small guests, Kairos's plan
# (scripts/evacuate-live.sh checks each arrived running, pages intact).
if [ "$libvirt_rc" -eq 0 ]; then
    bash scripts/evacuate-live.sh --guests vm1:static-small:512,vm2:periodic:512 \
        --plans planned --warmup-s 5 --profile-s 6 --out build/test-logs/evacuate-live ||
        libvirt_rc=$?
fi
echo "== [$(date -u +%T)] waiting for migration-test"
qtests_rc=0
wait "$qtests" || qtests_rc=$?
qtests=
cat "$qtests_log"
[ "$libvirt_rc" -eq 0 ] || { echo "qemu-tests: the libvirt test or the live evacuation failed (its output above the migration-test's)" >&2; exit 1; }
[ "$qtests_rc" -eq 0 ] || { echo "qemu-tests: migration-test failed (above; the runs' TAP files in build/test-logs)" >&2; exit 1; }

echo "== [$(date -u +%T)] the live tests, alone"
run_hidden python3 -m pytest "${pytest_args[@]}" \
    scripts/tests/test_migration_test.py::test_patched_tree_without_the_library \
    scripts/tests/test_qemu.py scripts/tests/test_record.py scripts/tests/test_compat.py \
    scripts/tests/test_frontier.py scripts/tests/test_distro_features.py \
    scripts/tests/test_qapi_names.py \
    --junitxml=build/test-logs/qemu-tests.xml

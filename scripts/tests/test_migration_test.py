"""Upstream's migration-test on the patched QEMU, run by pytest from
scripts/qemu-tests.sh (which builds the trees first and hides /dev/kvm):
with the policy off, with the policy (`predictive`) and its escalation
(`auto`: throttle or post-copy) forced on every QEMU it starts with
-global, the convergence qtests that need --full, and the convergence
qtests of the series built without the library. The runs mostly wait, so
qemu-tests.sh starts the first three in the background as soon as their
tree is built, and builds the other tree and runs the libvirt test
meanwhile; the live tests (test_qemu.py) time migrations and run after
them, alone.
"""
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
QEMU = ROOT / "build/bin/qemu-system-x86_64"
MIGRATION_TEST = ROOT / "build/bin/migration-test"
LOGS = ROOT / "build/test-logs"


# --- upstream's migration-test -------------------------------------------------

def predictive_wrapper():
    """A QEMU that forces the policy and its escalation on (`auto`: a
    throttle, or post-copy where a test allows it); migration-test takes
    the target from the binary's name, so the wrapper keeps it, in its own
    dir."""
    wrapper = ROOT / "build/bin/predictive/qemu-system-x86_64"
    wrapper.parent.mkdir(parents=True, exist_ok=True)
    wrapper.write_text(
        f'#!/bin/sh\nexec "{QEMU}" -global migration.x-convergence-policy=predictive '
        f'-global migration.x-convergence-escalation=auto "$@"\n')
    wrapper.chmod(0o755)
    return wrapper


MIGRATION_TEST_VARIANTS = ("policy-off", "policy-predictive")
NOLIB = ROOT / "build/bin-nolib"
# GLib's -p takes the tests of one suite, not of its sub-suites.
CONVERGENCE = ["-p", "/x86_64/migration/convergence"]


def qtest_runs():
    """The migration-test runs of the tree with the library, by name:
    (QEMU binary, arguments)."""
    return {
        "policy-off": (QEMU, ["-m", "quick"]),
        "policy-predictive": (predictive_wrapper(), ["-m", "quick"]),
        # The convergence qtests that migrate a guest QEMU's rule cannot
        # converge run only with --full, like upstream's slow tests.
        "convergence-full": (QEMU, ["--full", *CONVERGENCE,
                                    "-p", "/x86_64/migration/convergence/throttle",
                                    "-p", "/x86_64/migration/convergence/escalation"]),
    }


def start_qtests(name, qemu, test, args):
    """Starts one migration-test run, its TAP output to
    build/test-logs/migration-test-NAME.tap; returns (process, tap file,
    open output file)."""
    LOGS.mkdir(parents=True, exist_ok=True)
    tap = LOGS / f"migration-test-{name}.tap"
    env = dict(os.environ, QTEST_QEMU_BINARY=str(qemu))
    out = open(tap, "w")
    try:
        proc = subprocess.Popen([str(test), *args, "--tap", "-k"],
                                env=env, stdout=out, stderr=subprocess.STDOUT)
    except BaseException:
        out.close()
        raise
    return proc, tap, out


@pytest.fixture(scope="module")
def migration_test_runs():
    """Start the runs of qtest_runs() at once: they mostly wait (for a
    migration to reach a pass, for QMP events), so side by side they take
    about as long as the longest (measured on this 2-core host: 521 s for
    the two -m quick runs together, against 520 s for each alone). Yields
    name -> (process, tap file)."""
    runs = {}
    try:
        for name, (qemu, args) in qtest_runs().items():
            runs[name] = start_qtests(name, qemu, MIGRATION_TEST, args)
        yield {name: (proc, tap) for name, (proc, tap, _) in runs.items()}
    finally:
        for proc, _, out in runs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            out.close()


def finished_qtests(proc, tap):
    """Waits for a run; its exit status, its passed lines, its failed
    lines."""
    rc = proc.wait()
    lines = tap.read_text().splitlines()
    return (rc, [l for l in lines if l.startswith("ok ")],
            [l for l in lines if l.startswith("not ok")])


@pytest.mark.parametrize("variant", MIGRATION_TEST_VARIANTS)
def test_migration_test(migration_test_runs, variant):
    proc, tap = migration_test_runs[variant]
    rc, passed, failed = finished_qtests(proc, tap)
    assert rc == 0 and not failed, f"{failed} (see {tap})"
    for name in ("/migration/convergence/parameters",
                 "/migration/convergence/bandwidth-per-migration"):
        assert any(name in l and "SKIP" not in l for l in passed), \
            f"{name} did not pass (see {tap})"
    print(f"{variant}: {len(passed)} ok")


def test_patched_tree_without_the_library():
    """The series built without libkairos (scripts/build-qemu.sh
    --no-library, -Werror): the convergence qtests skip what needs the
    library and pass the rest; a policy set with -global is refused at
    start with a clear error. Its own run (about 40 s), so qemu-tests.sh
    can start the others before this tree is built."""
    proc, tap, out = start_qtests("no-library", NOLIB / "qemu-system-x86_64",
                                  NOLIB / "migration-test", CONVERGENCE)
    try:
        rc, passed, failed = finished_qtests(proc, tap)
    finally:
        out.close()
    assert rc == 0 and not failed, f"see {tap}"
    assert any("/migration/convergence/off" in l and "SKIP" not in l for l in passed), tap
    assert any("/migration/convergence/parameters" in l and "SKIP" in l for l in passed), tap
    # A policy set on the command line is refused at start, with the reason.
    run = subprocess.run([str(NOLIB / "qemu-system-x86_64"), "-accel", "tcg", "-M", "none",
                          "-nodefaults", "-display", "none",
                          "-global", "migration.x-convergence-policy=predictive"],
                         stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert run.returncode != 0, run
    assert "can only be 'off'" in run.stderr and "without the Kairos library" in run.stderr, run.stderr


def test_convergence_qtests_full(migration_test_runs):
    """The convergence qtests that migrate a guest QEMU's rule cannot
    converge (`predictive`, `throttle/released-on-cancel`) run only with
    --full, like upstream's slow migration tests."""
    proc, tap = migration_test_runs["convergence-full"]
    rc, passed, failed = finished_qtests(proc, tap)
    assert rc == 0 and not failed, f"{failed} (see {tap})"
    for name in ("/migration/convergence/predictive",
                 "/migration/convergence/throttle/released-on-cancel",
                 # An escalation QEMU cannot carry out is left out, the
                 # migration not refused (qemu-patches 0014).
                 "/migration/convergence/throttle/off-with-auto-converge",
                 "/migration/convergence/escalation/needs-its-means"):
        assert any(name in l and "SKIP" not in l for l in passed), f"{name} did not pass (see {tap})"

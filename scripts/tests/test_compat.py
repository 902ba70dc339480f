"""A patched QEMU and a stock one of the same series migrate to each other
(run by scripts/qemu-tests.sh, with /dev/kvm hidden).

Rolling upgrades and rollbacks move guests between hosts that run the
patched QEMU and hosts that still run the distribution's: the series must
add nothing to the migration stream, with the policy off or deciding.
The stock QEMU is Debian's qemu-system-x86 10.0.x from bookworm-backports
(scripts/install-stock-qemu.sh); the patched one is build/bin's 10.0.x.
One guest (the Kairos guest, writing and checking its pages) makes four
hops, each verified on arrival (running, reporting, no page that does not
hold what was written):

  patched, policy off  ->  stock  ->  patched
  patched, `predictive` deciding  ->  stock  ->  patched

The machine type is pinned (pc-i440fx-10.0) and both sides load the same
option ROMs (build-qemu.sh links the installed firmware).
"""
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
from qmp import QMP  # noqa: E402
from live_helpers import free_port, read, wait_for  # noqa: E402

# The lab build, or another patched build ($KAIROS_PATCHED_QEMU: the
# distribution build, from scripts/distro-test.sh).
PATCHED = Path(os.environ.get("KAIROS_PATCHED_QEMU", ROOT / "build/bin/qemu-system-x86_64"))
# The lab build's firmware is linked into its build tree; the
# distribution build finds it on its firmware path.
PATCHED_DATA = PATCHED.resolve().parent / "qemu-bundle/usr/local/share/qemu"
STOCK = Path("/usr/bin/qemu-system-x86_64")
KERNEL = ROOT / "build/guest/vmlinuz"
INITRD = ROOT / "build/guest/initrd.img"
LOGS = ROOT / "build/test-logs/compat"
MACHINE = "pc-i440fx-10.0"
HOP_TIMEOUT_S = 180


def version(binary):
    out = subprocess.run([str(binary), "--version"], capture_output=True, text=True,
                         check=True).stdout
    return re.match(r"QEMU emulator version (\S+)", out).group(1)





class Guest:
    """One QEMU process of the guest: its binary, console and monitor."""

    def __init__(self, name, binary, incoming_port=None):
        self.name, self.binary = name, binary
        self.serial = LOGS / f"{name}-serial.log"
        self.sock = LOGS / f"{name}.qmp"
        cmd = [str(binary), "-accel", "tcg", "-M", MACHINE, "-m", "512", "-smp", "1",
               "-nodefaults", "-display", "none",
               "-kernel", str(KERNEL), "-initrd", str(INITRD),
               "-append", "console=ttyS0 quiet kairos.workload=static-small",
               "-serial", f"file:{self.serial}",
               "-qmp", f"unix:{self.sock},server=on,wait=off"]
        if binary == PATCHED and PATCHED_DATA.is_dir():
            cmd += ["-L", str(PATCHED_DATA)]
        if incoming_port is not None:
            cmd += ["-incoming", f"tcp:127.0.0.1:{incoming_port}"]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                     stdout=open(LOGS / f"{name}-qemu.log", "w"),
                                     stderr=subprocess.STDOUT)
        try:
            self.qmp = QMP(str(self.sock))
        except BaseException:
            self.proc.kill()
            self.proc.wait()
            raise

    def reports(self):
        return read(self.serial).count("kairos-load t=")

    def stop(self):
        self.qmp.close()
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def migrate(src, dst_name, dst_binary, guests, policy=None):
    """Migrate src's guest to a new QEMU (added to `guests` at once, so it
    is stopped whatever happens); returns the destination and the
    source's last query-migrate (and convergence rounds, if it decided)."""
    port = free_port()
    dst = Guest(dst_name, dst_binary, incoming_port=port)
    guests.append(dst)
    params = {"max-bandwidth": 1_000_000_000, "downtime-limit": 300}
    if policy is not None:
        params.update({"x-convergence-policy": policy, "x-convergence-max-downtime": 1000,
                       "x-convergence-downtime-weight": 10})
    src.qmp.cmd("migrate-set-parameters", **params)
    src.qmp.cmd("migrate", uri=f"tcp:127.0.0.1:{port}")
    start = time.monotonic()
    while True:
        info = src.qmp.cmd("query-migrate")
        if info.get("status") in ("completed", "failed", "cancelled"):
            break
        if time.monotonic() - start > HOP_TIMEOUT_S:
            src.qmp.cmd("migrate_cancel")
            pytest.fail(f"{src.name} -> {dst_name} did not finish in {HOP_TIMEOUT_S} s")
        time.sleep(0.25)
    rounds = src.qmp.cmd("x-query-convergence")["rounds"] if policy is not None else []
    assert info["status"] == "completed", (info, read(LOGS / f"{dst_name}-qemu.log"))
    return dst, info, rounds


def assert_arrived_intact(guest):
    wait_for(lambda: guest.qmp.cmd("query-status")["status"] == "running", 30,
             f"{guest.name} to run")
    then = guest.reports()
    wait_for(lambda: guest.reports() > then + 1, 30, f"{guest.name}'s guest to report")
    log = read(guest.serial)
    assert "VERIFY FAILED" not in log and "verify_errors=0" in log, \
        f"{guest.name}: the guest found pages that do not hold what it wrote"


@pytest.fixture(scope="module")
def hops():
    if not STOCK.exists():
        pytest.fail(f"no stock QEMU at {STOCK}: run scripts/install-stock-qemu.sh")
    shutil.rmtree(LOGS, ignore_errors=True)
    LOGS.mkdir(parents=True)
    stock_v, patched_v = version(STOCK), version(PATCHED)
    assert stock_v.split(".")[:2] == patched_v.split(".")[:2], (stock_v, patched_v)
    guests, seen = [], {}
    try:
        first = Guest("1-patched", PATCHED)
        guests.append(first)
        wait_for(lambda: first.reports() >= 3, 120, "the guest's load generator")
        second, seen["off"], _ = migrate(first, "2-stock", STOCK, guests)
        assert_arrived_intact(second)
        third, _, _ = migrate(second, "3-patched", PATCHED, guests)
        assert_arrived_intact(third)
        fourth, seen["predictive"], seen["rounds"] = migrate(third, "4-stock", STOCK, guests,
                                                            policy="predictive")
        assert_arrived_intact(fourth)
        fifth, _, _ = migrate(fourth, "5-patched", PATCHED, guests)
        assert_arrived_intact(fifth)
        seen.update(stock=stock_v, patched=patched_v)
        yield seen
    finally:
        for g in guests:
            g.stop()


def test_patched_and_stock_migrate_both_ways_policy_off_and_on(hops):
    # Policy off: query-migrate reports no convergence member.
    assert "convergence" not in hops["off"], hops["off"]
    # Policy on: the library decided every sync of the hop to the stock QEMU.
    assert hops["predictive"].get("convergence"), hops["predictive"]
    assert hops["rounds"], "predictive recorded no sync"
    print(f"patched QEMU {hops['patched']} <-> stock QEMU {hops['stock']}: 4 hops, intact")

"""A guest as a cloud runs it — a virtio-net NIC and a VNC display —
migrated over TLS between two QEMUs of the distribution build
(scripts/build-qemu.sh --distro), with `predictive` deciding (run by
scripts/distro-test.sh, with /dev/kvm hidden: TCG here).

The certificates are made here (a CA, a server and a client certificate
for 127.0.0.1, with openssl), in the layout QEMU's tls-creds-x509 reads;
the destination verifies the client's. A source without TLS is refused by
the same destination (so the migration that completes did use TLS). The
guest is the Kairos guest writing and checking its pages; it must arrive
running, reporting, with no page that does not hold what was written.

QEMU: $KAIROS_PATCHED_QEMU, else the installed one
(/opt/kairos-qemu/bin/qemu-system-x86_64, scripts/install-qemu.sh): the
build tree's binary looks for Debian's firmware relative to itself.
"""
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
from qmp import QMP  # noqa: E402
from live_helpers import free_port, read, wait_for  # noqa: E402

QEMU = Path(os.environ.get("KAIROS_PATCHED_QEMU", "/opt/kairos-qemu/bin/qemu-system-x86_64"))
KERNEL = ROOT / "build/guest/vmlinuz"
INITRD = ROOT / "build/guest/initrd.img"
LOGS = ROOT / "build/test-logs/distro-tls"





def openssl(*args):
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_certificates(d):
    """A CA and a server and client certificate it signed, for 127.0.0.1,
    named as tls-creds-x509 expects."""
    d.mkdir(parents=True, exist_ok=True)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=Kairos test CA", "-keyout", str(d / "ca-key.pem"),
            "-out", str(d / "ca-cert.pem"))
    for role in ("server", "client"):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN=kairos-{role}",
                "-keyout", str(d / f"{role}-key.pem"), "-out", str(d / f"{role}.csr"))
        ext = d / f"{role}.ext"
        usage = "serverAuth" if role == "server" else "clientAuth"
        ext.write_text(f"subjectAltName=IP:127.0.0.1\nextendedKeyUsage={usage}\n"
                       "keyUsage=digitalSignature,keyEncipherment\n")
        openssl("x509", "-req", "-in", str(d / f"{role}.csr"), "-CA", str(d / "ca-cert.pem"),
                "-CAkey", str(d / "ca-key.pem"), "-CAcreateserial", "-days", "2",
                "-extfile", str(ext), "-out", str(d / f"{role}-cert.pem"))


class Guest:
    def __init__(self, name, tls_endpoint=None, incoming=False):
        self.name = name
        self.serial = LOGS / f"{name}-serial.log"
        sock = LOGS / f"{name}.qmp"
        cmd = [str(QEMU), "-accel", "tcg", "-M", "pc-i440fx-10.0", "-m", "512", "-smp", "1",
               "-nodefaults", "-kernel", str(KERNEL), "-initrd", str(INITRD),
               "-append", "console=ttyS0 quiet kairos.workload=static-small",
               "-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0",
               "-vga", "std", "-display", "none", "-vnc", f"unix:{LOGS / (name + '.vnc')}",
               "-serial", f"file:{self.serial}",
               "-qmp", f"unix:{sock},server=on,wait=off"]
        if tls_endpoint:
            cmd += ["-object", f"tls-creds-x509,id=tls0,dir={LOGS / 'pki'},"
                               f"endpoint={tls_endpoint},verify-peer=on"]
        if incoming:
            cmd += ["-incoming", "defer"]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                     stdout=open(LOGS / f"{name}-qemu.log", "w"),
                                     stderr=subprocess.STDOUT)
        try:
            self.qmp = QMP(str(sock))
        except BaseException:
            self.proc.kill()
            self.proc.wait()
            raise

    def listen(self, port, tls):
        if tls:
            self.qmp.cmd("migrate-set-parameters", **{"tls-creds": "tls0"})
        self.qmp.cmd("migrate-incoming", uri=f"tcp:127.0.0.1:{port}")

    def stop(self):
        self.qmp.close()
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def finish(src, timeout_s=180):
    start = time.monotonic()
    while True:
        info = src.qmp.cmd("query-migrate")
        if info.get("status") in ("completed", "failed", "cancelled"):
            return info
        if time.monotonic() - start > timeout_s:
            src.qmp.cmd("migrate_cancel")
            pytest.fail(f"{src.name}: the migration did not finish in {timeout_s} s")
        time.sleep(0.25)


@pytest.fixture(scope="module")
def migrated():
    if not QEMU.exists():
        pytest.fail(f"no distribution build at {QEMU}: run scripts/distro-test.sh")
    subprocess.run(["rm", "-rf", str(LOGS)], check=True)
    LOGS.mkdir(parents=True)
    make_certificates(LOGS / "pki")
    guests, seen = [], {}
    try:
        src = Guest("src", tls_endpoint="client")
        guests.append(src)
        wait_for(lambda: read(src.serial).count("kairos-load t=") >= 3, 120,
                 "the guest's load generator")
        # A source without TLS: the destination expecting it refuses it.
        port = free_port()
        refusing = Guest("refusing", tls_endpoint="server", incoming=True)
        guests.append(refusing)
        refusing.listen(port, tls=True)
        src.qmp.cmd("migrate", uri=f"tcp:127.0.0.1:{port}")
        seen["plain"] = finish(src)
        refusing.stop()
        # The migration over TLS, the policy deciding.
        port = free_port()
        dst = Guest("dst", tls_endpoint="server", incoming=True)
        guests.append(dst)
        dst.listen(port, tls=True)
        src.qmp.cmd("migrate-set-parameters", **{
            "tls-creds": "tls0", "max-bandwidth": 125_000_000, "downtime-limit": 300,
            "x-convergence-policy": "predictive", "x-convergence-max-downtime": 1000,
            "x-convergence-downtime-weight": 10})
        src.qmp.cmd("migrate", uri=f"tcp:127.0.0.1:{port}")
        seen["tls"] = finish(src)
        seen["rounds"] = src.qmp.cmd("x-query-convergence")["rounds"]
        seen["dst"] = dst
        yield seen
    finally:
        for g in guests:
            g.stop()


def test_a_source_without_tls_is_refused(migrated):
    assert migrated["plain"]["status"] == "failed", migrated["plain"]
    # Refused for its want of TLS, not for something else.
    assert "TLS handshake failed" in read(LOGS / "refusing-qemu.log")


def test_the_guest_migrates_over_tls_with_the_policy_deciding(migrated):
    info = migrated["tls"]
    assert info["status"] == "completed", info
    assert info.get("convergence", {}).get("policy") == "predictive", info
    assert migrated["rounds"], "predictive recorded no sync"


def test_it_arrives_with_its_nic_display_and_memory(migrated):
    dst = migrated["dst"]
    assert dst.qmp.cmd("query-status")["status"] == "running"
    assert dst.qmp.cmd("query-vnc")["enabled"] is True
    nics = [d for d in dst.qmp.cmd("qom-list", path="/machine/peripheral-anon")
            if d["type"].startswith("child<virtio-net-pci")]
    assert nics, "no virtio-net-pci on the destination"
    then = read(dst.serial).count("kairos-load t=")
    wait_for(lambda: read(dst.serial).count("kairos-load t=") > then + 1, 30,
             "the guest to report on the destination")
    log = read(dst.serial)
    assert "VERIFY FAILED" not in log and "verify_errors=0" in log

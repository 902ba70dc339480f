"""`kairos record` on a real patched QEMU (run by scripts/qemu-tests.sh,
with /dev/kvm hidden): the Kairos guest (scripts/build-guest.sh) writing a
small working set, with two QMP monitors, one for the operator's
migrations and one for the recorder; the guest migrated into a file ten
times (resumed after each). The recorder must put the QEMU in shadow mode
(`observe`) and back, write every migration's record and a trace
`kairos replay` reads under every policy, and serve the figures in the
OpenMetrics text format (checked with the Prometheus client library's
parser)."""
import csv
import json
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from prometheus_client.openmetrics.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
from qmp import QMP  # noqa: E402
from live_helpers import wait_for  # noqa: E402

QEMU = ROOT / "build/bin/qemu-system-x86_64"
KAIROS = ROOT / "target/release/kairos"
DATA = QEMU.resolve().parent / "qemu-bundle/usr/local/share/qemu"
KERNEL = ROOT / "build/guest/vmlinuz"
INITRD = ROOT / "build/guest/initrd.img"



MIGRATIONS = 10


def test_record_follows_a_host_s_migrations_in_shadow_mode(tmp_path):
    operator_sock, record_sock = tmp_path / "op.qmp", tmp_path / "rec.qmp"
    serial = tmp_path / "serial.log"
    qemu = subprocess.Popen(
        [str(QEMU), "-accel", "tcg", "-m", "512", "-smp", "1", "-nodefaults",
         "-display", "none", "-L", str(DATA),
         "-kernel", str(KERNEL), "-initrd", str(INITRD),
         "-append", "console=ttyS0 quiet kairos.workload=static-small",
         "-serial", f"file:{serial}",
         "-qmp", f"unix:{operator_sock},server=on,wait=off",
         "-qmp", f"unix:{record_sock},server=on,wait=off"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / "qemu.stderr", "w"))
    record = None
    try:
        op = QMP(str(operator_sock))
        wait_for(lambda: "kairos-load t=" in serial.read_text(errors="replace"), 120,
                 "the guest's load generator")
        assert op.cmd("query-migrate-parameters")["x-convergence-policy"] == "off"
        record_err = open(tmp_path / "record.stderr", "w+")
        record = subprocess.Popen(
            [str(KAIROS), "record", "--qmp", f"vm1={record_sock}",
             "--out", str(tmp_path / "out"), "--metrics-listen", "127.0.0.1:0",
             "--poll-ms", "50"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=record_err)
        # Shadow mode: the recorder set the policy to observe.
        wait_for(lambda: op.cmd("query-migrate-parameters")["x-convergence-policy"]
                 == "observe", 30, "the recorder to set observe")
        port = wait_for(lambda: re.search(r"127\.0\.0\.1:(\d+)/metrics",
                                          (tmp_path / "record.stderr").read_text()),
                        30, "the metrics address").group(1)
        # Slow enough for several syncs (the guest writes 24 MiB at
        # 40 MiB/s; 300 ms at 100 MB/s holds it).
        op.cmd("migrate-set-parameters", **{"max-bandwidth": 100 * 1000 * 1000})
        op.cmd("migrate", uri=f"file:{tmp_path / 'guest.mig'}")
        wait_for(lambda: op.cmd("query-migrate").get("status") == "completed",
                 120, "the migration to complete")
        records = wait_for(lambda: list((tmp_path / "out/vm1").glob("*/record.json")),
                           30, "the migration's record")
        assert len(records) == 1, records
        rec = json.loads(records[0].read_text())
        assert rec["status"] == "completed", rec
        assert rec["policy"] == "observe", rec
        assert rec["syncs"] >= 2 and rec["syncs"] == len(rec["decisions"]), rec
        assert rec["forecast_error"]["pairs"] >= 1, rec
        assert rec["total_time_ms"] > 0 and rec["downtime_ms"] is not None, rec
        # observe decides nothing: every sync says continue.
        assert {d["action"] for d in rec["decisions"]} == {"continue"}, rec
        trace = records[0].parent / "trace.csv"
        # Shadow mode asks QEMU for nothing: no mid-pass sync either.
        with open(trace) as f:
            rows = list(csv.DictReader(f))
        assert len(rows) == rec["syncs"], rows
        assert all(float(r["sync_below_ms"]) == 0 and r["decision"] == "continue"
                   for r in rows), rows
        # Nine more, the guest resumed after each: a host's worth of
        # migrations, each recorded apart.
        for n in range(2, MIGRATIONS + 1):
            op.cmd("cont")
            wait_for(lambda: op.cmd("query-status")["status"] == "running", 30, "the guest to run")
            time.sleep(1)
            op.cmd("migrate", uri=f"file:{tmp_path / f'guest-{n}.mig'}")
            wait_for(lambda: op.cmd("query-migrate").get("status") == "completed",
                     120, f"migration {n} to complete")
            wait_for(lambda: len(list((tmp_path / "out/vm1").glob("*/record.json"))) == n,
                     30, f"migration {n}'s record")
        records = sorted((tmp_path / "out/vm1").glob("*/record.json"))
        assert len(records) == MIGRATIONS, records
        for path in records:
            rec = json.loads(path.read_text())
            assert rec["status"] == "completed" and rec["syncs"] >= 1, (path, rec)
            # Every trace replays under every policy.
            replay = subprocess.run(
                [str(KAIROS), "replay", "--trace", str(path.parent / "trace.csv"), "--policy", "all"],
                capture_output=True, text=True, timeout=120)
            assert replay.returncode == 0, (path, replay.stderr)
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
        # A strict OpenMetrics parser accepts the exposition.
        families = {f.name: f for f in text_string_to_metric_families(metrics)}
        assert "kairos_migrations" in families, sorted(families)
        assert (f'kairos_migrations_total{{target="vm1",status="completed"}} {MIGRATIONS}'
                in metrics), metrics
        assert re.search(r'kairos_syncs\{target="vm1"\} [1-9]', metrics), metrics
        assert 'kairos_migrating{target="vm1"} 0' in metrics, metrics
        # Ctrl-C: a clean exit, and the policy put back to off.
        record.send_signal(signal.SIGINT)
        assert record.wait(timeout=30) == 0, (tmp_path / "record.stderr").read_text()
        assert op.cmd("query-migrate-parameters")["x-convergence-policy"] == "off"
        op.close()
    finally:
        if record and record.poll() is None:
            record.kill()
        qemu.kill()
        qemu.wait()

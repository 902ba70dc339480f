#!/usr/bin/env python3
"""End-to-end smoke test of the patched QEMU: boots the Kairos guest under
a phase-changing workload, migrates it between two QEMU processes on
loopback at 1 Gbit/s with a convergence policy, and checks the result.

Run it through scripts/qemu-smoke.sh, which hides /dev/kvm (guests run with
TCG here). Prints one JSON object with what it measured; exits non-zero on
any failed check, naming it and the log to read.
"""
import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qmp import QMP, QMPError  # noqa: E402

checks_passed = 0


def check(cond, what, log=None):
    global checks_passed
    if not cond:
        hint = f" (see {log})" if log else ""
        raise SystemExit(f"migrate-smoke: FAIL: {what}{hint}")
    checks_passed += 1


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(pred, timeout_s, what, log=None):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.2)
    check(False, f"timed out waiting for {what}", log)


def read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--qemu", required=True)
    ap.add_argument("--data-dir", action="append", default=[])
    ap.add_argument("--kernel", required=True)
    ap.add_argument("--initrd", required=True)
    ap.add_argument("--kairos", required=True, help="the kairos CLI, for replay")
    ap.add_argument("--workload", default="phase-change")
    ap.add_argument("--policy", default="predictive")
    ap.add_argument("--warmup-s", type=float, default=6.0)
    ap.add_argument("--timeout-s", type=float, default=180.0)
    ap.add_argument("--keep", help="directory to keep logs and the trace in")
    args = ap.parse_args()

    work = args.keep or tempfile.mkdtemp(prefix="kairos-smoke-")
    os.makedirs(work, exist_ok=True)
    port = free_port()
    append = f"console=ttyS0 quiet kairos.workload={args.workload}"
    base = [args.qemu, "-accel", "tcg", "-m", "1024", "-smp", "1", "-nographic",
            "-nodefaults", "-kernel", args.kernel, "-initrd", args.initrd,
            "-append", append]
    for d in args.data_dir:
        base += ["-L", d]
    procs = []

    def stop_all(*_):
        for p in procs:
            if p.poll() is None:
                p.kill()
        for p in procs:
            p.wait()

    signal.signal(signal.SIGTERM, lambda *a: (stop_all(), sys.exit(1)))
    try:
        dst_log, src_log = f"{work}/dst-serial.log", f"{work}/src-serial.log"
        dst = subprocess.Popen(base + ["-serial", f"file:{dst_log}",
                                       "-qmp", f"unix:{work}/dst.qmp,server=on,wait=off",
                                       "-incoming", f"tcp:127.0.0.1:{port}"],
                               stdout=open(f"{work}/dst-qemu.log", "w"), stderr=subprocess.STDOUT)
        procs.append(dst)
        src = subprocess.Popen(base + ["-serial", f"file:{src_log}",
                                       "-qmp", f"unix:{work}/src.qmp,server=on,wait=off"],
                               stdout=open(f"{work}/src-qemu.log", "w"), stderr=subprocess.STDOUT)
        procs.append(src)
        qs = QMP(f"{work}/src.qmp")
        qd = QMP(f"{work}/dst.qmp")
        wait_for(lambda: "kairos-load t=" in read(src_log), 60, "the guest's load generator", src_log)
        time.sleep(args.warmup_s)

        # Negative QMP tests: clean errors, nothing changed.
        before = qs.cmd("query-migrate-parameters")
        for bad, what in [({"x-convergence-policy": "fastest"}, "unknown policy"),
                          ({"x-convergence-max-downtime": -5}, "negative max downtime"),
                          ({"x-convergence-trace": "/proc/nonexistent/trace.csv"}, "unwritable trace")]:
            try:
                qs.cmd("migrate-set-parameters", **bad)
                check(False, f"migrate-set-parameters accepted {what}")
            except QMPError as e:
                check(e.error.get("class") == "GenericError", f"{what}: error class {e.error}")
        check(qs.cmd("query-migrate-parameters") == before, "a rejected parameter changed something")

        trace = f"{work}/trace.csv"
        qs.cmd("migrate-set-parameters", **{
            "max-bandwidth": 125_000_000, "downtime-limit": 300,
            "x-convergence-policy": args.policy, "x-convergence-max-downtime": 1000,
            "x-convergence-trace": trace})
        params = qs.cmd("query-migrate-parameters")
        check(params.get("x-convergence-policy") == args.policy, "policy not shown by query-migrate-parameters")
        hmp = qs.cmd("human-monitor-command", **{"command-line": "info migrate_parameters"})
        check(f"x-convergence-policy: {args.policy}" in hmp, "policy not shown by HMP info migrate_parameters")

        start = time.monotonic()
        qs.cmd("migrate", uri=f"tcp:127.0.0.1:{port}")
        seen_active_convergence = False
        while True:
            info = qs.cmd("query-migrate")
            if info.get("status") == "active" and "convergence" in info:
                seen_active_convergence = True
            if info.get("status") in ("completed", "failed", "cancelled"):
                break
            if time.monotonic() - start > args.timeout_s:
                qs.cmd("migrate_cancel")
                check(False, f"migration did not finish within {args.timeout_s} s")
            time.sleep(0.25)
        check(info["status"] == "completed", f"migration {info['status']}: {info.get('error-desc')}", f"{work}/src-qemu.log")
        conv = info.get("convergence")
        check(conv is not None, "query-migrate has no convergence object")
        check(conv["policy"] == args.policy and conv["rounds"] > 0, f"convergence object: {conv}")
        check(conv["action"] and conv["reason"], "no decision or reason reported")
        hmp = qs.cmd("human-monitor-command", **{"command-line": "info migrate"})
        check("convergence policy:" in hmp, "HMP info migrate does not show the policy")

        # The trace replays.
        rows = read(trace).strip().splitlines()
        check(len(rows) >= 2 and rows[0].startswith("round,time_ms,dirtied_pages"), "trace missing or empty", trace)
        replay = subprocess.run([args.kairos, "replay", "--trace", trace, "--policy", "all", "--json"],
                                capture_output=True, text=True)
        check(replay.returncode == 0, f"kairos replay failed: {replay.stderr.strip()}")
        replayed = [json.loads(line) for line in replay.stdout.splitlines()]
        check(len(replayed) == 6, "kairos replay printed the wrong number of runs")

        # The guest lives on at the destination.
        check(qd.cmd("query-status")["status"] == "running", "destination is not running")
        lines_then = read(dst_log).count("kairos-load t=")
        time.sleep(3)
        check(read(dst_log).count("kairos-load t=") > lines_then, "guest stopped reporting on the destination", dst_log)
        check("VERIFY FAILED" not in read(dst_log) and "verify_errors=0" in read(dst_log),
              "the guest found pages that do not hold what it wrote", dst_log)

        result = {
            "workload": args.workload, "policy": args.policy,
            "total_time_ms": info.get("total-time"), "downtime_ms": info.get("downtime"),
            "setup_time_ms": info.get("setup-time"),
            "transferred_bytes": info.get("ram", {}).get("transferred"),
            "dirty_sync_count": info.get("ram", {}).get("dirty-sync-count"),
            "ram": info.get("ram"),
            "convergence": conv, "trace_rounds": len(rows) - 1,
            "seen_while_active": seen_active_convergence,
            "checks_passed": checks_passed, "work_dir": work,
        }
        print(json.dumps(result))
        print(f"migrate-smoke: {checks_passed} passed, 0 failed")
        qs.close()
        qd.close()
    finally:
        stop_all()


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Render a results page from `kairos compare` output directories.

Every number comes from what `kairos compare` wrote: summary.csv (the cells:
medians, costs, oracle costs, regret, dominance — computed once, by kairos),
runs.csv (every run), quality.json (forecast quality) and runs/*__oracle.json.
This script only lays them out and checks the goals on them.

  render_results.py --title "Measured results" --command "bash scripts/results.sh" \\
      --section build/results "Main comparison" \\
      --section build/results-4g "A 4 GiB guest" \\
      --plots docs/results --out docs/results.md
"""
import argparse
import csv
import datetime
import json
import os
import platform
import subprocess
from collections import defaultdict

# The goals, as kairos's stats compute dominance.
MAX_REGRET = 1.1


def num(text):
    return float(text) if text not in ("", None) else None


def fmt(v, scale=1.0, digits=1):
    return "-" if v is None else f"{v / scale:.{digits}f}"


def load_section(directory):
    cells = list(csv.DictReader(open(os.path.join(directory, "summary.csv"))))
    runs = list(csv.DictReader(open(os.path.join(directory, "runs.csv"))))
    quality_path = os.path.join(directory, "quality.json")
    quality = json.load(open(quality_path)) if os.path.exists(quality_path) else []
    oracles = {}
    runs_dir = os.path.join(directory, "runs")
    for name in sorted(os.listdir(runs_dir)):
        if name.endswith("__oracle.json"):
            o = json.load(open(os.path.join(runs_dir, name)))
            oracles[o["workload"]] = o
    return cells, runs, quality, oracles


def is_kairos(policy):
    return policy.startswith("predictive")


def weight_of(policy):
    if policy.startswith("predictive@w="):
        return float(policy.split("=", 1)[1])
    return None


def cell_table(w, cells_at_weight):
    lines = ["| workload | policy | completed | total s (median [min–max]) | downtime ms (median / max) "
             "| guest pause ms | transferred MiB | app loss % | cost s | × oracle | dominated by |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for c in cells_at_weight:
        total = "-"
        if c["total_time_ms"]:
            total = (f"{num(c['total_time_ms']) / 1000:.1f} "
                     f"[{num(c['total_time_min_ms']) / 1000:.1f}–{num(c['total_time_max_ms']) / 1000:.1f}]")
        over = f" ({c['over_max']} over max)" if c["over_max"] not in ("", "0") else ""
        lines.append(
            f"| {c['workload']} | {c['policy']} | {c['completed']}/{c['runs']} | {total} "
            f"| {fmt(num(c['downtime_ms']), 1, 0)} / {fmt(num(c['downtime_max_ms']), 1, 0)}{over} "
            f"| {fmt(num(c['guest_pause_ms']), 1, 0)} | {fmt(num(c['transferred_bytes']), 1048576, 0)} "
            f"| {fmt(num(c['app_loss_pct']))} | {fmt(num(c['cost_ms']), 1000, 2)} "
            f"| {fmt(num(c['regret']), 1, 2)} | {c['dominated_by'] or '-'} |")
    return lines


def cost_spread_ms(runs, workload, policy, weight):
    """Max − min of the cost at `weight` over a cell's completed runs: how
    far its runs lie apart (0 with one run)."""
    column = f"cost_ms_w{weight:g}"
    costs = [num(r.get(column)) for r in runs
             if r["workload"] == workload and r["policy"] == policy and r["status"] == "completed"]
    costs = [c for c in costs if c is not None]
    return max(costs) - min(costs) if costs else 0.0


def goal_checks(cells, runs):
    """For each weight and workload: the Kairos cell run at that weight
    against every baseline (not another Kairos cell). Each baseline with a
    lower median cost comes with the gap, and whether the gap is within
    the spread of either cell's runs (a tie the repeats cannot separate)."""
    out = []
    by = defaultdict(list)
    for c in cells:
        by[(float(c["downtime_weight"]), c["workload"])].append(c)
    for (weight, workload), group in sorted(by.items()):
        mine = [c for c in group if weight_of(c["policy"]) in (weight, None) and is_kairos(c["policy"])]
        mine = [c for c in mine if weight_of(c["policy"]) == weight] or mine
        if not mine:
            continue
        k = mine[0]
        baselines = [c for c in group if not is_kairos(c["policy"])]
        cost = num(k["cost_ms"])
        cheaper = []
        for b in baselines:
            b_cost = num(b["cost_ms"])
            if b_cost is None or (cost is not None and b_cost >= cost):
                continue
            gap_ms = None if cost is None else cost - b_cost
            spread_ms = max(cost_spread_ms(runs, workload, k["policy"], weight),
                            cost_spread_ms(runs, workload, b["policy"], weight))
            cheaper.append({"policy": b["policy"], "gap_ms": gap_ms,
                            "within_spread": gap_ms is not None and gap_ms <= spread_ms})
        dominated = [p for p in k["dominated_by"].split() if not is_kairos(p)]
        regret = num(k["regret"])
        out.append({
            "weight": weight, "workload": workload, "policy": k["policy"],
            "completed": f"{k['completed']}/{k['runs']}",
            "not_dominated": not dominated, "dominated_by": dominated,
            "cheapest": not cheaper, "cheaper": cheaper,
            "regret": regret, "regret_ok": regret is not None and regret <= MAX_REGRET,
        })
    return out


def render_section(title, directory, w):
    cells, runs, quality, oracles = load_section(directory)
    weights = sorted({c["downtime_weight"] for c in cells}, key=float)
    workloads = list(dict.fromkeys(c["workload"] for c in cells))
    w(f"## {title}")
    w("")
    w(f"Raw runs, per-round traces and logs: `{directory}/runs/`; cells: `{directory}/summary.csv`.")
    w("")
    for weight in weights:
        w(f"### λ = {float(weight):g}")
        w("")
        for workload in workloads:
            o = oracles.get(workload)
            at = [c for c in cells if c["downtime_weight"] == weight and c["workload"] == workload]
            lines = cell_table(workload, at)
            if o is not None and at and at[0]["oracle_cost_ms"]:
                lines.insert(2, f"| {workload} | *oracle* ({o['trace_s']:.0f} s never-stop run, "
                                f"{o['trace_rounds']} syncs) | | | | | | | "
                                f"{fmt(num(at[0]['oracle_cost_ms']), 1000, 2)} | 1.00 | |")
            elif o is not None:
                lines.insert(2, f"| {workload} | *oracle*: no stop of the never-stop run fits the "
                                f"maximum (lowest {o['lowest_downtime_ms']:.0f} ms) | | | | | | | | | |")
            for line in lines if workload == workloads[0] else lines[2:]:
                w(line)
        w("")
    checks = goal_checks(cells, runs)
    if checks:
        w("### Goal checks (computed from the cells above)")
        w("")
        w("Per weight and workload, the `predictive` cell run at that weight: not dominated by any "
          "baseline (none both > 5 % faster and > 30 ms less downtime, in medians); its median cost "
          "no higher than any baseline's; and within 1.1× the oracle's cost.")
        w("")
        w("| λ | workload | policy | completed | not dominated | cost ≤ every baseline | × oracle ≤ 1.1 |")
        w("|---|---|---|---|---|---|---|")
        for c in checks:
            dom = "yes" if c["not_dominated"] else "NO: " + ", ".join(c["dominated_by"])
            cheap = "yes" if c["cheapest"] else "NO: " + ", ".join(
                f"{b['policy']} ({fmt(b['gap_ms'], 1000, 2)} s"
                + (", within the runs' spread)" if b["within_spread"] else ")")
                for b in c["cheaper"])
            reg = ("yes" if c["regret_ok"] else "NO") + f" ({fmt(c['regret'], 1, 2)})"
            w(f"| {c['weight']:g} | {c['workload']} | {c['policy']} | {c['completed']} | {dom} | {cheap} | {reg} |")
        met = sum(1 for c in checks if c["not_dominated"] and c["cheapest"] and c["regret_ok"])
        w("")
        ties = sum(1 for c in checks if c["not_dominated"] and not c["cheapest"] and c["regret_ok"]
                   and all(b["within_spread"] for b in c["cheaper"]))
        w(f"All three goals met in {met} of {len(checks)} (weight, workload) pairs"
          + (f"; in {ties} more, every baseline cheaper than `predictive` is cheaper by less than the "
             "spread of the two cells' runs (the cost column: seconds by which `predictive`'s median "
             "cost exceeds the baseline's)." if ties else "."))
        w("")
    if quality:
        w("### Forecast quality along each never-stop run (`predictive`, steady phases)")
        w("")
        w("| workload | scored | pending 1-step MAPE % | pending 3-step MAPE % | 80 % interval coverage % "
          "| dirty rate 1-step MAPE % | no-convergence verdicts right |")
        w("|---|---|---|---|---|---|---|")
        for q in quality:
            s = q["quality"]
            w(f"| {q['workload']} | {s['pending_1']['count']} | {fmt(s['pending_1']['mape_pct'])} "
              f"| {fmt(s['pending_h']['mape_pct'])} | {fmt(s['pending_1']['coverage_pct'], 1, 0)} "
              f"| {fmt(s['dirty_rate_1']['mape_pct'])} "
              f"| {s['no_convergence_right']}/{s['no_convergence_verdicts']} |")
        w("")
    return workloads


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--title", required=True)
    ap.add_argument("--command", required=True, help="the command that regenerates the page")
    ap.add_argument("--section", nargs=2, action="append", metavar=("DIR", "TITLE"), required=True)
    ap.add_argument("--plots", help="directory the plots were copied to (listed per workload)")
    ap.add_argument("--preamble", help="a Markdown file placed after the header")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    lines = []
    w = lines.append
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    w(f"# {args.title}")
    w("")
    w(f"Generated by `{args.command}` (do not edit by hand) on "
      f"{datetime.date.today().isoformat()}, commit {commit}; {os.cpu_count()} cores, "
      f"{platform.machine()}. `kairos compare` keeps a run whose result is already "
      "in its output directory, so a cell may come from an earlier commit: to "
      "re-run cells, delete their `runs/<workload>__<policy>__<n>*` first.")
    w("")
    if args.preamble:
        lines.extend(open(args.preamble).read().rstrip().splitlines())
        w("")
    for directory, title in args.section:
        workloads = render_section(title, directory, w)
        if args.plots:
            # Only the plots this section drew (another section may hold
            # plots of a workload with the same name).
            own = os.path.join(directory, "plots")
            pngs = [f for f in sorted(os.listdir(args.plots))
                    if any(f.startswith(wl + "-") for wl in workloads)
                    and os.path.exists(os.path.join(own, f))]
            if pngs:
                w("Plots: " + ", ".join(f"[{p}]({os.path.basename(args.plots)}/{p})" for p in pngs))
                w("")
    with open(args.out + ".tmp", "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(args.out + ".tmp", args.out)


if __name__ == "__main__":
    main()

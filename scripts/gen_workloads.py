#!/usr/bin/env python3
"""Write random workload programs: guests the policies were never tuned on.

Each program is drawn from broad, fixed distributions (nothing here looks at
the catalogue in testbed/workloads): a guest of 512 MiB to 4 GiB, one to
four phases, each a write phase (70 %), a CPU phase or an idle one, lasting
2 to 60 s; a write phase's working set is log-uniform from 4 MiB to half the
writable RAM, its page-touch rate log-uniform from 2 to 800 MiB/s (a 1 Gbit/s
link drains 119 MiB/s), its pattern uniform, Zipf (θ 0.6-1.2) or
sequential, and the CPU share its writes need 0.1-1. Half the programs
repeat; the migration starts 0-30 s in. The same seed writes the same
programs; another seed, another unseen set.

Generator 2 (the default) also draws writes in two tiers (hot-cold: 2-30 %
of the working set taking 60-98 % of the writes) and, in a third of the
write phases, a working set that grows or shrinks over the phase (to
0.25-4 times its start, within half the writable RAM), and a quarter of
the programs share the link with competing traffic (a square wave of 10-120 s
periods, shared 20-80 % of the time, the migration keeping 30-80 % of the
link: simulation only, the live test-bed refuses such a program). Generator 3
draws all of that and, in half the write phases, writes that touch more
than a page: an aligned span of 8 KiB to 2 MiB (a power of two, its
exponent uniform: database pages up to huge pages cleared whole), the
page-touch rate counting every byte of it. `--generator 1`
writes exactly what the first generator wrote for a seed (the sets of
docs/results-frontier.md).

  gen_workloads.py --seed 7 --count 40 --out build/frontier/workloads
  gen_workloads.py --seed 9 --count 2 --ram-mib 4096 --out DIR   # 4 GiB guests
"""
import argparse
import math
import os
import random

RAM_MIB = (512, 1024, 2048, 4096)
# Guest memory the workload format keeps for the kernel (RESERVED_MIB).
RESERVED_MIB = 64
KIND_WEIGHTS = (("write", 0.70), ("cpu", 0.15), ("idle", 0.15))


def log_uniform(rng, lo, hi):
    return math.exp(rng.uniform(math.log(lo), math.log(hi)))


PATTERNS = {1: ("uniform", "zipf", "sequential"),
            2: ("uniform", "zipf", "sequential", "hot-cold"),
            3: ("uniform", "zipf", "sequential", "hot-cold")}


def phase(rng, ram_mib, generator=1):
    kind = rng.choices([k for k, _ in KIND_WEIGHTS], [w for _, w in KIND_WEIGHTS])[0]
    lines = ["[[phase]]", f'kind = "{kind}"', f"seconds = {log_uniform(rng, 2, 60):.1f}"]
    if kind == "write":
        writable = ram_mib - RESERVED_MIB
        pattern = rng.choice(PATTERNS[generator])
        wss = log_uniform(rng, 4, writable / 2)
        lines += [f"wss_mib = {wss:.0f}",
                  f"rate_mib_s = {log_uniform(rng, 2, 800):.1f}",
                  f'pattern = "{pattern}"',
                  f"cpu_share = {rng.uniform(0.1, 1.0):.2f}"]
        if pattern == "zipf":
            lines.append(f"zipf_theta = {rng.uniform(0.6, 1.2):.2f}")
        if generator >= 2:
            if pattern == "hot-cold":
                lines += [f"hot_fraction = {rng.uniform(0.02, 0.3):.2f}",
                          f"hot_share = {rng.uniform(0.6, 0.98):.2f}"]
            if rng.random() < 1 / 3:
                end = min(max(round(wss) * log_uniform(rng, 0.25, 4), 4), writable / 2)
                lines.append(f"wss_end_mib = {end:.0f}")
        if generator >= 3 and rng.random() < 0.5:
            lines.append(f"write_kib = {2 ** rng.randint(3, 11)}")
    return "\n".join(lines)


def program(rng, name, ram_mib=None, generator=1):
    """One program; `ram_mib` fixes the guest's size (drawn otherwise)."""
    drawn = rng.choice(RAM_MIB)
    ram_mib = ram_mib or drawn
    phases = [phase(rng, ram_mib, generator) for _ in range(rng.randint(1, 4))]
    if not any('kind = "write"' in p for p in phases):
        # A guest that never writes converges in one round under any rule.
        phases[0] = phase_write(rng, ram_mib, generator)
    head = [f'name = "{name}"',
            'description = "Random program (scripts/gen_workloads.py)."',
            f"ram_mib = {ram_mib}",
            f"repeat = {'true' if rng.random() < 0.5 else 'false'}",
            f"migrate_at_s = {rng.uniform(0, 30):.1f}"]
    link = []
    if generator >= 2 and rng.random() < 0.25:
        period = log_uniform(rng, 10, 120)
        link = ["[link]", f"period_s = {period:.1f}",
                f"shared_s = {period * rng.uniform(0.2, 0.8):.1f}",
                f"shared_fraction = {rng.uniform(0.3, 0.8):.2f}"]
    return "\n".join(head + phases + link) + "\n"


def phase_write(rng, ram_mib, generator=1):
    while True:
        p = phase(rng, ram_mib, generator)
        if 'kind = "write"' in p:
            return p


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--count", type=int, default=40)
    ap.add_argument("--out", required=True)
    ap.add_argument("--ram-mib", type=int, choices=RAM_MIB,
                    help="every guest this size (the working sets scale to it); "
                         "default: drawn per program")
    ap.add_argument("--generator", type=int, choices=sorted(PATTERNS), default=2,
                    help="1: uniform, Zipf or sequential writes in fixed working sets (the "
                         "first generator, same programs per seed); 2: also hot-cold tiers, "
                         "working sets that grow or shrink and a shared link (default); 3: also "
                         "writes of 8 KiB-2 MiB spans")
    args = ap.parse_args()
    if args.count < 1:
        ap.error("--count must be at least 1")
    rng = random.Random(args.seed)
    os.makedirs(args.out, exist_ok=True)
    for old in os.listdir(args.out):
        if old.endswith(".toml"):
            os.remove(os.path.join(args.out, old))
    for i in range(args.count):
        name = f"random-s{args.seed}-{i + 1:02d}"
        with open(os.path.join(args.out, f"{name}.toml"), "w") as f:
            f.write(program(rng, name, args.ram_mib, args.generator))
    print(f"wrote {args.count} programs to {args.out}")


if __name__ == "__main__":
    main()

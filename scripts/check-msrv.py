#!/usr/bin/env python3
"""Check that each workspace member's declared rust-version is its true
minimum: no crate it builds with (its normal and build dependencies, and
theirs) declares a higher one (clippy's incompatible_msrv lint checks the
project's own code against it), and members declaring the same version are
not all above what their dependencies need (a false, inflated MSRV).

The library QEMU links (kairos-policy-core, kairos-ffi) declares its own,
lower version: the rustc of Debian stable (1.85), which a distribution's
QEMU build would use. The evaluation crate and the CLI declare what their
dependencies need. Dev-dependencies (tests, benchmarks) are left out: they
are built with the project's own toolchain, not by a distribution.

Only stable Rust of one version can be installed on this project's machines,
so the check reads what every crate declares (cargo metadata) instead of
building with an older toolchain."""
import json
import subprocess
import sys
from collections import defaultdict


def version(text):
    return tuple(int(x) for x in (text.split("-")[0] + ".0.0").split(".")[:3])


def show(v):
    return ".".join(map(str, v))


meta = json.loads(subprocess.run(
    ["cargo", "metadata", "--format-version", "1", "--locked"],
    check=True, capture_output=True, text=True).stdout)
packages = {p["id"]: p for p in meta["packages"]}
members = set(meta["workspace_members"])
nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}


def closure(root):
    """Every package `root` builds with, dev-dependencies left out."""
    seen, todo = set(), [root]
    while todo:
        for dep in nodes[todo.pop()]["deps"]:
            if all(k["kind"] == "dev" for k in dep["dep_kinds"]):
                continue
            if dep["pkg"] not in seen:
                seen.add(dep["pkg"])
                todo.append(dep["pkg"])
    return seen - {root}


groups = defaultdict(list)
failed = False
for member in sorted(members, key=lambda m: packages[m]["name"]):
    package = packages[member]
    declared = package.get("rust_version")
    if not declared:
        sys.exit(f"check-msrv: {package['name']} declares no rust-version")
    needs = sorted(((version(packages[d]["rust_version"]), packages[d]["name"],
                     packages[d]["version"])
                    for d in closure(member)
                    if d not in members and packages[d].get("rust_version")),
                   reverse=True)
    highest = needs[0] if needs else ((0, 0, 0), "nothing", "")
    if highest[0] > version(declared):
        print(f"check-msrv: {package['name']} declares {declared}, but {highest[1]} "
              f"{highest[2]} needs Rust {show(highest[0])}", file=sys.stderr)
        failed = True
    groups[declared].append((package["name"], highest))
for declared, group in sorted(groups.items()):
    names = ", ".join(name for name, _ in group)
    top = max(group, key=lambda g: g[1][0])[1]
    if version(declared) > top[0]:
        print(f"check-msrv: {names} declare {declared}, higher than any dependency "
              f"needs ({top[1]}: {show(top[0])}); lower it", file=sys.stderr)
        failed = True
    else:
        print(f"check-msrv: {names}: rust-version {declared} is what {top[1]} {top[2]} "
              f"needs; no crate they build with declares more")
sys.exit(1 if failed else 0)

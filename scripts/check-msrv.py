#!/usr/bin/env python3
"""Check that the workspace's declared rust-version is the true minimum:
no dependency in the resolved graph declares a higher one (clippy's
incompatible_msrv lint checks the project's own code against it), and it is
not higher than the highest a dependency needs (a false, inflated MSRV).

Only stable Rust of one version can be installed on this project's machines,
so the check reads what every crate declares (cargo metadata) instead of
building with an older toolchain."""
import json
import subprocess
import sys


def version(text):
    return tuple(int(x) for x in (text.split("-")[0] + ".0.0").split(".")[:3])


meta = json.loads(subprocess.run(
    ["cargo", "metadata", "--format-version", "1", "--locked"],
    check=True, capture_output=True, text=True).stdout)
members = set(meta["workspace_members"])
resolved = {node["id"] for node in meta["resolve"]["nodes"]}
declared = {p["rust_version"] for p in meta["packages"] if p["id"] in members}
if len(declared) != 1 or None in declared:
    sys.exit(f"check-msrv: workspace members declare {declared}: one rust-version for all")
msrv = declared.pop()
needs = sorted(((version(p["rust_version"]), p["name"], p["version"])
                for p in meta["packages"]
                if p["id"] in resolved and p["id"] not in members and p.get("rust_version")),
               reverse=True)
highest = needs[0]
if highest[0] > version(msrv):
    sys.exit(f"check-msrv: {highest[1]} {highest[2]} needs Rust "
             f"{'.'.join(map(str, highest[0]))}, above the declared {msrv}")
if version(msrv) > highest[0]:
    sys.exit(f"check-msrv: the declared rust-version {msrv} is higher than any dependency "
             f"needs ({highest[1]}: {'.'.join(map(str, highest[0]))}); lower it")
print(f"check-msrv: rust-version {msrv} is what {highest[1]} {highest[2]} needs; "
      f"no crate in the graph declares more")

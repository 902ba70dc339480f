#!/usr/bin/env bash
# The main job: sets up what it needs on a fresh machine, builds Kairos and
# runs the comparison of migrations of every workload in the catalogue under
# every policy, printing the table.
#
# Until the patched QEMU lands (see the issues), the migrations are
# page-level simulations of QEMU's pre-copy loop (kairos sim); the oracle
# column is the best stop in hindsight on the same seeded run.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
echo "== building kairos (release)" >&2
cargo build --release -q -p kairos-testbed
echo "== kairos sim --suite testbed/workloads --policy all" >&2
target/release/kairos sim --suite testbed/workloads --policy all "$@"

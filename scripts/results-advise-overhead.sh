#!/usr/bin/env bash
# Regenerates docs/advise-overhead.md: what `kairos advise`'s sampling costs
# the guest. For each closed-loop benchmark, `kairos profile --overhead`
# alternates WINDOW_S windows without and with the sampling (PAIRS sampled
# ones, each between two unsampled; default 20 s and 5) and compares the
# benchmark's throughput. About 5 min per workload once QEMU and the guest
# are built; run it on an otherwise idle host (the noise of a busy host
# widens the interval). The runs are stored in
# docs/results/runs/advise-overhead.jsonl.gz and the page is rendered from
# them by `kairos report overhead` (scripts/report.sh, checked in CI).
set -euo pipefail
cd "$(dirname "$0")/.."
WORKLOADS=${WORKLOADS:-sysbench-memory redis ycsb-a fio}
WINDOW_S=${WINDOW_S:-20}
PAIRS=${PAIRS:-5}

bash scripts/setup.sh
bash scripts/build-qemu.sh
bash scripts/build-guest.sh
cargo build --release -q -p kairos-testbed
out=build/advise-overhead
rm -rf "$out"
for w in $WORKLOADS; do
    echo "== $w" >&2
    target/release/kairos profile --workload "$w" --overhead --window-s "$WINDOW_S" --pairs "$PAIRS" \
        --ram-mib 1024 --out "$out/$w"
done
# CONDITIONS: a paragraph on what else ran on the host and how to read the
# run; stored with the runs, printed by the page.
target/release/kairos report pack-overhead --runs "$out" \
    --out docs/results/runs/advise-overhead.jsonl.gz ${CONDITIONS:+--conditions "$CONDITIONS"}
bash scripts/report.sh
echo "docs/advise-overhead.md"

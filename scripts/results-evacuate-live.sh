#!/usr/bin/env bash
# Regenerates docs/evacuate-live.md: hosts emptied live through libvirt
# (scripts/evacuate-live.sh) — four guests of the Kairos image (512 MiB to
# 1 GiB, a hot working set, a periodic one, a cyclic GC-like one and a
# small static one) under `predictive`, over a link shaped to 1 Gbit/s,
# each plan (Kairos's, and 1, 2 or all at a time in the listed order)
# REPEAT times, interleaved; then the reports are stored
# (docs/results/runs/evacuate-live.jsonl.gz) and the page rendered. Run it
# from a committed tree: the page is stamped with the code's commit.
#
#   bash scripts/results-evacuate-live.sh     # about 50 minutes (20 evacuations)
set -euo pipefail
cd "$(dirname "$0")/.."
REPEAT=${REPEAT:-5}
GUESTS=${GUESTS:-vm1:hot-wss:1024,vm2:periodic:1024,vm3:gc-cycle:1024,vm4:static-small:512}
PLANS=${PLANS:-planned,1,2,all}
out=build/evacuate-live-campaign
pack=docs/results/runs/evacuate-live.jsonl.gz
if [ -n "$(git status --porcelain -- policy-core testbed scripts ffi qemu-patches)" ]; then
    echo "results-evacuate-live: commit the code first (the page is stamped with HEAD)" >&2
    exit 1
fi
rm -rf "$out"
bash scripts/evacuate-live.sh --guests "$GUESTS" --plans "$PLANS" --repeat "$REPEAT" \
    --warmup-s 20 --profile-s 20 --out "$out"
target/release/kairos report pack-evacuate-live --runs "$out" --out "$pack"
target/release/kairos report evacuate-live --records "$pack" --page docs/evacuate-live.md
echo "results-evacuate-live: wrote $pack and docs/evacuate-live.md"

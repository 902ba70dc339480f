#!/usr/bin/env bash
# Per-round decision time, before and after: runs the criterion bench
# `observe` (one observe+decide round per policy) of a base revision and of
# the working tree in the same session, with one target directory, and
# prints criterion's comparison (the change of each policy's time, with its
# confidence interval). Ratios measured in the same run, not absolute times:
# the machines are shared.
#
#   bash scripts/bench-compare.sh [BASE_REV]   # default 329f3df (stop 8)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
base=${1:-329f3df}
export CARGO_TARGET_DIR=$root/target/bench-compare
tree=$root/build/bench-base
rm -rf "$tree"
git worktree prune
git worktree add -q --detach "$tree" "$base"
trap 'git -C "$root" worktree remove --force "$tree"' EXIT
echo "== base $base" >&2
(cd "$tree" && cargo bench -q -p kairos-policy-core --bench observe -- --noplot --save-baseline base)
echo "== working tree ($(git rev-parse --short HEAD)), compared with the base" >&2
cargo bench -q -p kairos-policy-core --bench observe -- --noplot --baseline base

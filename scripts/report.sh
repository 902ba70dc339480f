#!/usr/bin/env bash
# Re-renders every results page that has its runs stored in the repository
# (docs/results/runs/), from them alone: no QEMU, no guest, no network.
#
#   bash scripts/report.sh           re-render the pages
#   bash scripts/report.sh --check   render without writing; fail when a
#                                    committed page differs (CI runs this)
#
# Pages and their runs:
#   docs/results-sweep.md     <- docs/results/runs/sweep.jsonl.gz,
#                                sweep-sim.jsonl.gz                   (scripts/sweep.sh pack)
#   docs/results-frontier.md  <- docs/results/runs/frontier.jsonl.gz  (scripts/results-frontier.sh)
#   docs/results-frontier-g3.md <- docs/results/runs/frontier-g3.jsonl.gz
#                                                    (GENERATOR=3 scripts/results-frontier.sh)
#   docs/results-sim.md       <- docs/results/runs/sim.jsonl.gz       (scripts/results-sim.sh)
#   docs/results-dirty-limit-sim.md <- docs/results/runs/dirty-limit-sim.jsonl.gz
#                                                    (scripts/results-dirty-limit-sim.sh)
#   docs/advise.md            <- docs/results/runs/advise-sim.jsonl.gz (scripts/results-advise.sh),
#                                advise-live.jsonl.gz when stored (scripts/results-advise-live.sh)
#   docs/evacuate.md          <- docs/results/runs/evacuate-sim.jsonl.gz (scripts/results-evacuate.sh)
#   docs/evacuate-live.md     <- docs/results/runs/evacuate-live.jsonl.gz (scripts/results-evacuate-live.sh)
#   docs/advise-overhead.md   <- docs/results/runs/advise-overhead.jsonl.gz
#                                                    (scripts/results-advise-overhead.sh)
#   docs/reliability.md       <- docs/results/runs/reliability.jsonl.gz (scripts/soak.sh)
#   docs/results-escalation.md <- docs/results/runs/escalation-{throttle,postcopy}.jsonl.gz
#                                                    (scripts/results-escalation.sh)
set -euo pipefail
cd "$(dirname "$0")/.."

check=()
case "${1:-}" in
    --check) check=(--check) ;;
    "") ;;
    *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

cargo build --release -q -p kairos-testbed
kairos=target/release/kairos
runs=docs/results/runs

# The live sweep: 16 workloads x 13 policies planned (scripts/sweep.sh).
if [ -f "$runs/sweep.jsonl.gz" ]; then
    simulated=()
    [ -f "$runs/sweep-sim.jsonl.gz" ] && simulated=(--simulated "$runs/sweep-sim.jsonl.gz")
    $kairos report sweep --records "$runs/sweep.jsonl.gz" --page docs/results-sweep.md \
        --planned-cells 208 "${simulated[@]}" "${check[@]}"
fi

# Random programs against every static limit, simulated: the design seeds
# and the held-out ones of testbed/workloads-held-out/SEEDS.toml (generator 2).
if [ -f "$runs/frontier.jsonl.gz" ]; then
    $kairos report frontier --records "$runs/frontier.jsonl.gz" --page docs/results-frontier.md \
        --design-sets 20001,20002,20003 --generator 2 \
        --command "bash scripts/results-frontier.sh" "${check[@]}"
fi
# The same with the third generator's programs (writes of spans): held-out
# seeds only, no design was chosen on them.
if [ -f "$runs/frontier-g3.jsonl.gz" ]; then
    $kairos report frontier --records "$runs/frontier-g3.jsonl.gz" --page docs/results-frontier-g3.md \
        --generator 3 --command "GENERATOR=3 bash scripts/results-frontier.sh" "${check[@]}"
fi

# Every policy on the catalogue, simulated.
if [ -f "$runs/sim.jsonl.gz" ]; then
    $kairos report sim --records "$runs/sim.jsonl.gz" --page docs/results-sim.md \
        --plots docs/results-sim "${check[@]}"
fi

# Escalation as a throttle against a dirty-rate limit, simulated.
if [ -f "$runs/dirty-limit-sim.jsonl.gz" ]; then
    $kairos report dirty-limit --records "$runs/dirty-limit-sim.jsonl.gz" \
        --page docs/results-dirty-limit-sim.md "${check[@]}"
fi

# When to start: the advice judged in simulation, and live when stored
# (7 workloads x 20 starts planned, scripts/results-advise-live.sh).
if [ -f "$runs/advise-sim.jsonl.gz" ]; then
    live=()
    [ -f "$runs/advise-live.jsonl.gz" ] && live=(--live "$runs/advise-live.jsonl.gz" --live-planned-runs 140)
    $kairos report advise --sim "$runs/advise-sim.jsonl.gz" "${live[@]}" \
        --page docs/advise.md "${check[@]}"
fi

# Emptying a host, simulated: the planner against the fixed concurrencies.
if [ -f "$runs/evacuate-sim.jsonl.gz" ]; then
    $kairos report evacuate --records "$runs/evacuate-sim.jsonl.gz" --page docs/evacuate.md "${check[@]}"
fi
if [ -f "$runs/evacuate-live.jsonl.gz" ]; then
    $kairos report evacuate-live --records "$runs/evacuate-live.jsonl.gz" --page docs/evacuate-live.md "${check[@]}"
fi

# What advise's sampling costs the guest, live.
if [ -f "$runs/advise-overhead.jsonl.gz" ]; then
    $kairos report overhead --records "$runs/advise-overhead.jsonl.gz" \
        --page docs/advise-overhead.md "${check[@]}"
fi

# Soak, faults and fuzzing, live.
if [ -f "$runs/reliability.jsonl.gz" ]; then
    $kairos report reliability --records "$runs/reliability.jsonl.gz" \
        --page docs/reliability.md "${check[@]}"
fi

# When nothing fits: throttle and post-copy escalation, live.
if [ -f "$runs/escalation-throttle.jsonl.gz" ] && [ -f "$runs/escalation-postcopy.jsonl.gz" ]; then
    $kairos report escalation --throttle "$runs/escalation-throttle.jsonl.gz" \
        --postcopy "$runs/escalation-postcopy.jsonl.gz" --page docs/results-escalation.md "${check[@]}"
fi

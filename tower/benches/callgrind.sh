#!/usr/bin/env bash
# Instructions per request of the HTTP benchmark's server (examples/bench_server.rs),
# counted by callgrind: deterministic, unlike requests per second on a shared machine.
# For each variant, the server runs under callgrind; a short warm-up run of the load
# generator is discarded (`callgrind_control -z`), then a measured run's instructions
# (`callgrind_control -d`) are divided by the requests it completed. The load generator
# runs natively.
#
#   tower/benches/callgrind.sh                   # none, ratecore, ratecore-lean, governor, headers
#   tower/benches/callgrind.sh ratecore          # one variant
#   SECONDS_PER_RUN=10 tower/benches/callgrind.sh
#
# Needs valgrind. KEEP=DIR keeps each variant's profile in DIR (for callgrind_annotate).
# CACHE_SIM=1 also simulates the caches (valgrind's 32 KiB L1) and prints the L1 data
# misses (reads + writes) per request.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."

variants=("$@")
if [ ${#variants[@]} -eq 0 ]; then
    variants=(none ratecore ratecore-lean governor headers)
fi
seconds=${SECONDS_PER_RUN:-5}
connections=${CONNECTIONS:-8}
cache_flags=()
if [ -n "${CACHE_SIM:-}" ]; then cache_flags=(--cache-sim=yes); fi
command -v valgrind >/dev/null || { echo "callgrind.sh: valgrind is not installed" >&2; exit 1; }

# shellcheck source=tower/benches/lib.sh
source tower/benches/lib.sh
bench_setup

for variant in "${variants[@]}"; do
    out="$work/$variant.out"
    valgrind --tool=callgrind "${cache_flags[@]}" --callgrind-out-file="$out" \
        "$bin/bench_server" "$variant" --addr-file "$work/addr" 2>"$work/$variant.log" &
    server=$!
    for _ in $(seq 600); do
        [ -s "$work/addr" ] && break
        sleep 0.1
    done
    addr=$(cat "$work/addr")
    "$bin/loadgen" "$addr" --connections "$connections" --seconds 2 >/dev/null
    callgrind_control -z "$server" >/dev/null 2>&1
    line=$("$bin/loadgen" "$addr" --connections "$connections" --seconds "$seconds")
    callgrind_control -d "$server" >/dev/null 2>&1
    kill "$server"
    wait "$server" 2>/dev/null || true
    server=""
    rm -f "$work/addr"
    case "$line" in
        *"errors=0 non_200=0"*) ;;
        *) echo "$variant: $line (errors or denials: the run is void)" >&2; exit 1 ;;
    esac
    requests=$(sed -E 's/.*requests=([0-9]+).*/\1/' <<<"$line")
    # The dump after the measured run: the newest numbered part file.
    dump=$(ls -t "$out".* | head -n 1)
    total=$(sed -nE 's/^(summary|totals): ([0-9]+).*/\2/p' "$dump" | head -n 1)
    echo "$variant: $((total / requests)) instructions per request ($requests requests)"
    if [ -n "${CACHE_SIM:-}" ]; then
        # D1mr and D1mw, located by name in the dump's event list.
        awk -v requests="$requests" -v variant="$variant" '
            /^events:/ { for (i = 2; i <= NF; i++) column[$i] = i - 1 }
            /^(summary|totals):/ && !done {
                done = 1
                misses = $(column["D1mr"] + 1) + $(column["D1mw"] + 1)
                printf "%s: %.0f L1 data misses per request\n", variant, misses / requests
            }' "$dump"
    fi
    if [ -n "${KEEP:-}" ]; then
        mkdir -p "$KEEP"
        cp "$dump" "$KEEP/$variant.out"
    fi
done

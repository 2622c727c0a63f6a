#!/usr/bin/env bash
# HTTP benchmark: axum's hello world with no layer, with ratecore's layer (as is, and
# lean: no decision extension, the inner body type), with tower-governor's layer and
# with a layer that only adds the same two headers (the floor of any rate-limit layer),
# in interleaved rounds (each round runs every variant, in an
# order that rotates), the server pinned to CPU 0 and the load generator to CPU 1, on
# 127.0.0.1. Prints each round's requests/s, then each variant's median and spread
# (min-max) and the medians' ratios.
#
#   tower/benches/http.sh            # the full set-up: 10 rounds of 10 s per variant
#   tower/benches/http.sh --quick    # a smoke run: 3 rounds of 2 s (not a result)
#
# ROUNDS, SECONDS_PER_RUN and CONNECTIONS override the defaults.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."

rounds=${ROUNDS:-10}
seconds=${SECONDS_PER_RUN:-10}
connections=${CONNECTIONS:-32}
if [ "${1:-}" = "--quick" ]; then
    rounds=${ROUNDS:-3}
    seconds=${SECONDS_PER_RUN:-2}
fi
if [ "$(nproc)" -lt 2 ]; then
    echo "needs 2 CPUs (server and load generator pinned apart)" >&2
    exit 1
fi

# shellcheck source=tower/benches/lib.sh
source tower/benches/lib.sh
bench_setup

variants=(none ratecore ratecore-lean governor headers)
echo "rounds=$rounds seconds=$seconds connections=$connections cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
printf "%-6s %-13s %12s\n" round variant "requests/s"
for round in $(seq 1 "$rounds"); do
    for i in "${!variants[@]}"; do
        variant=${variants[$(((i + round) % ${#variants[@]}))]}
        rm -f "$work/addr"
        taskset -c 0 "$bin/bench_server" "$variant" --addr-file "$work/addr" &
        server=$!
        for _ in $(seq 100); do
            [ -s "$work/addr" ] && break
            sleep 0.05
        done
        line=$(taskset -c 1 "$bin/loadgen" "$(cat "$work/addr")" --connections "$connections" --seconds "$seconds")
        kill "$server"
        wait "$server" 2>/dev/null || true
        server=""
        rate=$(sed -E 's/.*requests_per_second=([0-9]+).*/\1/' <<<"$line")
        case "$line" in
            *"errors=0 non_200=0"*) ;;
            *) echo "round $round $variant: $line (errors or denials: the run is void)" >&2; exit 1 ;;
        esac
        printf "%-6s %-13s %12s\n" "$round" "$variant" "$rate"
        echo "$rate" >>"$work/$variant"
    done
done

median() { sort -n "$1" | awk '{a[NR]=$1} END {if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
echo
printf "%-13s %12s %21s\n" variant "median req/s" "spread (min-max)"
for variant in "${variants[@]}"; do
    printf "%-13s %12.0f %10s-%-10s\n" "$variant" "$(median "$work/$variant")" \
        "$(sort -n "$work/$variant" | head -n1)" "$(sort -n "$work/$variant" | tail -n1)"
done
none=$(median "$work/none")
ratecore=$(median "$work/ratecore")
lean=$(median "$work/ratecore-lean")
governor=$(median "$work/governor")
headers=$(median "$work/headers")
awk -v r="$ratecore" -v l="$lean" -v g="$governor" -v n="$none" -v h="$headers" 'BEGIN {
    printf "ratecore / tower-governor: %.3f   ratecore / no layer: %.3f\n", r / g, r / n
    printf "ratecore-lean / tower-governor: %.3f   ratecore-lean / no layer: %.3f\n", l / g, l / n
    printf "tower-governor / no layer: %.3f   headers only / no layer: %.3f\n", g / n, h / n
}'

#!/usr/bin/env bash
# Integration tests of the nginx module (ffi/nginx): first render_check.c (the header
# values the module adds against the library's header lines, byte for byte), then, against the packaged
# nginx on 127.0.0.1: seed replays over HTTP (ev.energy, Uphold from ffi/nginx/examples/uphold.conf,
# Switch), 4 workers sharing exact counts, reload and `nginx -t` behaviour, every
# directive option, and a bounded wrk comparison (module off / limit_req / ratecore).
#
#   tests/nginx/run.sh                      # build the module, run everything (~3-4 min)
#   tests/nginx/run.sh --bench-seconds 0    # the tests only, without the wrk benchmark
#   tests/nginx/run.sh -k uphold            # only tests whose name contains "uphold"
#   tests/nginx/run.sh --bench-only --bench-rounds 40   # the benchmark only
#
# The tests are a unittest suite (tests/nginx/test_nginx.py, on tests/nginx/harness.py);
# the benchmark is tests/nginx/bench_nginx.py. RATECORE_NGINX_MODULE=<path.so> skips the
# build; --keep keeps the nginx prefixes. Installs what it needs with apt-get when missing
# (root: CI runs on a fresh machine): nginx, nginx-dev (through ffi/nginx/build.sh), wrk,
# curl. Exits nonzero on any failure.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

tests=(-v)
bench=()
run_tests=1
run_bench=1
while [ $# -gt 0 ]; do
    case "$1" in
        -k) tests+=(-k "$2"); run_bench=0; shift 2 ;;
        --bench-seconds)
            [ "$2" = 0 ] && run_bench=0
            bench+=(--seconds "$2"); shift 2 ;;
        --bench-rounds) bench+=(--rounds "$2"); shift 2 ;;
        --bench-workers) bench+=(--workers "$2"); shift 2 ;;
        --bench-only) run_tests=0; shift ;;
        --keep) export RATECORE_NGINX_KEEP=1; bench+=(--keep); shift ;;
        -h | --help) sed -n '2,17p' "$0"; exit 0 ;;
        *) echo "tests/nginx/run.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done

need=()
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v curl >/dev/null 2>&1 || need+=(curl)
if [ "${#need[@]}" -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
        echo "tests/nginx/run.sh: installing ${need[*]} with apt-get"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    else
        echo "tests/nginx/run.sh: ${need[*]} missing (not root, not installing)" >&2
    fi
fi

module="${RATECORE_NGINX_MODULE:-}"
if [ -z "$module" ]; then
    log="$(mktemp)"
    trap 'rm -f "$log"' EXIT
    ffi/nginx/build.sh 2>&1 | tee "$log"
    module="$(tail -n 1 "$log")"
fi
[ -f "$module" ] || { echo "tests/nginx/run.sh: module $module not found" >&2; exit 1; }

# The module adds the header values ratecore_render_check_headers hands it: compare them
# with ratecore_render_headers' lines, byte for byte (a few seconds).
target_dir="$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
lib="$target_dir/release/libratecore_ffi.a"
if [ -f "$lib" ]; then
    check="$(mktemp -d)"
    cc -std=c11 -O2 -Wall -Wextra -Wpedantic -Werror -Iinclude \
        tests/nginx/render_check.c "$lib" -lpthread -ldl -lm -o "$check/render_check"
    "$check/render_check"
    rm -rf "$check"
else
    echo "tests/nginx/run.sh: $lib not built: render_check skipped"
fi

echo
echo "== nginx $(nginx -v 2>&1 | sed 's|.*/||'), module $module"
if [ "$run_tests" = 1 ]; then
    RATECORE_NGINX_MODULE="$module" python3 tests/nginx/test_nginx.py "${tests[@]}"
fi
if [ "$run_bench" = 1 ]; then
    echo
    echo "== wrk: no limit, limit_req and ratecore (bounded)"
    python3 tests/nginx/bench_nginx.py --module "$module" "${bench[@]}"
fi

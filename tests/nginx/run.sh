#!/usr/bin/env bash
# Integration tests of the nginx module (ffi/nginx): first render_check.c (the module's
# own header rendering against the library's, byte for byte), then, against the packaged
# nginx on 127.0.0.1: seed replays over HTTP (ev.energy, Uphold from ffi/nginx/examples/uphold.conf,
# Switch), 4 workers sharing exact counts, reload and `nginx -t` behaviour, every
# directive option, and a bounded wrk comparison (module off / limit_req / ratecore).
#
#   tests/nginx/run.sh                     # build the module, run everything (~3-4 min)
#   tests/nginx/run.sh --bench-seconds 0   # without the wrk part
#   tests/nginx/run.sh -k uphold           # only tests whose name contains "uphold"
#
# Arguments go to tests/nginx/test_nginx.py (see --help). RATECORE_NGINX_MODULE=<path.so>
# skips the build. Installs what it needs with apt-get when missing (root: CI runs on a
# fresh machine): nginx, nginx-dev (through ffi/nginx/build.sh), wrk, curl.
# Ends with "nginx tests: N passed, M failed" and exits nonzero on any failure.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

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

# The module renders the seed styles' header values itself: compare them with the
# library's renderer, byte for byte (about a second).
target_dir="$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
lib="$target_dir/release/libratecore_ffi.a"
if [ -f "$lib" ]; then
    check="$(mktemp -d)"
    cc -std=c11 -O2 -Wall -Wextra -Wpedantic -Werror -Iinclude -Iffi/nginx \
        tests/nginx/render_check.c "$lib" -lpthread -ldl -lm -o "$check/render_check"
    "$check/render_check"
    rm -rf "$check"
else
    echo "tests/nginx/run.sh: $lib not built: render_check skipped"
fi

echo
echo "== nginx $(nginx -v 2>&1 | sed 's|.*/||'), module $module"
python3 tests/nginx/test_nginx.py --module "$module" "$@"

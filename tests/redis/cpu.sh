#!/usr/bin/env bash
# Server CPU per check, in one run on one redis-server: the ratecore module, the ratecore
# Lua script, redis-cell's CL.THROTTLE and a minimal GCRA Lua script (the yardstick).
#
#   bash tests/redis/cpu.sh            # 30 000 checks per scenario
#   RATECORE_CPU_CHECKS=100000 bash tests/redis/cpu.sh
#
# Builds the ratecore module, and redis-cell 0.2.2 from its crates.io package in a scratch
# directory under target/ (it is not part of this repository); if redis-cell cannot be
# built or loaded, prints why and compares with the yardstick alone. Starts a throwaway
# redis-server on 127.0.0.1 with both modules, runs tests/redis_module_cpu.rs and prints
# its table (server µs per call from INFO commandstats).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
exec </dev/null
ROOT="$(pwd)"

cargo build --release -p ratecore-redis-module
MODULE="$ROOT/target/release/libratecore_redis_module.so"

# shellcheck source=tests/redis/lib.sh
source tests/redis/lib.sh
CELL_DIR="$ROOT/target/redis-cell"
CELL=""
if build_cell; then
    echo "redis-cell 0.2.2: built from crates.io ($CELL)"
else
    echo "redis-cell 0.2.2: could not be built; comparing with the yardstick alone. Last lines:"
    tail -n 20 "$CELL_DIR/build.log" 2>/dev/null || true
    CELL=""
fi

DIR="$(mktemp -d "${TMPDIR:-/tmp}/ratecore-cpu.XXXXXX")"
PORT=""
cleanup() {
    status=$?
    if [ -n "$PORT" ]; then redis-cli -p "$PORT" shutdown nosave >/dev/null 2>&1 || true; fi
    if [ "$status" != 0 ] && [ -f "$DIR/redis.log" ]; then tail -n 20 "$DIR/redis.log" || true; fi
    rm -rf "$DIR"
    exit "$status"
}
trap cleanup EXIT

start() {
    local port="$1"
    shift
    redis-server --bind 127.0.0.1 --port "$port" --save "" --appendonly no --dir "$DIR" \
        --daemonize yes --logfile "$DIR/redis.log" --loadmodule "$MODULE" "$@" >/dev/null 2>&1 || return 1
    for _ in $(seq 1 100); do
        if [ "$(redis-cli -p "$port" ping 2>/dev/null || true)" = "PONG" ]; then return 0; fi
        sleep 0.05
    done
    return 1
}
for _ in $(seq 1 50); do
    candidate=$((20000 + RANDOM % 40000))
    if (exec 3<>"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; then continue; fi
    if [ -n "$CELL" ] && start "$candidate" --loadmodule "$CELL"; then PORT="$candidate"; break; fi
    if [ -n "$CELL" ]; then
        echo "redis-cell 0.2.2: did not load; comparing with the yardstick alone:"
        tail -n 5 "$DIR/redis.log" || true
        CELL=""
    fi
    if start "$candidate"; then PORT="$candidate"; break; fi
done
[ -n "$PORT" ] || { echo "could not start redis-server" >&2; exit 1; }
redis-server --version

RATECORE_REDIS_URL="redis://127.0.0.1:$PORT/" \
    cargo test --release --features redis --test redis_module_cpu -- --ignored --nocapture 2>&1 |
    grep -E '^(\||redis-cell|module GCRA)'

#!/usr/bin/env bash
# Server instructions per command, deterministic: one redis-server under valgrind's
# callgrind with the ratecore module and redis-cell 0.2.2 loaded; for each scenario a
# warm-up batch, then the counters zeroed (callgrind_control -z), a fixed batch of
# commands piped by redis-cli, and a dump (callgrind_control -d). The table gives the
# instructions of Redis's call() per command: the command itself as INFO commandstats
# times it, without reading the request or writing the reply to the socket.
#
#   bash tests/redis/callgrind.sh          # 3 000 commands per scenario
#   RATECORE_CALLGRIND_COMMANDS=10000 bash tests/redis/callgrind.sh
#   RATECORE_CALLGRIND_KEEP=dir bash tests/redis/callgrind.sh   # keep each scenario's dump
#       (callgrind_annotate --inclusive=yes dir/callgrind.out.gcra shows where it goes)
#
# Needs valgrind (apt-get install valgrind) and python3. Not run by CI: a measurement.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
exec </dev/null
ROOT="$(pwd)"
N="${RATECORE_CALLGRIND_COMMANDS:-3000}"

command -v valgrind >/dev/null || { echo "needs valgrind (apt-get install valgrind)" >&2; exit 1; }
cargo build --release -p ratecore-redis-module
MODULE="$ROOT/target/release/libratecore_redis_module.so"
# shellcheck source=tests/redis/lib.sh
source tests/redis/lib.sh
CELL_DIR="$ROOT/target/redis-cell"
CELL=""
LOAD_CELL=()
if build_cell; then LOAD_CELL=(--loadmodule "$CELL"); else echo "redis-cell 0.2.2: could not be built"; fi

DIR="$(mktemp -d "${TMPDIR:-/tmp}/ratecore-callgrind.XXXXXX")"
PID=""
PORT=""
cleanup() {
    if [ -n "$PORT" ]; then redis-cli -p "$PORT" shutdown nosave >/dev/null 2>&1 || true; fi
    if [ -n "$PID" ]; then wait "$PID" 2>/dev/null || true; fi
    rm -rf "$DIR"
}
trap cleanup EXIT
for _ in $(seq 1 50); do
    candidate=$((20000 + RANDOM % 40000))
    if ! port_in_use "$candidate"; then PORT="$candidate"; break; fi
done
valgrind --tool=callgrind --callgrind-out-file="$DIR/callgrind.out.%p" \
    redis-server --bind 127.0.0.1 --port "$PORT" --save "" --appendonly no --dir "$DIR" \
    --loadmodule "$MODULE" "${LOAD_CELL[@]}" >"$DIR/valgrind.log" 2>&1 &
PID=$!
for _ in $(seq 1 200); do
    if [ "$(redis-cli -p "$PORT" ping 2>/dev/null || true)" = "PONG" ]; then break; fi
    sleep 0.1
done
redis-server --version

# RESP commands of one scenario: `count` commands from command number `from` on, over
# 1 000 keys round robin, `now` advancing 1 ms per command (GCRA and strict 100/s).
commands() {
    python3 - "$1" "$2" "$3" <<'PY'
import sys
scenario, count, start = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
out = sys.stdout.buffer
for i in range(start, start + count):
    k = "{k%d}" % (i % 1000)
    now = 1_800_000_000_000_000_000 + i * 1_000_000
    gcra = ["GCRA", 100, 1_000_000_000, 100]
    strict = ["STRICT", 100, 1_000_000_000, 60]
    opts = ["NOW", now, "COST", 1, "MINTTL", 1]
    args = {
        "gcra": ["RATECORE.CHECK", 1, "g:" + k, *gcra, *opts, "DIGEST"],
        "gcra-full": ["RATECORE.CHECK", 1, "f:" + k, *gcra, *opts],
        "strict": ["RATECORE.CHECK", 1, "s:" + k, *strict, *opts, "DIGEST"],
        "composite": ["RATECORE.CHECK", 2, "c0:" + k, "c1:" + k, *gcra, *strict, *opts, "DIGEST"],
        "cell": ["CL.THROTTLE", "cell:" + k, 99, 100, 1, 1],
        "set": ["SET", "set:" + k, "abcdefgh", "PXAT", 1_900_000_000_000],
        "get": ["GET", "g:" + k],
        "ping": ["PING"],
    }[scenario]
    out.write(b"*%d\r\n" % len(args))
    for a in args:
        a = str(a).encode()
        out.write(b"$%d\r\n%s\r\n" % (len(a), a))
PY
}

# Inclusive instructions of call() per command in the last dump.
per_command() {
    local dump
    dump="$(ls -t "$DIR"/callgrind.out.*.* | head -1)"
    callgrind_annotate --inclusive=yes "$dump" 2>/dev/null |
        awk -v n="$N" '$NF ~ /redis/ && $0 ~ /:call \[/ { gsub(",", "", $1); printf "%.0f", $1 / n; exit }'
    if [ -n "${RATECORE_CALLGRIND_KEEP:-}" ]; then
        mkdir -p "$RATECORE_CALLGRIND_KEEP"
        mv "$dump" "$RATECORE_CALLGRIND_KEEP/callgrind.out.$1"
    else
        rm -f "$dump"
    fi
}

echo "| scenario | command | instructions per call | vs module GCRA |"
echo "|---|---|---|---|"
BASE=""
for row in \
    "gcra|module: GCRA|RATECORE.CHECK … DIGEST" \
    "gcra-full|module: GCRA, full reply|RATECORE.CHECK" \
    "strict|module: strict sliding window, 60 sub-windows|RATECORE.CHECK … DIGEST" \
    "composite|module: composite GCRA + strict (2 keys)|RATECORE.CHECK … DIGEST" \
    "cell|redis-cell 0.2.2 (GCRA)|CL.THROTTLE" \
    "set|floor: one 8-byte SET with an expiry|SET … PXAT" \
    "get|floor: one GET|GET" \
    "ping|floor: PING|PING"; do
    IFS='|' read -r scenario name command <<<"$row"
    if [ "$scenario" = cell ] && [ -z "$CELL" ]; then continue; fi
    commands "$scenario" 2000 0 | redis-cli -p "$PORT" --pipe >/dev/null
    callgrind_control -z "$PID" >/dev/null 2>&1
    commands "$scenario" "$N" 2000 | redis-cli -p "$PORT" --pipe >/dev/null
    callgrind_control -d "$scenario" "$PID" >/dev/null 2>&1
    sleep 0.5
    ir="$(per_command "$scenario")"
    BASE="${BASE:-$ir}"
    echo "| $name | \`$command\` | $ir | $(python3 -c "print(f'{$ir / $BASE:.2f}x')") |"
done

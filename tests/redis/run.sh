#!/usr/bin/env bash
# Runs the Redis backend's tests (feature `redis`) against a real, throwaway redis-server:
# installs Debian's redis-server (and clang for the module's bindings) if missing, builds
# the ratecore Redis module, starts the server with it loaded on 127.0.0.1 on a free port
# with no persistence in a temporary directory, runs the tests on the Lua script and on
# the module, the memory tests, the Redis Cluster tests (tests/redis/cluster.sh: a cluster
# of its own), the benchmark and the server-CPU comparison (tests/redis/cpu.sh), and stops
# it.
#
#   bash tests/redis/run.sh            # tests + benchmark + CPU comparison
#   RATECORE_REDIS_BENCH=0 bash tests/redis/run.sh   # tests only
#
# The tests read:
#   RATECORE_REDIS_URL      redis://127.0.0.1:PORT/
#   RATECORE_REDIS_CONF     the server's config file (to restart it after killing it)
#   RATECORE_REDIS_PIDFILE  the file holding the running server's pid
#   RATECORE_REDIS_MODULE   the built module (the replication test starts its own servers)
#   RATECORE_REDIS_ENGINE   script or module: what the backend suites run on
# Without RATECORE_REDIS_URL they print a notice and skip, so a plain `cargo test` needs
# no Redis.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
exec </dev/null

# shellcheck source=tests/redis/lib.sh
source tests/redis/lib.sh
ensure_redis_server
redis-server --version

# The module's build runs bindgen, which needs libclang.
if ! command -v clang >/dev/null 2>&1 || ! ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1; then
    echo "== installing clang and libclang-dev from Debian's packages =="
    SUDO=""
    if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends clang libclang-dev >/dev/null
fi
echo "== cargo build --release -p ratecore-redis-module --features test-hooks =="
# With the hook that lets a test make the module panic (tests/redis_module.rs).
cargo build --release -p ratecore-redis-module --features test-hooks
MODULE="$(pwd)/target/release/libratecore_redis_module.so"

DIR="$(mktemp -d "${TMPDIR:-/tmp}/ratecore-redis.XXXXXX")"
CONF="$DIR/redis.conf"
PIDFILE="$DIR/redis.pid"
PORT=""

stop_server() {
    if [ -n "$PORT" ]; then
        redis-cli -p "$PORT" shutdown nosave >/dev/null 2>&1 || true
    fi
    if [ -f "$PIDFILE" ]; then
        pid="$(cat "$PIDFILE" 2>/dev/null || true)"
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
            sleep 0.2
            kill -9 "$pid" 2>/dev/null || true
        fi
    fi
}
cleanup() {
    status=$?
    stop_server
    if [ "$status" != 0 ] && [ -f "$DIR/redis.log" ]; then
        echo "== redis-server log (last lines) =="
        tail -n 30 "$DIR/redis.log" || true
    fi
    rm -rf "$DIR"
    exit "$status"
}
trap cleanup EXIT


# A free port: random candidates until one is not listening and redis-server starts on it.
started=""
for _ in $(seq 1 50); do
    candidate=$((20000 + RANDOM % 40000))
    if port_in_use "$candidate"; then continue; fi
    PORT="$candidate"
    cat >"$CONF" <<EOF
bind 127.0.0.1
port $PORT
save ""
appendonly no
dir $DIR
daemonize yes
pidfile $PIDFILE
logfile $DIR/redis.log
loadmodule $MODULE
EOF
    if redis-server "$CONF" >/dev/null 2>&1; then
        for _ in $(seq 1 100); do
            if [ "$(redis-cli -p "$PORT" ping 2>/dev/null || true)" = "PONG" ]; then
                started=1
                break
            fi
            sleep 0.05
        done
    fi
    if [ -n "$started" ]; then break; fi
    stop_server
    PORT=""
done
if [ -z "$started" ]; then
    echo "could not start redis-server" >&2
    exit 1
fi
echo "redis-server running on 127.0.0.1:$PORT (pid $(cat "$PIDFILE"))"

export RATECORE_REDIS_URL="redis://127.0.0.1:$PORT/"
export RATECORE_REDIS_CONF="$CONF"
export RATECORE_REDIS_PIDFILE="$PIDFILE"
export RATECORE_REDIS_MODULE="$MODULE"
export RATECORE_REDIS_MODULE_HOOKS=1
export RUST_BACKTRACE=1

echo
echo "== cargo test --features redis (Redis tests on the Lua script) =="
cargo test --features redis --lib redis_backend
RATECORE_REDIS_ENGINE=script cargo test --features redis \
    --test redis_differential --test redis_clients --test redis_failures --test redis_policy

echo
echo "== the blocking suites pipelined on one multiplexed connection (RATECORE_REDIS_PIPELINED=1) =="
for engine in script module; do
    RATECORE_REDIS_ENGINE=$engine RATECORE_REDIS_PIPELINED=1 cargo test --features redis-tokio \
        --test redis_differential --test redis_clients --test redis_failures --test redis_policy
done

echo
echo "== cargo test --features redis-tokio (async transport, on the script and on the module) =="
RATECORE_REDIS_ENGINE=script cargo test --features redis-tokio --test redis_async
RATECORE_REDIS_ENGINE=module cargo test --features redis-tokio --test redis_async

echo
echo "== cargo test -p ratecore-tower --features redis (the layer in Redis mode, real HTTP) =="
cargo test -p ratecore-tower --features redis --test redis

echo
echo "== the same suites on the module (RATECORE_REDIS_ENGINE=module) =="
RATECORE_REDIS_ENGINE=module cargo test --features redis \
    --test redis_differential --test redis_clients --test redis_failures --test redis_policy

echo
echo "== the module against the script and in-process; replication and AOF =="
cargo test -p ratecore-redis-module
cargo test --features redis --test redis_module --test redis_module_servers

echo
echo "== memory per key (MEMORY USAGE) and out of memory under maxmemory: cargo test --features redis --test redis_memory =="
cargo test --features redis --test redis_memory -- --nocapture --test-threads=1

echo
echo "== Redis Cluster, 3 primaries + 3 replicas: bash tests/redis/cluster.sh cargo test --features redis --test redis_cluster =="
# Each run starts a cluster of its own; each suite kills two primaries in turn (about 3 s
# each to fail over, and to rejoin).
RATECORE_REDIS_URL="" bash tests/redis/cluster.sh \
    cargo test --features redis --test redis_cluster -- --nocapture --test-threads=1
echo
echo "== Redis Cluster with the module on every node, blocking and async: RATECORE_CLUSTER_MODULE=... RATECORE_REDIS_ENGINE=module bash tests/redis/cluster.sh cargo test --features redis-tokio --test redis_cluster --test redis_cluster_async =="
RATECORE_REDIS_URL="" RATECORE_CLUSTER_MODULE="$MODULE" RATECORE_REDIS_ENGINE=module \
    bash tests/redis/cluster.sh cargo test --features redis-tokio \
    --test redis_cluster --test redis_cluster_async -- --nocapture --test-threads=1
echo
echo "== Redis Cluster on the script, async and pipelined blocking: RATECORE_REDIS_ENGINE=script RATECORE_REDIS_PIPELINED=1 bash tests/redis/cluster.sh cargo test --features redis-tokio --test redis_cluster --test redis_cluster_async =="
RATECORE_REDIS_URL="" RATECORE_REDIS_ENGINE=script RATECORE_REDIS_PIPELINED=1 \
    bash tests/redis/cluster.sh cargo test --features redis-tokio \
    --test redis_cluster --test redis_cluster_async -- --nocapture --test-threads=1

echo
echo "== demo on Redis: cargo run --release --features redis --example seed_policies -- --redis URL =="
cargo run --release --features redis --example seed_policies -- --redis "$RATECORE_REDIS_URL" >/dev/null
echo "demo on Redis: ran (its promises are asserted by redis_policy)"

if [ "${RATECORE_REDIS_BENCH:-1}" != 0 ]; then
    echo
    echo "== benchmark: cargo test --release --features redis-tokio --test redis_bench -- --ignored --nocapture --test-threads=1 =="
    RATECORE_REDIS_ENGINE=script \
        cargo test --release --features redis-tokio --test redis_bench -- --ignored --nocapture --test-threads=1
    echo
    echo "== the async and pipelined benchmark on the module (about 20 s): RATECORE_REDIS_ENGINE=module cargo test --release --features redis-tokio --test redis_bench async_checks_per_second -- --ignored --nocapture =="
    RATECORE_REDIS_ENGINE=module \
        cargo test --release --features redis-tokio --test redis_bench async_checks_per_second -- --ignored --nocapture --test-threads=1
    echo
    echo "== server CPU per check: bash tests/redis/cpu.sh =="
    stop_server
    PORT=""
    bash tests/redis/cpu.sh
fi

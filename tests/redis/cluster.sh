#!/usr/bin/env bash
# Starts a throwaway Redis Cluster on 127.0.0.1 (3 primaries, 3 replicas, a short
# cluster-node-timeout so failovers take about a second), runs a command against it, and
# stops every node. Installs Debian's redis-server if missing.
#
#   bash tests/redis/cluster.sh COMMAND [ARGS...]
#   bash tests/redis/cluster.sh            # start, print the nodes and CLUSTER INFO, stop
#
# With RATECORE_CLUSTER_MODULE=/path/to/libratecore_redis_module.so every node loads the
# ratecore module (built by `cargo build --release -p ratecore-redis-module`); without it
# the nodes have none and checks run the Lua script.
#
# The command reads:
#   RATECORE_REDIS_CLUSTER_NODES  redis://127.0.0.1:P1/,redis://127.0.0.1:P2/,... (all six)
#   RATECORE_REDIS_CLUSTER_DIR    the directory holding node-PORT.conf and node-PORT.pid,
#                                 to kill a node (its pid) and restart it (its conf)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
exec </dev/null

# shellcheck source=tests/redis/lib.sh
source tests/redis/lib.sh
ensure_redis_server

NODES=6
MODULE="${RATECORE_CLUSTER_MODULE:-}"
if [ -n "$MODULE" ] && [ ! -f "$MODULE" ]; then
    echo "RATECORE_CLUSTER_MODULE=$MODULE: no such file" >&2
    exit 1
fi
DIR="$(mktemp -d "${TMPDIR:-/tmp}/ratecore-cluster.XXXXXX")"
PORTS=()

stop_all() {
    for port in "${PORTS[@]}"; do
        redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
    done
    for pidfile in "$DIR"/node-*.pid; do
        [ -f "$pidfile" ] || continue
        pid="$(cat "$pidfile" 2>/dev/null || true)"
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
            kill -9 "$pid" 2>/dev/null || true
        fi
    done
}
cleanup() {
    status=$?
    stop_all
    if [ "$status" != 0 ]; then
        for log in "$DIR"/node-*.log; do
            [ -f "$log" ] || continue
            echo "== $(basename "$log") (last lines) =="
            tail -n 15 "$log" || true
        done
    fi
    rm -rf "$DIR"
    exit "$status"
}
trap cleanup EXIT


# Six free ports, each with its cluster bus port (port + 10000) free too. Both stay below
# Linux's ephemeral range (32768 and up), where an outgoing connection's local port (the
# failover tests open many) could take a node's port between this check and its bind.
while [ "${#PORTS[@]}" -lt "$NODES" ]; do
    # Nodes on 20000-22767, their buses on 30000-32767.
    candidate=$((20000 + RANDOM % 2768))
    if port_in_use "$candidate" || port_in_use $((candidate + 10000)); then continue; fi
    # Neither port may be another node's port or bus port.
    case " ${PORTS[*]} " in
        *" $candidate "* | *" $((candidate + 10000)) "* | *" $((candidate - 10000)) "*) continue ;;
    esac
    PORTS+=("$candidate")
done

for port in "${PORTS[@]}"; do
    cat >"$DIR/node-$port.conf" <<EOF
bind 127.0.0.1
port $port
cluster-enabled yes
cluster-config-file $DIR/nodes-$port.conf
cluster-node-timeout 1000
save ""
appendonly no
repl-diskless-sync-delay 0
dir $DIR
daemonize yes
pidfile $DIR/node-$port.pid
logfile $DIR/node-$port.log
EOF
    if [ -n "$MODULE" ]; then echo "loadmodule $MODULE" >>"$DIR/node-$port.conf"; fi
    redis-server "$DIR/node-$port.conf" >/dev/null
done
for port in "${PORTS[@]}"; do
    for _ in $(seq 1 100); do
        [ "$(redis-cli -p "$port" ping 2>/dev/null || true)" = "PONG" ] && break
        sleep 0.05
    done
done

addresses=()
for port in "${PORTS[@]}"; do addresses+=("127.0.0.1:$port"); done
redis-cli --cluster create "${addresses[@]}" --cluster-replicas 1 --cluster-yes >"$DIR/create.log"

# Every node agrees the cluster is up and every slot is served.
for port in "${PORTS[@]}"; do
    for _ in $(seq 1 200); do
        if redis-cli -p "$port" cluster info 2>/dev/null | grep -q '^cluster_state:ok'; then break; fi
        sleep 0.05
    done
    redis-cli -p "$port" cluster info | grep -q '^cluster_state:ok' || {
        echo "node $port: the cluster did not come up" >&2
        exit 1
    }
done

# Every replica has its primary's data (a replica that never synced cannot be promoted,
# so a failover test started earlier would find no replica to take over).
for port in "${PORTS[@]}"; do
    for _ in $(seq 1 400); do
        info="$(redis-cli -p "$port" info replication 2>/dev/null || true)"
        case "$info" in
            *role:master*) break ;;
            *master_link_status:up*) break ;;
        esac
        sleep 0.05
    done
    case "$(redis-cli -p "$port" info replication)" in
        *role:master* | *master_link_status:up*) ;;
        *)
            echo "node $port: the replica did not sync with its primary" >&2
            exit 1
            ;;
    esac
done

urls=()
for port in "${PORTS[@]}"; do urls+=("redis://127.0.0.1:$port/"); done
RATECORE_REDIS_CLUSTER_NODES="$(IFS=,; echo "${urls[*]}")"
export RATECORE_REDIS_CLUSTER_NODES
export RATECORE_REDIS_CLUSTER_DIR="$DIR"
echo "redis cluster running: ${PORTS[*]} ($(redis-server --version | cut -d' ' -f3))${MODULE:+, with the ratecore module}"

if [ "$#" -eq 0 ]; then
    redis-cli -p "${PORTS[0]}" cluster nodes | sort -k3
    redis-cli -p "${PORTS[0]}" cluster info | grep -E '^cluster_(state|slots_assigned|known_nodes|size):'
else
    "$@"
fi

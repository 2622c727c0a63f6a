# Shell helpers the Redis test scripts source: installing Debian's redis-server when it is
# missing, and probing ports.

# Installs redis-server and redis-cli from Debian's packages if either is missing.
ensure_redis_server() {
    if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
        echo "== installing redis-server from Debian's packages =="
        local sudo=""
        if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
        $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            redis-server redis-tools >/dev/null
    fi
}

# Whether something listens on 127.0.0.1:$1.
port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

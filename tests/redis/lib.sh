# Shell helpers the Redis test scripts source: installing Debian's redis-server when it is
# missing, probing ports, and building redis-cell for the comparisons.

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

# Builds redis-cell 0.2.2 from its crates.io package with the current toolchain, in the
# scratch directory $CELL_DIR (it is not part of this repository); sets CELL to the built
# module. Fails (returns 1) if it cannot be fetched or built; the log is $CELL_DIR/build.log.
build_cell() {
    mkdir -p "$CELL_DIR/fetch/src"
    cat >"$CELL_DIR/fetch/Cargo.toml" <<'TOML'
[package]
name = "fetch-redis-cell"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
redis-cell = "=0.2.2"

[workspace]
TOML
    : >"$CELL_DIR/fetch/src/lib.rs"
    # Downloads the package into cargo's registry cache, which `cargo metadata` locates.
    (cd "$CELL_DIR/fetch" && cargo fetch -q) || return 1
    local src
    src="$(cd "$CELL_DIR/fetch" && cargo metadata --format-version 1 |
        python3 -c 'import json,sys; print(next(p["manifest_path"] for p in json.load(sys.stdin)["packages"] if p["name"] == "redis-cell"))')"
    rm -rf "$CELL_DIR/src"
    cp -r "$(dirname "$src")" "$CELL_DIR/src"
    # Its own workspace, so that cargo does not attach it to this repository's.
    printf '\n[workspace]\n' >>"$CELL_DIR/src/Cargo.toml"
    (cd "$CELL_DIR/src" && CARGO_TARGET_DIR="$CELL_DIR/target" cargo build --release -q 2>"$CELL_DIR/build.log") || return 1
    CELL="$CELL_DIR/target/release/libredis_cell.so"
    [ -f "$CELL" ]
}

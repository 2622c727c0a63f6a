# Shell helpers the HTTP benchmark scripts (http.sh, callgrind.sh) source.
# shellcheck shell=bash

# Builds the benchmark's server and load generator into `bin`, makes a work directory
# `work`, and on exit kills the server whose pid is in `server` and removes `work`.
bench_setup() {
    cargo build --release -q -p ratecore-tower --example bench_server --example loadgen
    bin=target/release/examples
    work=$(mktemp -d)
    server=""
    trap bench_cleanup EXIT
}

bench_cleanup() {
    if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; fi
    rm -rf "$work"
}

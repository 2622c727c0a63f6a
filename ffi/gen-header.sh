#!/usr/bin/env bash
# Regenerates include/ratecore.h from ffi/src with the pinned cbindgen (ffi/cbindgen.toml).
#
#   ffi/gen-header.sh           rewrite include/ratecore.h
#   ffi/gen-header.sh --check   regenerate into a temporary file and diff it against the
#                               committed header; exit 1 if the header is stale
#
# cbindgen is taken from PATH if it is exactly the pinned version, else from
# <target dir>/tools/bin, installed there (`cargo install --locked`) on first use, so a
# different global cbindgen is never replaced.
set -euo pipefail

CBINDGEN_VERSION=0.29.4

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

mode=write
case "${1:-}" in
    "") ;;
    --check) mode=check ;;
    -h | --help)
        sed -n '2,10p' "$0"
        exit 0
        ;;
    *)
        echo "usage: $0 [--check]" >&2
        exit 2
        ;;
esac

target_dir() {
    cargo metadata --format-version 1 --no-deps |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])'
}

find_cbindgen() {
    if command -v cbindgen >/dev/null 2>&1 &&
        [ "$(cbindgen --version 2>/dev/null)" = "cbindgen $CBINDGEN_VERSION" ]; then
        command -v cbindgen
        return
    fi
    local tools
    tools="${RATECORE_TOOLS_DIR:-$(target_dir)/tools}"
    local bin="$tools/bin/cbindgen"
    if [ ! -x "$bin" ] || [ "$("$bin" --version 2>/dev/null)" != "cbindgen $CBINDGEN_VERSION" ]; then
        echo "gen-header: installing cbindgen $CBINDGEN_VERSION into $tools" >&2
        cargo install cbindgen --version "$CBINDGEN_VERSION" --locked --root "$tools" >&2
    fi
    echo "$bin"
}

cbindgen="$(find_cbindgen)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# cbindgen notes every private `const _` compile-time assertion and the `u64::MAX` and
# `u32::MAX` it renders as UINT64_MAX and UINT32_MAX; show anything else it says.
if ! "$cbindgen" --config ffi/cbindgen.toml --crate ratecore-ffi --output "$tmp/ratecore.h" ffi \
    2>"$tmp/log"; then
    cat "$tmp/log" >&2
    echo "gen-header: cbindgen failed" >&2
    exit 1
fi
grep -v -e 'Skip ratecore-ffi::_ - (not `pub`)' -e 'Skip ratecore-ffi::VERSION - (not `pub`)' \
    -e "Can't find u64" -e "Can't find u32" "$tmp/log" >&2 || true

if [ "$mode" = check ]; then
    if ! diff -u include/ratecore.h "$tmp/ratecore.h"; then
        echo "gen-header: include/ratecore.h is stale; run ffi/gen-header.sh and commit it" >&2
        exit 1
    fi
    echo "gen-header: include/ratecore.h is up to date (cbindgen $CBINDGEN_VERSION)"
else
    cp "$tmp/ratecore.h" include/ratecore.h
    echo "gen-header: wrote include/ratecore.h (cbindgen $CBINDGEN_VERSION)"
fi

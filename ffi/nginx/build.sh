#!/usr/bin/env bash
# Builds the nginx dynamic module ngx_http_ratecore_module.so against Debian 12's nginx
# (the packaged nginx loads it with `load_module`):
#
#  1. installs nginx and nginx-dev with apt-get if they are missing (as root; CI runs on a
#     fresh machine), plus gcc/make if needed;
#  2. cargo build --release -p ratecore-ffi  (the static library libratecore_ffi.a);
#  3. copies nginx-dev's source-less nginx tree (/usr/share/nginx/src: headers, configure,
#     auto/, conf_flags) to a temporary directory, sources conf_flags (Debian's exact
#     configure flags) and runs
#       ./configure "${NGX_CONF_FLAGS[@]}" --with-compat --add-dynamic-module=ffi/nginx
#       make -f objs/Makefile modules
#     linking the static library through the module's `config` (ngx_module_libs);
#  4. copies the result to <cargo target dir>/nginx/ngx_http_ratecore_module.so.
#
# Usage: ffi/nginx/build.sh            (prints the module's path on its last line)
# Environment: KEEP_BUILD=1 keeps the temporary nginx build tree (its path is printed).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
export CARGO_TERM_COLOR=never

nginx_src=/usr/share/nginx/src

need=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx)
[ -f "$nginx_src/conf_flags" ] || need+=(nginx-dev)
command -v make >/dev/null 2>&1 || need+=(make)
command -v gcc >/dev/null 2>&1 || need+=(gcc)
if [ "${#need[@]}" -gt 0 ]; then
    echo "build.sh: installing ${need[*]} with apt-get"
    if [ "$(id -u)" != 0 ]; then
        echo "build.sh: ${need[*]} missing and not root: run 'apt-get install -y ${need[*]}' as root" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

echo "== cargo build --release -p ratecore-ffi"
cargo build --release -p ratecore-ffi
target_dir="$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
lib="$target_dir/release/libratecore_ffi.a"
[ -f "$lib" ] || { echo "build.sh: $lib not found" >&2; exit 1; }

work="$(mktemp -d /tmp/ratecore-nginx-build.XXXXXX)"
if [ "${KEEP_BUILD:-0}" != 1 ]; then
    trap 'rm -rf "$work"' EXIT
fi
cp -a "$nginx_src" "$work/nginx"
cd "$work/nginx"

# shellcheck disable=SC1091
source ./conf_flags
echo "== configure (nginx $(nginx -v 2>&1 | sed 's|.*/||'), Debian's flags + --with-compat --add-dynamic-module=ffi/nginx)"
# The same compiler and linker hardening as Debian's nginx binary (nginx -V).
RATECORE_INCLUDE="$root/include" RATECORE_LIB="$lib" ./configure "${NGX_CONF_FLAGS[@]}" \
    --with-compat \
    --with-cc-opt='-g -O2 -fstack-protector-strong -Wformat -Werror=format-security -fPIC -D_FORTIFY_SOURCE=2' \
    --with-ld-opt='-Wl,-z,relro -Wl,-z,now -fPIC' \
    --add-dynamic-module="$root/ffi/nginx" >"$work/configure.log" 2>&1 ||
    { tail -n 40 "$work/configure.log"; echo "build.sh: configure failed" >&2; exit 1; }

echo "== make -f objs/Makefile modules"
make -f objs/Makefile modules -j"$(nproc)" >"$work/make.log" 2>&1 ||
    { cat "$work/make.log"; echo "build.sh: make failed" >&2; exit 1; }
grep -iE 'warning' "$work/make.log" || true

mkdir -p "$target_dir/nginx"
# A new file renamed into place: a running nginx keeps its mapping of the old one intact.
cp objs/ngx_http_ratecore_module.so "$target_dir/nginx/.ngx_http_ratecore_module.so.new"
mv -f "$target_dir/nginx/.ngx_http_ratecore_module.so.new" "$target_dir/nginx/ngx_http_ratecore_module.so"
[ "${KEEP_BUILD:-0}" = 1 ] && echo "build tree kept: $work/nginx"

# The module must not export the Rust runtime's symbols, and must carry the library.
so="$target_dir/nginx/ngx_http_ratecore_module.so"
# (grep -c, not grep -q: with pipefail, grep -q closing the pipe early fails nm.)
exported="$(nm -D --defined-only "$so" | grep -c ' [TDB] ratecore_' || true)"
[ "$exported" = 0 ] || { echo "build.sh: $so exports ratecore_* symbols (expected them hidden)" >&2; exit 1; }
linked="$(nm "$so" | grep -c 'ratecore_table_check' || true)"
[ "$linked" != 0 ] || { echo "build.sh: $so does not contain ratecore" >&2; exit 1; }
ls -l "$so"
echo "$so"

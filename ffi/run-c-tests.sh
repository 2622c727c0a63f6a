#!/usr/bin/env bash
# Proves ratecore's C ABI from C, C++ and Python. CI calls this; so can you.
#
#  1. builds the static and shared library (release, with the test-only panic hook);
#  2. checks that include/ratecore.h is what cbindgen generates now (ffi/gen-header.sh --check);
#  3. proves the sanitizers are live: canary programs with a heap overflow and a signed
#     overflow must be caught;
#  4. builds every tests/c/test_*.c with
#       gcc -std=c11 -Wall -Wextra -Wpedantic -Werror -fsanitize=address,undefined
#     against the static library, checks that ASan and UBSan are linked into each binary,
#     and runs it with leak detection on and halt-on-error;
#  5. compiles the header alone as C (c11, c17, c2x) and as C++ (c++11, c++17, c++20), and
#     runs a C++ program against the library under the sanitizers;
#  6. builds and runs the C and C++ examples (ffi/examples/Makefile) under the sanitizers;
#  7. installs into a temporary prefix and links the C example through pkg-config, against
#     the shared and the static library;
#  8. runs the Python ctypes smoke test against the shared library.
#
# Needs only what a fresh Debian 12 + rustup machine has (gcc, g++, make, python3);
# pkg-config is used when present. cbindgen is installed by gen-header.sh if missing.
# Exits nonzero on the first failure.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export CARGO_TERM_COLOR=never

CC="${CC:-gcc}"
CXX="${CXX:-g++}"
PYTHON="${PYTHON:-python3}"

started=$SECONDS
step() {
    echo
    echo "== $* ($((SECONDS - started)) s) =="
}
fail() {
    echo "run-c-tests: FAILED: $*" >&2
    exit 1
}

target_dir="$(cargo metadata --format-version 1 --no-deps |
    "$PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
lib_dir="$target_dir/release"
out="$target_dir/c-tests"
rm -rf "$out"
mkdir -p "$out"

SANITIZE="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
WARN_C="-std=c11 -Wall -Wextra -Wpedantic -Werror"
WARN_CXX="-std=c++17 -Wall -Wextra -Wpedantic -Werror"
# The Rust standard library inside the static library needs these (see ffi/README.md).
LIBS="$lib_dir/libratecore_ffi.a -lpthread -ldl -lm"

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
# No leak suppressions are needed: the library and the Rust runtime free everything the
# tests allocate. If one ever is, list it precisely in tests/c/lsan.supp.
if [ -f tests/c/lsan.supp ]; then
    export LSAN_OPTIONS="suppressions=$root/tests/c/lsan.supp:print_suppressions=1"
fi

# Every binary must really carry both sanitizers.
require_sanitizers() {
    local symbols
    symbols="$(nm "$1")"
    grep -q '__asan_init' <<<"$symbols" || fail "$1 is not linked with AddressSanitizer"
    grep -q '__ubsan_handle_' <<<"$symbols" || fail "$1 is not linked with UndefinedBehaviorSanitizer"
}

step "tool versions"
cargo --version
rustc --version
"$CC" --version | head -n 1
"$CXX" --version | head -n 1
"$PYTHON" --version

step "cargo build --release -p ratecore-ffi --features test-hooks"
cargo build --release -p ratecore-ffi --features test-hooks
ls -l "$lib_dir/libratecore_ffi.a" "$lib_dir/libratecore_ffi.so"
nm -D --defined-only "$lib_dir/libratecore_ffi.so" | grep -c ' T ratecore_' |
    xargs -I{} echo "{} ratecore_* symbols exported by the shared library"
if nm -D --defined-only "$lib_dir/libratecore_ffi.so" | grep ' T ' | grep -v ' T ratecore_'; then
    fail "the shared library exports symbols outside the ratecore_ prefix"
fi

step "header is up to date (ffi/gen-header.sh --check)"
ffi/gen-header.sh --check

step "sanitizer canaries must be caught"
# The ASan canary is built with ASan alone (UBSan's object-size check would report the
# same overflow first); the UBSan canary with the full test flags.
for canary in asan:AddressSanitizer:address ubsan:'runtime error':address,undefined; do
    name="${canary%%:*}"
    rest="${canary#*:}"
    expected="${rest%%:*}"
    # shellcheck disable=SC2086
    "$CC" $WARN_C -g -O1 "-fsanitize=${rest#*:}" -fno-sanitize-recover=all -fno-omit-frame-pointer \
        "tests/c/canary_$name.c" -o "$out/canary_$name"
    canary_symbols="$(nm "$out/canary_$name")"
    grep -q __asan_init <<<"$canary_symbols" || fail "canary_$name is not linked with ASan"
    if "$out/canary_$name" >"$out/canary_$name.log" 2>&1; then
        cat "$out/canary_$name.log"
        fail "canary_$name ran to completion: the sanitizer is not active"
    fi
    grep -q "$expected" "$out/canary_$name.log" ||
        { cat "$out/canary_$name.log"; fail "canary_$name failed without a sanitizer report"; }
    echo "canary_$name: caught ($(grep -m1 -o "$expected[^(]*" "$out/canary_$name.log" | head -c 80))"
done

step "C tests (tests/c/test_*.c) under ASan + UBSan"
for source in tests/c/test_*.c; do
    name="$(basename "$source" .c)"
    # shellcheck disable=SC2086
    "$CC" $WARN_C -g -O1 $SANITIZE -Iinclude "$source" $LIBS -o "$out/$name"
    require_sanitizers "$out/$name"
    options="$ASAN_OPTIONS"
    if [ "$name" = test_oom ]; then
        # ASan aborts on impossible allocations before the library can see them fail;
        # this test is about the library's answer to a refused allocation.
        options="$options:allocator_may_return_null=1"
    fi
    t0=$SECONDS
    # RUST_BACKTRACE=0: test_panic's deliberate panics print one line each, not a trace.
    ASAN_OPTIONS="$options" RUST_BACKTRACE=0 "$out/$name" || fail "$name"
    echo "($name: $((SECONDS - t0)) s)"
done

step "header compiles alone as C and as C++"
for std in c11 c17 c2x; do
    "$CC" "-std=$std" -Wall -Wextra -Wpedantic -Werror -Iinclude -c tests/c/header_c.c \
        -o "$out/header_c_$std.o"
    echo "C $std: ok"
done
for std in c++11 c++17 c++20; do
    "$CXX" "-std=$std" -Wall -Wextra -Wpedantic -Werror -Iinclude -fsyntax-only -x c++ include/ratecore.h
    echo "C++ $std (header alone): ok"
done
# shellcheck disable=SC2086
"$CXX" $WARN_CXX -g -O1 $SANITIZE -Iinclude tests/c/header_cxx.cpp $LIBS -o "$out/header_cxx"
require_sanitizers "$out/header_cxx"
"$out/header_cxx" || fail header_cxx

step "examples (make -C ffi/examples run) under ASan + UBSan"
make -C ffi/examples --no-print-directory run RATECORE_ROOT="$root" LIB_DIR="$lib_dir" \
    BUILD_DIR="$out/examples" CC="$CC" CXX="$CXX" SANITIZE="$SANITIZE" >"$out/examples.log" 2>&1 ||
    { cat "$out/examples.log"; fail "examples"; }
grep -E '^(t=|alice|bob|mallory|table:|ratecore|composite|region|rejected)' "$out/examples.log" | tail -n 12
require_sanitizers "$out/examples/toy_server"
require_sanitizers "$out/examples/raii"

step "packaging: pkg-config file and the documented cc line"
prefix="$out/prefix"
mkdir -p "$prefix/include" "$prefix/lib/pkgconfig"
cp include/ratecore.h "$prefix/include/"
cp "$lib_dir/libratecore_ffi.a" "$lib_dir/libratecore_ffi.so" "$prefix/lib/"
version="$(sed -n 's/^#define RATECORE_VERSION "\(.*\)"$/\1/p' include/ratecore.h)"
sed -e "s|@PREFIX@|$prefix|" -e "s|@VERSION@|$version|" ffi/ratecore.pc.in >"$prefix/lib/pkgconfig/ratecore.pc"
# The documented static cc line (ffi/README.md).
# shellcheck disable=SC2086
"$CC" $WARN_C -I"$prefix/include" ffi/examples/toy_server.c "$prefix/lib/libratecore_ffi.a" \
    -lpthread -ldl -lm -o "$out/toy_server_static"
"$out/toy_server_static" >/dev/null || fail "statically linked toy_server"
echo "cc ... libratecore_ffi.a -lpthread -ldl -lm: ok"
if command -v pkg-config >/dev/null 2>&1; then
    export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
    [ "$(pkg-config --modversion ratecore)" = "$version" ] || fail "pkg-config version"
    # shellcheck disable=SC2046
    "$CC" $WARN_C $(pkg-config --cflags ratecore) ffi/examples/toy_server.c \
        $(pkg-config --libs ratecore) -o "$out/toy_server_shared"
    LD_LIBRARY_PATH="$prefix/lib" "$out/toy_server_shared" >/dev/null || fail "toy_server against the shared library"
    # Capture first: `ldd | grep -q` under pipefail fails whenever grep exits early and
    # ldd gets SIGPIPE.
    linked="$(LD_LIBRARY_PATH="$prefix/lib" ldd "$out/toy_server_shared")"
    case "$linked" in
    *libratecore_ffi.so*) ;;
    *) fail "toy_server_shared is not linked to the shared library" ;;
    esac
    echo "pkg-config --cflags --libs ratecore ($(pkg-config --libs ratecore)): ok"
else
    echo "pkg-config not installed: pkg-config check skipped"
fi

step "Python ctypes smoke test"
"$PYTHON" ffi/examples/smoke.py "$lib_dir/libratecore_ffi.so"

step "all C ABI checks passed"

#!/usr/bin/env bash
# Runs every cargo-fuzz target for a bounded time and fails on any crash.
#
#   fuzz/run.sh [seconds-per-target]      (default 45; CI runs `fuzz/run.sh 45`)
#   FUZZ_TARGETS="table render" fuzz/run.sh 600    (a subset, longer)
#
# Needs the nightly toolchain (cargo-fuzz builds with -Zsanitizer=address); installs
# cargo-fuzz from crates.io if it is missing. Each target starts from its committed seed
# corpus (fuzz/corpus/<target>/seed-*) plus whatever earlier local runs added there
# (ignored by git). A crash leaves its input in fuzz/artifacts/<target>/ and the script
# exits non-zero; `cargo +nightly fuzz fmt <target> <artifact>` prints it as the ratecore
# calls it makes (see fuzz/README.md).
set -euo pipefail

seconds="${1:-45}"
case "$seconds" in
'' | *[!0-9]*)
    echo "usage: fuzz/run.sh [seconds-per-target]" >&2
    exit 2
    ;;
esac

fuzz_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$fuzz_dir/.."

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "fuzz/run.sh: the nightly toolchain is required (cargo +nightly)" >&2
    exit 1
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "fuzz/run.sh: installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

targets="${FUZZ_TARGETS:-$(cargo +nightly fuzz list)}"
echo "fuzz/run.sh: building $(echo $targets | wc -w) targets"
cargo +nightly fuzz build

failed=""
summary=""
for target in $targets; do
    mkdir -p "fuzz/corpus/$target"
    log="$(mktemp)"
    echo "== $target: ${seconds}s"
    # -timeout: one input taking 10 s is a hang worth reporting; -rss_limit_mb: libFuzzer's
    # default, stated so the limit is visible.
    if cargo +nightly fuzz run "$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        >"$log" 2>&1; then
        runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")"
        summary="$summary$target: ${runs:-?} runs in ${seconds}s, no crash"$'\n'
    else
        failed="$failed $target"
        summary="$summary$target: FAILED"$'\n'
        # The crash report: panic message, stack, reproducer.
        grep -E -A40 'panicked|ERROR: libFuzzer|ERROR: AddressSanitizer' "$log" | head -80 || tail -40 "$log"
        ls -t fuzz/artifacts/"$target"/ 2>/dev/null | head -3 || true
    fi
    rm -f "$log"
done

printf '%s' "$summary"
if [ -n "$failed" ]; then
    echo "fuzz/run.sh: crashes in:$failed" >&2
    exit 1
fi
echo "fuzz/run.sh: every target ran ${seconds}s with no crash"

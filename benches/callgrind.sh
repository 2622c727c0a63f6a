#!/usr/bin/env bash
# Instructions per check of benches/profile_driver.rs cases, counted by callgrind over
# the measured loop only (deterministic: independent of the machine's load). Feed the
# output to benches/tables.py to regenerate the figures table in benches/README.md.
#
#   benches/callgrind.sh                        # the cases of the figures table
#   benches/callgrind.sh rc_keyed_1k gov_keyed_1k
#   N=1000000 benches/callgrind.sh rc_gcra_allow
#
# Needs valgrind. Cases: `profile_driver` without arguments lists them.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

cases=("$@")
if [ ${#cases[@]} -eq 0 ]; then
    cases=(rc_gcra_allow gov_allow rc_gcra_deny_quanta gov_deny rc_keyed_1k gov_keyed_1k)
fi
n=${N:-100000}
command -v valgrind >/dev/null || { echo "callgrind.sh: valgrind is not installed" >&2; exit 1; }

cargo bench --bench profile_driver --no-run >/dev/null 2>&1 || cargo bench --bench profile_driver --no-run
bin=$(ls -t target/release/deps/profile_driver-* | grep -v '\.d$' | head -n 1)
tree=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD -- src ffi/src benches/*.rs benches/common benches/c_caller Cargo.toml 2>/dev/null || tree="$tree+changes"
echo "== commit $tree, $(nproc) CPUs ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)), rustc $(rustc --version | cut -d' ' -f2)"
echo "== profile_driver: callgrind, $n iterations per case"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for case in "${cases[@]}"; do
    valgrind --tool=callgrind --callgrind-out-file="$out/$case.out" \
        --toggle-collect='*profile_driver::hot*' "$bin" "$case" "$n" >"$out/$case.log" 2>&1
    total=$(sed -nE 's/^(summary|totals): ([0-9]+).*/\2/p' "$out/$case.out" | head -n 1)
    echo "$case: $((total / n)) instructions per check"
done

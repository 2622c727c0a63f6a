#!/usr/bin/env bash
# Runs every comparison bench the way benches/README.md records them, and prints the
# ratio summaries with the machine's load before and after each bench. Feed the output
# to benches/tables.py to regenerate the figures table in benches/README.md.
#
#   benches/run-all.sh | tee run.txt && benches/tables.py run.txt
#   benches/run-all.sh                 # every bench (about 15 minutes; keyed at 10 M keys dominates)
#   benches/run-all.sh single_key ffi  # some of them
#   RATECORE_BENCH_KEYED_SIZES=1000,100000 benches/run-all.sh keyed
#   RUSTFLAGS="-C target-cpu=x86-64-v3" CARGO_TARGET_DIR=target/v3 benches/run-all.sh keyed
#
# Output: the summary lines (also appended to <target>/criterion/ratecore-summary.txt)
# with `uptime` around each bench. Ratios are only meaningful on an otherwise idle
# machine: check the load lines.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

benches=("$@")
if [ ${#benches[@]} -eq 0 ]; then
    benches=(single_key keyed contended algorithms ffi memory)
fi

# Higher priority when allowed (root); plain otherwise.
nice_cmd=()
if nice -n -19 true 2>/dev/null; then
    nice_cmd=(nice -n -19)
fi

tree=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD -- src ffi/src benches/*.rs benches/common benches/c_caller Cargo.toml 2>/dev/null || tree="$tree+changes"
echo "== $(date -u '+%Y-%m-%d %H:%M:%S UTC'), commit $tree, $(nproc) CPUs ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)), rustc $(rustc --version | cut -d' ' -f2), RUSTFLAGS='${RUSTFLAGS:-}'"
cargo bench --no-run >/dev/null 2>&1 || cargo bench --no-run
for bench in "${benches[@]}"; do
    echo "== $bench: load before: $(cut -d' ' -f1-3 /proc/loadavg)"
    if [ "$bench" = memory ]; then
        "${nice_cmd[@]}" cargo bench --bench memory 2>&1 | grep -vE '^ +(Compiling|Finished|Running)'
    else
        "${nice_cmd[@]}" cargo bench --bench "$bench" -- --warm-up-time 1 --measurement-time 3 2>&1 |
            sed -n '/^===/,$p'
    fi
    echo "== $bench: load after: $(cut -d' ' -f1-3 /proc/loadavg)"
done

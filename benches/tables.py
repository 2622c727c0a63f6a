#!/usr/bin/env python3
"""Regenerates the figures tables of benches/README.md and ffi/nginx/README.md from the
output of a benchmark run, so that no figure is ever copied by hand.

    benches/run-all.sh | tee run.txt;         benches/tables.py run.txt
    benches/baseline/run.sh | tee base.txt;   benches/tables.py base.txt
    benches/callgrind.sh | tee cg.txt;        benches/tables.py cg.txt
    tests/nginx/run.sh --bench-only --bench-rounds 40 | tee wrk.txt;  benches/tables.py wrk.txt
    tests/nginx/callgrind.sh | tee ngx-cg.txt; benches/tables.py ngx-cg.txt

Each input may hold any of these outputs (several files, or '-' for stdin). The script
recognises them by their own headers and summary lines:

- benches/run-all.sh, or one `cargo bench --bench <name>` (the summary that each bench
  prints at its end; the memory bench's ratio line);
- benches/baseline/run.sh (its final table);
- benches/callgrind.sh (instructions per check of benches/profile_driver.rs cases);
- tests/nginx/run.sh or tests/nginx/bench_nginx.py (its summary);
- tests/nginx/callgrind.sh (instructions per request for each server).

The tables live between `<!-- figures:begin -->` and `<!-- figures:end -->`. Rows come
from the run; a bench absent from the run keeps its rows, so a partial run (say
`benches/run-all.sh ffi`) updates only its own. Below the benches table, one line per
bench names the commit, CPUs and compiler it was measured with.

    benches/tables.py --check run.txt   # print the new tables, change no file
"""

import argparse
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCHES_README = os.path.join(ROOT, "benches", "README.md")
NGINX_README = os.path.join(ROOT, "ffi", "nginx", "README.md")
BEGIN, END = "<!-- figures:begin -->", "<!-- figures:end -->"

# The order rows appear in, and the command that reproduces each bench's rows.
BENCHES = {
    "single_key": "benches/run-all.sh single_key",
    "keyed": "benches/run-all.sh keyed",
    "contended": "benches/run-all.sh contended",
    "memory": "benches/run-all.sh memory",
    "algorithms": "benches/run-all.sh algorithms",
    "ffi": "benches/run-all.sh ffi",
    "baseline": "benches/baseline/run.sh",
    "profile_driver": "benches/callgrind.sh {case}",
}
# A bench's summary title (benches/common/mod.rs, Summary::print) -> its name.
TITLES = {
    "single-key GCRA": "single_key",
    "keyed GCRA": "keyed",
    "one key, 2 threads": "contended",
    "ratecore algorithms": "algorithms",
    "C ABI call vs Rust call": "ffi",
}
# profile_driver cases: each ratecore case and the governor case it is compared with.
CALLGRIND_PAIRS = {
    "rc_gcra_allow": "gov_allow",
    "rc_gcra_deny": "gov_deny",
    "rc_gcra_deny_quanta": "gov_deny",
    "rc_keyed_1k": "gov_keyed_1k",
    "rc_policy_uphold": None,
}
HEADER = ("| bench | case | harness | ratecore | compared with | ratio | command |\n"
          "|---|---|---|---:|---:|---|---|")
NGINX_SERVERS = ["off", "limit_req", "ratecore", "ratecore bare", "off+3 headers"]
NGINX_LABELS = {
    "off": "no limit",
    "limit_req": "`limit_req`",
    "ratecore": "ratecore, `style=uphold`",
    "ratecore bare": "ratecore, `style=none`",
    "off+3 headers": "no limit + 3 static headers",
}

NUM = r"[0-9][0-9.,]*"
# A paired measurement's ratio and spread: "<label>: paired <kind> <r> (quartiles <q1>–<q3>;
# <rounds> rounds of <batch>".
SPREAD = (rf"(?P<r>{NUM}) \(quartiles (?P<q1>{NUM})–(?P<q3>{NUM}); "
          rf"(?P<rounds>\d+) rounds of (?P<batch>\d+)")
PAIRED = re.compile(
    rf"^(?P<label>.+?): paired ratio {SPREAD}; median (?P<a>{NUM}) ns vs (?P<b>{NUM}) ns per call\)")
PAIRED_THROUGHPUT = re.compile(
    rf"^(?P<label>.+?): paired throughput ratio {SPREAD} checks per thread; "
    rf"median (?P<a>{NUM}) vs (?P<b>{NUM}) M checks/s\)")
CRITERION = re.compile(rf"^(?P<label>.+?): (?P<a>{NUM}) ns vs (?P<b>{NUM}) ns, ratio (?P<r>{NUM})")
THROUGHPUT = re.compile(
    rf"^(?P<regime>\w+): (?P<name>\S+) (?P<a>{NUM}) M checks/s, governor (?P<b>{NUM}) M checks/s, "
    rf"throughput ratio (?P<r>{NUM})")
GCRA_REFERENCE = re.compile(rf"^(?P<regime>\w+): gcra (?P<a>{NUM}) ns \(the 1.0 reference\)")
STRICT_SLOPE = re.compile(
    rf"^(?P<regime>\w+): strict window cost ≈ (?P<a>-?{NUM}) ns \+ (?P<b>{NUM}) ns per sub-window")
MEMORY = re.compile(
    rf"^ratio \(heap per live key, ratecore / governor\): (?P<r>{NUM}) at the design load 0.9 "
    rf"\((?P<a>{NUM}) B vs (?P<b>{NUM}) B; [^)]*\); (?P<r2>{NUM}) in the dense table \((?P<c>{NUM}) B\)")
BASELINE = re.compile(
    rf"^(?P<case>.{{52}}) (?P<baseline>.{{20}}) +(?P<old>{NUM}) +(?P<new>{NUM}) +(?P<r>{NUM}) "
    rf"\((?P<q1>{NUM})–(?P<q3>{NUM})\)")
CALLGRIND = re.compile(r"^(?P<case>\w+): (?P<n>\d+) instructions per check$")
CPUS = re.compile(r"(?P<cpus>\d+) CPUs(?: \((?P<model>[^)]*)\))?")
RUSTC = re.compile(r"rustc (?P<rustc>[^\s,]+)")
COMMIT = re.compile(r"commit (?P<commit>[0-9a-f]+(?:\+changes)?)")
BASELINE_HEADER = re.compile(r"^== new: (?P<new>\S+), old: (?P<old>\w+)")
NGINX_WRK_HEAD = re.compile(r"^wrk .*?-d(?P<seconds>\S+) .*?, (?P<rounds>\d+) interleaved rounds, nginx worker_processes (?P<workers>\d+), (?P<cpus>\d+) CPUs")
NGINX_WRK_ROW = re.compile(rf"^\s+(?P<server>off\+3 headers|ratecore bare|limit_req|ratecore|off)\s+(?P<rps>{NUM})\s+(?P<vs>{NUM})%\s+(?P<cpu>{NUM}) us")
NGINX_VS_LIMIT_REQ = re.compile(rf"^\s+ratecore vs limit_req \(median of per-round ratios\): (?P<v>{NUM})%")
NGINX_BARE_VS_LIMIT_REQ = re.compile(rf"^\s+ratecore bare \(style=none.*vs limit_req: (?P<v>{NUM})%")
NGINX_CALLGRIND_HEAD = re.compile(r"^server\s+requests\s+instr/request\s+vs off")
NGINX_CALLGRIND_ROW = re.compile(r"^(?P<server>off\+3_headers|ratecore_bare|limit_req|ratecore|off)\s+(?P<req>\d+)\s+(?P<per>\d+)\s+(?P<vs>[+-]\d+)$")


def ns(text):
    """A time as the run printed it (no precision added or dropped)."""
    return f"{text} ns"


def parse(text, rows, provenance, nginx):
    """Adds what `text` holds: rows[bench] = [row...], provenance[bench] = str,
    nginx[(measure, server)] = str."""
    bench = None
    machine = None
    for raw in text.splitlines():
        line = raw.rstrip()
        if line.startswith("== ") and CPUS.search(line) and RUSTC.search(line):
            # A run's header (benches/run-all.sh, benches/baseline/run.sh,
            # benches/callgrind.sh): the commit, CPUs and compiler; the date is left out.
            cpus, rustc, commit = CPUS.search(line), RUSTC.search(line), COMMIT.search(line)
            model = f" ({cpus['model']})" if cpus["model"] else ""
            machine = (f"commit `{commit['commit']}`, " if commit else "") + \
                f"{cpus['cpus']} CPUs{model}, rustc {rustc['rustc']}"
            continue
        if parse_nginx(line, nginx):
            continue
        m = re.match(r"^== (\w+): load before", line)
        if m:
            bench = m[1]
            start(bench, rows, provenance, machine)
            continue
        m = re.match(r"^=== (.+?): medians from this run ===", line)
        if m:
            for prefix, name in TITLES.items():
                if m[1].startswith(prefix):
                    if bench != name:
                        bench = name
                        start(bench, rows, provenance, machine)
            continue
        if line.startswith("memory per live key"):
            if bench != "memory":
                bench = "memory"
                start(bench, rows, provenance, machine)
            continue
        m = BASELINE_HEADER.match(line)
        if m:
            bench = "baseline"
            start(bench, rows, provenance, machine)
            provenance[bench] = f"commit `{m['new']}` against `{m['old']}`" + (f", {machine}" if machine else "")
            continue
        if line.startswith("== profile_driver"):
            bench = "profile_driver"
            start(bench, rows, provenance, machine)
            continue
        if bench is None:
            continue
        m = re.match(r"^\((\d+) rounds per case;", line)
        if m and bench == "baseline":
            for row in rows[bench]:
                row[2] = f"paired, {m[1]} rounds"
            continue
        row = bench_row(bench, line)
        if row:
            rows[bench].append(row)
    # profile_driver: pair each ratecore case with its governor case.
    if "profile_driver" in rows:
        counts = {r[0]: r[1] for r in rows["profile_driver"] if isinstance(r, tuple)}
        cmd = BENCHES["profile_driver"]
        out = []
        for case, partner in CALLGRIND_PAIRS.items():
            if case not in counts:
                continue
            theirs = counts.get(partner) if partner else None
            other = f"{theirs} (`{partner}`)" if theirs else "–"
            ratio = f"{counts[case] / theirs:.3f}" if theirs else "–"
            cmd_cases = f"{case} {partner}" if theirs else case
            out.append(["profile_driver", f"`{case}`", "callgrind, instructions per check",
                        str(counts[case]), other, ratio, f"`{cmd.format(case=cmd_cases)}`"])
        rows["profile_driver"] = out


def start(bench, rows, provenance, machine):
    rows[bench] = []
    if machine:
        provenance[bench] = machine


def bench_row(bench, line):
    cmd = f"`{BENCHES.get(bench, bench)}`"
    m = PAIRED.match(line)
    if m:
        return [bench, m["label"], f"paired, {m['rounds']} rounds", ns(m["a"]), f"{ns(m['b'])}",
                f"{m['r']} ({m['q1']}–{m['q3']})", cmd]
    m = PAIRED_THROUGHPUT.match(line)
    if m:
        label = m["label"].replace(" vs governor_quanta", "")
        return [bench, label + " (throughput)", f"paired, {m['rounds']} rounds",
                f"{m['a']} M checks/s", f"{m['b']} M checks/s", f"{m['r']} ({m['q1']}–{m['q3']})", cmd]
    m = THROUGHPUT.match(line)
    if m:
        return [bench, f"{m['regime']}: {m['name']} (throughput)", "criterion",
                f"{m['a']} M checks/s", f"{m['b']} M checks/s", m["r"], cmd]
    m = CRITERION.match(line)
    if m:
        return [bench, m["label"], "criterion", ns(m["a"]), ns(m["b"]), m["r"], cmd]
    m = GCRA_REFERENCE.match(line)
    if m:
        return [bench, f"{m['regime']}: gcra", "criterion", ns(m["a"]), "–", "1 (the reference)", cmd]
    m = STRICT_SLOPE.match(line)
    if m:
        return [bench, f"{m['regime']}: strict window, per sub-window (least squares over N)",
                "criterion", f"{m['a']} ns + {m['b']} ns × N", "–", "–", cmd]
    m = MEMORY.match(line)
    if m:
        return [bench, "heap bytes per live key at the design load 0.9; densest table", "counting allocator",
                f"{m['a']} B; {m['c']} B", f"{m['b']} B", f"{m['r']}; {m['r2']}", cmd]
    m = BASELINE.match(line)
    if m:
        return [bench, m["case"].strip(), "paired", ns(m["new"]),
                f"{ns(m['old'])} ({m['baseline'].strip()})", f"{m['r']} ({m['q1']}–{m['q3']})", cmd]
    m = CALLGRIND.match(line)
    if m and bench == "profile_driver":
        return (m["case"], int(m["n"]))
    return None


def parse_nginx(line, nginx):
    m = NGINX_WRK_HEAD.match(line)
    if m:
        nginx["wrk"] = (f"{m['rounds']} interleaved rounds of {m['seconds']}, "
                        f"{m['workers']} nginx workers, {m['cpus']} CPUs")
        nginx["wrk_command"] = f"`tests/nginx/run.sh --bench-only --bench-rounds {m['rounds']}`"
        return True
    m = NGINX_WRK_ROW.match(line)
    if m and nginx.get("wrk"):
        nginx[("rps_vs_off", m["server"])] = f"{m['vs']} %"
        nginx[("cpu", m["server"])] = f"{m['cpu']} µs"
        return True
    m = NGINX_VS_LIMIT_REQ.match(line)
    if m:
        nginx[("vs_limit_req", "ratecore")] = f"{m['v']} %"
        return True
    m = NGINX_BARE_VS_LIMIT_REQ.match(line)
    if m:
        nginx[("vs_limit_req", "ratecore bare")] = f"{m['v']} %"
        return True
    if NGINX_CALLGRIND_HEAD.match(line):
        nginx["callgrind"] = True
        return True
    m = NGINX_CALLGRIND_ROW.match(line)
    if m and nginx.get("callgrind"):
        server = {"off+3_headers": "off+3 headers", "ratecore_bare": "ratecore bare"}.get(m["server"], m["server"])
        value = f"{int(m['per']):,}" if server == "off" else f"{int(m['vs']):+,}"
        nginx[("instructions", server)] = value
        return True
    return False


def split_markers(text, path):
    try:
        head, rest = text.split(BEGIN, 1)
        body, tail = rest.split(END, 1)
    except ValueError:
        sys.exit(f"{path}: no {BEGIN} ... {END} markers")
    return head, body, tail


def existing_rows(body):
    rows, provenance = {}, {}
    for line in body.splitlines():
        if line.startswith("| ") and not line.startswith("| bench |"):
            cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
            if len(cells) == 7:
                rows.setdefault(cells[0], []).append(cells)
        m = re.match(r"^- `(\w+)`: (.*)$", line)
        if m:
            provenance[m[1]] = m[2]
    return rows, provenance


def render_benches(rows, provenance):
    out = [HEADER]
    order = list(BENCHES) + sorted(set(rows) - set(BENCHES))
    for bench in order:
        for cells in rows.get(bench, []):
            out.append("| " + " | ".join(cells) + " |")
    out.append("")
    out.append("Measured with:")
    out.append("")
    for bench in order:
        if bench in rows and rows[bench] and bench in provenance:
            out.append(f"- `{bench}`: {provenance[bench]}")
    return "\n".join(out)


def existing_nginx(body):
    values = {}
    m = re.search(r"^- requests/s: (.*)$", body, re.M)
    if m:
        values["wrk"] = m[1]
    for line in body.splitlines():
        if not line.startswith("| ") or line.startswith("| measure |"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        if len(cells) != len(NGINX_SERVERS) + 2:
            continue
        measure = NGINX_MEASURES_BY_TITLE.get(cells[0])
        if not measure:
            continue
        values[("command", measure)] = cells[-1]
        for server, cell in zip(NGINX_SERVERS, cells[1:-1]):
            if cell != "–":
                values[(measure, server)] = cell
    return values


NGINX_MEASURES = [
    ("rps_vs_off", "requests/s, median of per-round ratios to no limit", "`tests/nginx/run.sh --bench-only`"),
    ("vs_limit_req", "requests/s, median of per-round ratios to `limit_req`", "`tests/nginx/run.sh --bench-only`"),
    ("cpu", "nginx CPU time per request (median)", "`tests/nginx/run.sh --bench-only`"),
    ("instructions", "user-space instructions per request (no limit: total; others: difference)", "`tests/nginx/callgrind.sh`"),
]
NGINX_MEASURES_BY_TITLE = {title: key for key, title, _ in NGINX_MEASURES}


def render_nginx(values):
    out = ["| measure | " + " | ".join(NGINX_LABELS[s] for s in NGINX_SERVERS) + " | command |",
           "|---|" + "---:|" * len(NGINX_SERVERS) + "---|"]
    for key, title, cmd in NGINX_MEASURES:
        cells = [values.get((key, s), "–") for s in NGINX_SERVERS]
        if all(c == "–" for c in cells):
            continue
        cmd = values.get(("command", key), cmd)
        out.append(f"| {title} | " + " | ".join(cells) + f" | {cmd} |")
    if values.get("wrk"):
        out += ["", "Measured with:", "", f"- requests/s: {values['wrk']}"]
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("outputs", nargs="+", help="files with a run's output ('-': stdin)")
    ap.add_argument("--check", action="store_true", help="print the tables, change no file")
    ap.add_argument("--benches-readme", default=BENCHES_README)
    ap.add_argument("--nginx-readme", default=NGINX_README)
    args = ap.parse_args()

    rows, provenance, nginx = {}, {}, {}
    for path in args.outputs:
        text = sys.stdin.read() if path == "-" else open(path, encoding="utf-8").read()
        parse(text, rows, provenance, nginx)
    rows = {b: r for b, r in rows.items() if r}
    nginx_values = {k: v for k, v in nginx.items() if isinstance(k, tuple)}
    if nginx_values and isinstance(nginx.get("wrk"), str):
        nginx_values["wrk"] = nginx["wrk"]
        for measure in ("rps_vs_off", "vs_limit_req", "cpu"):
            nginx_values[("command", measure)] = nginx["wrk_command"]
    if not rows and not nginx_values:
        sys.exit("no benchmark figures found in the input")

    if rows:
        text = open(args.benches_readme, encoding="utf-8").read()
        head, body, tail = split_markers(text, args.benches_readme)
        old_rows, old_provenance = existing_rows(body)
        for bench in rows:
            old_provenance.pop(bench, None)
        old_rows.update(rows)
        old_provenance.update(provenance)
        table = render_benches(old_rows, old_provenance)
        write(args, args.benches_readme, head, table, tail)
    if nginx_values:
        text = open(args.nginx_readme, encoding="utf-8").read()
        head, body, tail = split_markers(text, args.nginx_readme)
        values = existing_nginx(body)
        # A measure present in the run replaces that measure's whole row.
        for measure in {k[0] for k in nginx_values if isinstance(k, tuple)}:
            values = {k: v for k, v in values.items() if not isinstance(k, tuple) or k[0] != measure}
        values.update(nginx_values)
        write(args, args.nginx_readme, head, render_nginx(values), tail)


def write(args, path, head, table, tail):
    if args.check:
        print(f"--- {os.path.relpath(path, ROOT)}\n{table}\n")
        return
    with open(path, "w", encoding="utf-8") as f:
        f.write(f"{head}{BEGIN}\n{table}\n{END}{tail}")
    print(f"updated {os.path.relpath(path, ROOT)}")


if __name__ == "__main__":
    main()

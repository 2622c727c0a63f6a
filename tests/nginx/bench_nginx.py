#!/usr/bin/env python3
"""Requests/s of nginx on loopback with wrk: no limit, limit_req, and the ratecore module,
in interleaved rounds (the harness is harness.py). Run by tests/nginx/run.sh after the
tests (bounded: 12 rounds of 2 s); benches/tables.py reads its summary:

    python3 tests/nginx/bench_nginx.py --module target/nginx/ngx_http_ratecore_module.so \\
        [--seconds 2] [--rounds 12] [--workers 2]
"""

import argparse
import os
import re
import shutil
import subprocess
import sys

from harness import HERE, INDEX_HTML, Client, Env, Failure, Nginx, check, free_port


def parse_wrk(out):
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    check(m, f"wrk output without Requests/sec:\n{out}")
    total = re.search(r"(\d+) requests in", out)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    return (float(m.group(1)), int(total.group(1)) if total else 0,
            int(non2xx.group(1)) if non2xx else 0, errors.group(0) if errors else "")


def worker_cpu_ticks(master):
    """utime + stime (clock ticks) of the master's worker processes."""
    ticks = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == master:  # ppid
            ticks += int(fields[11]) + int(fields[12])
    return ticks


def wrk_module_off_vs_limit_req_vs_ratecore(env, args):
    """Requests/s on loopback: no limit, limit_req (admits all), ratecore (admits all),
    no limit with three static headers of the module's size, and ratecore with style=none
    (no headers, like limit_req). Interleaved rounds;
    reported: the median of each round's ratio to "off" (robust to the load drifting
    between rounds), and nginx's CPU time per request (robust to other load)."""
    wrk = shutil.which("wrk")
    check(wrk, "wrk is not installed (tests/nginx/run.sh installs it)")
    with open(os.path.join(HERE, "conf", "bench.conf")) as f:
        template = f.read()
    ports = dict(port_off=free_port(), port_limit_req=free_port(), port_ratecore=free_port(),
                 port_headers=free_port(), port_ratecore_bare=free_port())
    ngx = Nginx(env.workdir, "bench", template, env.module, workers=args.workers, **ports).start()
    # sanity: the ratecore server answers with its headers
    r = Client(ports["port_ratecore"]).request("GET", "/")
    check(r.status == 200 and r.header("X-RateLimit-Limit") == "1000000000", f"ratecore bench server: {r}")
    r = Client(ports["port_ratecore_bare"]).request("GET", "/")
    check(r.status == 200 and r.rate_headers() == [], f"style=none bench server: {r}")
    # "ratecore bare": style=none, which sends no headers, like limit_req: the like-for-like
    # comparison of the two limiters
    names = [("off", "port_off"), ("limit_req", "port_limit_req"), ("ratecore", "port_ratecore"),
             ("off+3 headers", "port_headers"), ("ratecore bare", "port_ratecore_bare")]
    rps = {n: [] for n, _ in names}
    cpu = {n: [] for n, _ in names}
    seconds = args.seconds
    hz = os.sysconf("SC_CLK_TCK")
    master = ngx.master_pid()
    load_before = os.getloadavg()[0]
    for name, port in names:  # warm-up
        subprocess.run([wrk, "-t2", "-c50", "-d1s", f"http://127.0.0.1:{ports[port]}/"],
                       capture_output=True, text=True, timeout=30)
    for rnd in range(args.rounds):
        order = names if rnd % 2 == 0 else names[::-1]
        for name, port in order:
            cmd = [wrk, "-t2", "-c50", f"-d{seconds}s", f"http://127.0.0.1:{ports[port]}/"]
            t0 = worker_cpu_ticks(master)
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30).stdout
            ticks = worker_cpu_ticks(master) - t0
            value, total, non2xx, errors = parse_wrk(out)
            check(non2xx == 0, f"{name}: {non2xx} non-2xx responses")
            check(total > 0, f"{name}: no requests")
            rps[name].append(value)
            cpu[name].append(ticks / hz / total * 1e6)
            print(f"    round {rnd + 1} {name:>14}: {value:10.0f} req/s, nginx CPU "
                  f"{cpu[name][-1]:5.2f} us/request {errors}")
    ngx.assert_log_clean()
    ngx.stop()

    def median(values):
        values = sorted(values)
        n = len(values)
        return values[n // 2] if n % 2 else (values[n // 2 - 1] + values[n // 2]) / 2

    ratio = {n: median([a / b for a, b in zip(rps[n], rps["off"])]) for n, _ in names}
    vs_limit_req = median([a / b for a, b in zip(rps["ratecore"], rps["limit_req"])])
    bare_vs_limit_req = median([a / b for a, b in zip(rps["ratecore bare"], rps["limit_req"])])
    lines = [f"wrk -t2 -c50 -d{seconds}s http://127.0.0.1:<port>/ (a {len(INDEX_HTML)}-byte file), "
             f"{args.rounds} interleaved rounds, nginx worker_processes {args.workers}, "
             f"{os.cpu_count()} CPUs, load average {load_before:.2f} before:",
             f"  {'':>14}  {'median req/s':>12}  {'vs off':>7}  {'nginx CPU/request':>17}"]
    for n, _ in names:
        lines.append(f"  {n:>14}  {median(rps[n]):12.0f}  {ratio[n] * 100:6.1f}%  {median(cpu[n]):14.2f} us")
    lines.append(f"  ratecore vs limit_req (median of per-round ratios): {vs_limit_req * 100:.1f}%")
    lines.append(f"  ratecore bare (style=none, no headers, as limit_req) vs limit_req: "
                 f"{bare_vs_limit_req * 100:.1f}%")
    print()
    print("\n".join(lines))
    # Not a performance gate (loopback numbers on a shared 2-CPU machine move by several
    # per cent between runs): fail only on a collapse.
    check(ratio["ratecore"] > 0.5, "ratecore serves less than half the requests of no limit")


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--module", required=True, help="path of ngx_http_ratecore_module.so")
    # many short rounds rather than a few long ones: each round's ratios compare runs a
    # few seconds apart, so load that drifts on a shared machine cancels out better
    ap.add_argument("--seconds", type=int, default=2, help="wrk duration per run")
    ap.add_argument("--rounds", type=int, default=12, help="interleaved wrk rounds")
    ap.add_argument("--workers", type=int, default=2, help="nginx workers")
    ap.add_argument("--keep", action="store_true", help="keep the temporary prefixes")
    args = ap.parse_args()
    env = Env(args.module)
    try:
        wrk_module_off_vs_limit_req_vs_ratecore(env, args)
    except Failure as e:
        print(f"FAIL: {e}\n{env.log_tails()}")
        return 1
    finally:
        env.close(keep=args.keep)
    return 0


if __name__ == "__main__":
    sys.exit(main())

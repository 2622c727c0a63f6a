#!/usr/bin/env bash
# Instructions per request for each server of tests/nginx/conf/bench.conf (no limit,
# limit_req, ratecore, three static headers, ratecore with style=none), counted by
# callgrind: unlike requests/s on a shared machine, these counts do not depend on the
# load. One nginx process (master_process off) runs under valgrind --tool=callgrind; wrk
# drives one port at a time, and callgrind's counters are dumped after each. Then the
# module's handler is broken down by callee.
#
#   tests/nginx/callgrind.sh [module.so] [seconds per server, default 3]
#
# The module defaults to target/nginx/ngx_http_ratecore_module.so (ffi/nginx/build.sh).
# Needs valgrind and wrk. The counts are user-space instructions only: the kernel's share
# of a request (most of it, on loopback) is not counted.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
module="$(realpath "${1:-$root/target/nginx/ngx_http_ratecore_module.so}")"
secs="${2:-3}"
for tool in valgrind callgrind_control callgrind_annotate wrk curl; do
    command -v "$tool" >/dev/null || { echo "callgrind.sh: $tool is not installed" >&2; exit 1; }
done

out="$(mktemp -d /tmp/ratecore-callgrind.XXXXXX)"
chmod 755 "$out"    # workers run as nobody when started by root
mkdir -p "$out"/{logs,html,tmp}
printf '<!DOCTYPE html>\n<title>ratecore</title>\n<p>hello from nginx</p>\n' >"$out/html/index.html"

python3 - "$root/tests/nginx/conf/bench.conf" "$out" "$module" <<'PY'
import socket, sys
template, out, module = sys.argv[1:]
ports = {}
for name in ("PORT_OFF", "PORT_LIMIT_REQ", "PORT_RATECORE", "PORT_HEADERS", "PORT_RATECORE_BARE"):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        ports[name] = s.getsockname()[1]
main = (f"load_module {module};\nmaster_process off;\ndaemon off;\nworker_processes 1;\n"
        f"pid {out}/logs/nginx.pid;\nerror_log {out}/logs/error.log notice;\n"
        "events { worker_connections 1024; }\n")
http = (f"access_log off; client_body_temp_path {out}/tmp/body; proxy_temp_path {out}/tmp/proxy; "
        f"fastcgi_temp_path {out}/tmp/fastcgi; uwsgi_temp_path {out}/tmp/uwsgi; "
        f"scgi_temp_path {out}/tmp/scgi; default_type text/html;")
text = open(template).read().replace("@MAIN@", main).replace("@HTTP@", http).replace("@PREFIX@", out)
for name, port in ports.items():
    text = text.replace(f"@{name}@", str(port))
open(f"{out}/nginx.conf", "w").write(text)
with open(f"{out}/ports", "w") as f:
    for name, port in ports.items():
        f.write(f"{name} {port}\n")
PY
port() { awk -v n="$1" '$1 == n { print $2 }' "$out/ports"; }

valgrind --tool=callgrind --callgrind-out-file="$out/callgrind.out" \
    /usr/sbin/nginx -p "$out/" -c "$out/nginx.conf" >"$out/valgrind.log" 2>&1 &
vg=$!
trap 'kill $vg 2>/dev/null || true' EXIT
for _ in $(seq 150); do
    curl -s -o /dev/null "http://127.0.0.1:$(port PORT_RATECORE)/" && break
    sleep 0.2
done

printf '%-14s %9s %14s %10s\n' server requests instr/request "vs off"
base=
for server in off:PORT_OFF limit_req:PORT_LIMIT_REQ ratecore:PORT_RATECORE off+3_headers:PORT_HEADERS \
    ratecore_bare:PORT_RATECORE_BARE; do
    name="${server%%:*}"
    callgrind_control -z "$vg" >/dev/null 2>&1
    wrk -t1 -c8 -d"${secs}s" "http://127.0.0.1:$(port "${server#*:}")/" >"$out/wrk.$name"
    callgrind_control -d "$name" "$vg" >/dev/null 2>&1
    requests="$(sed -nE 's/^ +([0-9]+) requests in.*/\1/p' "$out/wrk.$name")"
    dump="$(ls -t "$out"/callgrind.out.* | head -n 1)"
    mv "$dump" "$out/dump.$name"
    total="$(sed -nE 's/^(summary|totals): ([0-9]+).*/\2/p' "$out/dump.$name" | head -n 1)"
    per=$((total / requests))
    base="${base:-$per}"
    printf '%-14s %9d %14d %+10d\n' "$name" "$requests" "$per" $((per - base))
done

echo
echo "ngx_http_ratecore_handler and its callees, instructions per request (ratecore server):"
requests="$(sed -nE 's/^ +([0-9]+) requests in.*/\1/p' "$out/wrk.ratecore")"
callgrind_annotate --tree=calling --inclusive=yes "$out/dump.ratecore" 2>/dev/null |
    awk '/\* .*ngx_http_ratecore_handler \[/ { p = 1 } p && /^$/ { exit } p' |
    awk -v n="$requests" '{ x = $1; gsub(",", "", x); $1 = ""; $2 = ""; $3 = "";
                            printf "%8.0f %s\n", x / n, $0 }'
echo "(callgrind output kept in $out)"

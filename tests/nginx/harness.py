"""The harness of the nginx module's tests and benchmark: nginx processes on temporary
prefixes and free ports of 127.0.0.1, a minimal HTTP/1.1 client, clock helpers, expected
rate-limit headers and bodies, and a fixed-window model. Standard library only.

Every nginx runs from a temporary prefix (`nginx -p <prefix> -c <conf>`) on free ports of
127.0.0.1 and is stopped at the end; every loop is bounded.

Time: the module decides with CLOCK_MONOTONIC, and so does time.monotonic_ns() here, so
the tests know where nginx's fixed windows start and end (they are aligned to that
clock's 0). The module reads nginx's cached clock (ngx_current_msec: CLOCK_MONOTONIC
truncated to the millisecond, taken when the worker woke up for the request), so nginx's
now lies in [t0 - 1 ms, t1] for a request sent at t0 and answered at t1 (NOW_EARLY).
Expected Reset / Retry-After values are computed from the times bracketing each request;
a test that needs a whole window first waits (a bounded few seconds) for a window with
enough time left. Headers are compared by name (exact case), order and value, and 429
bodies byte for byte.
"""

import http.client
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import weakref

NS = 1_000_000_000
MS = 1_000_000
# how much earlier than the request's send time nginx's now may be (see above)
NOW_EARLY = 1 * MS
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"

RATE_HEADER = re.compile(r"^(x-ratelimit-|x-rate-limit-|retry-after$|ratelimit$|ratelimit-policy$)", re.I)

INDEX_HTML = b"<!DOCTYPE html>\n<title>ratecore</title>\n<p>hello from nginx</p>\n"


class Failure(AssertionError):
    pass


def check(cond, message):
    if not cond:
        raise Failure(message)


def eq(actual, expected, what):
    if actual != expected:
        raise Failure(f"{what}: expected {expected!r}, got {actual!r}")


def mono():
    return time.monotonic_ns()


def wall_offset():
    """CLOCK_REALTIME - CLOCK_MONOTONIC, in ns."""
    w0 = time.time_ns()
    m = time.monotonic_ns()
    w1 = time.time_ns()
    return (w0 + w1) // 2 - m


def ceil_s(ns):
    return -(-ns // NS)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_window(period_s, need_s, what):
    """Waits (bounded by need_s) until the current aligned window of period_s seconds has
    at least need_s seconds left; returns the window's end (monotonic ns)."""
    period = period_s * NS
    left = period - mono() % period
    if left < need_s * NS:
        print(f"    (waiting {left / NS:.1f} s for a fresh {period_s} s window: {what})")
        time.sleep(left / NS + 0.02)
    now = mono()
    return now - now % period + period


def wait_second_start(min_left_s=0.7):
    """Waits until early in a second (at least min_left_s left)."""
    left = NS - mono() % NS
    if left < min_left_s * NS:
        time.sleep(left / NS + 0.005)


# ------------------------------------------------------------------------------------
# nginx instances


class Nginx:
    """One nginx in its own prefix, from a template with @PLACEHOLDER@s."""

    instances = []

    def __init__(self, workdir, name, template, module, workers=2, **ports):
        self.name = name
        self.prefix = os.path.join(workdir, name)
        self.module = module
        self.workers = workers
        self.ports = ports
        for sub in ("logs", "html", "tmp"):
            os.makedirs(os.path.join(self.prefix, sub), exist_ok=True)
        with open(os.path.join(self.prefix, "html", "index.html"), "wb") as f:
            f.write(INDEX_HTML)
        with open(os.path.join(self.prefix, "html", "limited.html"), "wb") as f:
            f.write(b"custom 429 page\n")
        self.conf = os.path.join(self.prefix, "nginx.conf")
        self.template = template
        self.pid_file = os.path.join(self.prefix, "logs", "nginx.pid")
        self.error_log = os.path.join(self.prefix, "logs", "error.log")
        self.write_conf(template)
        self.started = False

    def main_block(self):
        return (
            f"load_module {self.module};\n"
            f"worker_processes {self.workers};\n"
            f"pid {self.pid_file};\n"
            f"error_log {self.error_log} info;\n"
            "events { worker_connections 1024; }\n"
        )

    def http_block(self):
        t = os.path.join(self.prefix, "tmp")
        return (
            "access_log off;\n"
            f"    client_body_temp_path {t}/body;\n"
            f"    proxy_temp_path {t}/proxy;\n"
            f"    fastcgi_temp_path {t}/fastcgi;\n"
            f"    uwsgi_temp_path {t}/uwsgi;\n"
            f"    scgi_temp_path {t}/scgi;\n"
            "    default_type text/html;\n"
        )

    def render(self, template):
        text = template.replace("@MAIN@", self.main_block()).replace("@HTTP@", self.http_block())
        text = text.replace("@PREFIX@", self.prefix).replace("@MODULE@", self.module)
        for key, port in self.ports.items():
            text = text.replace(f"@{key.upper()}@", str(port))
        leftover = re.findall(r"@[A-Z_]+@", text)
        check(not leftover, f"unfilled placeholders in {self.name}: {leftover}")
        return text

    def write_conf(self, template, path=None):
        with open(path or self.conf, "w") as f:
            f.write(self.render(template))

    def run(self, *args, conf=None, timeout=30):
        return subprocess.run(
            [NGINX, "-p", self.prefix + "/", "-c", conf or self.conf, *args],
            capture_output=True, text=True, timeout=timeout)

    def start(self):
        r = self.run("-t")
        check(r.returncode == 0, f"nginx -t failed for {self.name}:\n{r.stderr}")
        r = self.run()
        check(r.returncode == 0, f"nginx failed to start ({self.name}):\n{r.stderr}\n{self.log_tail()}")
        Nginx.instances.append(self)
        self.started = True
        deadline = time.monotonic() + 10
        for port in self.ports.values():
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    check(time.monotonic() < deadline, f"{self.name}: port {port} never opened")
                    time.sleep(0.02)
        return self

    def master_pid(self):
        try:
            with open(self.pid_file) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def alive(self):
        pid = self.master_pid()
        if pid is None:
            return False
        try:
            os.kill(pid, 0)
            return True
        except OSError:
            return False

    def reload(self):
        r = self.run("-s", "reload")
        check(r.returncode == 0, f"nginx -s reload failed: {r.stderr}")

    def stop(self):
        if not self.started:
            return
        pid = self.master_pid()
        self.run("-s", "stop")
        deadline = time.monotonic() + 10
        while pid is not None and time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except OSError:
                break
            time.sleep(0.05)
        else:
            if pid is not None:
                try:
                    os.kill(pid, 9)  # our own master, by pid
                except OSError:
                    pass
        self.started = False

    def log_text(self):
        try:
            with open(self.error_log, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def log_tail(self, n=20):
        return "\n".join(self.log_text().splitlines()[-n:])

    def assert_log_clean(self):
        bad = [l for l in self.log_text().splitlines()
               if re.search(r"\[(alert|crit|emerg)\]|core dumped|exited on signal", l)]
        check(not bad, f"{self.name}: error log shows trouble:\n" + "\n".join(bad[:10]))


# ------------------------------------------------------------------------------------
# HTTP


class Response:
    def __init__(self, status, reason, headers, body, t0, t1):
        self.status = status
        self.reason = reason
        self.headers = headers  # [(name, value)] as received
        self.body = body
        self.t0 = t0  # monotonic ns before sending
        self.t1 = t1  # monotonic ns after the response

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def rate_headers(self):
        return [(k, v) for k, v in self.headers if RATE_HEADER.match(k)]

    def __repr__(self):
        return f"<{self.status} {self.headers} {self.body[:200]!r}>"


class Client:
    """A keep-alive HTTP/1.1 connection to 127.0.0.1:port from a chosen source address."""

    # Every client, so that a test's connections are closed when it ends (close_all).
    instances = weakref.WeakSet()

    def __init__(self, port, source="127.0.0.1"):
        self.port = port
        self.source = source
        self.conn = None
        Client.instances.add(self)

    def __del__(self):
        # A client used for one request and dropped closes its connection then.
        self.close()

    @classmethod
    def close_all(cls):
        for client in list(cls.instances):
            client.close()

    def _connect(self):
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10,
                                               source_address=(self.source, 0))

    def request(self, method, path, headers=None, body=None):
        for attempt in (0, 1):
            if self.conn is None:
                self._connect()
            t0 = mono()
            try:
                self.conn.request(method, path, body=body, headers=headers or {})
                r = self.conn.getresponse()
                data = r.read()
            except (http.client.HTTPException, ConnectionError, socket.timeout) as e:
                self.close()
                if attempt:
                    raise Failure(f"{method} {path} on port {self.port}: {e!r}")
                continue
            t1 = mono()
            if r.will_close:
                self.close()
            return Response(r.status, r.reason, r.getheaders(), data, t0, t1)

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def expect_headers(resp, expected, what):
    """expected: [(name, value or set of acceptable values)], compared exactly: the same
    rate-limit headers, in this order, with these names (case included)."""
    got = resp.rate_headers()
    names = [k for k, _ in got]
    eq(names, [k for k, _ in expected], f"{what}: rate-limit header names")
    for (k, v), (_, want) in zip(got, expected):
        if isinstance(want, (set, frozenset)):
            check(v in want, f"{what}: {k}: {v!r} not in {sorted(want)}")
        else:
            eq(v, want, f"{what}: {k}")


def reset_epochs(window_end_mono, offset):
    """Acceptable UTC epoch seconds for the end of a window: nginx's cached wall and
    monotonic clocks come from one update, each truncated to the millisecond, so their
    offset is off by up to a millisecond either way (2 ms early to 50 ms late allowed)."""
    return {str(ceil_s(window_end_mono + offset - 2 * MS)),
            str(ceil_s(window_end_mono + offset + 50 * MS))}


def wait_seconds(until_mono, resp):
    """Acceptable ceil-seconds values of until - (nginx's now in [t0, t1])."""
    lo, hi = ceil_s(until_mono - resp.t1), ceil_s(until_mono - (resp.t0 - NOW_EARLY))
    return {str(n) for n in range(lo, hi + 1)}


def iso(epoch):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(epoch)))


def problem_json(type_uri, title, seconds):
    return ("{\n"
            f'    "type": "{type_uri}",\n'
            '    "status": 429,\n'
            f'    "title": "{title}",\n'
            f'    "detail": "Request was rate limited. Try again in {seconds} seconds"\n'
            "}\n").encode()


class FixedWindows:
    """A model of fixed-window zones for the seed replays: the expected decision of
    every limit of a request, combined as the module combines them."""

    def __init__(self, zones):
        self.zones = zones  # name -> (limit, period seconds)
        self.counts = {}

    def decide(self, limits, t0, t1, cost=1):
        """limits: [(zone, key)]. Returns (allowed, limit, remaining, window_end) of the
        combined decision, and consumes on admission."""
        states = []
        for zone, key in limits:
            limit, period_s = self.zones[zone]
            period = period_s * NS
            w = t1 // period
            check((t0 - NOW_EARLY) // period == w, f"a {period_s} s window of {zone} ended during a request")
            count = self.counts.get((zone, key, w), 0)
            states.append((zone, key, w, limit, count, (w + 1) * period))
        denied = [s for s in states if s[4] + cost > s[3]]
        if denied:
            # the denying limit with the largest retry (the latest window end)
            best = max(denied, key=lambda s: s[5])
            return False, best[3], best[3] - best[4], best[5]
        for zone, key, w, limit, count, end in states:
            self.counts[(zone, key, w)] = count + cost
        # smallest remaining, ties: the longest reset (first one on equal ends)
        best = None
        for s in states:
            rem = s[3] - s[4] - cost
            if best is None or rem < best[2] or (rem == best[2] and s[5] > best[3]):
                best = (True, s[3], rem, s[5])
        return best


class Env:
    """What the tests share: the module, a temporary directory for the nginx prefixes,
    and the servers several tests use (started on first use, stopped by close())."""

    def __init__(self, module):
        self.module = os.path.abspath(module)
        check(os.path.isfile(self.module), f"module not found: {self.module}")
        self.workdir = tempfile.mkdtemp(prefix="ratecore-nginx-tests.")
        os.chmod(self.workdir, 0o755)  # nginx workers run unprivileged when we are root

    def close(self, keep=False):
        for ngx in Nginx.instances:
            ngx.stop()
        if keep:
            print(f"prefixes kept in {self.workdir}")
        else:
            shutil.rmtree(self.workdir, ignore_errors=True)

    @staticmethod
    def log_tails(lines=8):
        """The error.log tails of every started nginx, for a failure's report."""
        return "\n".join(f"[{ngx.name} error.log tail]\n{ngx.log_tail(lines)}"
                         for ngx in Nginx.instances if ngx.started)

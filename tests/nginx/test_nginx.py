#!/usr/bin/env python3
"""Integration tests of ngx_http_ratecore_module against the packaged nginx, on 127.0.0.1
(a unittest suite; the harness is harness.py). Run by tests/nginx/run.sh, which builds the
module first:

    RATECORE_NGINX_MODULE=target/nginx/ngx_http_ratecore_module.so \\
        python3 tests/nginx/test_nginx.py -v [-k NAME]

Seed replays over HTTP (ev.energy, Uphold from the example config, Switch), every
directive option, 4 workers sharing exact counts, reload and `nginx -t` behaviour. Tests
share a few nginx servers and use keys of their own, so each runs alone too (`-k`).
"""

import functools
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import unittest

from harness import (HERE, INDEX_HTML, NOW_EARLY, NS, ROOT, Client, Env, Failure,
                     FixedWindows, Nginx, ceil_s, check, eq, expect_headers, free_port, iso,
                     mono, problem_json, reset_epochs, wait_for_window, wait_second_start,
                     wait_seconds, wall_offset)


TESTS = []


def test(fn):
    """Registers fn(env) as a test of NginxModuleTest (test_<name>)."""
    TESTS.append(fn)
    return fn


def seeds_nginx(env):
    if not hasattr(env, "_seeds"):
        with open(os.path.join(HERE, "conf", "seeds.conf")) as f:
            template = f.read()
        env._seeds = Nginx(env.workdir, "seeds", template, env.module, workers=2,
                           port_evenergy=free_port(), port_switch=free_port(),
                           port_backend=free_port()).start()
    return env._seeds


@test
def evenergy_seed_1000_per_rolling_hour(env):
    """ev.energy: 1000 requests per rolling hour per (app, user); x-ratelimit-* on every
    response, retry-after and the problem+json body on 429. The real quota (1000/h)."""
    ngx = seeds_nginx(env)
    c = Client(ngx.ports["port_evenergy"])
    h = {"X-OAuth-App": "app-1", "X-User": "alice"}
    first = None
    for i in range(1000):
        r = c.request("GET", "/v2/users/", h)
        first = first or r.t0
        eq(r.status, 200, f"request {i + 1}")
        expect_headers(r, [("x-ratelimit-limit", "1000"),
                           ("x-ratelimit-remaining", str(999 - i))], f"request {i + 1}")
    # 420 remaining after 580 requests, as in the seed's example, was checked on the way.
    r = c.request("GET", "/v2/users/", h)
    eq(r.status, 429, "request 1001")
    # Counts leave exactly one hour after the newest request of their sub-window: with
    # all 1000 inside a few seconds, the wait is 3600 s minus the time since the first.
    lo = ceil_s(3600 * NS - (r.t1 - (first - NOW_EARLY)))
    retry = r.header("retry-after")
    check(retry is not None and lo <= int(retry) <= 3600, f"retry-after {retry} not in [{lo}, 3600]")
    expect_headers(r, [("x-ratelimit-limit", "1000"), ("x-ratelimit-remaining", "0"),
                       ("retry-after", retry)], "request 1001")
    eq(r.header("Content-Type"), "application/problem+json", "content type")
    eq(r.body, problem_json("https://api.ev.energy/v2/problems/rate-limit-exceeded/",
                            "Too many requests", retry), "429 body")
    eq(r.header("X-Ratecore-Status"), "REJECTED", "$ratecore_status")
    # still denied, consuming nothing
    r = c.request("GET", "/v2/users/", h)
    eq(r.status, 429, "request 1002")
    # each (application, user) pair has its own hour
    r = c.request("GET", "/v2/users/", {"X-OAuth-App": "app-1", "X-User": "bob"})
    expect_headers(r, [("x-ratelimit-limit", "1000"), ("x-ratelimit-remaining", "999")], "bob")
    r = c.request("GET", "/v2/users/", {"X-OAuth-App": "app-2", "X-User": "alice"})
    expect_headers(r, [("x-ratelimit-limit", "1000"), ("x-ratelimit-remaining", "999")], "alice, app-2")
    eq(r.header("X-Ratecore-Status"), "PASSED", "$ratecore_status")
    # no application or no user: not limited, no headers
    r = c.request("GET", "/v2/users/", {"X-User": "alice"})
    eq((r.status, r.rate_headers()), (200, []), "no application")
    eq(r.header("X-Ratecore-Status"), "NO_KEY", "$ratecore_status without a key")
    c.close()


@test
def switch_seed_5_per_second_and_20_per_minute(env):
    """Switch: POST /api/readings 5/s AND 20/min per client, X-Rate-Limit-* (Reset in ISO
    8601 UTC), Retry-After and the plain-text sentence on 429; other endpoints unlimited."""
    ngx = seeds_nginx(env)
    c = Client(ngx.ports["port_switch"])
    model = FixedWindows({"per_second": (5, 1), "per_minute": (20, 60)})
    client = f"client-{os.getpid()}"
    h = {"X-Client-Id": client, "Content-Type": "application/json"}
    limits = [("per_second", client), ("per_minute", client)]
    subject = "Save readings API interface"

    def post(what):
        off = wall_offset()
        r = c.request("POST", "/api/readings", h, body=b'{"value": 1}')
        allowed, limit, remaining, end = model.decide(limits, r.t0, r.t1)
        expected = [("X-Rate-Limit-Limit", str(limit)), ("X-Rate-Limit-Remaining", str(remaining)),
                    ("X-Rate-Limit-Reset", {iso(e) for e in reset_epochs(end, off)})]
        if allowed:
            eq(r.status, 200, what)
            expect_headers(r, expected, what)
        else:
            eq(r.status, 429, what)
            expected.append(("Retry-After", wait_seconds(end, r)))
            expect_headers(r, expected, what)
            n = r.header("Retry-After")
            period = "1s" if limit == 5 else "1m"
            eq(r.header("Content-Type"), "text/plain; charset=utf-8", f"{what}: content type")
            eq(r.body, (f"{subject} quota exceeded. Maximum allowed is {limit} requests per "
                        f"{period}. Please try again in {n} second.").encode(), f"{what}: body")
        return r

    wait_for_window(60, 8, "Switch's minute")
    sent = 0
    for second in range(4):
        wait_second_start()
        for _ in range(5):
            r = post(f"second {second}, request {sent + 1}")
            sent += 1
        if second == 0:
            r = post("6th request in one second")
            eq(r.status, 429, "6th request in one second")
            eq(r.header("Retry-After"), "1", "Retry-After of the per-second limit")
        time.sleep(max(0, (NS - mono() % NS) / NS + 0.005))
    r = post("21st request in the minute")
    eq(r.status, 429, "21st request")
    check(b"Maximum allowed is 20 requests per 1m" in r.body, f"per-minute body: {r.body!r}")
    # other endpoints and methods are unlimited
    for method, path in (("GET", "/api/readings"), ("POST", "/api/meters"), ("GET", "/api/products")):
        r = c.request(method, path, h, body=b"{}" if method == "POST" else None)
        eq((r.status, r.rate_headers()), (200, []), f"{method} {path} is unlimited")
    # another client has its own limits
    r = c.request("POST", "/api/readings", {"X-Client-Id": client + "-other"}, body=b"{}")
    eq(r.status, 200, "another client")
    eq(r.header("X-Rate-Limit-Remaining"), "4", "another client")
    c.close()


def uphold_template(env):
    with open(os.path.join(ROOT, "ffi", "nginx", "examples", "uphold.conf")) as f:
        text = f.read()
    # The example as shipped, with its paths, ports and logs moved to the test prefix.
    text = re.sub(r"(?m)^load_module .*;$", "load_module @MODULE@;", text)
    text = re.sub(r"(?m)^worker_processes .*;$", "worker_processes 2;", text)
    text = re.sub(r"(?m)^pid .*;$", "pid @PREFIX@/logs/nginx.pid;", text)
    text = re.sub(r"(?m)^error_log .*;$", "error_log @PREFIX@/logs/error.log info;", text)
    text = re.sub(r"(?m)^(\s*)access_log .*;$", r"\1@HTTP@", text)
    text = text.replace("127.0.0.1:8080", "127.0.0.1:@PORT@").replace("127.0.0.1:8081", "127.0.0.1:@PORT_BACKEND@")
    for needle in ("@MODULE@", "@PORT@", "@PORT_BACKEND@", "@HTTP@", "@PREFIX@/logs/nginx.pid"):
        check(needle in text, f"uphold.conf no longer has the line that becomes {needle}")
    return text


@test
def uphold_seed_from_the_example_config(env):
    """Uphold (ffi/nginx/examples/uphold.conf itself): global per IP plus per-endpoint
    limits per IP and per account, X-RateLimit-* with Reset in epoch seconds, Retry-After
    and problem+json on 429; a denial consumes nothing."""
    template = uphold_template(env)
    ngx = Nginx(env.workdir, "uphold", template, env.module, port=free_port(), port_backend=free_port())
    ngx.start()
    port = ngx.ports["port"]
    model = FixedWindows({
        "global": (300, 300), "card_tx": (300, 300), "card_commit": (300, 300),
        "oauth_ip": (10, 60), "oauth_user": (10, 60),
        "pw_ip": (10, 600), "pw_user": (3, 300), "users_ip": (10, 600)})
    title = "Too Many Requests"
    clients = {}

    def req(ip, method, path, limits, account=None, what=""):
        c = clients.setdefault(ip, Client(port, ip))
        h = {"X-Account": account} if account else {}
        off = wall_offset()
        r = c.request(method, path, h, body=b"{}" if method == "POST" else None)
        allowed, limit, remaining, end = model.decide(limits, r.t0, r.t1)
        what = what or f"{ip} {method} {path}"
        expected = [("X-RateLimit-Limit", str(limit)), ("X-RateLimit-Remaining", str(remaining)),
                    ("X-RateLimit-Reset", reset_epochs(end, off))]
        if allowed:
            eq(r.status, 200, what)
            eq(r.body, b'{"ok":true}\n', f"{what}: proxied body")
        else:
            eq(r.status, 429, what)
            expected.append(("Retry-After", wait_seconds(end, r)))
            eq(r.header("Content-Type"), "application/problem+json", f"{what}: content type")
        expect_headers(r, expected, what)
        if not allowed:
            eq(r.body, problem_json("about:blank", title, r.header("Retry-After")), f"{what}: body")
        return r

    # the 5-minute windows end at every 10-minute window's end too: one wait covers both
    wait_for_window(300, 15, "Uphold's 5- and 10-minute windows")

    # the seed's example: a first request sees 300 / 299 / the window's end
    req("127.0.0.2", "GET", "/v0/ticker", [("global", "127.0.0.2")])

    # /password/forgot: 3 per 5 minutes per account, from any IP
    a = "foo@bar.com"
    for ip in ("127.0.0.3", "127.0.0.3", "127.0.0.3", "127.0.0.3", "127.0.0.4"):
        r = req(ip, "POST", "/password/forgot",
                [("global", ip), ("pw_ip", ip), ("pw_user", a)], account=a)
    eq(r.status, 429, "the account's 4th request, from another IP")
    eq(r.header("X-RateLimit-Limit"), "3", "the per-account limit decides")
    # the denials consumed nothing: 127.0.0.4 has all 300 of its global window but one
    req("127.0.0.4", "GET", "/v0/ticker", [("global", "127.0.0.4")])

    # /password/forgot: 10 per 10 minutes per IP, whatever the account
    ip = "127.0.0.5"
    for i in range(11):
        r = req(ip, "POST", "/password/forgot",
                [("global", ip), ("pw_ip", ip), ("pw_user", f"user{i}@example.com")],
                account=f"user{i}@example.com")
    eq((r.status, r.header("X-RateLimit-Limit")), (429, "10"), "11th request from one IP")
    # GET /password/forgot is not the limited endpoint: only the global limit applies
    req("127.0.0.6", "GET", "/password/forgot", [("global", "127.0.0.6")])

    # POST /users: 10 per 10 minutes per IP
    ip = "127.0.0.7"
    for i in range(11):
        r = req(ip, "POST", "/users", [("global", ip), ("users_ip", ip)])
    eq(r.status, 429, "11th POST /users")

    # card transactions and commits: 300 per 5 minutes per IP, besides the global one
    ip = "127.0.0.8"
    req(ip, "POST", "/cards/abc/transactions", [("global", ip), ("card_tx", ip)])
    req(ip, "POST", "/cards/abc/transactions/t1/commit", [("global", ip), ("card_commit", ip)])
    req(ip, "GET", "/cards/abc/transactions", [("global", ip)])

    # the global limit: 300 per 5 minutes per IP, everywhere
    ip = "127.0.0.9"
    for i in range(301):
        r = req(ip, "GET", f"/v0/ticker?i={i}", [("global", ip)])
    eq((r.status, r.header("X-RateLimit-Limit")), (429, "300"), "301st request")
    r = req(ip, "POST", "/users", [("global", ip), ("users_ip", ip)])
    eq(r.status, 429, "the global limit applies to POST /users too")

    # /oauth2/token: 10 per minute per IP and per account
    wait_for_window(60, 5, "Uphold's oauth2 minute")
    ip = "127.0.0.10"
    for i in range(11):
        r = req(ip, "POST", "/oauth2/token",
                [("global", ip), ("oauth_ip", ip), ("oauth_user", "app@example.com")],
                account="app@example.com")
    eq((r.status, r.header("X-RateLimit-Limit")), (429, "10"), "11th token request")
    for c in clients.values():
        c.close()
    ngx.assert_log_clean()
    check("limiting request by ratecore zone \"uphold_pw_forgot_user\"" in ngx.log_text(),
          "denials are logged (ratecore_log_level notice)")


LONG_DESCRIPTION = "The very long-winded " + "and ever so carefully described " * 30 + "API"


@test
def readme_links_the_example_config(env):
    """ffi/nginx/README.md links examples/uphold.conf (which the Uphold test runs) and
    pastes none of it, so the two cannot drift apart."""
    with open(os.path.join(ROOT, "ffi", "nginx", "README.md")) as f:
        readme = f.read()
    with open(os.path.join(ROOT, "ffi", "nginx", "examples", "uphold.conf")) as f:
        example = f.read()
    check("](examples/uphold.conf)" in readme, "the README links examples/uphold.conf")
    check("uphold_pw_forgot_user" in example, "examples/uphold.conf holds Uphold's zones")
    blocks = [b for b in re.findall(r"```nginx\n(.*?)```", readme, re.S) if "uphold_pw_forgot_user" in b]
    eq(len(blocks), 0, "Uphold nginx.conf blocks pasted into the README")


def count_down(c, path, headers, limit, what, style="X-RateLimit"):
    """`limit` admitted GETs of `path`, each reporting `limit` and one less left in the
    `style`-Limit and -Remaining headers; returns the answer to one more."""
    for i in range(limit):
        r = c.request("GET", path, headers)
        eq((r.status, r.header(f"{style}-Limit"), r.header(f"{style}-Remaining")),
           (200, str(limit), str(limit - 1 - i)), f"{what} {i + 1}")
    return c.request("GET", path, headers)


def features_test(fn):
    """Registers fn(ngx, c) as a test against the features server, with a fresh client
    that is closed when fn returns."""
    @test
    @functools.wraps(fn)
    def run(env):
        ngx = features_nginx(env)
        c = Client(ngx.ports["port"])
        try:
            fn(ngx, c)
        finally:
            c.close()
    return run


def features_nginx(env):
    if not hasattr(env, "_features"):
        with open(os.path.join(HERE, "conf", "features.conf")) as f:
            template = f.read()
        template = template.replace("@LONG_DESCRIPTION@", LONG_DESCRIPTION)
        env._features = Nginx(env.workdir, "features", template, env.module, workers=2,
                              port=free_port(), port_backend=free_port(), port_h2=free_port()).start()
    return env._features


@features_test
def ietf_headers_over_several_zones(ngx, c):
    """style=ietf: RateLimit-Policy and RateLimit list every quota of every zone; a
    denial by one zone consumes nothing from the others."""
    h = {"X-Key": "ietf-1"}
    policy = '"f_ietf_a/1";q=3;w=3600, "f_ietf_a/2";q=5;w=86400, "f_ietf_b";q=4;w=3600'
    for i in range(3):
        r = c.request("GET", "/ietf", h)
        eq(r.status, 200, f"request {i + 1}")
        expect_headers(r, [("RateLimit-Policy", policy),
                           ("RateLimit", f'"f_ietf_a/1";r={2 - i};t=3600, "f_ietf_a/2";r={4 - i};t=86400, '
                                         f'"f_ietf_b";r={3 - i};t=3600')], f"request {i + 1}")
    r = c.request("GET", "/ietf", h)
    eq(r.status, 429, "4th request")
    ratelimit = r.header("RateLimit") or ""
    check(re.fullmatch(r'"f_ietf_a/1";r=0;t=3\d{3}, "f_ietf_a/2";r=2;t=86\d{3}, "f_ietf_b";r=1;t=3\d{3}',
                       ratelimit), f"RateLimit after the denial: {ratelimit!r}")
    eq(r.header("Retry-After"), "3600", "Retry-After")
    eq(r.header("Content-Type"), "application/problem+json", "default body")
    # f_ietf_b was not charged for the denied request: one left
    r = c.request("GET", "/ietf_b", h)
    eq((r.status, r.header("RateLimit")), (200, '"f_ietf_b";r=0;t=3600'), "f_ietf_b alone")
    r = c.request("GET", "/ietf_b", h)
    eq(r.status, 429, "f_ietf_b exhausted")


@features_test
def dry_run_counts_and_logs_but_never_rejects(ngx, c):
    h = {"X-Key": "dry-1"}
    for i in range(4):
        r = c.request("GET", "/dry", h)
        eq(r.status, 200, f"dry run request {i + 1}")
        eq(r.rate_headers(), [], "a dry-run limit adds no headers")
        eq(r.header("X-Ratecore-Status"), "PASSED" if i < 2 else "REJECTED_DRY_RUN", f"request {i + 1}")
    check('limiting request, dry run, by ratecore zone "f_dry": limit 2, retry after' in ngx.log_text(),
          "dry-run denial logged")
    # a cost the dry-run zone can never admit: passed, and logged without a decision
    r = c.request("GET", "/drycost", {"X-Key": "dry-3", "X-Cost": "3"})
    eq((r.status, r.header("X-Ratecore-Status")), (200, "REJECTED_DRY_RUN"), "impossible cost, dry run")
    check('limiting request, dry run, by ratecore zone "f_dry": cost 3 exceeds what it can ever admit'
          in ngx.log_text(), "impossible dry-run cost logged")
    # enforcing + dry-run: the enforcing one decides and answers
    h = {"X-Key": "dry-2"}
    r = c.request("GET", "/drymix", h)
    eq((r.status, r.header("X-Ratecore-Status"), r.header("X-RateLimit-Remaining")), (200, "PASSED", "4"), "drymix 1")
    r = c.request("GET", "/drymix", h)
    eq((r.status, r.header("X-Ratecore-Status"), r.header("X-RateLimit-Remaining")),
       (200, "REJECTED_DRY_RUN", "3"), "drymix 2")


@features_test
def status_and_body_options(ngx, c):
    """status=503 body=none; body=nginx with error_page; style=none; HEAD; a POST body
    discarded on a denial with the connection kept alive."""
    h = {"X-Key": "status-1"}
    eq(c.request("GET", "/s503", h).status, 200, "first")
    r = c.request("GET", "/s503", h)
    eq((r.status, r.body, r.header("Content-Length")), (503, b"", "0"), "status=503 body=none")
    expect_headers(r, [("x-ratelimit-limit", "1"), ("x-ratelimit-remaining", "0"),
                       ("retry-after", "3600")], "503 headers")
    r = c.request("HEAD", "/s503", h)
    eq((r.status, r.body), (503, b""), "HEAD denied")
    h = {"X-Key": "status-2"}
    eq(c.request("GET", "/nginxpage", h).status, 200, "first")
    r = c.request("GET", "/nginxpage", h)
    eq((r.status, r.body), (429, b"custom 429 page\n"), "body=nginx goes through error_page")
    eq(r.header("Retry-After"), "3600", "the style's headers stay on nginx's page")
    # style=none: no rate-limit header on either answer, and nginx's own page (as limit_req)
    h = {"X-Key": "status-none"}
    for i, status in enumerate([200, 429]):
        r = c.request("GET", "/noheaders", h)
        eq(r.status, status, f"style=none request {i + 1}")
        eq(r.rate_headers(), [], f"style=none request {i + 1}: no rate-limit headers")
    check(b"<center>nginx" in r.body, f"style=none denies with nginx's page: {r.body!r}")
    h = {"X-Key": "status-3", "Content-Type": "application/octet-stream"}
    eq(c.request("POST", "/post", h, body=b"x" * 100).status, 200, "first POST")
    for i in range(3):
        r = c.request("POST", "/post", h, body=b"y" * 200_000)
        eq(r.status, 429, f"denied POST {i + 1} (body discarded)")
        check(b"Maximum allowed is 1 requests per 1h" in r.body, f"switch-style text body: {r.body!r}")
    r = c.request("GET", "/off", h)
    eq(r.status, 200, "the same connection still works after denied POSTs")
    h = {"X-Key": "long-1"}
    eq(c.request("GET", "/longtext", h).status, 200, "first")
    r = c.request("GET", "/longtext", h)
    eq(r.body, (f"{LONG_DESCRIPTION} quota exceeded. Maximum allowed is 1 requests per 1h. "
                f"Please try again in 3600 second.").encode(), "a body longer than the first buffer")


@features_test
def text_body_names_the_denying_quota_of_a_zone(ngx, c):
    """With two limits, a denial found by peeking a two-quota zone names that zone's
    denying quota (2 per 1h, not 5 per 1d) in Switch's sentence."""
    h = {"X-Key": "pair-1"}
    r = count_down(c, "/pair", h, 2, "request", style="X-Rate-Limit")
    eq(r.status, 429, "3rd request")
    eq(r.body, f"Pair API quota exceeded. Maximum allowed is 2 requests per 1h. Please try again in "
               f"{r.header('Retry-After')} second.".encode(), "body")
    check(r.header("Retry-After") in {"3599", "3600"}, f"Retry-After {r.header('Retry-After')}")


@features_test
def costs_constant_variable_invalid_and_impossible(ngx, c):
    key = {"X-Key": "cost-1"}
    r = c.request("GET", "/cost", {**key, "X-Cost": "4"})
    eq((r.status, r.header("X-RateLimit-Remaining")), (200, "6"), "cost 4")
    r = c.request("GET", "/cost3", key)
    eq((r.status, r.header("X-RateLimit-Remaining")), (200, "3"), "cost=3")
    r = c.request("GET", "/cost", {**key, "X-Cost": "4"})
    eq((r.status, r.header("X-RateLimit-Remaining")), (429, "3"), "cost 4 with 3 left: denied")
    r = c.request("GET", "/cost", {**key, "X-Cost": "3"})
    eq((r.status, r.header("X-RateLimit-Remaining")), (200, "0"), "cost 3 with 3 left")
    r = c.request("GET", "/cost", {**key, "X-Cost": "0"})
    eq((r.status, r.header("X-RateLimit-Remaining")), (200, "0"), "cost 0 only reports")
    r = c.request("GET", "/cost", {**key, "X-Cost": "lots"})
    eq(r.status, 429, "an invalid cost counts as 1")
    check('[info]' in next(l for l in ngx.log_text().splitlines() if 'invalid cost "lots"' in l),
          "invalid cost logged, at info")
    r = c.request("GET", "/cost", {"X-Key": "cost-3"})
    eq((r.status, r.header("X-RateLimit-Remaining")), (200, "9"), "no cost header counts as 1")
    check('invalid cost "" for zone "f_cost"' in ngx.log_text(), "absent cost logged")
    r = c.request("GET", "/cost", {"X-Key": "cost-2", "X-Cost": "11"})
    eq(r.status, 429, "a cost above the limit can never pass")
    check('cost 11 exceeds what zone "f_cost" can ever admit' in ngx.log_text(), "impossible cost logged")
    r = c.request("GET", "/cost", {"X-Key": "cost-2", "X-Cost": "99999999999999999999999"})
    eq(r.status, 429, "a cost beyond 64 bits is as impossible")
    r = c.request("GET", "/cost", {"X-Key": "cost-2", "X-Cost": "10"})
    eq((r.status, r.header("X-RateLimit-Remaining")), (200, "0"), "cost 10 of 10")


@features_test
def internal_redirect_counts_once_and_inheritance(ngx, c):
    h = {"X-Key": "redirect-1"}
    for i in range(3):
        r = c.request("GET", "/redirect", h)
        eq(r.status, 200, "redirected")
        eq(r.body, INDEX_HTML, "served by the redirect target")
        expect_headers(r, [("X-RateLimit-Limit", "100"), ("X-RateLimit-Remaining", str(99 - i)),
                           ("X-RateLimit-Reset", {str(ceil_s(time.time_ns() + d * NS)) for d in range(3595, 3602)})],
                       f"/redirect {i + 1}: one count, one set of headers")
    r = c.request("GET", "/index.html", h)
    eq(r.header("X-RateLimit-Remaining"), "96", "the target location counts its own requests")
    r = c.request("GET", "/inherited", {"X-Key": "inherit-1"})
    eq(r.header("RateLimit"), '"f_server";r=49;t=3600', "server-level ratecore_limit inherited")
    r = c.request("GET", "/off", {"X-Key": "inherit-1"})
    eq((r.rate_headers(), r.header("X-Ratecore-Status")), ([], None), "ratecore_limit off")
    r = c.request("GET", "/inherited")
    eq((r.rate_headers(), r.header("X-Ratecore-Status")), ([], "NO_KEY"), "empty key: not limited")


LATE_ZONES_CONF = """@MAIN@
http {
    @HTTP@
    # used before their ratecore_zone lines: zones are resolved after the http block
    ratecore_limit zone=late_http key=$http_x_key style=uphold;

    server {
        listen 127.0.0.1:@PORT@;
        root @PREFIX@/html;
        add_header X-Ratecore-Status $ratecore_status always;

        location /own {
            ratecore_limit zone=late_loc key=k:$http_x_key style=uphold;
        }
    }

    ratecore_zone name=late_http size=1m algorithm=fixed_window limit=2 period=1h;
    ratecore_zone name=late_loc size=1m algorithm=gcra limit=5 period=1h;
}
"""


@test
def zones_may_be_declared_after_use(env):
    """ratecore_limit may name a zone declared later in the http block (resolved at
    postconfiguration); an unknown zone is reported with the directive's file and line."""
    ngx = Nginx(env.workdir, "latezones", LATE_ZONES_CONF, env.module, port=free_port()).start()
    c = Client(ngx.ports["port"])
    h = {"X-Key": "late-1"}
    r = count_down(c, "/index.html", h, 2, "http-level limit, request")
    eq((r.status, r.header("X-Ratecore-Status")), (429, "REJECTED"), "http-level limit, request 3")
    r = c.request("GET", "/own/", h)
    eq((r.header("X-RateLimit-Limit"), r.header("X-RateLimit-Remaining")), ("5", "4"),
       "location-level limit on a zone declared after it")
    ngx.assert_log_clean()
    ngx.stop()
    bad = LATE_ZONES_CONF.replace("zone=late_loc key", "zone=nowhere key")
    path = os.path.join(ngx.prefix, "bad.conf")
    ngx.write_conf(bad, path)
    line = ngx.render(bad).splitlines().index(
        next(l for l in ngx.render(bad).splitlines() if "zone=nowhere" in l)) + 1
    r = ngx.run("-t", conf=path)
    check(r.returncode == 1 and
          f'unknown ratecore_zone "nowhere" (declare it with ratecore_zone in the http block) '
          f"in {path}:{line}" in r.stderr, f"unknown zone, line {line}: {r.stderr}")


@features_test
def algorithms_and_full_tables(ngx, c):
    # GCRA 2/h with a burst of 3: three at once, then one every 30 minutes
    h = {"X-Key": "gcra-1"}
    r = count_down(c, "/gcra", h, 3, "gcra")
    eq((r.status, r.header("Retry-After")), (429, "1800"), "gcra: one more in 30 minutes")
    # approximate sliding window
    h = {"X-Key": "approx-1"}
    got = [c.request("GET", "/approx", h).status for _ in range(4)]
    eq(got, [200, 200, 200, 429], "sliding_window 3/h")
    # a full table: capacity 8, when_full=deny refuses a 9th active key, allow admits it
    for i in range(8):
        eq(c.request("GET", "/full_deny", {"X-Key": f"full-{i}"}).status, 200, f"key {i}")
        eq(c.request("GET", "/full_allow", {"X-Key": f"full-{i}"}).status, 200, f"key {i}")
    eq(c.request("GET", "/full_deny", {"X-Key": "full-8"}).status, 429, "when_full=deny")
    eq(c.request("GET", "/full_allow", {"X-Key": "full-8"}).status, 200, "when_full=allow")
    # when_full=allow admits an untracked key every time; when_full=evict makes room for
    # it, so the new key is tracked (1 per hour: its second request is denied)
    eq(c.request("GET", "/full_allow", {"X-Key": "full-8"}).status, 200, "when_full=allow, again")
    for i in range(8):
        eq(c.request("GET", "/full_evict", {"X-Key": f"full-{i}"}).status, 200, f"evict: key {i}")
    eq(c.request("GET", "/full_evict", {"X-Key": "full-8"}).status, 200, "when_full=evict: admitted")
    eq(c.request("GET", "/full_evict", {"X-Key": "full-8"}).status, 429, "when_full=evict: tracked")
    # quota=...:burst= on a two-quota zone: the GCRA quota's burst of 3 decides
    h = {"X-Key": "qburst-1"}
    r = count_down(c, "/qburst", h, 3, "qburst")
    eq((r.status, r.header("Retry-After")), (429, "1800"), "qburst: the burst is spent")


@features_test
def subrequests_are_not_limited_and_log_levels(ngx, c):
    """An auth_request subrequest to a limited location consumes nothing (only main
    requests are limited, as limit_req does); ratecore_log_level sets the level of the
    denial log line (default error)."""
    h = {"X-Key": "sub-1"}
    for i in range(3):
        eq(c.request("GET", "/authed", h).status, 200, f"request {i + 1} through auth_request")
    eq(c.request("GET", "/auth_sub", h).status, 200, "the limited location itself: its 1 left")
    eq(c.request("GET", "/auth_sub", h).status, 429, "then denied")
    h = {"X-Key": "loglevel-1"}
    eq(c.request("GET", "/loglevel", h).status, 200, "loglevel 1")
    eq(c.request("GET", "/loglevel", h).status, 429, "loglevel 2")
    lines = ngx.log_text().splitlines()
    warn = [l for l in lines if 'limiting request by ratecore zone "f_loglvl"' in l]
    check(warn and all("[warn]" in l for l in warn), f"ratecore_log_level warn: {warn}")
    default = [l for l in lines if 'limiting request by ratecore zone "f_sub"' in l]
    check(default and all("[error]" in l for l in default), f"default level error: {default}")


@test
def odd_keys_and_requests_do_not_hurt(env):
    """Long, binary and odd keys, odd methods, many headers: answers, never a crash."""
    ngx = features_nginx(env)
    c = Client(ngx.ports["port"])
    long_key = "k" * 7000
    r = c.request("GET", "/ietf_b", {"X-Key": long_key})
    eq(r.status, 200, "a 7000-byte key")
    r = c.request("GET", "/ietf_b", {"X-Key": "\u00e9t\u00e9".encode("latin-1").decode("latin-1")})
    eq(r.status, 200, "a non-UTF-8 key")
    # a raw request with a binary header value
    s = socket.create_connection(("127.0.0.1", ngx.ports["port"]), timeout=10)
    s.sendall(b"GET /ietf_b HTTP/1.1\r\nHost: x\r\nX-Key: \x01\x02\xff\xfe\r\nConnection: close\r\n\r\n")
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    check(data.startswith(b"HTTP/1.1 200"), f"binary key: {data[:80]!r}")
    for method in ("OPTIONS", "DELETE", "PUT", "PATCH"):
        r = c.request(method, "/redirect", {"X-Key": "method-" + method})
        check(r.status < 500, f"{method}: {r.status}")
    c.close()
    ngx.assert_log_clean()


@test
def http2_answers_with_the_same_headers_and_body(env):
    """Over HTTP/2 (h2c, curl --http2-prior-knowledge) the headers arrive lower-cased, as
    HTTP/2 requires, with the same values, and the 429 body is the same."""
    curl = shutil.which("curl")
    check(curl, "curl is not installed (tests/nginx/run.sh installs it)")
    ngx = features_nginx(env)
    url = f"http://127.0.0.1:{ngx.ports['port_h2']}/index.html"
    outs = []
    for _ in range(3):
        r = subprocess.run([curl, "-s", "-i", "--http2-prior-knowledge", "--max-time", "10", url],
                           capture_output=True, timeout=20)
        eq(r.returncode, 0, f"curl: {r.stderr!r}")
        outs.append(r.stdout.replace(b"\r\n", b"\n"))
    for i, (out, status, remaining) in enumerate(zip(outs, (b"200", b"200", b"429"), (b"1", b"0", b"0"))):
        head, _, body = out.partition(b"\n\n")
        head += b"\n"
        check(head.startswith(b"HTTP/2 " + status), f"request {i + 1}: {head[:40]!r}")
        check(b"\nx-rate-limit-limit: 2\n" in head and b"\nx-rate-limit-remaining: " + remaining + b"\n" in head,
              f"request {i + 1} headers:\n{head.decode(errors='replace')}")
    head, _, body = outs[2].partition(b"\n\n")
    head += b"\n"
    m = re.search(rb"\nretry-after: (\d+)\n", head)
    check(m and 3595 <= int(m.group(1)) <= 3600, f"retry-after over HTTP/2: {head!r}")
    eq(body, b"H2 API quota exceeded. Maximum allowed is 2 requests per 1h. Please try again in "
             + m.group(1) + b" second.", "429 body over HTTP/2")


@test
def four_workers_share_one_table_exactly(env):
    """4 worker processes, 100 per hour on one key, 20 concurrent clients x 50 requests
    each: exactly 100 admissions, for every algorithm. Then the same load on a location
    with two limits (per IP 1000/h, per account 100/h): exactly 100 admissions, and the
    IP's count holds exactly those 100 (denials, including ones decided by a race after
    the IP was charged, consume nothing)."""
    with open(os.path.join(HERE, "conf", "concurrency.conf")) as f:
        template = f.read()
    ngx = Nginx(env.workdir, "concurrency", template, env.module, workers=4, port=free_port()).start()
    port = ngx.ports["port"]
    wait_for_window(3600, 20, "the fixed window's hour")
    for algorithm in ("gcra", "fixed", "approx", "strict", "pair"):
        counts = {}
        workers = set()
        errors = []
        lock = threading.Lock()
        barrier = threading.Barrier(20)

        def client(n):
            c = Client(port)
            local = {}
            pids = set()
            try:
                barrier.wait(timeout=10)
                for _ in range(50):
                    r = c.request("GET", f"/{algorithm}", {"X-Key": "one-key", "X-Ip": "one-ip"})
                    local[r.status] = local.get(r.status, 0) + 1
                    pids.add(r.header("X-Worker"))
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(repr(e))
            finally:
                c.close()
            with lock:
                for k, v in local.items():
                    counts[k] = counts.get(k, 0) + v
                workers.update(pids)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(20)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        check(not any(t.is_alive() for t in threads), f"{algorithm}: clients did not finish")
        check(not errors, f"{algorithm}: client errors: {errors[:3]}")
        eq(counts, {200: 100, 429: 900}, f"{algorithm}: admissions out of 1000")
        print(f"    {algorithm}: 100 admitted, 900 rejected, 1000 requests in "
              f"{time.monotonic() - t0:.2f} s, served by {len(workers)} workers")
        check(len(workers) >= 2, f"{algorithm}: only {len(workers)} worker answered")
    # The IP's fixed window holds exactly the 100 admissions: this request is its 101st.
    r = Client(port).request("GET", "/pair_ip", {"X-Ip": "one-ip"})
    eq((r.status, r.header("X-RateLimit-Remaining")), (200, "899"),
       "the per-IP count after the two-limit run")
    ngx.assert_log_clean()
    ngx.stop()


RELOAD_TEMPLATE = """
@MAIN@
http {
    @HTTP@
    ratecore_zone name=kept size=1m algorithm=sliding_window_strict limit=%(limit)s period=1h;
    server {
        listen 127.0.0.1:@PORT@;
        root @PREFIX@/html;
        add_header X-Generation %(generation)s always;
        location / { ratecore_limit zone=kept key=$http_x_key style=uphold; }
    }
}
"""


@test
def reload_keeps_counts_and_refuses_a_changed_zone(env):
    ngx = Nginx(env.workdir, "reload", RELOAD_TEMPLATE % {"limit": 10, "generation": 1},
                env.module, workers=2, port=free_port()).start()
    c = Client(ngx.ports["port"])
    h = {"X-Key": "reload"}

    def get():
        return c.request("GET", "/", h)

    def wait_generation(gen):
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            c.close()  # old workers finish their keep-alive connections
            r = c.request("GET", "/", {})  # no key: counts nothing
            if r.header("X-Generation") == str(gen):
                return
            time.sleep(0.05)
        raise Failure(f"generation {gen} never answered")

    for i in range(4):
        eq(get().header("X-RateLimit-Remaining"), str(9 - i), f"before reload {i + 1}")
    # 1. a reload with the zone unchanged: the counts go on
    ngx.write_conf(RELOAD_TEMPLATE % {"limit": 10, "generation": 2})
    ngx.reload()
    wait_generation(2)
    eq(get().header("X-RateLimit-Remaining"), "5", "after reload: counting continues")
    # 2. the same zone (name and size) with another limit: refused, the old config runs on
    ngx.write_conf(RELOAD_TEMPLATE % {"limit": 20, "generation": 3})
    eq(ngx.run("-t").returncode, 0, "nginx -t cannot see a reload conflict")
    ngx.reload()
    deadline = time.monotonic() + 10
    while 'ratecore_zone "kept" changed its quotas' not in ngx.log_text():
        check(time.monotonic() < deadline, "the refused reload was not logged:\n" + ngx.log_tail())
        time.sleep(0.05)
    time.sleep(0.3)
    check(ngx.alive(), "the master survived the refused reload")
    r = get()
    eq((r.header("X-Generation"), r.header("X-RateLimit-Limit"), r.header("X-RateLimit-Remaining")),
       ("2", "10", "4"), "the old configuration still answers, counts intact")
    # 3. a changed size is a new zone: a fresh table with the new quota
    ngx.write_conf((RELOAD_TEMPLATE % {"limit": 20, "generation": 4}).replace("size=1m", "size=2m"))
    ngx.reload()
    wait_generation(4)
    r = get()
    eq((r.header("X-RateLimit-Limit"), r.header("X-RateLimit-Remaining")), ("20", "19"), "fresh table")
    c.close()
    bad = [l for l in ngx.log_text().splitlines() if re.search(r"\[(alert|crit)\]|core dumped|exited on signal", l)]
    check(not bad, "no crash:\n" + "\n".join(bad))
    ngx.stop()


BAD_CONFIGS = [
    ("unknown algorithm",
     "ratecore_zone name=z size=1m algorithm=leaky_bucket limit=1 period=1s;",
     'ratecore_zone: invalid algorithm="leaky_bucket" (expected gcra, fixed_window, sliding_window or sliding_window_strict)'),
    ("bad duration",
     "ratecore_zone name=z size=1m algorithm=gcra limit=10 period=5x;",
     'ratecore_zone: invalid period="5x" (expected an nginx time such as 500ms, 10s, 5m, 1h or 1d)'),
    ("bad size",
     "ratecore_zone name=z size=lots algorithm=gcra limit=10 period=1s;",
     'ratecore_zone: invalid size="lots"'),
    ("zero limit",
     "ratecore_zone name=z size=1m algorithm=fixed_window limit=0 period=1s;",
     'ratecore_zone "z": quota 1 (fixed_window, limit 0 per 1000 ms) is invalid: quota limit must be at least 1'),
    ("limit above 1 per ns",
     "ratecore_zone name=z size=1m algorithm=gcra limit=5000000 period=1ms;",
     "quota period is shorter than its limit"),
    ("burst on a window",
     "ratecore_zone name=z size=1m algorithm=fixed_window limit=5 period=1s burst=3;",
     'ratecore_zone "z": quota 1: burst= applies only to algorithm gcra'),
    ("bad quota=",
     "ratecore_zone name=z size=1m quota=fixed_window:5;",
     'ratecore_zone "z": invalid quota="fixed_window:5" (expected quota=<algorithm>:<limit>/<period>'),
    ("quota= before name=",
     "ratecore_zone size=1m quota=gcra:ten/1s name=late;",
     'ratecore_zone "late": quota="gcra:ten/1s": invalid limit "ten" (expected a whole number)'),
    ("five quotas",
     "ratecore_zone name=z size=1m quota=gcra:1/1s quota=gcra:2/1s quota=gcra:3/1s quota=gcra:4/1s quota=gcra:5/1s;",
     "ratecore_zone: at most 4 quota= per zone"),
    ("unknown zone parameter",
     "ratecore_zone name=z size=1m algorithm=gcra limit=1 period=1s colour=blue;",
     'ratecore_zone: unknown parameter "colour=blue"'),
    ("zone too small for its capacity",
     "ratecore_zone name=z size=64k algorithm=fixed_window limit=10 period=1m capacity=1000000;",
     'ratecore_zone "z": size=65536 is too small: capacity=1000000 needs a'),
    ("zone too small for any table",
     "ratecore_zone name=z size=32k algorithm=sliding_window_strict limit=10 period=1h sub_windows=4096;",
     'ratecore_zone "z": size=32768 is too small: the smallest table (8 keys) needs'),
    ("duplicate zone",
     "ratecore_zone name=z size=1m algorithm=gcra limit=1 period=1s;\n"
     "ratecore_zone name=z size=1m algorithm=gcra limit=2 period=1s;",
     'duplicate ratecore_zone "z"'),
    ("unknown zone",
     "server { listen 127.0.0.1:@PORT@; location / { ratecore_limit zone=nope key=$binary_remote_addr; } }",
     'ratecore_limit: unknown ratecore_zone "nope" (declare it with ratecore_zone in the http block) '
     'in '),
    ("missing key",
     "ratecore_zone name=z size=1m algorithm=gcra limit=1 period=1s;\n"
     "server { listen 127.0.0.1:@PORT@; location / { ratecore_limit zone=z; } }",
     "ratecore_limit: key= is required"),
    ("bad status",
     "ratecore_zone name=z size=1m algorithm=gcra limit=1 period=1s;\n"
     "server { listen 127.0.0.1:@PORT@; location / { ratecore_limit zone=z key=$uri status=200; } }",
     'ratecore_limit: invalid status="200" (expected 400 to 599)'),
    ("bad style",
     "ratecore_zone name=z size=1m algorithm=gcra limit=1 period=1s;\n"
     "server { listen 127.0.0.1:@PORT@; location / { ratecore_limit zone=z key=$uri style=github; } }",
     'ratecore_limit: invalid style="github" (expected evenergy, uphold, switch or ietf)'),
    ("unquoted description with spaces",
     "ratecore_zone name=z size=1m algorithm=gcra limit=1 period=1s;\n"
     "server { listen 127.0.0.1:@PORT@; location / { ratecore_limit zone=z key=$uri description=Save readings; } }",
     'ratecore_limit: unknown parameter "readings" (a description with spaces is written "description=...", quoted whole)'),
    ("two styles in one location",
     "ratecore_zone name=z size=1m algorithm=gcra limit=1 period=1s;\n"
     "server { listen 127.0.0.1:@PORT@; location / { ratecore_limit zone=z key=$uri style=uphold;"
     " ratecore_limit zone=z key=$host style=switch; } }",
     "ratecore_limit: every ratecore_limit at one level must use the same style="),
    ("bad cost",
     "ratecore_zone name=z size=1m algorithm=gcra limit=1 period=1s;\n"
     "server { listen 127.0.0.1:@PORT@; location / { ratecore_limit zone=z key=$uri cost=-1; } }",
     'ratecore_limit: invalid cost="-1"'),
    ("fixed cost above the limit",
     "ratecore_zone name=z size=1m algorithm=fixed_window limit=5 period=1s;\n"
     "server { listen 127.0.0.1:@PORT@; location / { ratecore_limit zone=z key=$uri cost=6; } }",
     'ratecore_limit: cost=6 exceeds what zone "z" can ever admit (its quota 5 per 1000 ms takes at '
     'most 5 at once) in '),
    ("fixed cost above a later quota's gcra burst",
     "ratecore_zone name=z size=1m quota=fixed_window:100/1m quota=gcra:5/1s:burst=2;\n"
     "server { listen 127.0.0.1:@PORT@; location / { ratecore_limit zone=z key=$uri cost=3; } }",
     'ratecore_limit: cost=3 exceeds what zone "z" can ever admit (its quota 5 per 1000 ms takes at '
     'most 2 at once) in '),
    ("zone in a server block",
     "server { listen 127.0.0.1:@PORT@; ratecore_zone name=z size=1m algorithm=gcra limit=1 period=1s; }",
     '"ratecore_zone" directive is not allowed here'),
]


@test
def bad_configs_fail_nginx_t_with_clear_messages(env):
    ngx = Nginx(env.workdir, "badconf", "@MAIN@\nhttp {\n    @HTTP@\n}\n", env.module, port=free_port())
    failures = []
    for name, snippet, message in BAD_CONFIGS:
        template = "@MAIN@\nhttp {\n    @HTTP@\n" + snippet + "\n}\n"
        path = os.path.join(ngx.prefix, "bad.conf")
        ngx.write_conf(template, path)
        r = ngx.run("-t", conf=path)
        if r.returncode != 1:
            failures.append(f"{name}: exit code {r.returncode}: {r.stderr}")
        elif "[emerg]" not in r.stderr or message not in r.stderr or "test failed" not in r.stderr:
            failures.append(f"{name}: expected {message!r} in:\n{r.stderr}")
    check(not failures, "\n".join(failures))
    # the size asked for by the "too small" message is enough: nginx starts with it
    small = dict((n, s) for n, s, _ in BAD_CONFIGS)["zone too small for its capacity"]
    path = os.path.join(ngx.prefix, "bad.conf")
    ngx.write_conf("@MAIN@\nhttp {\n    @HTTP@\n" + small + "\n}\n", path)
    m = re.search(r"use size=(\d+)k or more", ngx.run("-t", conf=path).stderr)
    check(m, "the too-small message names a size")
    good = ("@MAIN@\nhttp {\n    @HTTP@\n" + small.replace("size=64k", f"size={m.group(1)}k") +
            "\nserver { listen 127.0.0.1:@PORT@; location / { ratecore_limit zone=z key=$uri; } }\n}\n")
    ngx.write_conf(good)
    ngx.start()
    r = Client(ngx.ports["port"]).request("GET", "/")
    check(r.header("RateLimit") is not None, "the zone of the suggested size works")
    ngx.stop()
    # a kilobyte less than needed is refused by the size check, not by a crash at start
    ngx.write_conf(good.replace(f"size={m.group(1)}k", f"size={int(m.group(1)) - 4}k"))
    r = ngx.run("-t")
    check(r.returncode == 1 and "is too small" in r.stderr, f"4k less: {r.stderr}")


ENV = None


def setUpModule():
    global ENV
    module = os.environ.get("RATECORE_NGINX_MODULE")
    if not module:
        raise unittest.SkipTest("RATECORE_NGINX_MODULE is not set (tests/nginx/run.sh sets it)")
    ENV = Env(module)


def tearDownModule():
    if ENV is not None:
        ENV.close(keep=bool(os.environ.get("RATECORE_NGINX_KEEP")))


class NginxModuleTest(unittest.TestCase):
    """One test per registered function, in the order they are written."""


def _method(fn):
    def run(self):
        try:
            fn(ENV)
        except BaseException:
            print(f"\n{fn.__name__} failed; " + ENV.log_tails(), file=sys.stderr)
            raise
        finally:
            Client.close_all()
    run.__name__ = f"test_{fn.__name__}"
    run.__doc__ = fn.__doc__
    return run


for _fn in TESTS:
    setattr(NginxModuleTest, f"test_{_fn.__name__}", _method(_fn))


if __name__ == "__main__":
    unittest.main()

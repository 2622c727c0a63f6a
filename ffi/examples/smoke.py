#!/usr/bin/env python3
"""Smoke test: another language loads ratecore's shared library with ctypes.

    python3 ffi/examples/smoke.py [path/to/libratecore_ffi.so]

Without an argument the library is looked up in $RATECORE_LIB, then in
target/release and target/debug of the repository. Exits nonzero on any failure.
"""

import ctypes
import os
import sys
from pathlib import Path

SECOND = 1_000_000_000

# Values from include/ratecore.h.
STATUS_OK = 0
STATUS_NULL_POINTER = 1
STATUS_ZERO_LIMIT = 101
STATUS_COST_EXCEEDS_LIMIT = 201
ALGORITHM_GCRA = 1
ALGORITHM_FIXED_WINDOW = 2
ALGORITHM_SLIDING_WINDOW_STRICT = 4
FULL_POLICY_DENY = 1


def fields(ctype, *names):
    """ctypes `_fields_` entries: each of `names` of type `ctype`, in declaration order."""
    return [(name, ctype) for name in names]


class Quota(ctypes.Structure):
    _fields_ = fields(ctypes.c_uint64, "limit", "period_ns", "burst") + fields(
        ctypes.c_uint32, "algorithm", "sub_windows"
    )


class Decision(ctypes.Structure):
    _fields_ = fields(ctypes.c_bool, "allowed") + fields(
        ctypes.c_uint64, "limit", "remaining", "reset_after_ns", "retry_after_ns"
    )


class TableStats(ctypes.Structure):
    _fields_ = fields(
        ctypes.c_uint64,
        "occupied",
        "new_keys",
        "reclaims",
        "evictions",
        "full_neighbourhoods",
        "full_denied",
        "full_allowed",
        "contended",
        "stale_claims",
        "relocations",
    )


def find_library() -> Path:
    if len(sys.argv) > 1:
        return Path(sys.argv[1])
    if os.environ.get("RATECORE_LIB"):
        return Path(os.environ["RATECORE_LIB"])
    root = Path(__file__).resolve().parents[2]
    for profile in ("release", "debug"):
        candidate = root / "target" / profile / "libratecore_ffi.so"
        if candidate.exists():
            return candidate
    sys.exit("smoke.py: libratecore_ffi.so not found; build with cargo build --release -p ratecore-ffi")


def load(path: Path) -> ctypes.CDLL:
    lib = ctypes.CDLL(str(path))
    status = ctypes.c_uint32
    limiter_p = ctypes.c_void_p
    table_p = ctypes.c_void_p
    signatures = {
        "ratecore_version": ([], ctypes.c_char_p),
        "ratecore_status_message": ([ctypes.c_uint32], ctypes.c_char_p),
        "ratecore_limiter_new": (
            [ctypes.POINTER(Quota), ctypes.c_size_t, ctypes.POINTER(limiter_p)],
            status,
        ),
        "ratecore_limiter_check": (
            [limiter_p, ctypes.c_uint64, ctypes.c_uint64, ctypes.POINTER(Decision)],
            status,
        ),
        "ratecore_limiter_peek": (
            [limiter_p, ctypes.c_uint64, ctypes.c_uint64, ctypes.POINTER(Decision)],
            status,
        ),
        "ratecore_limiter_free": ([limiter_p], None),
        "ratecore_table_new": (
            [
                ctypes.POINTER(Quota),
                ctypes.c_size_t,
                ctypes.c_uint64,
                ctypes.c_uint32,
                ctypes.POINTER(table_p),
            ],
            status,
        ),
        "ratecore_table_check": (
            [
                table_p,
                ctypes.c_char_p,
                ctypes.c_size_t,
                ctypes.c_uint64,
                ctypes.c_uint64,
                ctypes.POINTER(Decision),
            ],
            status,
        ),
        "ratecore_table_get_stats": ([table_p, ctypes.POINTER(TableStats)], status),
        "ratecore_table_free": ([table_p], None),
    }
    for name, (argtypes, restype) in signatures.items():
        function = getattr(lib, name)
        function.argtypes = argtypes
        function.restype = restype
    return lib


def main() -> int:
    path = find_library()
    lib = load(path)
    failures = []

    def expect(ok: bool, what: str) -> None:
        if not ok:
            failures.append(what)
            print(f"smoke.py: FAILED: {what}", file=sys.stderr)

    version = lib.ratecore_version().decode()
    print(f"smoke.py: loaded {path} (ratecore {version})")
    expect(version.count(".") == 2, "version is MAJOR.MINOR.PATCH")
    expect(lib.ratecore_status_message(STATUS_OK) == b"success", "status message")

    # A GCRA limiter: 3 per second, decided at a frozen instant.
    quota = Quota(limit=3, period_ns=SECOND, burst=0, algorithm=ALGORITHM_GCRA, sub_windows=0)
    limiter = ctypes.c_void_p()
    expect(lib.ratecore_limiter_new(ctypes.byref(quota), 1, ctypes.byref(limiter)) == STATUS_OK, "limiter_new")
    decision = Decision()
    allowed = []
    for _ in range(4):
        expect(lib.ratecore_limiter_check(limiter, SECOND, 1, ctypes.byref(decision)) == STATUS_OK, "check")
        allowed.append(decision.allowed)
    expect(allowed == [True, True, True, False], f"3 of 4 admitted, got {allowed}")
    expect(decision.retry_after_ns == 333_333_334, f"retry after one interval, got {decision.retry_after_ns}")
    expect(decision.limit == 3 and decision.remaining == 0, "limit and remaining")
    expect(
        lib.ratecore_limiter_peek(limiter, 3 * SECOND, 1, ctypes.byref(decision)) == STATUS_OK
        and decision.allowed
        and decision.remaining == 2,
        "peek once replenished",
    )
    expect(
        lib.ratecore_limiter_check(limiter, SECOND, 4, ctypes.byref(decision)) == STATUS_COST_EXCEEDS_LIMIT,
        "cost above the limit",
    )
    expect(lib.ratecore_limiter_check(None, SECOND, 1, ctypes.byref(decision)) == STATUS_NULL_POINTER, "NULL handle")
    lib.ratecore_limiter_free(limiter)
    lib.ratecore_limiter_free(None)

    # An invalid quota comes back as a status.
    bad = Quota(limit=0, period_ns=SECOND, burst=0, algorithm=ALGORITHM_GCRA, sub_windows=0)
    other = ctypes.c_void_p()
    status = lib.ratecore_limiter_new(ctypes.byref(bad), 1, ctypes.byref(other))
    expect(status == STATUS_ZERO_LIMIT and other.value is None, "zero limit rejected")
    print(f"smoke.py: zero limit -> {lib.ratecore_status_message(status).decode()}")

    # A keyed table: 2 per minute per key (fixed window) AND 3 per minute (strict window).
    quotas = (Quota * 2)(
        Quota(limit=2, period_ns=60 * SECOND, burst=0, algorithm=ALGORITHM_FIXED_WINDOW, sub_windows=0),
        Quota(limit=3, period_ns=60 * SECOND, burst=0, algorithm=ALGORITHM_SLIDING_WINDOW_STRICT, sub_windows=6),
    )
    table = ctypes.c_void_p()
    expect(lib.ratecore_table_new(quotas, 2, 1000, FULL_POLICY_DENY, ctypes.byref(table)) == STATUS_OK, "table_new")
    for key in (b"alice", b"bob", b"", b"b\x00b"):
        results = []
        for _ in range(3):
            expect(
                lib.ratecore_table_check(table, key, len(key), SECOND, 1, ctypes.byref(decision)) == STATUS_OK,
                "table_check",
            )
            results.append(decision.allowed)
        expect(results == [True, True, False], f"key {key!r}: {results}")
    stats = TableStats()
    expect(lib.ratecore_table_get_stats(table, ctypes.byref(stats)) == STATUS_OK, "stats")
    expect(stats.new_keys == 8, f"4 keys x 2 quotas, got {stats.new_keys}")
    lib.ratecore_table_free(table)

    if failures:
        print(f"smoke.py: {len(failures)} failure(s)", file=sys.stderr)
        return 1
    print("smoke.py: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())

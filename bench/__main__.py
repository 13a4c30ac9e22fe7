"""``make bench``: run every benchmark in bench/ and print its table.

``make bench`` runs them all (``make bench BENCH_ARGS=bench.worker_throughput``
runs one), always against embedded servers in a throwaway dir: benchmarks
never touch your data. ``python -m bench`` with DATABASE_URL and REDIS_URL
both set uses those servers instead: a separate ``<name>_bench`` database,
dropped afterwards, and the Redis database REDIS_URL names, which each
benchmark EMPTIES (point it at a database of its own).

Each benchmark runs in a process of its own, starting from a new empty
database and an emptied Redis database, so no benchmark measures (or trips
over) rows another one left. One that fails is named at the end; the others
still run, and the exit status is 1.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import time

BENCHMARKS = [
    "bench.worker_throughput",
    "bench.worker_concurrency",
    "bench.outbox",
    "bench.commerce",
    "bench.seed_orders",
    "bench.tracking",
    "bench.marketing",
    "bench.isolation",
    "bench.retention",
    "bench.appointments",
    "bench.outbound_webhooks",
    "bench.campaign_smtp",
]

_ONE = "--one"  # internal: run a single benchmark in this process


def _run_one(name: str) -> int:
    from bench import harness

    harness.setup_django()
    try:
        importlib.import_module(name).run()
    finally:
        harness.teardown()
    return 0


def main(argv: list[str]) -> int:
    if not (os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL")):
        # Re-run under throwaway embedded servers, held for the whole run.
        cmd = [sys.executable, "-m", "config.embedded", "exec", "--throwaway", "--", sys.executable, "-m", "bench"]
        return subprocess.call(cmd + argv)
    if argv[:1] == [_ONE]:
        return _run_one(argv[1])
    names = argv or BENCHMARKS
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        print(f"usage: python -m bench [{' '.join(BENCHMARKS)}]", file=sys.stderr)
        print(f"error: unknown benchmark: {', '.join(unknown)}", file=sys.stderr)
        return 2
    failed: list[str] = []
    for name in names:
        started = time.monotonic()
        code = subprocess.call([sys.executable, "-m", "bench", _ONE, name])
        took = time.monotonic() - started
        print(f"\n== {name}: {'ok' if code == 0 else f'FAILED (exit {code})'} in {took:.0f} s", flush=True)
        if code != 0:
            failed.append(name)
    if failed:
        print(f"\nbenchmarks failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

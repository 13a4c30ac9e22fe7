"""``make bench``: run every benchmark in bench/ and print its table.

``make bench`` runs them all; ``python -m bench bench.worker_throughput`` runs one.
Benchmarks never touch your data: with DATABASE_URL / REDIS_URL unset they run
against embedded servers in a throwaway dir; with them set, against a separate
``<name>_bench`` database that is dropped afterwards.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys

BENCHMARKS = [
    "bench.worker_throughput",
    "bench.outbox",
    "bench.commerce",
    "bench.seed_orders",
    "bench.tracking",
    "bench.marketing",
]


def main() -> int:
    if not (os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL")):
        # Re-run under throwaway embedded servers, held for the whole run.
        cmd = [sys.executable, "-m", "config.embedded", "exec", "--throwaway", "--", sys.executable, "-m", "bench"]
        cmd += sys.argv[1:]
        return subprocess.call(cmd)
    from bench import harness

    harness.setup_django()
    for name in sys.argv[1:] or BENCHMARKS:
        importlib.import_module(name).run()
    harness.teardown()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Shared setup for benchmarks: a private database, Django, result tables."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import psycopg

_admin_url: str | None = None
_bench_db: str | None = None


def _with_db(url: str, name: str) -> str:
    # DATABASE_URL is a libpq URI (socket dirs as ?host=), so psycopg takes it as is.
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def setup_django() -> None:
    """Point Django at a fresh ``<name>_bench`` database, migrate it, set up."""
    global _admin_url, _bench_db
    url = os.environ["DATABASE_URL"]
    name = urlsplit(url).path.lstrip("/") or "vito"
    _bench_db = f"{name}_bench"
    _admin_url = _with_db(url, "postgres")
    with psycopg.connect(_admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{_bench_db}"')
        conn.execute(f'CREATE DATABASE "{_bench_db}"')
    os.environ["DATABASE_URL"] = _with_db(url, _bench_db)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    # An empty Redis database too: nothing another benchmark (or run) left behind.
    import django_rq

    django_rq.get_connection("default").flushdb()


def teardown() -> None:
    from django.db import connections

    connections.close_all()
    if _admin_url and _bench_db:
        with psycopg.connect(_admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{_bench_db}"')


@contextmanager
def timed() -> Iterator[Callable[[], float]]:
    start = time.perf_counter()
    elapsed: list[float] = []
    yield lambda: elapsed[0] if elapsed else time.perf_counter() - start
    elapsed.append(time.perf_counter() - start)


def table(title: str, header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]
    print(f"\n{title}")
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values``, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

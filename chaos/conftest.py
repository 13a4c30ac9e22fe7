"""Fixtures and the result table of the chaos suite.

A scenario asks for ``cluster`` (its processes), ``services`` (this run's
PostgreSQL and Redis, which it may break) and ``record`` (its row in the
table). ``record(...)`` may be called more than once (one row per case);
a row's pass/fail is the test's outcome unless the row says otherwise.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.db import connections

from chaos.cluster import ARTIFACTS, LOG_ROOT, Cluster
from chaos.services import Services


def pytest_configure(config: pytest.Config) -> None:
    if "CHAOS_VAR_DIR" not in os.environ:
        raise pytest.UsageError("run the chaos suite with `make chaos` or `python -m chaos` (it owns its servers)")
    config.addinivalue_line("markers", "fast: part of the subset CI runs (python -m chaos -m fast)")
    shutil.rmtree(LOG_ROOT, ignore_errors=True)
    LOG_ROOT.mkdir(parents=True, exist_ok=True)


@dataclass
class Row:
    nodeid: str
    scenario: str
    load: str
    fault: str
    lost: int | str = 0
    duplicated: int | str = 0
    recovered: str = "–"
    passed: bool | None = None  # None: the test's outcome decides


_rows: list[Row] = []
_outcomes: dict[str, bool] = {}


@pytest.fixture
def record(request: pytest.FixtureRequest) -> Any:
    def add(
        scenario: str,
        *,
        load: str,
        fault: str,
        lost: int | str = 0,
        duplicated: int | str = 0,
        recovered: float | str | None = None,
        passed: bool | None = None,
    ) -> Row:
        if _concurrency(request) > 1:
            scenario = f"{scenario} (concurrency {_concurrency(request)})"
        if isinstance(recovered, float | int):
            recovered = f"{recovered:.1f} s"
        row = Row(request.node.nodeid, scenario, load, fault, lost, duplicated, recovered or "–", passed)
        _rows.append(row)
        return row

    return add


@pytest.fixture
def services() -> Iterator[Services]:
    """This run's servers; whatever a scenario broke is running again afterwards."""
    current = Services.current()
    yield current
    if not current.redis_up():
        current.start_redis()
    current.start_postgres()  # no-op when it is running
    for conn in connections.all():
        conn.close()


# The scenarios whose workers run jobs run twice: one job at a time per
# worker, and eight in flight (``rqworker --concurrency 8``).
WORKER_SCENARIOS = {"test_workers", "test_kills", "test_outages", "test_relay_scheduler", "test_webhook_input"}
CONCURRENCY = (1, 8)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "cluster" in metafunc.fixturenames and metafunc.module.__name__.rsplit(".", 1)[-1] in WORKER_SCENARIOS:
        metafunc.parametrize("cluster", CONCURRENCY, indirect=True, ids=[f"c{n}" for n in CONCURRENCY])


def _concurrency(request: pytest.FixtureRequest) -> int:
    callspec = getattr(request.node, "callspec", None)
    return int(callspec.params.get("cluster", 1)) if callspec is not None else 1


@pytest.fixture
def cluster(request: pytest.FixtureRequest, services: Services) -> Iterator[Cluster]:
    import django_rq

    django_rq.get_connection("default").flushdb()
    name = request.node.name.replace("[", "-").replace("]", "").replace("/", "_")
    cluster = Cluster(scenario=name, concurrency=_concurrency(request))
    try:
        yield cluster
    finally:
        cluster.stop_all()
        if services.redis_up():
            django_rq.get_connection("default").flushdb()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        _outcomes[item.nodeid] = report.passed
    elif report.when == "teardown" and report.failed:
        _outcomes[item.nodeid] = False
    return report


def _table() -> list[str]:
    header = ("scenario", "load", "fault", "lost", "duplicated", "recovered within", "result")
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    for row in _rows:
        ok = row.passed if row.passed is not None else _outcomes.get(row.nodeid, False)
        if row.passed is not None and not _outcomes.get(row.nodeid, False):
            ok = False
        cells = (row.scenario, row.load, row.fault, str(row.lost), str(row.duplicated), row.recovered,
                 "pass" if ok else "FAIL")  # fmt: skip
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return lines


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _rows:
        return
    lines = _table()
    terminalreporter.section("chaos results")
    for line in lines:
        terminalreporter.write_line(line)
    out = ARTIFACTS / "results.md"
    out.write_text("\n".join(lines) + "\n")
    terminalreporter.write_line(f"(also in {out}; the processes' logs are in {LOG_ROOT})")

"""The queue layout files: the four shipped ones reproduce their source
documents, and a broken file stops a process at start naming the line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from config.queue_layout import LayoutError, line_of, load_layout, shipped_layouts
from queueing.supervisor import parse_supervisors
from tests.queueing.conftest import worker_env

BASE = Path(settings.BASE_DIR)
# Logical queues the catalog and the next features declare: every shipped layout routes each.
LOGICAL = {
    "default",
    "high",
    "webhooks",
    "notifications",
    "sync",
    "cache",
    "maintenance",
    "thumbnails",
    "ingestion",
    "webhook-deliveries",
}


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "layout.toml"
    path.write_text(text)
    return path


def test_four_layouts_ship_and_each_routes_every_logical_queue_to_a_served_queue() -> None:
    assert shipped_layouts() == ["askproai", "qr", "veloxfactory", "vito"]
    for name in shipped_layouts():
        layout = load_layout(name, BASE)
        assert set(layout.routes) >= LOGICAL, name
        supervisors = parse_supervisors(layout.pools, layout.queues)
        served = {q for s in supervisors for q in s.queues}
        assert set(layout.routes.values()) <= served == set(layout.queues), name


def test_vito_is_seed_001_high_then_default_with_a_borrow_limit() -> None:
    layout = load_layout("vito", BASE)
    assert {n: q.timeout for n, q in layout.queues.items()} == {"high": 120, "default": 600}
    pools = {p.name: p for p in parse_supervisors(layout.pools, layout.queues)}
    assert pools["high"].queues == ("high", "default") and pools["high"].tries == 5
    assert pools["high"].borrow_max_timeout == 60 and pools["high"].sleep == 1
    assert pools["default"].queues == ("default",) and pools["default"].tries == 3
    assert layout.routes["webhooks"] == "high" and layout.routes["notifications"] == "default"


def test_askproai_is_seed_002_six_queues_with_their_timeouts() -> None:
    layout = load_layout("askproai", BASE)
    assert {n: q.timeout for n, q in layout.queues.items()} == {
        "webhooks": 90,
        "default": 60,
        "sync": 300,
        "notifications": 60,
        "cache": 120,
        "maintenance": 600,
    }
    pools = {p.name: p for p in parse_supervisors(layout.pools, layout.queues)}
    assert (pools["webhooks"].balance, pools["webhooks"].max_processes, pools["webhooks"].tries) == ("auto", 10, 3)
    assert (pools["default"].balance, pools["default"].processes, pools["default"].tries) == ("simple", 5, 3)
    assert layout.routes["webhooks"] == "webhooks" and layout.routes["notifications"] == "notifications"


def test_veloxfactory_keeps_rendering_and_maintenance_in_separate_pools() -> None:
    layout = load_layout("veloxfactory", BASE)
    pools = {p.name: p for p in parse_supervisors(layout.pools, layout.queues)}
    assert pools["rendering"].queues == ("high",) and pools["rendering"].max_processes == 10
    assert pools["default"].queues == ("default",) and pools["default"].nice == 10
    assert (layout.queues["high"].timeout, layout.queues["default"].timeout) == (120, 300)
    assert layout.routes["thumbnails"] == "high" and layout.routes["maintenance"] == "default"


def test_qr_runs_ingestion_and_deliveries_on_their_own_queues() -> None:
    layout = load_layout("qr", BASE)
    assert layout.routes["ingestion"] == "ingestion"
    assert layout.routes["webhook-deliveries"] == "analytics"
    pools = parse_supervisors(layout.pools, layout.queues)
    assert [p.queues for p in pools if "ingestion" in p.queues] == [("ingestion",)]
    assert [p.queues for p in pools if "analytics" in p.queues] == [("analytics",)]
    # Deliveries wait on receivers: eight in flight per process; ingestion keeps one.
    by_queue = {p.queues[0]: p for p in pools}
    assert by_queue["analytics"].concurrency == 8 and "--concurrency" in by_queue["analytics"].worker_flags()
    assert by_queue["ingestion"].concurrency == 1 and "--concurrency" not in by_queue["ingestion"].worker_flags()


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("[queues.high]\ntimeout = 120\nspeed = 3\n[pools.p]\nqueues = ['high']\n", 3, "unknown key(s) speed"),
        ("[queues.high]\ntimeout = 120\n[routes]\nmail = 'low'\n[pools.p]\nqueues = ['high']\n", 4, "no declared"),
        ("[queues.high]\ntimeout = 120\n[queues.low]\ntimeout = 60\n[routes]\nhigh = 'low'\n", 6, "always routes"),
        ("[queues.high]\ntimeout = 120\n[queues.low]\ntimeout = 5\n[pools.p]\nqueues = ['high']\n", 3, "no pool"),
        ("[queues.high]\ntimeout = 120\n[pools.p]\nqueues = ['high']\nbalance = 'often'\n", 5, "balance must"),
        ("[queues.high]\ntimeout = 0\n[pools.p]\nqueues = ['high']\n", 2, "timeout must"),
        ("[queues.high]\ntimeout = 1\n[pools.p]\nqueues = ['high']\nconcurrency = 0\n", 5, "concurrency must"),
        ("[queues.high]\n[pools.p]\nqueues = ['high']\n", 1, "needs timeout"),
        ("[queues.a]\ntimeout = 1\n[pools.p]\nqueues = ['a', 'b']\n", 4, "unknown queue(s) b"),
        (
            "[queues.a]\ntimeout = 1\n[queues.b]\ntimeout = 1\n[pools.p]\nqueues = ['a', 'b']\n"
            "balance = 'auto'\nmax_processes = 2\nborrow_max_timeout = 5\n",
            9,
            "borrow_max_timeout applies",
        ),
    ],
)
def test_a_broken_layout_names_the_file_the_line_and_the_problem(
    tmp_path: Path, text: str, line: int, words: str
) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(LayoutError) as caught:
        load_layout(str(path), BASE)
    assert f"{path}:{line}:" in str(caught.value) and words in str(caught.value)


def test_bad_toml_and_unknown_names_are_refused(tmp_path: Path) -> None:
    with pytest.raises(LayoutError, match=r"at line 2"):
        load_layout(str(_write(tmp_path, "[queues.a]\ntimeout = \n")), BASE)
    with pytest.raises(LayoutError, match=r"not a shipped layout \(askproai, qr, veloxfactory, vito\)"):
        load_layout("horizon", BASE)
    with pytest.raises(LayoutError, match="no such file"):
        load_layout(str(tmp_path / "missing.toml"), BASE)


def test_line_of_finds_keys_in_quoted_and_dotted_tables() -> None:
    text = '[routes]\n"webhook-deliveries" = "a"\n\n[pools."x-y"]\nqueues = []\n'
    assert line_of(text, ("routes",), "webhook-deliveries") == 2
    assert line_of(text, ("pools", "x-y"), "queues") == 5
    assert line_of(text, ("pools", "x-y"), "absent") == 4


def _manage(env_layout: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = worker_env()
    env["QUEUE_LAYOUT"] = env_layout
    return subprocess.run(
        [sys.executable, "manage.py", *args], env=env, cwd=BASE, capture_output=True, text=True, timeout=120
    )


def test_a_malformed_layout_stops_a_command_at_start_without_a_traceback(tmp_path: Path) -> None:
    path = _write(tmp_path, "[queues.high]\ntimeout = 120\n[pools.p]\nqueues = ['high']\nnice = 40\n")
    done = _manage(str(path), "rqworker", "high", "--burst")
    assert done.returncode == 1
    assert done.stderr.strip() == f"queue layout {path}:5: [pools.p]: nice must be between 0 and 19, got 40"


def test_check_fails_for_a_job_whose_logical_queue_has_no_route(tmp_path: Path) -> None:
    # The vito layout without its `notifications` route: the campaign e-mail job is unrouted.
    text = (BASE / "devops/queues/vito.toml").read_text().replace('notifications = "default"\n', "")
    done = _manage(str(_write(tmp_path, text)), "check")
    assert done.returncode == 1
    assert "(queueing.E001) job marketing.jobs.send_campaign_email declares queue 'notifications'" in done.stderr
    assert "no route" in done.stderr
    for name in shipped_layouts():  # each shipped layout routes everything the code declares
        passed = _manage(name, "check")
        assert passed.returncode == 0, (name, passed.stderr)

"""The queue master's drain covers the longest job its pools can take (queueing/drain.py),
and `manage.py check` says so when a configured drain or a shipped supervisord file does not."""

from __future__ import annotations

import os
import subprocess
import sys
from io import StringIO
from pathlib import Path
from typing import Any

from django.conf import settings as django_settings
from django.core.management import call_command
from django.test import override_settings

from config.checks import supervisord_waits_for_drain
from queueing.checks import drain_covers_jobs
from queueing.definitions import JobDefinition
from queueing.drain import DRAIN_MARGIN, longest_job
from queueing.supervisor import parse_supervisors


def _export() -> None: ...


def _thumbnail() -> None: ...


QUEUES = {"high": {"DEFAULT_TIMEOUT": 120}, "default": {"DEFAULT_TIMEOUT": 600}}


def test_it_takes_the_longest_declared_timeout_of_the_queues_a_pool_works() -> None:
    definitions = [JobDefinition(_export, queue="default", timeout=1800), JobDefinition(_thumbnail, queue="high")]
    high_only = parse_supervisors([{"name": "h", "queues": ["high"], "processes": 1}], QUEUES)
    longest = longest_job(high_only, QUEUES, definitions)
    assert longest is not None and (longest.seconds, longest.supervisor) == (120, "h")

    both = parse_supervisors([{"name": "h", "queues": ["high", "default"], "balance": "off", "processes": 1}], QUEUES)
    longest = longest_job(both, QUEUES, definitions)
    assert longest is not None
    assert (longest.seconds, longest.what, longest.drain) == (1800, f"{__name__}._export", 1800 + DRAIN_MARGIN)


def test_a_supervisor_timeout_replaces_the_queue_default_for_undeclared_jobs() -> None:
    pools = parse_supervisors([{"name": "d", "queues": ["default"], "processes": 1, "timeout": 900}], QUEUES)
    longest = longest_job(pools, QUEUES, [JobDefinition(_thumbnail, queue="default")])
    assert longest is not None and longest.seconds == 900


def test_the_shipped_settings_and_supervisord_files_pass() -> None:
    assert drain_covers_jobs() == []
    assert supervisord_waits_for_drain() == []


def test_check_warns_about_a_drain_shorter_than_a_job(settings: Any) -> None:
    settings.QUEUE_SUPERVISOR_DRAIN = 60.0
    [warning] = drain_covers_jobs()
    assert warning.id == "queueing.W001"
    assert "60 s" in warning.msg and "1800 s timeout" in warning.msg and "1830" in str(warning.hint)


def test_check_warns_about_supervisord_files_that_would_kill_a_draining_master(tmp_path: Path) -> None:
    (tmp_path / "devops").mkdir()
    (tmp_path / "devops" / "supervisord.conf").write_text(
        "[program:queue-master]\ncommand = python manage.py queue_supervise --drain 630\nstopwaitsecs = 600\n"
    )
    (tmp_path / "devops" / "supervisord.local.conf").write_text(
        "[program:queue-master]\ncommand = %(ENV_VITO_BIN)s/python manage.py queue_supervise\nstopwaitsecs = 90\n"
    )
    with override_settings(BASE_DIR=tmp_path):
        found = {(w.id, w.msg.split(":")[0]) for w in supervisord_waits_for_drain()}
    assert found == {
        ("project.W001", "devops/supervisord.conf"),  # --drain 630 < 1830
        ("project.W002", "devops/supervisord.conf"),  # stopwaitsecs 600 < 630 + 30
        ("project.W002", "devops/supervisord.local.conf"),  # 90 < 1830 + 30
    }


def test_manage_py_check_prints_it_and_queue_supervise_check_prints_the_minimum() -> None:
    env = {**os.environ, "QUEUE_SUPERVISOR_DRAIN": "60"}
    done = subprocess.run(
        [sys.executable, "manage.py", "check"], env=env, cwd=django_settings.BASE_DIR, capture_output=True, text=True
    )
    assert done.returncode == 0 and "queueing.W001" in done.stderr
    out = StringIO()
    call_command("queue_supervise", "--check", stdout=out)
    assert "drain: 1830s (supervisord's stopwaitsecs for this program: at least 1860)" in out.getvalue()


def test_inline_comments_are_read_and_an_unreadable_value_is_a_warning_not_a_crash(tmp_path: Path) -> None:
    (tmp_path / "devops").mkdir()
    (tmp_path / "devops" / "supervisord.conf").write_text(
        "[program:queue-master]\ncommand = python manage.py queue_supervise ; derived drain\nstopwaitsecs = 1860 ; ok\n"
    )
    (tmp_path / "devops" / "supervisord.local.conf").write_text("[program:queue-master]\nstopwaitsecs = soon\n")
    with override_settings(BASE_DIR=tmp_path):
        (warning,) = supervisord_waits_for_drain()
    assert warning.id == "project.W003" and warning.msg.startswith("devops/supervisord.local.conf: cannot read")

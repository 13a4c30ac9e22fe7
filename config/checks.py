"""``manage.py check`` for the files this project ships: the supervisord configs.

The queue master drains for the longest job its pools can take
(queueing/drain.py); supervisord must wait longer than that before it
SIGKILLs the master, or a deploy cuts that job in half after all.
"""

from __future__ import annotations

import configparser
import shlex
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Warning
from django.core.exceptions import ImproperlyConfigured

from queueing.definitions import registered
from queueing.drain import STOPWAIT_MARGIN, autodiscover_jobs, longest_job
from queueing.supervisor import parse_supervisors

SUPERVISORD_CONFIGS = ("devops/supervisord.conf", "devops/supervisord.local.conf")
MASTER_PROGRAM = "program:queue-master"


def _drain_flag(command: str) -> float | None:
    words = shlex.split(command)
    for i, word in enumerate(words):
        if word == "--drain" and i + 1 < len(words):
            return float(words[i + 1])
        if word.startswith("--drain="):
            return float(word.split("=", 1)[1])
    return None


def supervisord_waits_for_drain(app_configs: Any = None, **_: Any) -> list[CheckMessage]:
    try:
        supervisors = parse_supervisors(settings.QUEUE_SUPERVISORS, settings.RQ_QUEUES)
    except ImproperlyConfigured:
        return []
    autodiscover_jobs()
    longest = longest_job(supervisors, settings.RQ_QUEUES, registered())
    if longest is None:
        return []
    problems: list[CheckMessage] = []
    for name in SUPERVISORD_CONFIGS:
        path = Path(settings.BASE_DIR) / name
        # supervisord allows "; comment" after a value; a file we cannot read is
        # reported, never raised (a system check runs before every command).
        parser = configparser.RawConfigParser(strict=False, inline_comment_prefixes=(";",))
        try:
            parser.read(path)
            if not parser.has_section(MASTER_PROGRAM):
                continue
            section = parser[MASTER_PROGRAM]
            flag = _drain_flag(section.get("command", ""))
            stopwait = section.getfloat("stopwaitsecs", fallback=10.0)  # supervisord's own default
        except (configparser.Error, ValueError) as exc:
            problems.append(Warning(f"{name}: cannot read [{MASTER_PROGRAM}]: {exc}", id="project.W003"))
            continue
        # The flag wins over the setting, which wins over the derived drain (queue_supervise's order);
        # a short setting is queueing.W001's to report.
        drain = flag or settings.QUEUE_SUPERVISOR_DRAIN or longest.drain
        if flag is not None and flag < longest.drain:
            problems.append(
                Warning(
                    f"{name}: queue_supervise drains for {drain:g} s, shorter than {longest.what}'s "
                    f"{longest.seconds} s timeout (supervisor {longest.supervisor!r}).",
                    hint=f"Drop --drain (it is then derived: {longest.drain} s) or make it at least {longest.drain}.",
                    id="project.W001",
                )
            )
        if stopwait < drain + STOPWAIT_MARGIN:
            problems.append(
                Warning(
                    f"{name}: stopwaitsecs = {stopwait:g} for queue_supervise, but it drains for {drain:g} s: "
                    "supervisord would SIGKILL it while its workers finish their jobs.",
                    hint=f"Set stopwaitsecs to at least {drain + STOPWAIT_MARGIN:g}.",
                    id="project.W002",
                )
            )
    return problems

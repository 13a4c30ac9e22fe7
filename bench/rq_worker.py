"""Run one of RQ's own worker classes on the `default` queue, for comparison."""

from __future__ import annotations

import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django

django.setup()

from rq.worker import SimpleWorker, Worker  # noqa: E402

from queueing.dispatch import get_queue  # noqa: E402

cls = {"simple": SimpleWorker, "fork": Worker}[sys.argv[1]]
queue = get_queue("default")
cls([queue], connection=queue.connection, serializer=queue.serializer).work(logging_level="WARNING")

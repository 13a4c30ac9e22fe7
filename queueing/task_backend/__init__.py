"""Django's task framework (``django.tasks`` / the ``django-tasks`` backport) on our workers.

``TASKS = {"default": {"BACKEND": "queueing.task_backend.VitoTaskBackend"}}``;
backend.py enqueues, results.py reads results back, runner.py is how the
worker calls a task. docs/rq-contract.md, "django.tasks".
"""

from queueing.task_backend.backend import VitoTaskBackend

__all__ = ["VitoTaskBackend"]

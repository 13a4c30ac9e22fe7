"""The site's 500 handler: a database (or Redis) that cannot be reached is a
503 with Retry-After, not a 500.

Why: while PostgreSQL restarts or fails over, every view that touches it
raises ``OperationalError`` (or ``InterfaceError`` on a connection that died
under it). A 500 says "a bug of ours": it pages someone, and API clients and
load balancers do not know that trying again in a few seconds will work. A
503 with ``Retry-After`` says exactly that. Django's own connection handling
reconnects on the next request, so nothing else needs doing.

Why the 500 handler (``handler500`` in config/urls.py) and not a middleware's
``process_exception``: Django calls the handler for every uncaught exception,
including those raised inside other middleware (a session saved on the way
out), so one place covers the whole site; ``process_exception`` sees only
exceptions raised by views. Other errors (a real bug, ``IntegrityError``,
``ProgrammingError``) stay 500s.

Redis the same way: a Redis that is down or hung (every connection has a
connect and a read timeout, REDIS_CONNECT_TIMEOUT / REDIS_SOCKET_TIMEOUT)
raises ``redis.ConnectionError`` / ``redis.TimeoutError`` in the pages that
read it (the queue dashboard, django-rq's views), which answer 503 within
the timeout. The public pixel and redirects catch it themselves and serve.
"""

from __future__ import annotations

import sys

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

RETRY_AFTER_SECONDS = 5  # a PostgreSQL restart takes seconds
MESSAGE = "The database is temporarily unavailable; retry in a few seconds."
REDIS_MESSAGE = "The queue store (Redis) is temporarily unavailable; retry in a few seconds."


def database_unavailable(request: HttpRequest, message: str = MESSAGE) -> HttpResponse:
    response: HttpResponse
    if request.accepts("text/html") and not request.path.startswith("/api/"):
        response = HttpResponse(f"<h1>Service unavailable</h1><p>{message}</p>", status=503)
    else:
        response = JsonResponse({"error": message}, status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def server_error(request: HttpRequest) -> HttpResponse:
    """``handler500``: runs while the uncaught exception is being handled (Django
    logs it with its traceback either way)."""
    error = sys.exc_info()[1]
    if isinstance(error, OperationalError | InterfaceError):
        return database_unavailable(request)
    if isinstance(error, RedisConnectionError | RedisTimeoutError):
        return database_unavailable(request, REDIS_MESSAGE)
    return defaults.server_error(request)

"""The one HTTP call of a delivery attempt, on ``http.client``.

It connects only to an address that ``addresses.refusal`` allows, chosen at
the moment of connecting (the name is resolved here, not trusted from the
registration); sends Host and the TLS server name of the URL's host; never
follows a redirect (a 3xx is a failed attempt, like any non-2xx); reads at
most RESPONSE_CAP bytes of the body; and bounds the connect and each read
with OUTBOUND_WEBHOOK_CONNECT_TIMEOUT / OUTBOUND_WEBHOOK_READ_TIMEOUT.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

from webhooks.outbound.addresses import ForbiddenURL, refusal, resolve, split

RESPONSE_CAP = 1024  # bytes of the response body read and logged


@dataclass(frozen=True)
class Outcome:
    status: int | None  # None: no HTTP response at all
    duration_ms: int
    body: str = ""
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def _connect(host: str, port: int) -> socket.socket:
    """A connected socket to the first allowed address of ``host``."""
    refused: list[str] = []
    last_error: OSError | None = None
    for address in resolve(host, port):
        reason = refusal(address)
        if reason:
            refused.append(reason)
            continue
        try:
            return socket.create_connection((address, port), timeout=settings.OUTBOUND_WEBHOOK_CONNECT_TIMEOUT)
        except OSError as exc:
            last_error = exc
    if last_error is not None:
        raise last_error
    raise ForbiddenURL(f"refused: {host} resolves to {'; '.join(refused)}")


class _Connection(http.client.HTTPConnection):
    def connect(self) -> None:
        self.sock = _connect(self.host, self.port)
        self.sock.settimeout(settings.OUTBOUND_WEBHOOK_READ_TIMEOUT)


class _TLSConnection(http.client.HTTPSConnection):
    def connect(self) -> None:
        raw = _connect(self.host, self.port)
        raw.settimeout(settings.OUTBOUND_WEBHOOK_READ_TIMEOUT)
        context = ssl.create_default_context()
        self.sock = context.wrap_socket(raw, server_hostname=self.host)


def post(url: str, body: bytes, headers: Mapping[str, str]) -> Outcome:
    """POST ``body`` to ``url``; never raises for what the receiver does."""
    started = time.monotonic()

    def took() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        scheme, host, port = split(url)
    except ForbiddenURL as exc:
        return Outcome(None, took(), error=str(exc))
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    kind = _TLSConnection if scheme == "https" else _Connection
    connection = kind(host, port, timeout=settings.OUTBOUND_WEBHOOK_READ_TIMEOUT)
    try:
        connection.request("POST", target, body=body, headers=dict(headers))
        response = connection.getresponse()
        text = response.read(RESPONSE_CAP).decode("utf-8", errors="replace")
        return Outcome(response.status, took(), body=text)
    except ForbiddenURL as exc:
        return Outcome(None, took(), error=str(exc))
    except TimeoutError:
        return Outcome(None, took(), error=f"timed out after {took() / 1000:.1f} s")
    except (OSError, http.client.HTTPException, ssl.SSLError) as exc:
        return Outcome(None, took(), error=f"{type(exc).__name__}: {exc}"[:500])
    finally:
        connection.close()

"""SMTP servers on loopback that count their connections and misbehave on
request, for the tests (and the benchmark) of lib/mail.py's connection reuse.

Built on tests/mail.py's aiosmtpd server: the same Inbox, plus a protocol
subclass that can answer slowly, close a session after so many messages (as
Exim's ``smtp_accept_max_per_connection`` does, with a 421 or without a word,
as an idle timeout looks to the client), or take a message and close the
connection before its "250" (the one failure a client cannot safely resend).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

from lib import mail
from tests.mail import Inbox, free_port


@dataclass
class Server(Inbox):
    delay: float = 0.0  # seconds before each reply (before its last line: one wait per command)
    max_messages: int | None = None  # per connection; the next MAIL ends the session
    ending: Literal["421", "close"] = "421"  # how: a 421 reply then close, or close without a reply
    swallow: int = 0  # the next N messages are taken, then the connection closes before their "250"
    refuse_rcpt: str = ""  # a reply for every RCPT instead of "250 OK" (e.g. "451 4.7.1 greylisted")
    connections: int = 0  # client sessions (counted at EHLO/HELO: aiosmtpd's start-up probe says neither)
    closed: int = 0  # of those, ended (by either side)
    ports: list[int] = field(default_factory=list)  # each message's client port, in arrival order

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if self.refuse_rcpt:
            return self.refuse_rcpt
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        reply = await super().handle_DATA(server, session, envelope)
        if reply.startswith("250"):
            server.taken += 1
            with self.lock:
                self.ports.append(int(session.peer[1]))
            if self.swallow:
                self.swallow -= 1
                server.swallowing = True
        return reply

    def count(self, name: str) -> int:
        with self.lock:
            return int(getattr(self, name))


class _Session(SMTP):
    def __init__(self, server: Server, **kwargs: Any) -> None:
        super().__init__(server, **kwargs)
        self.server = server
        self.taken = 0  # messages accepted on this connection
        self.swallowing = False
        self.greeted = False

    def _greeted(self) -> None:
        if not self.greeted:
            self.greeted = True
            with self.server.lock:
                self.server.connections += 1

    async def smtp_EHLO(self, hostname: str) -> None:
        self._greeted()
        await super().smtp_EHLO(hostname)

    async def smtp_HELO(self, hostname: str) -> None:
        self._greeted()
        await super().smtp_HELO(hostname)

    def connection_lost(self, error: Exception | None) -> None:
        if self.greeted:
            with self.server.lock:
                self.server.closed += 1
        super().connection_lost(error)

    async def push(self, status: Any) -> None:
        text = status if isinstance(status, str) else status.decode()
        if self.swallowing and text.startswith("250"):
            self.swallowing = False
            assert self.transport is not None
            self.transport.close()
            return
        if self.server.delay and text[3:4] != "-":
            await asyncio.sleep(self.server.delay)
        await super().push(status)

    async def smtp_MAIL(self, arg: str | None) -> None:
        limit = self.server.max_messages
        if limit is not None and self.taken >= limit and self.transport is not None:
            if self.server.ending == "421":
                await super().push("421 4.7.0 too many messages on this connection (test)")
            self.transport.close()
            return
        await super().smtp_MAIL(arg)


class _Controller(Controller):
    def factory(self) -> SMTP:
        return _Session(self.handler, **self.SMTP_kwargs)


ServerT = TypeVar("ServerT", bound=Server)


@contextmanager
def serving(server: ServerT, idle_timeout: float | None = None) -> Iterator[tuple[ServerT, int]]:
    """Run ``server`` on a free loopback port; ``idle_timeout``: end idle sessions (aiosmtpd's timeout)."""
    port = free_port()
    controller = _Controller(server, hostname="127.0.0.1", port=port)
    if idle_timeout is not None:
        controller.SMTP_kwargs["timeout"] = idle_timeout
    controller.start()
    server.url = f"smtp://127.0.0.1:{port}"
    try:
        yield server, port
    finally:
        mail.close_connection()  # this thread's, before its server goes
        controller.stop()


def point_django_at(settings: Any, port: int) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""

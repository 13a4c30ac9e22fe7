"""Every e-mail the platform sends: a text and an HTML part rendered from
``templates/emails/<name>.txt`` and ``.html``, sent through Django's e-mail
framework (EMAIL_URL). A leaf module (Django only), so any app may use it.

``send(message)`` is the path for mail sent in bulk (campaigns, appointment
notices, plan-limit notices): with Django's SMTP backend it hands the message
to *this thread's* SMTP connection, opened on first use and kept open for the
next message, so a worker thread pays the connect, EHLO, STARTTLS and AUTH
once instead of once per e-mail. One connection per thread, never shared (an
SMTP session is a conversation: two threads interleaving commands would mix
their messages). A lost connection is opened again; the message is sent again
on the new one only when the failure provably came before the server could
have accepted it, so nothing goes out twice because of us. Any other backend
(locmem and console in tests, file, a provider's API) sends as Django does.
``EMAIL_REUSE_CONNECTIONS=0`` turns reuse off (a connection per message, for
comparison). docs/marketing.md, "SMTP connections".
"""

from __future__ import annotations

import atexit
import logging
import os
import smtplib
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.mail import EmailMessage, EmailMultiAlternatives
from django.core.mail.backends.smtp import EmailBackend
from django.template.loader import render_to_string

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

log = logging.getLogger(__name__)

DJANGO_SMTP = "django.core.mail.backends.smtp.EmailBackend"
# A connection idle this long is dropped and a new one opened, instead of
# being tried: servers end idle sessions (Postfix and Exim after 5 minutes),
# and NAT gateways forget idle TCP without a word, so the next command would
# wait EMAIL_TIMEOUT for an answer that never comes.
MAX_IDLE = 30.0
# What a thread's connection was opened with: when one changes (tests point
# Django at a new server per test), the old connection is closed, not reused.
_CONFIG = (
    "EMAIL_BACKEND",
    "EMAIL_HOST",
    "EMAIL_PORT",
    "EMAIL_HOST_USER",
    "EMAIL_HOST_PASSWORD",
    "EMAIL_USE_TLS",
    "EMAIL_USE_SSL",
    "EMAIL_SSL_CERTFILE",
    "EMAIL_SSL_KEYFILE",
    "EMAIL_TIMEOUT",
)


# --------------------------------------------------------------------------- rendering


def templated_message(
    name: str,
    context: dict[str, Any],
    *,
    subject: str,
    to: Sequence[str],
    from_email: str | None = None,
    headers: dict[str, str] | None = None,
) -> EmailMultiAlternatives:
    message = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string(f"emails/{name}.txt", context),
        from_email=from_email,
        to=list(to),
        headers=headers,
    )
    message.attach_alternative(render_to_string(f"emails/{name}.html", context), "text/html")
    return message


def send_templated(name: str, context: dict[str, Any], *, subject: str, to: Sequence[str]) -> None:
    templated_message(name, context, subject=subject, to=to).send()


# --------------------------------------------------------------------------- the SMTP session


class _TrackedSMTP(smtplib.SMTP):
    # Set when the DATA command goes out: a failure before it cannot have
    # delivered the message, a failure after it may have (the server can take
    # the message and the connection die before its "250" reaches us).
    data_started = False

    def data(self, msg: ReadableBuffer | str) -> tuple[int, bytes]:
        self.data_started = True
        return super().data(msg)


class _TrackedSMTPSSL(smtplib.SMTP_SSL):
    data_started = False

    def data(self, msg: ReadableBuffer | str) -> tuple[int, bytes]:
        self.data_started = True
        return super().data(msg)


class ReusableSMTPBackend(EmailBackend):
    """Django's SMTP backend (same settings), whose connection tells how far a message got."""

    @property
    def connection_class(self) -> type[smtplib.SMTP]:
        return _TrackedSMTPSSL if self.use_ssl else _TrackedSMTP

    def abandon(self) -> None:
        """Drop the connection without QUIT. After an interrupted exchange (a
        timeout, a job's time limit in the middle of DATA) the server may be
        reading a message body, and QUIT would wait EMAIL_TIMEOUT for a reply."""
        # Django 5.2 also keeps a half-opened connection (connected, login failed).
        for name in ("connection", "_partial_connection"):
            smtp = getattr(self, name, None)
            if smtp is not None:
                smtp.close()  # the socket only: after a fork, the parent's session goes on
                setattr(self, name, None)

    def quit(self) -> None:
        """Close politely (QUIT), or just drop the socket if the server is gone."""
        try:
            self.close()
        except (smtplib.SMTPException, OSError):
            self.abandon()


# --------------------------------------------------------------------------- one connection per thread


@dataclass
class _Held:
    backend: ReusableSMTPBackend
    config: tuple[object, ...]
    thread: threading.Thread
    last_used: float = 0.0  # time.monotonic() of the last send on the open connection
    data_started: bool = False  # the last failed send had begun DATA (or we cannot tell)


_local = threading.local()
# Every thread's connection, only to close them: those of threads that have
# ended (on the next new connection) and all at exit. The sending path reads
# its own through _local and takes no lock.
_registry: dict[threading.Thread, _Held] = {}
_registry_lock = threading.Lock()


def _config() -> tuple[object, ...]:
    return tuple(getattr(settings, name, None) for name in _CONFIG)


def _held() -> _Held:
    config = _config()
    held: _Held | None = getattr(_local, "held", None)
    if held is not None and held.config == config:
        return held
    if held is not None:
        _release(held, polite=False)  # its server may be gone (tests): no QUIT to wait on
    held = _Held(ReusableSMTPBackend(fail_silently=False), config, threading.current_thread())
    _local.held = held
    with _registry_lock:
        for thread, other in list(_registry.items()):
            if not thread.is_alive():  # its thread is gone, so nobody is sending on it
                del _registry[thread]
                other.backend.abandon()
        _registry[held.thread] = held
    return held


def _release(held: _Held, *, polite: bool) -> None:
    if getattr(_local, "held", None) is held:
        _local.held = None
    with _registry_lock:
        if _registry.get(held.thread) is held:
            del _registry[held.thread]
    if polite:
        held.backend.quit()
    else:
        held.backend.abandon()


def reusing_connections() -> bool:
    """Whether ``send`` keeps SMTP connections open (Django's SMTP backend, reuse not turned off)."""
    return settings.EMAIL_BACKEND == DJANGO_SMTP and getattr(settings, "EMAIL_REUSE_CONNECTIONS", True)


def send(message: EmailMessage) -> int:
    """Send ``message`` on this thread's SMTP connection: 1 if sent (0: no recipients).

    Raises what the server or the network raised. The connection is then
    dropped and the next send opens a new one, except after a plain refusal
    (a 550 at RCPT: smtplib resets the session and it goes on). A connection
    that was already open and turns out lost (closed by the server, a 421) is
    opened again and the message sent on it once more, but only when the
    failure came before DATA or was a refusal: a failure after the body went
    out may follow a delivery, so it is raised for the caller's own retry.
    """
    if not reusing_connections():
        return message.send()
    held = _held()
    reused = held.backend.connection is not None
    if reused and time.monotonic() - held.last_used > MAX_IDLE:
        held.backend.abandon()
        reused = False
    try:
        return _send_once(held, message)
    except BaseException as exc:
        if not (reused and _lost_before_delivery(exc, data_started=held.data_started)):
            raise
        log.info("SMTP connection lost before the message was accepted (%s); sending it on a new connection", exc)
    return _send_once(held, message)


def _send_once(held: _Held, message: EmailMessage) -> int:
    backend = held.backend
    held.data_started = False
    try:
        backend.open()  # a no-op when open; send_messages then leaves it open
        smtp = backend.connection
        if isinstance(smtp, _TrackedSMTP | _TrackedSMTPSSL):
            smtp.data_started = False
        sent = backend.send_messages([message])
    except BaseException as exc:
        if _refused(exc) and not _closing(exc):
            held.last_used = time.monotonic()  # smtplib sent RSET: the session goes on
        else:
            # Lost, timed out, interrupted (a job's time limit lands anywhere):
            # the session is in an unknown state and is not used again.
            held.data_started = bool(getattr(backend.connection, "data_started", True))  # unknown: the worst
            backend.abandon()
        raise
    held.last_used = time.monotonic()
    return sent


def _refused(exc: BaseException) -> bool:
    """The server answered with a refusal: whatever the step, it has not accepted the message."""
    return isinstance(exc, smtplib.SMTPResponseException | smtplib.SMTPRecipientsRefused)


def _closing(exc: BaseException) -> bool:
    """421: the server is closing the session (idle, too many messages on it, shutting down)."""
    if isinstance(exc, smtplib.SMTPResponseException):
        return exc.smtp_code == 421
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return any(code == 421 for code, _reply in exc.recipients.values())
    return False


def _lost_before_delivery(exc: BaseException, *, data_started: bool) -> bool:
    """The connection was lost, and the message cannot have been accepted: safe to send again."""
    if _refused(exc):
        return _closing(exc)
    return isinstance(exc, smtplib.SMTPServerDisconnected | OSError) and not data_started


# --------------------------------------------------------------------------- closing


def close_connection() -> None:
    """Close this thread's SMTP connection (QUIT). For a thread that stops sending:
    a worker thread on its way out; the next ``send`` would open a new one."""
    held: _Held | None = getattr(_local, "held", None)
    if held is not None:
        _release(held, polite=True)


def _close_at_exit() -> None:
    # Threads still running (daemons) may be mid-send: their sockets are left
    # to the OS. Every other connection gets its QUIT.
    with _registry_lock:
        mine = [h for t, h in _registry.items() if t is threading.current_thread() or not t.is_alive()]
    for held in mine:
        _release(held, polite=True)


def _forget_after_fork() -> None:
    # The child shares the parent's sockets: it must never speak on them.
    global _local, _registry_lock
    for held in _registry.values():
        held.backend.abandon()  # closes the child's copy of the socket only
    _registry.clear()
    _registry_lock = threading.Lock()  # another thread may have held it at the fork
    _local = threading.local()


atexit.register(_close_at_exit)
os.register_at_fork(after_in_child=_forget_after_fork)

"""lib.mail.send: one SMTP connection per thread, reopened when lost, a message
sent again only when it cannot have been accepted. Real SMTP servers on
loopback (tests/lib/smtp_servers.py), counting the sessions they see."""

from __future__ import annotations

import smtplib
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.core import mail as django_mail
from django.core.mail import EmailMessage

from lib import mail
from tests.lib.smtp_servers import Server, point_django_at, serving


def _message(n: int) -> EmailMessage:
    return EmailMessage(subject=f"Message {n}", body="Hello", from_email="shop@example.com", to=[f"r{n}@example.com"])


def _wait_until(predicate: Any, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def _subjects(server: Server) -> list[str]:
    with server.lock:
        return [str(m["Subject"]) for m in server.messages]


@pytest.fixture
def smtp(settings: Any) -> Iterator[Server]:
    with serving(Server()) as (server, port):
        point_django_at(settings, port)
        yield server


def test_it_sends_many_messages_on_one_connection(smtp: Server) -> None:
    for n in range(25):
        assert mail.send(_message(n)) == 1
    assert _subjects(smtp) == [f"Message {n}" for n in range(25)]
    assert smtp.count("connections") == 1 and len(set(smtp.ports)) == 1
    mail.close_connection()  # QUIT: the server sees the session end
    _wait_until(lambda: smtp.count("closed") == 1)


def test_it_reconnects_after_the_server_closed_an_idle_connection(settings: Any) -> None:
    with serving(Server(), idle_timeout=0.3) as (server, port):
        point_django_at(settings, port)
        mail.send(_message(1))
        _wait_until(lambda: server.count("closed") == 1)  # the server ended the idle session
        mail.send(_message(2))  # fails on the dead session at MAIL, resent on a new one
        mail.send(_message(3))
        assert _subjects(server) == ["Message 1", "Message 2", "Message 3"]
        assert server.count("connections") == 2


@pytest.mark.parametrize("ending", ["421", "close"])
def test_a_session_ended_between_messages_loses_and_doubles_nothing(settings: Any, ending: Any) -> None:
    # After 4 messages the server ends the session at the next MAIL: with a 421
    # (Exim's per-connection limit), or by closing (an idle timeout as the client sees it).
    with serving(Server(max_messages=4, ending=ending)) as (server, port):
        point_django_at(settings, port)
        for n in range(10):
            mail.send(_message(n))
        assert _subjects(server) == [f"Message {n}" for n in range(10)]  # each once, in order
        assert server.count("connections") == 3


def test_a_connection_lost_after_the_message_went_out_is_not_resent(smtp: Server, settings: Any) -> None:
    mail.send(_message(1))
    smtp.swallow = 1  # the server takes the next message and drops the connection before its "250"
    with pytest.raises(smtplib.SMTPServerDisconnected):
        mail.send(_message(2))  # it may have been delivered: the caller's retry decides, not lib.mail
    assert _subjects(smtp) == ["Message 1", "Message 2"]
    mail.send(_message(3))  # the next message opens a new connection
    assert _subjects(smtp) == ["Message 1", "Message 2", "Message 3"]
    assert smtp.count("connections") == 2


def test_a_new_connection_that_fails_is_not_retried(settings: Any) -> None:
    with serving(Server(max_messages=0)) as (server, port):  # every MAIL answered 421
        point_django_at(settings, port)
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            mail.send(_message(1))
        assert refused.value.smtp_code == 421
        assert server.count("connections") == 1 and server.messages == []


def test_a_refused_message_keeps_the_connection(smtp: Server) -> None:
    smtp.reject = True
    with pytest.raises(smtplib.SMTPDataError, match="550"):
        mail.send(_message(1))
    smtp.reject = False
    mail.send(_message(2))
    assert _subjects(smtp) == ["Message 2"] and smtp.count("connections") == 1


def test_two_threads_get_two_connections(smtp: Server) -> None:
    start = threading.Barrier(2)
    failures: list[BaseException] = []

    def sender(name: str) -> None:
        try:
            start.wait()
            for n in range(6):
                mail.send(_message(n) if name == "a" else _message(100 + n))
                time.sleep(0.005)  # let the two threads interleave
        except BaseException as exc:
            failures.append(exc)
        finally:
            mail.close_connection()

    threads = [threading.Thread(target=sender, args=(name,)) for name in "ab"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert smtp.count("connections") == 2
    with smtp.lock:
        by_port: dict[int, set[bool]] = {}
        for port, message in zip(smtp.ports, smtp.messages, strict=True):
            by_port.setdefault(port, set()).add(int(str(message["Subject"]).split()[1]) >= 100)
    # Each connection carried one thread's messages only.
    assert sorted(by_port.values(), key=sorted) == [{False}, {True}]
    assert len(smtp.messages) == 12


def test_a_thread_that_ended_without_closing_leaves_nothing_open(smtp: Server) -> None:
    thread = threading.Thread(target=lambda: mail.send(_message(1)))
    thread.start()
    thread.join()
    assert smtp.count("closed") == 0  # still open: nobody closed it yet
    mail.send(_message(2))  # a new connection here; the dead thread's one is dropped meanwhile
    _wait_until(lambda: smtp.count("closed") == 1)
    assert smtp.count("connections") == 2


def test_a_new_server_in_the_settings_gets_a_new_connection(smtp: Server, settings: Any) -> None:
    mail.send(_message(1))
    with serving(Server()) as (other, port):
        point_django_at(settings, port)
        mail.send(_message(2))
        assert _subjects(other) == ["Message 2"]
    _wait_until(lambda: smtp.count("closed") == 1)  # the first one was let go
    assert _subjects(smtp) == ["Message 1"]


def test_reuse_can_be_turned_off(smtp: Server, settings: Any) -> None:
    settings.EMAIL_REUSE_CONNECTIONS = False  # a connection per message, as Django does alone
    for n in range(4):
        mail.send(_message(n))
    assert len(smtp.messages) == 4 and smtp.count("connections") == 4


def test_other_backends_send_as_django_does(settings: Any, capsys: pytest.CaptureFixture[str]) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    django_mail.outbox = []
    assert mail.send(_message(1)) == 1
    assert [m.subject for m in django_mail.outbox] == ["Message 1"]

    settings.EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
    mail.send(_message(2))
    assert "Subject: Message 2" in capsys.readouterr().out

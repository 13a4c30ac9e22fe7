"""Release smoke test of the payment webhook: send one Standard Webhooks event,
signed with PAYMENT_WEBHOOK_SECRET (or --secret), to --url, expect 200, then
wait until a worker has processed it.

The event's type is ``smoke.test``: the endpoint verifies the signature and
stores it with its outbox message, as it does a payment; the relay puts it on
the ``high`` queue and a worker processes it without touching any order.
When it is processed the command deletes the event (a smoke test is not a
payment; its processed outbox message goes with the nightly prune), so
nothing permanent is left behind. It fails, saying where the event stopped,
when it is not processed within --wait seconds (no relay? no worker on
``high``?). The check reads this deployment's database, so run it where
DATABASE_URL is the target's; ``--no-wait`` only checks intake (another
deployment's URL). ``--curl`` prints the signed request as a curl command."""

from __future__ import annotations

import json
import shlex
import time
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from standardwebhooks.webhooks import Webhook

from lib.arguments import positive_seconds
from webhooks.smoke import SMOKE_TYPE, webhook_smoke_cleanup, webhook_smoke_state


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--url", required=True, help="e.g. https://vito.example.com/api/webhooks/payments/")
        parser.add_argument("--secret", help="whsec_… (default: the first of PAYMENT_WEBHOOK_SECRET)")
        parser.add_argument("--curl", action="store_true", help="print a curl command instead of sending")
        # positive_seconds: urlopen() raises a bare ValueError (a traceback) on a negative timeout.
        parser.add_argument("--timeout", type=positive_seconds, default=10, help="seconds (default %(default)s)")
        parser.add_argument(
            "--wait",
            type=positive_seconds,
            default=60,
            help="seconds to wait for a worker to process the event (default %(default)s)",
        )
        parser.add_argument(
            "--no-wait", action="store_true", help="check intake only (a URL whose database is not this one)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        url = options["url"]
        if not url.startswith(("http://", "https://")):
            raise CommandError(f"--url must be an http(s) URL, got {url!r}", returncode=2)
        secrets = (options["secret"] or settings.PAYMENT_WEBHOOK_SECRET).split()
        if not secrets:
            raise CommandError("no secret: set PAYMENT_WEBHOOK_SECRET or pass --secret whsec_…", returncode=2)
        now = datetime.now(UTC)
        msg_id = f"msg_smoke_{uuid.uuid4().hex}"
        body = json.dumps({"type": SMOKE_TYPE, "timestamp": now.isoformat(), "data": {"smoke": True}})
        try:
            signature = Webhook(secrets[0]).sign(msg_id=msg_id, timestamp=now, data=body)
        except Exception as exc:
            raise CommandError(f"cannot sign with that secret ({exc}); expected whsec_<base64>", returncode=2) from None
        headers = {
            "Content-Type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": signature,
        }
        if options["curl"]:
            parts = ["curl", "-fsS", "-X", "POST", url]
            for name, value in headers.items():
                parts += ["-H", f"{name}: {value}"]
            self.stdout.write(shlex.join([*parts, "--data-raw", body]))
            return
        request = urllib.request.Request(url, data=body.encode(), headers=headers, method="POST")  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=options["timeout"]) as response:  # noqa: S310 - operator's URL
                status, answer = response.status, response.read().decode(errors="replace")
        except urllib.error.HTTPError as exc:
            status, answer = exc.code, exc.read().decode(errors="replace")
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise CommandError(f"webhook smoke test: cannot reach {url}: {exc}", returncode=1) from None
        if status != 200:
            raise CommandError(f"webhook smoke test: {url} answered {status}: {answer[:300]}", returncode=1)
        self.stdout.write(f"webhook smoke test: {url} answered 200 {answer[:200]}")
        if not options["no_wait"]:
            self._wait_processed(msg_id, options["wait"])

    def _wait_processed(self, msg_id: str, wait: float) -> None:
        started = time.monotonic()
        state = webhook_smoke_state(event_id=msg_id)
        while state is None or state[0] != "processed":
            if time.monotonic() - started > wait:
                raise CommandError(f"webhook smoke test: {self._stuck(state, wait)}", returncode=1)
            time.sleep(0.2)
            state = webhook_smoke_state(event_id=msg_id)
        took = time.monotonic() - started
        webhook_smoke_cleanup(event_id=msg_id)
        self.stdout.write(f"webhook smoke test: processed by a worker {took:.1f}s after intake (test event deleted)")

    @staticmethod
    def _stuck(state: tuple[str, str] | None, wait: float) -> str:
        if state is None:
            return (
                "the endpoint answered 200 but this database has no such event: is DATABASE_URL this "
                "deployment's? (--no-wait checks intake only)"
            )
        event, message = state
        where = {
            "pending": "its outbox message was never relayed: is `outbox_process --loop` running?",
            "dispatched": "it is on the `high` queue but no worker processed it: is a worker on `high` running?",
            "dead": "its processing failed every retry: see the failed jobs (queue_failed)",
        }.get(message, f"outbox message {message or 'missing'}")
        return f"event stored ({event}) but not processed within {wait:g}s: {where}"

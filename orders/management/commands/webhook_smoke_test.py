"""Release smoke test of the payment webhook: send one Standard Webhooks event,
signed with PAYMENT_WEBHOOK_SECRET (or --secret), to --url and expect 200.

The event's type is ``smoke.test``: the endpoint verifies the signature,
stores it and answers 200, and records it as ignored (an unknown type), so no
order is touched and no failed webhook event is left behind, as a
``payment.succeeded`` for a made-up order would be. ``--curl`` prints the same
signed request as a curl command instead of sending it."""

from __future__ import annotations

import json
import shlex
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from standardwebhooks.webhooks import Webhook

from queueing.management.commands._base import positive_seconds


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--url", required=True, help="e.g. https://vito.example.com/api/webhooks/payments/")
        parser.add_argument("--secret", help="whsec_… (default: the first of PAYMENT_WEBHOOK_SECRET)")
        parser.add_argument("--curl", action="store_true", help="print a curl command instead of sending")
        # positive_seconds: urlopen() raises a bare ValueError (a traceback) on a negative timeout.
        parser.add_argument("--timeout", type=positive_seconds, default=10, help="seconds (default %(default)s)")

    def handle(self, *args: Any, **options: Any) -> None:
        url = options["url"]
        if not url.startswith(("http://", "https://")):
            raise CommandError(f"--url must be an http(s) URL, got {url!r}", returncode=2)
        secrets = (options["secret"] or settings.PAYMENT_WEBHOOK_SECRET).split()
        if not secrets:
            raise CommandError("no secret: set PAYMENT_WEBHOOK_SECRET or pass --secret whsec_…", returncode=2)
        now = datetime.now(UTC)
        msg_id = f"msg_smoke_{uuid.uuid4().hex}"
        body = json.dumps({"type": "smoke.test", "timestamp": now.isoformat(), "data": {"smoke": True}})
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

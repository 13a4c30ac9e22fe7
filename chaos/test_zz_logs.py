"""Last (hence the name): no secret and no signature in any log line of the run.

Every process the scenarios started wrote its output under the run's log
directory, and the servers keep their own logs; the run's secrets are random,
so finding one of them (or a signature-shaped header value) is a leak.
"""

from __future__ import annotations

import base64
import os
import re
from pathlib import Path

import pytest

from chaos.cluster import LOG_ROOT
from chaos.services import Services

SIGNATURES = [
    re.compile(r"v1,[A-Za-z0-9+/]{40,}={0,2}"),  # Standard Webhooks
    re.compile(r"t=\d+,v1=[0-9a-f]{64}"),  # Stripe
    # schemathesis prints a failing case's curl with the header's value as "[Filtered]"
    re.compile(r"(?i)(webhook-signature|stripe-signature|authorization)['\"]?\s*[:=]\s*['\"]?(?!\[Filtered\])\S{8,}"),
]


def _secrets() -> list[str]:
    values = [
        os.environ[name] for name in ("PAYMENT_WEBHOOK_SECRET", "STRIPE_WEBHOOK_SECRET", "METRICS_TOKEN", "SECRET_KEY")
    ]
    payment = os.environ["PAYMENT_WEBHOOK_SECRET"].removeprefix("whsec_")
    values += [payment, base64.b64decode(payment).hex()]
    return values


def _logs() -> list[Path]:
    services = Services.current()
    found = [p for p in LOG_ROOT.rglob("*") if p.is_file()]
    return found + [
        p for p in (services.var / "pg" / "server.log", services.var / "chaos-redis" / "redis.log") if p.exists()
    ]


@pytest.mark.fast
def test_no_secret_or_signature_in_any_log_line(record) -> None:  # type: ignore[no-untyped-def]
    secrets = _secrets()
    lines = 0
    leaks: list[str] = []
    for path in _logs():
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            lines += 1
            if any(secret in line for secret in secrets) or any(p.search(line) for p in SIGNATURES):
                leaks.append(f"{path.relative_to(path.parents[1])}:{number}: {line[:200]}")
    record("no secret or signature in the logs", load=f"{lines} log lines", fault="grep for the run's secrets",
           lost="–", duplicated="–")  # fmt: skip
    assert lines > 0
    assert not leaks, "\n".join(leaks[:20])

"""Release smoke test of public tracking: one tracked redirect, through HTTP,
all the way into PostgreSQL.

It creates (on first use) a dedicated ``smoke-test`` tenant and its link
``smoke``, requests ``<url>/t/smoke-test/r/smoke?utm_…`` without following the
redirect, checks the answer is a 302 whose Location carries the UTM
parameters, puts the drain (RecordInteraction) on the queue so it does not
wait for its minute, and waits until the interaction is a row in
PostgreSQL. Then it deletes that row (a smoke test is not a visitor).

It fails, saying which, when the URL does not answer or answers wrongly, when
the hit never reaches the Redis buffer (the web app cannot reach Redis: the
redirect is still served, uncounted), when no worker drains the buffer, or
when PostgreSQL is away. It reads this deployment's database, so run it
where DATABASE_URL and REDIS_URL are the target's.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
import uuid
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError
from redis.exceptions import RedisError

from analytics.jobs import record_interactions
from lib.arguments import positive_seconds
from tenants import tracking
from tenants.models import Interaction
from tenants.services import SmokeTenantTaken, tracking_smoke_interactions_delete, tracking_smoke_link_ensure


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # the 302 itself is what we check


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="the site's base URL (default %(default)s)")
        parser.add_argument("--timeout", type=positive_seconds, default=10, help="HTTP timeout (default %(default)s)")
        parser.add_argument(
            "--wait",
            type=positive_seconds,
            default=120,
            help="seconds to wait for the interaction to reach PostgreSQL (default %(default)s)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        base = options["url"].rstrip("/")
        if not base.startswith(("http://", "https://")):
            raise CommandError(f"--url must be an http(s) URL, got {options['url']!r}", returncode=2)
        try:
            link = tracking_smoke_link_ensure()
        except DatabaseError as exc:
            raise CommandError(f"tracking smoke test: PostgreSQL: {_first_line(exc)}", returncode=1) from None
        except SmokeTenantTaken as exc:
            raise CommandError(f"tracking smoke test: {exc}", returncode=1) from None
        campaign = f"smoke-{uuid.uuid4().hex[:12]}"
        utm = {"utm_source": "release", "utm_medium": "smoke-test", "utm_campaign": campaign}
        url = f"{base}/t/{link.tenant.slug}/r/{link.code}?{urlencode(utm)}"
        self._check_redirect(url, utm, options["timeout"])
        self.stdout.write(f"tracking smoke test: {url} redirected with its UTM parameters")
        try:
            record_interactions.dispatch()  # drain now, not at the next minute (unique: one at a time)
        except RedisError as exc:
            raise CommandError(f"tracking smoke test: Redis: {exc}", returncode=1) from None
        took = self._wait_recorded(link.tenant_id, campaign, options["wait"])
        tracking_smoke_interactions_delete(tenant_id=link.tenant_id, campaign=campaign)
        self.stdout.write(f"tracking smoke test: the hit was a row in PostgreSQL {took:.1f}s later (row deleted)")

    def _check_redirect(self, url: str, utm: dict[str, str], timeout: float) -> None:
        request = urllib.request.Request(url, headers={"User-Agent": "vito-tracking-smoke-test"})  # noqa: S310
        opener = urllib.request.build_opener(_NoRedirects)
        try:
            with opener.open(request, timeout=timeout) as response:
                status, location = response.status, response.headers.get("Location", "")
        except urllib.error.HTTPError as exc:
            status, location = exc.code, exc.headers.get("Location", "")
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise CommandError(f"tracking smoke test: cannot reach {url}: {exc}", returncode=1) from None
        if status != 302:
            raise CommandError(f"tracking smoke test: {url} answered {status}, expected a 302 redirect", returncode=1)
        carried = {key: values[-1] for key, values in parse_qs(urlsplit(location).query).items()}
        missing = [key for key, value in utm.items() if carried.get(key) != value]
        if missing:
            raise CommandError(
                f"tracking smoke test: the redirect to {location!r} lost {', '.join(missing)}", returncode=1
            )

    def _wait_recorded(self, tenant_id: int, campaign: str, wait: float) -> float:
        started = time.monotonic()
        while True:
            try:
                if Interaction.objects.filter(tenant_id=tenant_id, utm_campaign=campaign).exists():
                    return time.monotonic() - started
            except DatabaseError as exc:
                raise CommandError(f"tracking smoke test: PostgreSQL: {_first_line(exc)}", returncode=1) from None
            if time.monotonic() - started > wait:
                raise CommandError(f"tracking smoke test: {self._diagnose(campaign, wait)}", returncode=1)
            time.sleep(0.25)

    @staticmethod
    def _diagnose(campaign: str, wait: float) -> str:
        stem = f"the hit was not recorded in PostgreSQL within {wait:g}s"
        try:
            buffered = tracking.buffered_hits(campaign=campaign)
        except RedisError as exc:
            return f"{stem}, and Redis does not answer here: {exc}"
        if buffered:
            return (
                f"{stem}: it waits in the Redis buffer, so nothing drains it: is a worker on `default` "
                "running (analytics.jobs.record_interactions)?"
            )
        return (
            f"{stem}, and it is not in the Redis buffer: the web app served the redirect without recording it "
            "(can it reach Redis? see its log for 'Redis unavailable')"
        )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__

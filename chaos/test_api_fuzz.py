"""Schema-driven fuzzing of the tenant API: schemathesis against the live gunicorn.

schemathesis' CLI (``st run``) reads the schema from the running server's
``/api/schema/`` and fuzzes every operation in it, authenticated as a member
of one tenant: the coverage phase (boundary and invalid values, missing
headers, wrong methods), the fuzzing phase (positive and negative data) and,
in the full run, the stateful phase (POST → GET chains it infers from the
responses). Generation is deterministic, so a run repeats itself.

A fuzz dictionary (``schemathesis.toml``, written per run) mixes in what
random generation would almost never produce: the ids of real objects (the
tenant's own, and another tenant's, which must stay 404) and the calendar's
edges (year 1, 9999-12-31), where date arithmetic overflows.

The verdict does not trust the client: gunicorn's access log is counted per
operation (requests, status codes) and any 5xx fails; then the database and
the queue are counted against the 202s the server gave: one export or report
row and one queued job per accepted request (none lost, none doubled), and
at most one ``campaign.send_requested`` however often a campaign is sent.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.authtoken.models import Token

from analytics.models import MonthlyReport
from appointments.models import Appointment, Customer, Service, StaffMember
from chaos.cluster import Cluster, Web, wait_for
from marketing.models import Campaign, Subscriber
from orders.models import SalesExport
from outbox.models import OutboxMessage
from queueing.dispatch import get_queue
from tenants.models import ErasureRequest, Tenant, TenantMember
from tests.factories import ProductFactory, TenantFactory, UserFactory
from webhooks.outbound.models import Delivery, OutboundMessage
from webhooks.outbound.services import endpoint_create

pytestmark = pytest.mark.django_db(transaction=True)

ST = Path(sys.executable).with_name("st")  # schemathesis' CLI, next to this interpreter
# Beyond "no 5xx": responses match the schema (status codes, bodies, headers),
# requests without the token are refused, unsupported methods are 405s.
# Left out: content_type_conformance (a path that matches no route at all, like
# /api/exports/abc/, is Django's HTML 404 page, not an API response) and
# positive/negative_data_acceptance (cross-field rules such as from ≤ to and
# "not a future month" cannot be written in OpenAPI, so valid-looking data is
# rightly refused).
CHECKS = (
    "not_a_server_error,status_code_conformance,response_schema_conformance,response_headers_conformance,"
    "missing_required_header,ignored_auth,unsupported_method,allow_header_conformance,"
    "use_after_free,ensure_resource_availability"
)
EDGE_DATES = ["0001-01-01", "0001-01-10", "9999-12-31", "9999-12-30", "1970-01-01", "2000-02-29", "2026-01-31"]
EDGE_MONTHS = ["0001-01", "0000-01", "1970-01", "2026-01", "9999-12"]

# An access-log line: 127.0.0.1 - - [date] "PUT /api/products/7/image/?x=1 HTTP/1.1" 400 …
ACCESS = re.compile(r'"(?P<method>[A-Z]+) (?P<path>[^ ?"]*)\S* HTTP/[0-9.]+" (?P<status>\d{3}) ')


@dataclass(frozen=True)
class Fixture:
    """The fuzzed tenant's member token, and the ids the dictionary offers."""

    token: str
    slugs: list[str]  # ours, then another tenant's (404 for this user)
    tenant_ids: list[int]  # the same two
    ids: dict[str, list[int]]  # path parameter -> ids of ours…, then another tenant's
    booking: dict[str, list[Any]]  # body field of a booking -> values that book (customer, service, staff, start)
    doomed: list[int]  # webhook endpoints offered to DELETE only, so PUT and PATCH keep theirs


@dataclass(frozen=True)
class Budget:
    name: str
    examples: int  # --max-examples: per operation and phase
    phases: str


# Outbound webhook URLs that pass registration (public addresses, no DNS needed);
# random ones rarely do.
PUBLIC_URLS = ["https://93.184.216.34/hooks", "https://[2606:2800:220:1:248:1893:25c8:1946]/hooks"]

# The coverage phase alone is ~250 requests whatever the budget, hence not in the quick run.
QUICK = Budget("quick", examples=10, phases="fuzzing")
FULL = Budget("full", examples=50, phases="examples,coverage,fuzzing,stateful")


def _tenant_with_data() -> Fixture:
    tenant, other = TenantFactory.create(), TenantFactory.create()
    user = UserFactory.create()
    TenantMember.objects.create(tenant=tenant, user=user, role=TenantMember.Role.OWNER)
    Subscriber.objects.bulk_create(Subscriber(tenant=tenant, email=f"s{n}@{tenant.slug}.example.com") for n in range(3))
    draft = Campaign.objects.create(tenant=tenant, subject="Spring sale", body="-20%")
    sent = Campaign.objects.create(
        tenant=tenant, subject="Winter sale", body="-30%", status=Campaign.Status.SENT, sent_at=timezone.now()
    )
    ids = {
        "export_id": [_export(tenant, SalesExport.Status.DONE).pk, _export(tenant, SalesExport.Status.FAILED).pk,
                      _export(other, SalesExport.Status.DONE).pk],
        "report_id": [_report(tenant, MonthlyReport.Status.DONE).pk, _report(tenant, MonthlyReport.Status.QUEUED).pk,
                      _report(other, MonthlyReport.Status.DONE).pk],
        "campaign_id": [draft.pk, sent.pk, Campaign.objects.create(tenant=other, subject="x", body="y").pk],
        "product_id": [ProductFactory.create(tenant=tenant).pk, ProductFactory.create(tenant=other).pk],
        # The bookings and webhook-endpoint APIs' {id}: one of each of the tenant's kinds
        # (a webhook endpoint among them), and another tenant's appointment.
        "id": (ours := _booking_ids(tenant)) + _booking_ids(other)[:1],
    }  # fmt: skip
    # A booking succeeds (201, or 409 for a slot taken) only with the tenant's own
    # customer, service and staff and a start in the future: offered most of the time.
    soon = (timezone.now() + timedelta(days=5)).replace(hour=10, minute=0, second=0, microsecond=0)
    booking: dict[str, list[Any]] = {"customers": [ours[1]], "services": [ours[2]], "staff_ids": [ours[3]],
               "starts": [(soon + timedelta(hours=h)).isoformat() for h in range(3)]}  # fmt: skip
    token = Token.objects.create(user=user).key
    doomed = [endpoint_create(tenant_id=tenant.pk, url=PUBLIC_URLS[0], event_types=[])[0].pk for _ in range(10)]
    return Fixture(
        token=token, slugs=[tenant.slug, other.slug], tenant_ids=[tenant.pk, other.pk], ids=ids, booking=booking,
        doomed=doomed,
    )  # fmt: skip


def _booking_ids(tenant: Tenant) -> list[int]:
    service = Service.objects.create(tenant=tenant, name="Haircut", duration_minutes=30)
    staff = StaffMember.objects.create(tenant=tenant, name="Bob")
    staff.services.add(service)
    customer = Customer.objects.create(tenant=tenant, name="Ada", email=f"ada@{tenant.slug}.example.com")
    start = timezone.now() + timedelta(days=3)
    appointment = Appointment.objects.create(
        tenant=tenant, customer=customer, service=service, staff=staff, customer_name="Ada",
        service_name="Haircut", starts_at=start, ends_at=start + timedelta(minutes=30),
    )  # fmt: skip
    # A webhook endpoint with one failed message, so resend and recover have work.
    hook, _ = endpoint_create(tenant_id=tenant.pk, url=PUBLIC_URLS[0], event_types=["order.paid"])
    message = OutboundMessage.objects.create(
        msg_id=f"msg_fuzz_{tenant.pk}", tenant_id=tenant.pk, event_type="order.paid", payload={"data": {}}
    )
    Delivery.objects.create(message=message, endpoint=hook, status=Delivery.Status.FAILED, attempts=8)
    # More endpoints for PUT and PATCH: random ids and the stateful phase may still DELETE a few.
    spares = [endpoint_create(tenant_id=tenant.pk, url=PUBLIC_URLS[n % 2], event_types=[])[0].pk for n in range(4)]
    return [appointment.pk, customer.pk, service.pk, staff.pk, hook.pk, *spares]


def _export(tenant: Tenant, status: str) -> SalesExport:
    return SalesExport.objects.create(
        tenant=tenant, date_from=date(2026, 1, 1), date_to=date(2026, 1, 31), status=status,
        rows_done=10, rows_total=10, error="boom" if status == SalesExport.Status.FAILED else "",
    )  # fmt: skip


def _report(tenant: Tenant, status: str) -> MonthlyReport:
    return MonthlyReport.objects.create(tenant=tenant, month=date(2026, 1, 1), status=status)


def _config(fixture: Fixture, path: Path) -> Path:
    """schemathesis.toml: the token, and the fuzz dictionary bound to parameters."""
    dictionaries: dict[str, list[Any]] = {**fixture.ids, **fixture.booking, "dates": EDGE_DATES, "months": EDGE_MONTHS,
                                          "tenants": fixture.slugs, "urls": PUBLIC_URLS, "doomed": fixture.doomed,
                                          "failed_hook": fixture.ids["id"][4:5],
                                          "msg_ids": [f"msg_fuzz_{pk}" for pk in fixture.tenant_ids]}  # fmt: skip
    bindings = {f"path.{name}": (name, 0.5) for name in fixture.ids} | {
        "query.from": ("dates", 0.3), "query.to": ("dates", 0.3),
        "body.date_from": ("dates", 0.3), "body.date_to": ("dates", 0.3),
        "body.month": ("months", 0.3), "header.X-Tenant": ("tenants", 0.5),
        "body.customer": ("customers", 0.8), "body.service": ("services", 0.8), "body.staff": ("staff_ids", 0.5),
        "body.starts_at": ("starts", 0.7),
        "body.url": ("urls", 0.5), "body.msg_id": ("msg_ids", 0.5),
    }  # fmt: skip
    lines = [f"headers = {{ Authorization = {json.dumps('Token ' + fixture.token)} }}", ""]
    for name, values in dictionaries.items():
        lines += [f"[dictionaries.{name}]", f"values = {json.dumps(values)}", ""]
    lines.append("[parameters]")
    lines += [f'"{key}" = {{ dictionary = "{name}", probability = {p} }}' for key, (name, p) in bindings.items()]
    # DELETE gets endpoints of its own: sharing the others', it removed them all
    # early in the full run and left PUT and PATCH nothing but 404s.
    lines += ["", "[[operations]]", 'include-path = "/api/webhook-endpoints/{id}/"', 'include-method = "DELETE"',
              'parameters = { "path.id" = { dictionary = "doomed", probability = 0.5 } }']  # fmt: skip
    # A resend succeeds only for the endpoint that has the failed message (one id of ten).
    lines += ["", "[[operations]]", 'include-path = "/api/webhook-endpoints/{id}/resend/"',
              'parameters = { "path.id" = { dictionary = "failed_hook", probability = 0.5 },'
              ' "body.msg_id" = { dictionary = "msg_ids", probability = 0.5 } }']  # fmt: skip
    path.write_text("\n".join(lines) + "\n")
    return path


def _schema(web: Web) -> dict[str, Any]:
    status, body = web.request("GET", "/api/schema/?format=json", timeout=30)
    assert status == 200, body[:500]
    schema: dict[str, Any] = json.loads(body)
    return schema


def _operations(schema: dict[str, Any]) -> dict[tuple[str, re.Pattern[str]], str]:
    """(METHOD, path regex) -> "METHOD /template/" for every operation the schema lists."""
    found = {}
    for template, item in schema["paths"].items():
        pattern = re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$")
        for method in item:
            found[(method.upper(), pattern)] = f"{method.upper()} {template}"
    return found


def _edge_sweep(web: Web, schema: dict[str, Any], token: str) -> int:
    """Each edge date alone in each date parameter and body field of the schema.

    Random generation rarely leaves every other optional parameter out while
    drawing a calendar edge, and that is where defaults are computed from the
    one given (``to`` alone: 29 days before year 1). The fuzz judges the
    answers with the rest (access log); returns the number of requests."""
    headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
    sent = 0
    for path, item in schema["paths"].items():
        if "{" in path:
            continue  # operations on an object: their ids come from the dictionary
        for method, operation in item.items():
            for name in _date_query_parameters(operation):
                for value in EDGE_DATES:
                    web.request(method.upper(), f"{path}?{name}={value}", headers=headers, timeout=30)
                    sent += 1
            fields = _date_body_fields(schema, operation)
            for value in EDGE_DATES if fields else []:
                body = json.dumps(dict.fromkeys(fields, value)).encode()
                web.request(method.upper(), path, body=body, headers=headers, timeout=30)
                sent += 1
    return sent


def _date_query_parameters(operation: dict[str, Any]) -> list[str]:
    return [
        p["name"] for p in operation.get("parameters", []) if p["in"] == "query" and p["schema"].get("format") == "date"
    ]


def _date_body_fields(schema: dict[str, Any], operation: dict[str, Any]) -> list[str]:
    ref = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {}).get("$ref")
    if not ref:
        return []
    component = schema["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    return [name for name, field in component.get("properties", {}).items() if field.get("format") == "date"]


def _settled_output(web: Web) -> str:
    """gunicorn's log once every answered request is in it: a worker writes the
    access line after the response has gone, so the last answers may not be
    logged yet when the client is done. A marker request, then no growth for 0.5 s."""
    web.request("GET", "/healthz?fuzz-done", timeout=30)
    wait_for(lambda: "/healthz?fuzz-done" in web.proc.output(), timeout=30)
    seen = [web.proc.output()]

    def unchanged() -> bool:
        time.sleep(0.5)
        seen.append(web.proc.output())
        return seen[-1] == seen[-2]

    wait_for(unchanged, timeout=30, step=0)
    return seen[-1]


def _access_log(web: Web, operations: dict[tuple[str, re.Pattern[str]], str]) -> dict[str, Counter[int]]:
    """Status codes per operation, from gunicorn's access log (the server's own account).
    Requests that match no operation (wrong method or path) count under "(other)"."""
    counts: dict[str, Counter[int]] = {name: Counter() for name in operations.values()}
    counts["(other)"] = Counter()
    for match in ACCESS.finditer(_settled_output(web)):
        if match["path"] in ("/api/schema/", "/healthz"):
            continue
        name = next(
            (n for (m, p), n in operations.items() if m == match["method"] and p.match(match["path"])), "(other)"
        )
        counts[name][int(match["status"])] += 1
    return counts


def _check_failures(junit: Path) -> dict[str, int]:
    """Failed checks per operation, from schemathesis' JUnit report."""
    if not junit.exists():
        return {}
    root = ET.parse(junit).getroot()  # noqa: S314 - our own subprocess wrote it
    return {
        case.get("name", "?"): len(case.findall("failure")) + len(case.findall("error"))
        for case in root.iter("testcase")
        if case.findall("failure") or case.findall("error")
    }


def _run(cluster: Cluster, web: Web, config: Path, budget: Budget, work: Path) -> subprocess.CompletedProcess[str]:
    argv = [
        str(ST), "--config-file", str(config), "run", f"http://127.0.0.1:{web.port}/api/schema/?format=json",
        "--checks", CHECKS, "--phases", budget.phases, "--max-examples", str(budget.examples),
        "--generation-deterministic", "--workers", "2", "--request-timeout", "30",
        "--report", "junit", "--report-junit-path", str(work / "junit.xml"), "--no-color",
    ]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=240, cwd=work)
    # Next to the scenario's logs: what schemathesis saw (the token is in neither file).
    cluster.log_dir.mkdir(parents=True, exist_ok=True)
    (cluster.log_dir / "schemathesis.log").write_text(done.stdout + done.stderr)
    if (work / "junit.xml").exists():
        (cluster.log_dir / "schemathesis-junit.xml").write_bytes((work / "junit.xml").read_bytes())
    return done


def _fuzz(cluster: Cluster, budget: Budget, record: Any, work: Path) -> None:
    fixture = _tenant_with_data()
    before = (
        SalesExport.objects.count(),
        MonthlyReport.objects.count(),
        ErasureRequest.objects.count(),
        Appointment.objects.count(),
    )
    web = cluster.web(workers=2)
    schema = _schema(web)
    operations = _operations(schema)
    started = time.monotonic()
    done = _run(cluster, web, _config(fixture, work / "schemathesis.toml"), budget, work)
    _edge_sweep(web, schema, fixture.token)
    took = time.monotonic() - started

    counts = _access_log(web, operations)
    requests = {name: sum(c.values()) for name, c in counts.items()}
    server_errors = {name: n for name, c in counts.items() if (n := sum(v for k, v in c.items() if k >= 500))}
    failed_checks = _check_failures(work / "junit.xml")
    # The end state against what the server answered.
    accepted = {
        "exports": counts["POST /api/exports/"][202],
        "reports": counts["POST /api/reports/"][202],
        "images": counts["PUT /api/products/{product_id}/image/"][200],
        "erasures": counts["POST /api/privacy/erase/"][202],
    }
    # Bookings: one appointment per 201 (its confirmation waits in the outbox, not on a queue).
    booked = {"appointments": counts["POST /api/appointments/"][201]}
    rows = {
        "exports": SalesExport.objects.count() - before[0],
        "reports": MonthlyReport.objects.count() - before[1],
        "erasures": ErasureRequest.objects.count() - before[2],
    }
    booked_rows = {"appointments": Appointment.objects.count() - before[3]}
    # A resend or recover queues one wake-up per endpoint, whatever it restarts
    # (tests/webhooks/ check those); the count is of the jobs accepted requests make.
    jobs = sum(1 for job in get_queue("default").get_jobs() if job.func_name != "webhooks.outbound.jobs.wake")
    sends = Counter(
        OutboxMessage.objects.filter(event_type="campaign.send_requested").values_list("aggregate_id", flat=True)
    )
    lost = sum(max(0, accepted[k] - rows[k]) for k in rows) + max(0, sum(accepted.values()) - jobs)
    twice = sum(max(0, rows[k] - accepted[k]) for k in rows) + max(0, jobs - sum(accepted.values()))
    twice += sum(n - 1 for n in sends.values())
    lost += max(0, booked["appointments"] - booked_rows["appointments"])
    twice += max(0, booked_rows["appointments"] - booked["appointments"])

    total = sum(requests.values())
    record(
        f"API fuzz from OpenAPI schema ({budget.name})",
        load=f"{len(operations)} operations × ≤{budget.examples} examples/phase ({budget.phases}): {total} requests",
        fault="schema-driven fuzz (positive + negative data, edge dates, real ids)",
        lost=lost,
        duplicated=twice,
        recovered=f"{sum(server_errors.values())} × 5xx, {sum(failed_checks.values())} failed checks in {took:.0f} s",
    )
    summary = "\n".join(f"  {name}: {dict(sorted(c.items()))}" for name, c in counts.items())
    summary += f"\naccepted {accepted | booked}, rows {rows | booked_rows}, jobs {jobs}, campaign sends {dict(sends)}"
    tail = done.stdout[-8000:] + done.stderr[-2000:]
    assert not server_errors, f"5xx per operation: {server_errors}\n{summary}\n{tail}"
    assert not failed_checks and done.returncode == 0, f"failed checks: {failed_checks}\n{summary}\n{tail}"
    assert (lost, twice) == (0, 0), summary
    # Every operation was exercised, mostly authenticated (a fuzz of 401s proves
    # nothing), and the real ids got past the 404 into the operations' logic.
    for name in operations.values():
        # Half the budget: schemathesis stops early on an operation whose inputs it has
        # exhausted (a GET with one id parameter made 41-68 requests of 50 across runs).
        assert requests[name] >= budget.examples // 2, f"{name}: only {requests[name]} requests\n{summary}"
        assert counts[name][401] < requests[name] / 2, f"{name}: mostly unauthenticated\n{summary}"
        assert any(200 <= code < 300 or code == 409 for code in counts[name]), f"{name}: never succeeded\n{summary}"
    # Only the draft campaign can be started (the sent one is a 409, the other
    # tenant's a 404), and any 202 means it was: one message, however many sends.
    draft_sent = counts["POST /api/campaigns/{campaign_id}/send/"][202] > 0
    assert set(sends) == ({str(fixture.ids["campaign_id"][0])} if draft_sent else set()), summary


@pytest.mark.fast
def test_api_fuzz_quick(cluster: Cluster, record: Any, tmp_path: Path) -> None:
    _fuzz(cluster, QUICK, record, tmp_path)


def test_api_fuzz(cluster: Cluster, record: Any, tmp_path: Path) -> None:
    _fuzz(cluster, FULL, record, tmp_path)

"""AI business profiles: the offline provider, the chat-completions client
against a local server speaking that protocol, and the approval flow with a
real relay and worker."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from redis import Redis

from outbox.services import outbox_relay_drain
from queueing.models import FailedJob
from tenants.ai import (
    AIUnavailable,
    ChatCompletionsProvider,
    InvalidAIResponse,
    LocalProvider,
    ProfileInput,
    parse_chat_answer,
)
from tenants.models import BusinessProfile, Tenant
from tenants.profiles import enhance_tenant_profile
from tenants.services import tenant_approve
from tests.factories import ProductFactory, TenantFactory, UserFactory
from tests.queueing.conftest import run_worker

BAKERY = ProfileInput(
    tenant_name="Crumb & Co",
    category="Bakery",
    products=[
        ("Sourdough loaf", "Slow fermented sourdough with a dark crust"),
        ("Rye sourdough", "Dense rye bread, sourdough starter"),
        ("Almond croissant", "Butter croissant filled with almond cream"),
    ],
)


def test_the_local_provider_describes_the_catalog_deterministically() -> None:
    draft = LocalProvider().generate(BAKERY)
    assert draft == LocalProvider().generate(BAKERY)
    assert draft.tags[0] == "sourdough" and {"croissant", "almond", "rye", "bakery"} <= set(draft.tags)
    assert "crumb" not in draft.tags and "with" not in draft.tags  # own name and stopwords left out
    assert draft.description.startswith("Crumb & Co is a bakery offering 3 product(s)")
    bikes = LocalProvider().generate(ProfileInput("Spokes", "Bicycle shop", [("Gravel bike", "Steel gravel frame")]))
    assert "gravel" in bikes.tags and not set(bikes.tags) & set(draft.tags)


class FakeChatServer:
    """Speaks enough of /v1/chat/completions: each request pops the next scripted answer."""

    def __init__(self) -> None:
        self.script: list[tuple[int, Any, dict[str, str]]] = []
        self.requests: list[dict[str, Any]] = []
        self.models_status = 200  # what GET /v1/models answers (the heartbeat's probe)
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fake.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": None})
                ok = fake.models_status == 200
                body: dict[str, Any] = {
                    "object": "list",
                    "data": [{"id": "tiny-model", "object": "model", "owned_by": "fake"}],
                }
                raw = json.dumps(body if ok else {"error": {"message": "unavailable"}}).encode()
                self.send_response(fake.models_status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                fake.requests.append(
                    {
                        "path": self.path,
                        "auth": self.headers.get("Authorization"),
                        "body": json.loads(self.rfile.read(length)),
                    }
                )
                status, body, headers = fake.script.pop(0) if fake.script else (500, {"error": "no script"}, {})
                raw = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _answer(content: Any) -> dict[str, Any]:
    text = content if isinstance(content, str) else json.dumps(content)
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}}],
    }


GOOD = {
    "description": "A neighbourhood bakery known for slow-fermented sourdough.",
    "tags": ["Sourdough", "bakery", "rye"],
}


@pytest.fixture
def chat() -> Iterator[FakeChatServer]:
    server = FakeChatServer()
    yield server
    server.stop()


def test_the_chat_client_retries_429_and_5xx_then_validates(chat: FakeChatServer) -> None:
    chat.script = [
        (429, {"error": "slow down"}, {"Retry-After": "0"}),
        (502, b"bad gateway", {}),
        (200, _answer(GOOD), {}),
    ]
    provider = ChatCompletionsProvider(base_url=chat.url, api_key="sk-test", model="tiny-model", max_backoff=0.05)
    draft = provider.generate(BAKERY)
    assert (draft.description, draft.tags, draft.source) == (
        GOOD["description"],
        ["sourdough", "bakery", "rye"],
        "ai:tiny-model",
    )
    assert len(chat.requests) == 3
    sent = chat.requests[-1]
    assert sent["path"] == "/v1/chat/completions" and sent["auth"] == "Bearer sk-test"
    assert sent["body"]["model"] == "tiny-model" and "Sourdough loaf" in sent["body"]["messages"][1]["content"]


def test_the_chat_client_gives_up_clearly(chat: FakeChatServer) -> None:
    chat.script = [(503, b"", {})] * 3
    provider = ChatCompletionsProvider(base_url=chat.url, api_key="k", model="m", max_backoff=0.01)
    with pytest.raises(AIUnavailable, match="failed 3 times"):
        provider.generate(BAKERY)
    chat.script = [(401, {"error": "bad key"}, {})]
    with pytest.raises(InvalidAIResponse, match="HTTP 401"):
        provider.generate(BAKERY)


@pytest.mark.parametrize(
    "answer",
    [
        {"choices": []},
        _answer("Sure! Here is a profile: a lovely bakery."),
        _answer({"description": "short", "tags": ["a"]}),
        _answer({"description": GOOD["description"], "tags": []}),
        _answer({"description": GOOD["description"], "tags": [7]}),
        _answer(["not", "an", "object"]),
    ],
)
def test_malformed_answers_are_refused(answer: Any) -> None:
    with pytest.raises(InvalidAIResponse):
        parse_chat_answer(answer)


@pytest.mark.django_db(transaction=True)
def test_approving_a_tenant_generates_its_profile_through_outbox_and_worker(redis_conn: Redis) -> None:
    tenant = TenantFactory.create(status=Tenant.Status.PENDING, name="Crumb & Co", category="Bakery")
    for name, description in BAKERY.products:
        ProductFactory.create(tenant=tenant, name=name, description=description)
    assert tenant_approve(tenant_id=tenant.pk)
    assert outbox_relay_drain() == 1
    assert run_worker("default", "--burst").returncode == 0  # handler dispatches, then the job runs
    profile = BusinessProfile.objects.get(tenant=tenant)
    assert profile.ai_enhanced_at is not None and profile.tags[0] == "sourdough"
    assert "Sourdough loaf" in profile.description


@pytest.mark.django_db(transaction=True)
def test_a_malformed_ai_answer_fails_once_into_the_ledger_and_changes_nothing(
    redis_conn: Redis, chat: FakeChatServer, monkeypatch: Any
) -> None:
    tenant = TenantFactory.create(status=Tenant.Status.APPROVED)
    BusinessProfile.objects.create(tenant=tenant, description="Written by the owner", tags=["own"])
    chat.script = [(200, _answer("no JSON here"), {})]
    monkeypatch.setenv("AI_BASE_URL", chat.url)
    enhance_tenant_profile.dispatch(tenant.pk)
    assert run_worker("default", "--burst").returncode == 0
    failed = FailedJob.objects.get()
    assert failed.exception_class == "tenants.ai.InvalidAIResponse" and failed.attempts == 1
    assert failed.tenant_id == tenant.pk and "not the JSON object" in failed.message
    profile = BusinessProfile.objects.get(tenant=tenant)
    assert (profile.description, profile.tags, profile.ai_enhanced_at) == ("Written by the owner", ["own"], None)
    assert len(chat.requests) == 1


@pytest.mark.django_db(transaction=True)
def test_a_job_queued_under_the_name_it_had_before_it_moved_still_runs(redis_conn: Redis) -> None:
    """Queued by a release where the job lived in orders.profiles (plain RQ enqueue, its stored name)."""
    from queueing.dispatch import get_queue

    tenant = TenantFactory.create(status=Tenant.Status.APPROVED, category="Bakery")
    ProductFactory.create(tenant=tenant, name="Sourdough loaf", description="Slow fermented sourdough")
    get_queue("default").enqueue_call("orders.profiles.enhance_tenant_profile", args=[tenant.pk])
    assert run_worker("default", "--burst").returncode == 0
    assert not FailedJob.objects.exists()
    assert BusinessProfile.objects.get(tenant=tenant).ai_enhanced_at is not None


@pytest.mark.django_db(transaction=True)
def test_the_admin_action_queues_one_job_per_tenant_once(redis_conn: Redis, client: Any) -> None:
    tenants = [TenantFactory.create(status=Tenant.Status.APPROVED) for _ in range(2)]
    client.force_login(UserFactory.create(is_staff=True, is_superuser=True))
    for _ in range(2):  # twice: unique per tenant for an hour
        response = client.post(
            "/admin/tenants/tenant/",
            {"action": "enhance_profile", "_selected_action": [t.pk for t in tenants]},
            follow=True,
        )
        assert response.status_code == 200 and b"Profile enhancement queued for 2 tenant(s)" in response.content
    from queueing.dispatch import get_queue

    assert get_queue("default").count == 2
    assert run_worker("default", "--burst").returncode == 0
    assert BusinessProfile.objects.filter(tenant__in=tenants, ai_enhanced_at__isnull=False).count() == 2


@pytest.mark.django_db
def test_every_heartbeat_probes_the_configured_ai_provider(
    chat: FakeChatServer, settings: Any, redis_conn: Redis
) -> None:
    from queueing.heartbeat import run_probes

    settings.AI_BASE_URL, settings.AI_API_KEY = "", ""
    assert "ai" not in run_probes(redis_conn)  # no provider configured: nothing to probe

    settings.AI_BASE_URL, settings.AI_API_KEY = chat.url, "sk-test"
    assert run_probes(redis_conn)["ai"] == ""
    assert chat.requests[-1] == {"path": "/v1/models", "auth": "Bearer sk-test", "body": None}

    chat.models_status = 503
    assert run_probes(redis_conn)["ai"] == (
        f"AIUnavailable: AI provider at {chat.url} answered HTTP 503 to GET /models"
    )
    chat.stop()
    assert run_probes(redis_conn)["ai"].startswith(f"AIUnavailable: AI provider at {chat.url} unreachable")

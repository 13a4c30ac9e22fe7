"""Business-profile generation: a provider turns what a tenant told us (name,
category, catalog) into a description and tags.

Two providers:
- ``LocalProvider`` (the default): offline and deterministic — keyword
  extraction over the tenant's own catalog, so two tenants with different
  products get different profiles, and tests need no network.
- ``ChatCompletionsProvider``: any OpenAI-compatible ``/chat/completions``
  endpoint (``AI_BASE_URL``, ``AI_API_KEY``, ``AI_MODEL``), with timeouts,
  retries on 429/5xx (honouring ``Retry-After``, bounded), and strict
  validation of the answer: anything but the JSON we asked for is an
  ``InvalidAIResponse`` and changes nothing.

This module only sees plain data (``ProfileInput``); gathering the catalog
is the caller's job (tenants/profiles.py, from the catalog orders registers).

docs/tenants.md."""

from __future__ import annotations

import json
import logging
import re
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

from django.conf import settings

from queueing.definitions import PermanentError

log = logging.getLogger(__name__)

MAX_TAGS = 8
MAX_DESCRIPTION = 2000


@dataclass(frozen=True)
class ProfileInput:
    tenant_name: str
    category: str
    products: list[tuple[str, str]] = field(default_factory=list)  # (name, description)


@dataclass(frozen=True)
class ProfileDraft:
    description: str
    tags: list[str]
    source: str


class ProfileProvider(Protocol):
    def generate(self, data: ProfileInput) -> ProfileDraft: ...


class InvalidAIResponse(PermanentError):
    """The provider answered, but not with what we asked for: retrying the same prompt won't help."""


class AIUnavailable(Exception):
    """The provider could not be reached or kept failing (429/5xx/timeouts): worth retrying later."""


# ------------------------------------------------------------------ local

_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "for",
        "from",
        "has",
        "have",
        "in",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "our",
        "the",
        "this",
        "to",
        "we",
        "with",
        "you",
        "your",
        "all",
        "any",
        "can",
        "more",
        "most",
        "new",
        "not",
        "one",
        "per",
        "set",
        "so",
        "than",
        "that",
        "their",
        "them",
        "they",
        "very",
        "was",
        "were",
        "will",
    ]
)
_WORD = re.compile(r"[a-zà-ÿ][a-zà-ÿ0-9-]{2,}")


def keywords(data: ProfileInput, limit: int = MAX_TAGS) -> list[str]:
    """The catalog's most telling words: product names count three times,
    descriptions once, the category twice; ties broken alphabetically so the
    result is the same on every run."""
    counts: Counter[str] = Counter()
    for name, description in data.products:
        for word in _WORD.findall(name.lower()):
            counts[word] += 3
        for word in _WORD.findall(description.lower()):
            counts[word] += 1
    for word in _WORD.findall(data.category.lower()):
        counts[word] += 2
    for word in _STOPWORDS | set(_WORD.findall(data.tenant_name.lower())):
        counts.pop(word, None)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [word for word, _ in ranked[:limit]]


class LocalProvider:
    """Offline: describes the tenant from its own catalog."""

    def generate(self, data: ProfileInput) -> ProfileDraft:
        tags = keywords(data)
        kind = data.category.strip().lower() or "business"
        parts = [f"{data.tenant_name} is a {kind}"]
        if data.products:
            shown = [name for name, _ in data.products[:3]]
            more = len(data.products) - len(shown)
            listing = ", ".join(shown) + (f" and {more} more" if more > 0 else "")
            parts.append(f" offering {len(data.products)} product(s), among them {listing}")
        text = "".join(parts) + "."
        if tags:
            text += " Known for: " + ", ".join(tags[:5]) + "."
        return ProfileDraft(description=text[:MAX_DESCRIPTION], tags=tags, source="local")


# ------------------------------------------------------------------ OpenAI-compatible

_SYSTEM_PROMPT = (
    "You write short business profiles for an online shop directory. Answer with a JSON object only: "
    '{"description": "<2-4 sentences, plain text>", "tags": ["<1-3 word tag>", ...]} with 3 to 8 tags.'
)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect would carry our bearer token to another address (urllib keeps
    the header): refuse it, it surfaces as an HTTPError the caller reports."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)
MAX_ANSWER_BYTES = 2 * 1024 * 1024


@dataclass(frozen=True)
class ChatCompletionsProvider:
    base_url: str
    api_key: str
    model: str
    timeout: float = 30.0
    attempts: int = 3
    max_backoff: float = 10.0

    def generate(self, data: ProfileInput) -> ProfileDraft:
        catalog = "\n".join(f"- {name}: {description[:200]}" for name, description in data.products[:50])
        body = {
            "model": self.model,
            "messages": [
                {"role": "system", "content": _SYSTEM_PROMPT},
                {
                    "role": "user",
                    "content": f"Business: {data.tenant_name}\nCategory: {data.category or 'unknown'}\n"
                    f"Products:\n{catalog or '(none yet)'}",
                },
            ],
            "response_format": {"type": "json_object"},
            "temperature": 0.3,
        }
        answer = self._post("/chat/completions", body)
        return ProfileDraft(*parse_chat_answer(answer), source=f"ai:{self.model}")

    def _post(self, path: str, body: dict[str, Any]) -> Any:
        url = self.base_url.rstrip("/") + path
        payload = json.dumps(body).encode()
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {self.api_key}"}
        last = ""
        for attempt in range(1, self.attempts + 1):
            request = urllib.request.Request(url, data=payload, headers=headers, method="POST")  # noqa: S310
            try:
                with _OPENER.open(request, timeout=self.timeout) as response:
                    raw = response.read(MAX_ANSWER_BYTES + 1)
                if len(raw) > MAX_ANSWER_BYTES:
                    raise InvalidAIResponse(f"AI answer over {MAX_ANSWER_BYTES} bytes")
            except urllib.error.HTTPError as exc:
                if exc.code == 429 or exc.code >= 500:
                    last = f"HTTP {exc.code}"
                    self._pause(attempt, exc.headers.get("Retry-After"))
                    continue
                detail = exc.read()[:300].decode("utf-8", "replace")
                raise InvalidAIResponse(f"AI provider refused the request: HTTP {exc.code} {detail}") from None
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                last = f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
                self._pause(attempt, None)
                continue
            try:
                return json.loads(raw)
            except ValueError:
                raise InvalidAIResponse("AI provider answered with something that is not JSON") from None
        raise AIUnavailable(f"AI provider at {self.base_url} failed {self.attempts} times (last: {last})")

    def ping(self, *, timeout: float = 5.0) -> str:
        """One cheap authenticated call (OpenAI's ``GET /models``), no retries: the heartbeat's probe.
        Its errors name the provider by scheme, host and path only (no credentials)."""
        url = self.base_url.rstrip("/") + "/models"
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {self.api_key}"})  # noqa: S310
        parts = urlsplit(self.base_url)
        where = f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}{parts.path}"
        try:
            with _OPENER.open(request, timeout=min(self.timeout, timeout)) as response:
                status = response.status
        except urllib.error.HTTPError as exc:
            raise AIUnavailable(f"AI provider at {where} answered HTTP {exc.code} to GET /models") from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            raise AIUnavailable(f"AI provider at {where} unreachable: {reason}") from None
        return f"GET /models answered {status}"

    def _pause(self, attempt: int, retry_after: str | None) -> None:
        if attempt >= self.attempts:
            return
        delay = min(self.max_backoff, 0.5 * 2 ** (attempt - 1))
        if retry_after and retry_after.strip().isdigit():
            delay = min(self.max_backoff, float(retry_after))
        time.sleep(delay)


def parse_chat_answer(answer: Any) -> tuple[str, list[str]]:
    """Validate a chat-completions answer carrying our JSON; raises InvalidAIResponse."""
    try:
        content = answer["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise InvalidAIResponse("AI answer has no choices[0].message.content") from None
    if not isinstance(content, str):
        raise InvalidAIResponse("AI answer content is not text")
    try:
        parsed = json.loads(content)
    except ValueError:
        raise InvalidAIResponse(f"AI answer content is not the JSON object asked for: {content[:120]!r}") from None
    if not isinstance(parsed, dict):
        raise InvalidAIResponse("AI answer content is not a JSON object")
    description, tags = parsed.get("description"), parsed.get("tags")
    if not isinstance(description, str) or not 20 <= len(description.strip()) <= MAX_DESCRIPTION:
        raise InvalidAIResponse(f"AI description must be text of 20..{MAX_DESCRIPTION} characters")
    if not isinstance(tags, list) or not tags or not all(isinstance(t, str) and 0 < len(t.strip()) <= 40 for t in tags):
        raise InvalidAIResponse("AI tags must be a non-empty list of short strings")
    clean = list(dict.fromkeys(t.strip().lower() for t in tags))[:MAX_TAGS]
    return description.strip(), clean


def probe() -> str | None:
    """The heartbeat's probe of the AI provider (registered in TenantsConfig.ready); None when none is set."""
    provider = provider_from_settings()
    if not isinstance(provider, ChatCompletionsProvider):
        return None
    from queueing.heartbeat import PROBE_TIMEOUT

    return provider.ping(timeout=PROBE_TIMEOUT)


def provider_from_settings() -> ProfileProvider:
    """The HTTP provider when AI_BASE_URL is set, else the local one."""
    if settings.AI_BASE_URL:
        return ChatCompletionsProvider(
            base_url=settings.AI_BASE_URL,
            api_key=settings.AI_API_KEY,
            model=settings.AI_MODEL,
            timeout=settings.AI_TIMEOUT,
        )
    return LocalProvider()

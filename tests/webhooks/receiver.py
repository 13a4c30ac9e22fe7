"""A webhook receiver on loopback that verifies every delivery with the
``standardwebhooks`` library — the receivers' side of the protocol, not our
code — and records what it got. ``answer`` sets its reply (a status code, or
"hang" to never answer); ``secrets`` are the ones a receiver would hold."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    verified_with: list[int]  # indexes of the receiver's secrets that verify it
    status: int  # what the receiver answered

    @property
    def payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = json.loads(self.body)
        return payload


@dataclass
class Receiver:
    secrets: list[str] = field(default_factory=list)
    answer: int | str = 200
    delay: float = 0.0
    received: list[Received] = field(default_factory=list)
    port: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def ok(self) -> list[Received]:
        """Deliveries answered 2xx and verified with one of the secrets."""
        with self.lock:
            return [r for r in self.received if 200 <= r.status < 300 and r.verified_with]

    def verify(self, headers: dict[str, str], body: bytes) -> list[int]:
        good = []
        for index, secret in enumerate(self.secrets):
            try:
                Webhook(secret).verify(body, headers)
            except WebhookVerificationError:
                continue
            good.append(index)
        return good


def start(receiver: Receiver) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            headers = {k.lower(): v for k, v in self.headers.items()}
            if receiver.answer == "hang":
                time.sleep(3600)  # the sender's read timeout ends it
                return
            if receiver.delay:
                time.sleep(receiver.delay)
            code = int(receiver.answer)
            with receiver.lock:
                receiver.received.append(Received(headers, body, receiver.verify(headers, body), code))
            self.send_response(code)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"ok" if code < 300 else b"not now")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver.port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server

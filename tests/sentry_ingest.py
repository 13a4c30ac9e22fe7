"""A local Sentry ingest server: receives what sentry-sdk sends to a DSN.

It speaks the envelope endpoint of Sentry's protocol
(https://develop.sentry.dev/sdk/data-model/envelopes/): ``POST
/api/<project>/envelope/``, a body of newline-separated JSON (an envelope
header, then item header and payload pairs), possibly gzip or brotli encoded,
with the key in ``X-Sentry-Auth``. It answers 200 and keeps the events.
"""

from __future__ import annotations

import gzip
import json
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

KEY = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
PROJECT = "42"


def parse_envelope(body: bytes) -> list[tuple[dict[str, Any], Any]]:
    """``[(item header, payload), ...]``; JSON payloads parsed, others left as bytes."""
    lines = body.split(b"\n")
    items: list[tuple[dict[str, Any], Any]] = []
    i = 1  # line 0 is the envelope header
    while i < len(lines):
        if not lines[i].strip():
            i += 1
            continue
        header = json.loads(lines[i])
        length = header.get("length")
        if length is not None:  # a payload of a given length may contain newlines
            rest = b"\n".join(lines[i + 1 :])
            raw, remainder = rest[:length], rest[length + 1 :]
            lines = [b"", *remainder.split(b"\n")]
            i = 1
        else:
            raw = lines[i + 1]
            i += 2
        items.append((header, json.loads(raw) if header.get("type") in {"event", "transaction"} else raw))
    return items


class SentryIngest:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.auth: list[str] = []
        self._lock = threading.Lock()
        ingest = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                encoding = (self.headers.get("Content-Encoding") or "").lower()
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "deflate":
                    body = zlib.decompress(body)
                elif encoding == "br":
                    import brotli  # type: ignore[import-untyped]  # sentry-sdk sends br when brotli is installed

                    body = brotli.decompress(body)
                if self.path != f"/api/{PROJECT}/envelope/" or f"sentry_key={KEY}" not in (
                    self.headers.get("X-Sentry-Auth") or ""
                ):
                    self.send_response(403)
                    self.end_headers()
                    return
                with ingest._lock:
                    ingest.auth.append(self.headers.get("X-Sentry-Auth") or "")
                    ingest.events += [payload for header, payload in parse_envelope(body) if header["type"] == "event"]
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.dsn = f"http://{KEY}@127.0.0.1:{self.server.server_address[1]}/{PROJECT}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

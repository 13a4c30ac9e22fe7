"""A small HTTP load generator for loopback benchmarks.

Why not http.client in threads: on a 2-core machine the generator competes
with the server for the CPU, and http.client's parsing (plus building and
signing each request inside the timed loop) cost more client CPU per request
than a trivial Django view costs the server — the generator then measures
itself. Here every request is built as raw bytes *before* the clock starts,
and a response is read only as far as its status line.

gunicorn's sync workers close the connection after each response (they do
not do keep-alive), so each request is connect → send → read to EOF, as it
is for a provider's webhook delivery.
"""

from __future__ import annotations

import http.client
import itertools
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager


def raw_request(method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None) -> bytes:
    """One HTTP/1.1 request as bytes, ready to send."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if body or method in {"POST", "PUT", "PATCH"}:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _status(response: bytes) -> int:
    try:
        return int(response[9:12])
    except ValueError:
        return 0


def run_load(
    port: int,
    requests: Iterable[bytes],
    *,
    seconds: float,
    connections: int = 8,
    until: Callable[[], bool] | None = None,
) -> tuple[float, float, int]:
    """Send ``requests`` (cycled if it is a list) from ``connections`` threads
    for ``seconds`` (or until ``until()`` is true, if sooner); returns
    (requests per second, p99 latency in ms, non-2xx count)."""
    source: Iterator[bytes] = itertools.cycle(requests) if isinstance(requests, list) else iter(list(requests))
    take = threading.Lock()
    latencies: list[float] = []
    failures = [0]
    stop = time.monotonic() + seconds

    def worker() -> None:
        mine: list[float] = []
        bad = 0
        while time.monotonic() < stop and not (until is not None and until()):
            with take:
                try:
                    payload = next(source)
                except StopIteration:
                    break
            started = time.perf_counter()
            with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
                sock.sendall(payload)
                chunks = []
                while chunk := sock.recv(65536):
                    chunks.append(chunk)
            mine.append(time.perf_counter() - started)
            if not 200 <= _status(b"".join(chunks)) < 300:
                bad += 1
        with take:
            latencies.extend(mine)
            failures[0] += bad

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if not latencies:
        return 0.0, 0.0, failures[0]
    latencies.sort()
    return len(latencies) / elapsed, latencies[max(0, int(len(latencies) * 0.99) - 1)] * 1000, failures[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def gunicorn(env: dict[str, str], workers: int = 4) -> Iterator[int]:
    """The app under gunicorn (sync workers, as in production) on a free
    loopback port; yields the port once /healthz answers, stops it after."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{port}",
         "--workers", str(workers), "--log-level", "warning"],
        env={**os.environ, "ALLOWED_HOSTS": "127.0.0.1", **env},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                http.client.HTTPConnection("127.0.0.1", port, timeout=2).request("GET", "/healthz")
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.2)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=30)


def client_hits(path: str, count: int, offset: int) -> list[bytes]:
    """``count`` GETs of ``path``, each from its own client address (11.x.y.z, untrusted,
    forwarded by a trusted 127.0.0.1), so no per-client limit is reached; built before
    the clock starts."""
    built = []
    for n in range(offset, offset + count):
        address = f"11.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"
        headers = {"X-Forwarded-For": address, "User-Agent": f"Mozilla/5.0 (bench {n})"}
        built.append(raw_request("GET", path, headers=headers))
    return built

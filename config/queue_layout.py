"""The queue layout: which physical queues exist, where each logical queue is
routed, and which pools of workers serve them — read from one TOML file.

``QUEUE_LAYOUT`` names a shipped layout (``devops/queues/<name>.toml``:
``vito``, ``askproai``, ``veloxfactory``, ``qr``) or a file path. Settings
load it once; every process (web, workers, scheduler, relay) reads the same
file, so a problem in it stops each of them at start with the file, the line
and what to fix, instead of a worker quietly serving the wrong queues.

A layout file::

    description = "..."

    [queues.high]            # a physical queue: a Redis list
    timeout = 120            # seconds, for jobs that declare none
    tries = 5                # optional: attempts for jobs that declare none
    alert_wait = 60          # optional: alert when the oldest job waited longer
    alert_depth = 1000       # optional: alert when deeper

    [routes]                 # logical queue (what @job(queue=...) says) -> physical
    webhooks = "high"

    [pools.high]             # a supervisor of QUEUE_SUPERVISORS, named by its table
    queues = ["high", "default"]
    balance = "off"
    processes = 1

Every physical queue is also a logical queue routed to itself; a route may not
send a physical queue's name elsewhere (a job written for ``high`` would then
run on something else). docs/queues/index.md.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from queueing.supervisor.config import SupervisorConfigError, parse_supervisor

LAYOUT_DIR = Path(__file__).resolve().parent.parent / "devops" / "queues"
NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
QUEUE_KEYS = {"timeout", "tries", "alert_wait", "alert_depth", "description"}
TOP_KEYS = {"description", "queues", "routes", "pools"}


@dataclass(frozen=True)
class QueueSpec:
    name: str
    timeout: int
    tries: int | None = None
    alert_wait: int = 300
    alert_depth: int = 1000
    description: str = ""


@dataclass(frozen=True)
class Layout:
    name: str
    path: Path
    description: str
    queues: dict[str, QueueSpec]
    routes: dict[str, str]  # every logical queue (physical ones included) -> physical queue
    pools: list[dict[str, Any]]  # QUEUE_SUPERVISORS entries, validated


class LayoutError(ImproperlyConfigured):
    pass


def shipped_layouts() -> list[str]:
    return sorted(p.stem for p in LAYOUT_DIR.glob("*.toml"))


def layout_path(value: str, base_dir: Path) -> Path:
    """A shipped layout's file, or ``value`` as a path (relative: to the checkout)."""
    if NAME.match(value) and not value.endswith(".toml"):
        path = LAYOUT_DIR / f"{value}.toml"
        if not path.is_file():
            raise LayoutError(
                f"QUEUE_LAYOUT={value!r} is not a shipped layout ({', '.join(shipped_layouts())}) "
                "nor a path to a .toml file."
            )
        return path
    path = Path(value).expanduser()
    if not path.is_absolute() and not path.exists():
        path = base_dir / path
    if not path.is_file():
        raise LayoutError(f"QUEUE_LAYOUT={value!r}: no such file ({path}).")
    return path


# ----------------------------------------------------------------- line numbers

_HEADER = re.compile(r"^\s*\[\s*([^\[\]]+?)\s*\]\s*(#.*)?$")
_KEY = re.compile(r"""^\s*("[^"]*"|'[^']*'|[A-Za-z0-9_-]+)\s*=""")
_PART = re.compile(r""""[^"]*"|'[^']*'|[^.\s]+""")


def _unquote(word: str) -> str:
    return word[1:-1] if word[:1] in "\"'" else word


def line_of(text: str, table: Sequence[str], key: str | None = None) -> int | None:
    """The line (1-based) of ``key`` in ``[table]``, or of the table's header;
    enough of TOML for the files we ship (tables, one key per line)."""
    current: tuple[str, ...] = ()
    header_line = None
    for number, line in enumerate(text.splitlines(), start=1):
        if header := _HEADER.match(line):
            current = tuple(_unquote(p) for p in _PART.findall(header.group(1)))
            if current == tuple(table):
                header_line = number
            continue
        found = _KEY.match(line) if key is not None and current == tuple(table) else None
        if found and _unquote(found.group(1)) == key:
            return number
    return header_line


class _Reader:
    def __init__(self, path: Path, text: str) -> None:
        self.path, self.text = path, text

    def fail(self, problem: str, table: Sequence[str] = (), key: str | None = None) -> LayoutError:
        line = line_of(self.text, table, key) if (table or key) else None
        where = f"{self.path}:{line}" if line else str(self.path)
        return LayoutError(f"queue layout {where}: {problem}")

    def whole(self, table: Sequence[str], raw: Mapping[str, Any], key: str, default: int | None) -> int | None:
        value = raw.get(key, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise self.fail(f"{key} must be a whole number of at least 1, got {value!r}", table, key)
        return int(value)


def _queue(reader: _Reader, name: str, raw: object) -> QueueSpec:
    table = ("queues", name)
    if not NAME.match(name):
        raise reader.fail(f"queue name {name!r} must be letters, digits, _ . -", table)
    if not isinstance(raw, Mapping):
        raise reader.fail(f"[queues.{name}] must be a table", table)
    unknown = sorted(set(raw) - QUEUE_KEYS)
    if unknown:
        raise reader.fail(
            f"unknown key(s) {', '.join(unknown)} in [queues.{name}]; allowed: {', '.join(sorted(QUEUE_KEYS))}",
            table,
            unknown[0],
        )
    if "timeout" not in raw:
        raise reader.fail(f"[queues.{name}] needs timeout (seconds a job may run when it declares none)", table)
    description = raw.get("description", "")
    if not isinstance(description, str):
        raise reader.fail("description must be a string", table, "description")
    return QueueSpec(
        name=name,
        timeout=reader.whole(table, raw, "timeout", None) or 0,
        tries=reader.whole(table, raw, "tries", None),
        alert_wait=reader.whole(table, raw, "alert_wait", 300) or 300,
        alert_depth=reader.whole(table, raw, "alert_depth", 1000) or 1000,
        description=description,
    )


def _routes(reader: _Reader, raw: object, queues: Mapping[str, QueueSpec]) -> dict[str, str]:
    if not isinstance(raw, Mapping):
        raise reader.fail('[routes] must be a table of logical = "physical"', ("routes",))
    routes = {name: name for name in queues}
    for logical, physical in raw.items():
        if not NAME.match(logical):
            raise reader.fail(f"logical queue name {logical!r} must be letters, digits, _ . -", ("routes",), logical)
        if not isinstance(physical, str) or physical not in queues:
            raise reader.fail(
                f"route {logical} = {physical!r} points at no declared queue; declared: {', '.join(queues)}",
                ("routes",),
                logical,
            )
        if logical in queues and physical != logical:
            raise reader.fail(
                f"route {logical} = {physical!r}: {logical!r} is a physical queue, which always routes to itself "
                "(jobs and plain RQ code written for it would otherwise land elsewhere)",
                ("routes",),
                logical,
            )
        routes[logical] = physical
    return routes


def _pools(reader: _Reader, raw: object, queues: Mapping[str, QueueSpec]) -> list[dict[str, Any]]:
    if not isinstance(raw, Mapping) or not raw:
        raise reader.fail("the layout needs at least one [pools.<name>] table (the workers)")
    pools: list[dict[str, Any]] = []
    for index, (name, table_raw) in enumerate(raw.items()):
        table = ("pools", name)
        if not isinstance(table_raw, Mapping):
            raise reader.fail(f"[pools.{name}] must be a table", table)
        if "name" in table_raw:
            raise reader.fail("a pool is named by its table ([pools.<name>]); drop the name key", table, "name")
        entry = {"name": name, **table_raw}
        try:
            parse_supervisor(index, entry, queues)
        except SupervisorConfigError as exc:
            problem = str(exc).split(": ", 1)[-1]
            raise reader.fail(f"[pools.{name}]: {problem}", table, exc.key) from None
        pools.append(entry)
    served = {q for pool in pools for q in pool["queues"]}
    for name in queues:
        if name not in served:
            raise reader.fail(
                f"queue {name!r} is served by no pool: its jobs would never run. Add it to a pool's queues.",
                ("queues", name),
            )
    return pools


def load_layout(value: str, base_dir: Path) -> Layout:
    """Read and check the layout ``QUEUE_LAYOUT`` names; LayoutError says the file, line and fix."""
    path = layout_path(value, base_dir)
    text = path.read_text(encoding="utf-8")
    reader = _Reader(path, text)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:  # its message ends "(at line N, column M)"
        raise LayoutError(f"queue layout {path}: not valid TOML: {exc}") from None
    unknown = sorted(set(data) - TOP_KEYS)
    if unknown:
        raise reader.fail(
            f"unknown top-level key(s) {', '.join(unknown)}; a layout has {', '.join(sorted(TOP_KEYS))}",
            (),
            unknown[0],
        )
    raw_queues = data.get("queues")
    if not isinstance(raw_queues, Mapping) or not raw_queues:
        raise reader.fail("the layout needs at least one [queues.<name>] table")
    queues = {name: _queue(reader, name, raw) for name, raw in raw_queues.items()}
    description = data.get("description", "")
    return Layout(
        name=path.stem,
        path=path,
        description=description if isinstance(description, str) else "",
        queues=queues,
        routes=_routes(reader, data.get("routes", {}), queues),
        pools=_pools(reader, data.get("pools"), queues),
    )

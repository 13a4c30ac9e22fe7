"""The tree's shape, as DESIGN.md states it, checked on every `make test` so it
cannot drift: module size, the import direction between layers, no reaching
into another module's private names, no import cycle at module level.

Reads the source with ``ast``; imports nothing it checks."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

ROOT = Path(settings.BASE_DIR)
APPS = (
    "config",
    "lib",
    "queueing",
    "outbox",
    "webhooks",
    "tenants",
    "orders",
    "appointments",
    "marketing",
    "analytics",
)
DOMAIN = ("tenants", "orders", "appointments", "marketing", "analytics")
# What each layer must never import (at any depth, inside functions too).
FORBIDDEN = {
    "lib": ("config", "queueing", "outbox", "webhooks", *DOMAIN),
    "queueing": ("config", "outbox", "webhooks", *DOMAIN),
    "outbox": ("config", "webhooks", *DOMAIN),
    "webhooks": ("config", *DOMAIN),
    **{app: ("config",) for app in DOMAIN},
}
MAX_LINES = 400


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # the imported module
    names: tuple[str, ...]
    top_level: bool  # executed at import time (not inside a function)
    line: int


def _modules() -> Iterator[tuple[str, Path]]:
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            dotted = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            yield dotted.removesuffix(".__init__"), path


def _imports(module: str, path: Path) -> Iterator[Import]:
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    functions = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    nested = {id(n) for f in functions for n in ast.walk(f) if n is not f}
    guarded = [n for n in ast.walk(tree) if isinstance(n, ast.If) and "TYPE_CHECKING" in ast.unparse(n.test)]
    typing_only = {id(child) for block in guarded for child in ast.walk(block)}
    for node in ast.walk(tree):
        top = id(node) not in nested and id(node) not in typing_only
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(module, alias.name, (), top, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            yield Import(module, base, tuple(a.name for a in node.names), top, node.lineno)


ALL = dict(_modules())
IMPORTS = [imp for module, path in ALL.items() for imp in _imports(module, path)]


def _resolve(target: str, name: str) -> str:
    """``from a.b import c``: the module a.b.c when it is one, else a.b."""
    return f"{target}.{name}" if f"{target}.{name}" in ALL else target


def test_no_source_module_is_over_400_lines() -> None:
    long = {m: n for m, p in ALL.items() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"split these (a module past {MAX_LINES} lines becomes a package): {long}"


def test_imports_flow_one_way() -> None:
    wrong = [
        f"{imp.source}:{imp.line} imports {imp.target}"
        for imp in IMPORTS
        if imp.target.split(".")[0] in FORBIDDEN.get(imp.source.split(".")[0], ())
    ]
    assert not wrong, "\n".join(wrong)


def test_no_module_imports_another_modules_private_names() -> None:
    private = [
        f"{imp.source}:{imp.line} imports {name} from {imp.target}"
        for imp in IMPORTS
        for name in imp.names
        if name.startswith("_") and not name.startswith("__") and imp.target in ALL and imp.target != imp.source
    ]
    # A private module (``commands/_base.py``) is its package's own.
    private += [
        f"{imp.source}:{imp.line} imports the private module {imp.target}"
        for imp in IMPORTS
        if imp.target in ALL
        and any(part.startswith("_") for part in imp.target.split("."))
        and imp.source.rpartition(".")[0] != imp.target.rpartition(".")[0]
    ]
    assert not private, "\n".join(private)


def test_no_import_cycle_at_module_level() -> None:
    """Only imports run at import time count: a job and the service it calls
    may import each other inside a function."""
    graph: dict[str, set[str]] = {module: set() for module in ALL}
    for imp in IMPORTS:
        if not imp.top_level:
            continue
        targets = [_resolve(imp.target, name) for name in imp.names] or [imp.target]
        graph[imp.source] |= {t for t in targets if t in ALL and t != imp.source}
    cycles = [component for component in _strongly_connected(graph) if len(component) > 1]
    assert not cycles, f"module-level import cycles: {cycles}"


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative (the graph has a few hundred nodes)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    out.append(sorted(component))
    return out


# What apps contribute to the layers below them (DESIGN.md: "registered from above").
REGISTRARS = {
    "route",  # outbox routes
    "register",  # status providers
    "register_action",  # their panel buttons
    "register_probe",  # heartbeat probes
    "register_download",  # signed download kinds
    "define_rate_limit",
    "contribute_admin_action",
    "register_handler",  # webhook providers' dispatch tables
    "register_catalog",
    "register_kind",  # retention kinds (queueing/retention/)
    "register_tenancy",
    "register_event_type",  # outbound webhook event types
    "register_tenant_contact",
}


def test_every_registration_is_an_explicit_call_in_an_appconfig_ready() -> None:
    outside = []
    for module, path in ALL.items():
        if module.endswith(".apps"):
            continue
        tree = ast.parse(path.read_text())
        defined = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
        # A registrar may register on its caller's behalf (register_event_type
        # routes the type's outbox event): it only ever runs from a ready().
        delegated = {
            id(call)
            for n in ast.walk(tree)
            if isinstance(n, ast.FunctionDef) and n.name in REGISTRARS
            for call in ast.walk(n)
        }
        for node in ast.walk(tree):
            if id(node) in delegated:
                continue
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                name = node.func.id
                if name in REGISTRARS and name not in defined:
                    outside.append(f"{module}:{node.lineno} calls {name}()")
    assert not outside, "register these from the app's AppConfig.ready():\n" + "\n".join(outside)

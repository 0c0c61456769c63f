"""The import graph of service/: no circle, and no import that runs back up the floors."""

from __future__ import annotations

import ast
from pathlib import Path

SERVICE = Path(__file__).resolve().parents[2] / "service"
ROOT = "service"

#: The floors, lowest first: a module may import its own floor and the ones below.
#: A module belongs to the floor of the longest prefix that names it; ``service`` names
#: the package's ``__init__`` only, so each top-level module is placed by its own name.
FLOORS: tuple[tuple[str, ...], ...] = (
    # what every process shares: environment, errors, Redis keys, HTTP, logs, counters, text
    ("service", "service.errors", "service.keys", "service.redis_scripts", "service.redis_packing",
     "service.redis_fork_check", "service.http_deadline", "service.http_session",
     "service.calls",
     "service.http", "service.json_files",
     "service.decisions", "service.logs", "service.metrics", "service.settings",
     "service.intake", "service.text", "service.roster", "service.heartbeat_ping"),
    # Twilio's Insights API and its event model
    ("service.insights",),
    # classifier, catalogue, the alert and the analysis step (nothing of delivery)
    ("service.analysis",),
    # incidents' model and rules, the ledger and pace (no sink)
    ("service.delivery", "service.delivery.incidents", "service.delivery.ledger",
     "service.delivery.pace"),
    # the sink types and their registry (nothing of routing)
    ("service.delivery.sinks",),
    # the routing file: parsed with the sink types' own option checks
    ("service.routing_file",),
    # routing, silences and the delivery step
    ("service.delivery.routing", "service.delivery.silences", "service.delivery.step",
     # acting on alerts: buttons' clicks (silences), a sink's test message (the step)
     "service.delivery.slack_actions", "service.delivery.notify_test"),
    # the edges: the web app and every `callwatch` subcommand
    ("service.web", "service.cli"),
)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SERVICE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """Every service module ``path`` imports, at module level or inside a function."""
    name = module_name(path)
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            target = node.module or ""
            if node.level:
                base = name.split(".")
                base = base if path.name == "__init__.py" else base[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            for alias in node.names:
                # ``from package import submodule`` imports the submodule; a name, the package
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in modules else target)
    return {f for f in found if f in modules and f != name}


def graph() -> dict[str, set[str]]:
    paths = {module_name(p): p for p in SERVICE.rglob("*.py")}
    return {name: imports_of(path, set(paths)) for name, path in paths.items()}


def floor_of(module: str) -> int:
    best, floor = -1, -1
    for index, prefixes in enumerate(FLOORS):
        for prefix in prefixes:
            within = prefix != ROOT and module.startswith(prefix + ".")
            if (module == prefix or within) and len(prefix) > best:
                best, floor = len(prefix), index
    return floor


def circles(edges: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected sets of two or more modules (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(component)

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_every_module_has_a_floor() -> None:
    """A new module is placed on a floor on purpose, not by accident."""
    assert [m for m in graph() if floor_of(m) < 0] == []


def test_no_import_circle() -> None:
    """No set of service modules imports one another round in a circle."""
    assert circles(graph()) == []


def test_no_import_runs_back_up_the_floors() -> None:
    """A module imports only its own floor and the floors below it."""
    upward = sorted(f"{a} -> {b}" for a, targets in graph().items() for b in targets
                    if floor_of(b) > floor_of(a))
    assert upward == []


def test_the_checks_see_what_they_forbid() -> None:
    """The floor check names an upward import and an unplaced module, and the circle check
    a circle."""
    assert floor_of("service.analysis.step") < floor_of("service.delivery.routing")
    assert floor_of("service.delivery.incidents.content") < floor_of("service.delivery.sinks.slack")
    assert circles({"a": {"b"}, "b": {"a"}, "c": set()}) == [{"a", "b"}]
    # a new top-level module is on no floor until placed: the package's name does not place it
    assert floor_of("service.new_module") == -1 and floor_of("service") == 0

"""The rooms of DESIGN section 2 stay apart: checked on the source (ast) and on what loads.

* ``model`` imports nothing else of the package.
* ``engine`` never imports httpx, aiohttp, ``ticketbridge.http`` or a connector package: it sees
  connectors only through ``connectors/base.py``.
* A connector never imports another connector, the engine, the supplier or the application.
* Only ``ticketbridge.http`` imports httpx and aiohttp.
* No two units import each other, directly or round a longer loop (imports under
  ``if TYPE_CHECKING:`` excepted: they never run).

A unit is a top-level package or module of ``ticketbridge``, with each connector folder a unit
of its own, and the conformance suite (``connectors.testing``, which exercises everything)
one too.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

import ticketbridge

PACKAGE = Path(ticketbridge.__file__).parent
CONNECTORS = PACKAGE / "connectors"
HTTP_LIBRARIES = ("httpx", "aiohttp", "httpcore")


@dataclass(frozen=True)
class Import:
    module: str  # the importing module, e.g. ticketbridge.engine.pipeline
    target: str  # what it imports, e.g. ticketbridge.connectors.base or httpx
    type_only: bool  # under ``if TYPE_CHECKING:``
    line: int

    def __str__(self) -> str:
        hint = " (TYPE_CHECKING)" if self.type_only else ""
        return f"{self.module}:{self.line} imports {self.target}{hint}"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(module: str, source: str, *, is_package: bool = False) -> Iterator[Import]:
    """Every import statement of ``source``, wherever it is (functions included), with
    relative imports resolved against ``module``."""
    tree = ast.parse(source)
    type_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) in (
            "TYPE_CHECKING",
            "typing.TYPE_CHECKING",
        ):
            type_only.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if not isinstance(node, ast.Import | ast.ImportFrom):
            continue
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif node.level:
            base = package.split(".")[: len(package.split(".")) - node.level + 1]
            stem = ".".join(base + ([node.module] if node.module else []))
            # ``from . import x`` may name a submodule: keep it precise.
            targets = [stem] if node.module else [f"{stem}.{a.name}" for a in node.names]
        elif node.module:
            targets = [node.module]
        for target in targets:
            yield Import(module, target, id(node) in type_only, node.lineno)


def unit_of(module: str) -> str:
    parts = module.split(".")
    in_connectors = parts[:2] == ["ticketbridge", "connectors"] and len(parts) >= 3
    if in_connectors and (parts[2] == "testing" or (CONNECTORS / parts[2]).is_dir()):
        return ".".join(parts[:3])
    return ".".join(parts[:2])


def all_imports() -> list[Import]:
    found: list[Import] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = module_name(path)
        found.extend(
            imports_of(module, path.read_text("utf-8"), is_package=path.name == "__init__.py")
        )
    return found


def platforms() -> set[str]:
    """The connector folders (the conformance suite is a package there, not a connector)."""
    return {
        p.name
        for p in CONNECTORS.iterdir()
        if p.is_dir() and (p / "__init__.py").exists() and p.name != "testing"
    }


def find_cycle(edges: Mapping[str, set[str]]) -> list[str] | None:
    """One cycle of the directed graph, as the list of its nodes (first repeated last)."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def unit_graph(imports: list[Import]) -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for imp in imports:
        if imp.type_only or not imp.target.startswith("ticketbridge."):
            continue
        a, b = unit_of(imp.module), unit_of(imp.target)
        if a != b:
            edges.setdefault(a, set()).add(b)
    return edges


def _is_http_library(target: str) -> bool:
    return target.split(".")[0] in HTTP_LIBRARIES


# --- the rules ----------------------------------------------------------------------------


def violations(imports: list[Import]) -> list[str]:
    problems: list[str] = []
    connector_units = {f"ticketbridge.connectors.{p}" for p in platforms()}
    for imp in imports:
        src, dst = unit_of(imp.module), imp.target
        dst_unit = unit_of(dst) if dst.startswith("ticketbridge.") else dst
        if src == "ticketbridge.model" and dst.startswith("ticketbridge.") and dst_unit != src:
            problems.append(f"model imports nothing else of the package: {imp}")
        if _is_http_library(dst) and src != "ticketbridge.http":
            problems.append(f"only ticketbridge.http imports {dst.split('.')[0]}: {imp}")
        if src == "ticketbridge.engine" and (
            dst_unit in connector_units
            or dst_unit == "ticketbridge.http"
            or (dst_unit == "ticketbridge.connectors" and dst != "ticketbridge.connectors.base")
        ):
            problems.append(f"engine sees connectors only through connectors.base: {imp}")
        if src in connector_units:
            upward = (
                "engine",
                "supplier",
                "callbacks",
                "project",
                "runtime",
                "cli",
                "demo",
                "web",
            )
            if dst_unit in connector_units and dst_unit != src:
                problems.append(f"a connector never imports another: {imp}")
            elif dst_unit in {f"ticketbridge.{u}" for u in upward}:
                problems.append(f"a connector never imports {dst_unit}: {imp}")
            elif dst == "ticketbridge.connectors.testing":
                problems.append(f"a connector never imports the conformance suite: {imp}")
    cycle = find_cycle(unit_graph(imports))
    if cycle:
        problems.append("import cycle: " + " -> ".join(cycle))
    return problems


def test_the_package_keeps_its_layers() -> None:
    imports = all_imports()
    assert len(imports) > 200, "the scan found the package's imports"
    assert violations(imports) == []


def test_each_rule_catches_what_it_is_for() -> None:
    """The rules fire on code that breaks them, so a green run above means something."""
    cases = {
        "ticketbridge.model.contact": "from ticketbridge.errors import ConfigError",
        "ticketbridge.engine.plan": "import httpx",
        "ticketbridge.engine.spec": "def f():\n    from ticketbridge.connectors.ticketco import x",
        "ticketbridge.engine.readahead": "from ticketbridge.http.context import HttpContext",
        "ticketbridge.connectors.heyloyalty.mapping": "from ..airship_crm.mapping import x",
        "ticketbridge.connectors.ticketco.source": "from ticketbridge.engine.plan import x",
        "ticketbridge.supplier.app": "import aiohttp",
    }
    for module, source in cases.items():
        found = violations(list(imports_of(module, source)))
        assert found, f"{module}: {source!r} should break a rule"
    cyclic = [
        *imports_of("ticketbridge.engine.state.db", "from ticketbridge.supplier import x"),
        *imports_of("ticketbridge.supplier.app", "from ticketbridge.engine.state import x"),
    ]
    assert any(v.startswith("import cycle") for v in violations(cyclic))
    source = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import ticketbridge.supplier"
    hinted = list(imports_of("ticketbridge.engine.x", source))
    assert [i.type_only for i in hinted] == [False, True]


def test_find_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}}) is None
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


@pytest.mark.parametrize(
    "module",
    ["ticketbridge.engine.pipeline", "ticketbridge.engine.state", "ticketbridge.connectors.base"],
)
def test_loading_the_engine_loads_no_http_stack_and_no_connector(module: str) -> None:
    """What ``import`` really loads, whatever the source says (an eager ``__init__`` too)."""
    probe = f"import sys, {module}\nprint('\\n'.join(sorted(sys.modules)))\n"
    loaded = subprocess.run(
        [sys.executable, "-c", probe], check=True, capture_output=True, text=True
    ).stdout.split()
    assert module in loaded
    heavy = [m for m in loaded if m.split(".")[0] in HTTP_LIBRARIES]
    assert heavy == []
    ours = [m for m in loaded if m.startswith("ticketbridge.")]
    connector_packages = {f"ticketbridge.connectors.{p}" for p in platforms()}
    assert [m for m in ours if unit_of(m) in connector_packages] == []
    assert [m for m in ours if m.startswith(("ticketbridge.http", "ticketbridge.supplier"))] == []

"""The package's import direction, as its folders' docstrings state it.

Every package's ``__init__`` docstring has a ``May import:`` paragraph naming the packages its
modules may import; this test reads every ``import`` in the package (module level, inside
functions and under ``TYPE_CHECKING`` alike) and fails on one that the paragraph does not allow,
on a module-level cycle, and on anything in the package importing ``snnsearch.testing``. So the
docstrings are the contract and cannot drift from the code.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "snnsearch"
# Entry points above every layer: CLIs that may use anything but the test fakes.
ENTRY_MODULES = {"snnsearch.report", "snnsearch.evaluate"}
# Root modules every layer may use; they import nothing of the package themselves.
ROOT_MODULES = {"snnsearch.constants", "snnsearch.registry", "snnsearch.cache"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every ``snnsearch`` module (or package) ``path`` imports, resolved to dotted names."""
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("snnsearch"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if not node.module.startswith("snnsearch"):
                continue
            found.add(node.module)
            for alias in node.names:  # `from snnsearch.x import y` where y is a module
                candidate = f"{node.module}.{alias.name}"
                if _exists(candidate):
                    found.add(candidate)
    return {name for name in found if name != "snnsearch"}


def _exists(dotted: str) -> bool:
    base = PACKAGE.parent / dotted.replace(".", "/")
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def top_package(dotted: str) -> str:
    """``snnsearch.depth.data.kitti`` → ``snnsearch.depth``; root modules stay themselves."""
    return ".".join(dotted.split(".")[:2])


def allowed_imports(package_dir: Path) -> set[str] | None:
    """The packages named in the ``May import:`` paragraph (None: "anything")."""
    text = ast.get_docstring(ast.parse((package_dir / "__init__.py").read_text())) or ""
    match = re.search(r"May import:(.*?)(?:\n\s*\n|$)", text, re.S)
    if match is None:
        raise AssertionError(f"{package_dir}/__init__.py: its docstring needs a 'May import:' "
                             "paragraph")
    if match.group(1).strip().startswith("anything"):
        return None
    return set(re.findall(r"snnsearch(?:\.\w+)*", match.group(1)))


def collect() -> dict[str, set[str]]:
    return {module_name(p): imports_of(p) for p in PACKAGE.rglob("*.py")}


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    problems = []
    rules = {f"snnsearch.{d.name}": allowed_imports(d)
             for d in PACKAGE.iterdir() if (d / "__init__.py").is_file()}
    for module, targets in sorted(graph.items()):
        own = top_package(module)
        for target in sorted(targets):
            other = top_package(target)
            if other == own:
                continue
            if other == "snnsearch.testing" and own != "snnsearch.testing":
                problems.append(f"{module} imports {target}: the package never imports the fakes")
            elif module in ENTRY_MODULES or own == "snnsearch":
                continue
            elif module in ROOT_MODULES:
                problems.append(f"{module} imports {target}: root modules import nothing")
            elif other in ROOT_MODULES:
                continue
            elif rules.get(own) is not None and other not in rules[own]:
                problems.append(f"{module} imports {target}: {own} may import only "
                                f"{', '.join(sorted(rules[own]))}")
    return problems


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    edges = {m: {t for t in ts if t in graph and t != m} for m, ts in graph.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for vertex in sorted(edges):
        if vertex not in index:
            visit(vertex)
    return found


def test_every_import_follows_the_folders_may_import_paragraphs():
    assert layer_violations(collect()) == []


def test_no_module_import_cycles():
    # Parent packages are left out: importing `a.b` runs `a/__init__`, which is no cycle.
    graph = collect()
    graph = {m: {t for t in ts if not m.startswith(t + ".")} for m, ts in graph.items()}
    assert cycles(graph) == []


def test_the_package_layers_form_no_cycle():
    """The allowed-import relation itself is one-way (a DAG over the folders)."""
    rules = {f"snnsearch.{d.name}": allowed_imports(d)
             for d in PACKAGE.iterdir() if (d / "__init__.py").is_file()}
    graph = {p: {t for t in (r or set()) if t in rules} for p, r in rules.items()
             if r is not None}
    graph.update({p: set() for p in rules if p not in graph})
    assert cycles(graph) == []


@pytest.mark.parametrize("bad", [
    ("snnsearch.depth.losses", "snnsearch.sweep.run"),        # a task importing the engine
    ("snnsearch.classify.trainable", "snnsearch.depth.eval"),  # one task importing another
    ("snnsearch.spaces.space", "snnsearch.search.pareto"),     # a sibling engine folder
    ("snnsearch.sweep.run", "snnsearch.testing.sweeps"),       # the package using the fakes
])
def test_a_wrong_import_is_reported(bad):
    module, target = bad
    graph = collect()
    assert layer_violations(graph) == []
    graph[module] = graph[module] | {target}
    assert any(v.startswith(f"{module} imports {target}") for v in layer_violations(graph))


def test_a_cycle_is_reported():
    graph = defaultdict(set, {k: set(v) for k, v in collect().items()})
    graph["snnsearch.search.pareto"].add("snnsearch.search.moasha")  # moasha imports pareto
    assert ["snnsearch.search.moasha", "snnsearch.search.pareto"] in cycles(dict(graph))

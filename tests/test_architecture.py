"""The layout's promises, read from the source (AST imports of shipgate/ and phases/), not from a diagram:

- no import cycle anywhere;
- the engine (`shipgate/run`) imports no phase and no concrete provider: it is handed PHASES and a Provider;
- only `shipgate/tasks` wires the phases and the provider registry into the engine;
- an import inside a function says why, in a `# why` comment on its line or the line above (a block of
  imports shares the one comment);
- the phase tables agree: `phases.PHASES`, the evidence's numbers and names, and the report models.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("shipgate", "phases")


@dataclass(frozen=True)
class Import:
    importer: str
    target: str  # the module imported (a package's submodule when `from pkg import sub` names one)
    path: Path
    line: int
    end_line: int
    local: bool  # inside a function


def _modules() -> dict[str, Path]:
    mods: dict[str, Path] = {}
    for top in PACKAGES:
        for path in sorted((ROOT / top).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            mods[".".join(parts)] = path
    return mods


MODULES = _modules()


def _imports_of(name: str, path: Path) -> list[Import]:
    tree = ast.parse(path.read_text(), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[Import] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inside = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                targets = [a.name for a in child.names]
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    parts = package.split(".")[: len(package.split(".")) - (child.level - 1)]
                    base = ".".join(parts + ([base] if base else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in child.names]
            else:
                visit(child, inside)
                continue
            for target in dict.fromkeys(targets):
                found.append(Import(name, target, path, child.lineno, child.end_lineno or child.lineno, in_function))

    visit(tree, False)
    return found


IMPORTS = [imp for name, path in MODULES.items() for imp in _imports_of(name, path)]


def _internal(target: str) -> str | None:
    """The module of ours an import names (`shipgate.x.y` for `shipgate.x.y.Thing`), or None (stdlib, third party)."""
    while target and target not in MODULES:
        target = target.rpartition(".")[0]
    return target or None


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {name: set() for name in MODULES}
    for imp in IMPORTS:
        target = _internal(imp.target)
        if target is not None and target != imp.importer:
            graph[imp.importer].add(target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                connect(w)
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
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return out


def test_the_walk_sees_the_tree():
    """A walk that found nothing would pass every rule below."""
    assert {"shipgate.run.campaign", "phases", "phases.phase4", "shipgate.providers.registry"} <= set(MODULES)
    graph = _graph()
    assert "shipgate.run.context" in graph["shipgate.run.campaign"]
    assert "phases.base" in graph["phases.phase1"]


def test_no_import_cycle():
    cycles = _cycles(_graph())
    assert cycles == [], "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def _concrete_provider(target: str) -> bool:
    return target.startswith("shipgate.providers.") and target != "shipgate.providers.base"


def test_the_engine_imports_no_phase_and_no_concrete_provider():
    bad = [f"{imp.importer} imports {imp.target} ({imp.path.relative_to(ROOT)}:{imp.line})" for imp in IMPORTS
           if imp.importer.startswith("shipgate.run") and (
               (_internal(imp.target) or "").split(".")[0] == "phases" or _concrete_provider(imp.target))]
    assert bad == [], "the engine must be handed PHASES and a Provider: " + "; ".join(bad)


def test_only_the_tasks_wire_phases_and_the_provider_registry():
    def wiring(target: str) -> bool:
        module = _internal(target) or ""
        return module in ("phases", "shipgate.providers.registry")

    bad = [f"{imp.importer} imports {imp.target} ({imp.path.relative_to(ROOT)}:{imp.line})" for imp in IMPORTS
           if wiring(imp.target) and not imp.importer.startswith("shipgate.tasks")
           and imp.importer != "shipgate.providers.registry" and imp.importer.split(".")[0] != "phases"]
    assert bad == [], "; ".join(bad)


def _why(lines: list[str], imp: Import) -> bool:
    return any("# why" in lines[n - 1] for n in range(max(imp.line - 1, 1), imp.end_line + 1))


def _unexplained(imports: list[Import], root: Path = ROOT) -> list[str]:
    """Function-local imports with no `# why` on their lines or the line above; a block shares one comment."""
    out: list[str] = []
    by_file: dict[Path, list[Import]] = {}
    for imp in imports:
        if imp.local:
            by_file.setdefault(imp.path, []).append(imp)
    for path, local in by_file.items():
        lines = path.read_text().splitlines()
        explained_until = -1  # the last line of an explained import (a block continues it)
        for imp in sorted(local, key=lambda i: i.line):
            if _why(lines, imp) or imp.line - 1 == explained_until or imp.line == explained_until:
                explained_until = imp.end_line
            else:
                out.append(f"{path.relative_to(root)}:{imp.line} imports {imp.target}")
    return out


def test_imports_inside_functions_say_why():
    bad = _unexplained(IMPORTS)
    assert bad == [], ("imports inside functions without a `# why` comment (move them to the top, or say why: "
                       "fast `invoke --list`, pulumi kept out of lab runs, ...): " + "; ".join(bad))


def test_the_why_rule_catches_a_bare_local_import(tmp_path: Path):
    path = tmp_path / "m.py"
    path.write_text("def f():\n    import json\n\n\ndef g():\n    # why: slow\n    import csv\n    import re\n")
    imports = [Import("m", t, path, line, line, True) for t, line in (("json", 2), ("csv", 7), ("re", 8))]
    assert _unexplained(imports, tmp_path) == ["m.py:2 imports json"]


def test_the_phase_tables_agree():
    from phases import PHASES
    from shipgate.evidence.models import PHASE_MODELS
    from shipgate.evidence.phase_ids import PHASE_NAMES, PHASE_NUMBERS
    from shipgate.run.settings import GateSettings

    assert [p.number for p in PHASES] == list(PHASE_NUMBERS) == sorted(PHASE_MODELS) == list(PHASE_NAMES)
    assert GateSettings().phases == list(PHASE_NUMBERS), "the default campaign runs every phase"
    for phase in PHASES:
        reports = phase.not_run("why not")
        assert [phase.artifact_of(r) for r in reports] == phase.artifacts()
        assert all(isinstance(r, PHASE_MODELS[phase.number]) and r.status == "error" for r in reports)


def test_the_provider_registry_is_a_table():
    from shipgate.providers.registry import PROVIDERS

    assert list(PROVIDERS) == ["lab", "digitalocean"], "the first entry is the default of --infra auto"
    for name, kind in PROVIDERS.items():
        assert kind.name == name
        for method in ("plan", "acquire", "prepare", "release"):
            assert callable(getattr(kind, method)), f"{name} lacks {method}"


@pytest.mark.parametrize("module", ["shipgate.run.campaign", "shipgate.run.context", "shipgate.run.settings"])
def test_engine_modules_import_alone(module: str):
    """Each engine module loads in a fresh interpreter without the phases being imported."""
    code = (f"import sys, {module}; "
            "assert 'phases' not in sys.modules, sorted(m for m in sys.modules if m.startswith('phases'))")
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr[-2000:]

"""The layers import only downwards, and no module of the project imports itself back.

Layers (docs/architecture.md): ``unlearn_theory`` (the math) at the bottom; ``verification`` and
``unlearn_torch`` above it; ``unlearn_cli`` (the shells) on top, and above it the ``unlearn``
shim (``python -m unlearn``), which nothing imports. The checks read every import
statement of every module with ``ast`` -- function-level and guarded imports included, and
``importlib.import_module`` calls (in a module that calls it, every string literal naming a
module of the project counts) -- so an import that runs only on some code path still counts.
"""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("unlearn_theory", "verification", "unlearn_torch", "unlearn_cli", "unlearn")
#: project packages each layer may import (its own package always allowed)
ALLOWED = {
    "unlearn_theory": set(),
    # the torch audits run the real unlearn_torch code (lazily: a test below keeps torch out of
    # verification's import time); unlearn_torch never imports verification
    "verification": {"unlearn_theory", "unlearn_torch"},
    "unlearn_torch": {"unlearn_theory"},
    "unlearn_cli": {"unlearn_theory", "verification", "unlearn_torch"},
    # the shim: ``python -m unlearn`` runs unlearn_cli; its __version__ is unlearn_theory's
    "unlearn": {"unlearn_cli", "unlearn_theory"},
}
#: names of the ``unlearn`` shim that are also attribute names in lazy tables (the function
#: ``unlearn_torch.unlearn``): a string spelling one is not counted as a dynamic import (a real
#: ``import unlearn`` still is)
SHIM_NAMES = ("unlearn",)
#: third-party modules the bottom layer must never import, not even lazily
HEAVY = ("torch", "matplotlib")


def _modules() -> dict[str, Path]:
    """Module name -> file, for every module of the packages."""
    out = {}
    for pkg in PACKAGES:
        base = ROOT / pkg
        if not (base / "__init__.py").exists():
            continue
        for path in sorted(base.rglob("*.py")):
            rel = path.relative_to(ROOT).with_suffix("")
            parts = list(rel.parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


MODULES = _modules()


def _is_package(name: str) -> bool:
    return MODULES.get(name, Path()).name == "__init__.py"


def _imports(name: str, path: Path) -> list[tuple[str, int]]:
    """Absolute names of everything ``name`` imports (with line numbers): for ``from M import
    x`` the submodule M.x when it is a module of the project, else M."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = name if _is_package(name) else name.rpartition(".")[0]
    found = []
    dynamic = any(
        isinstance(node, ast.Attribute) and node.attr == "import_module" for node in ast.walk(tree)
    )
    for node in ast.walk(tree):
        if (
            dynamic
            and isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and node.value in MODULES
            and node.value not in SHIM_NAMES
        ):
            # a module that calls import_module on names from a table: every string naming a
            # module of the project counts as an import of it
            found.append((node.value, node.lineno))
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            for a in node.names:
                sub = f"{mod}.{a.name}"
                found.append((sub if sub in MODULES else mod, node.lineno))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.append((node.args[0].value, node.lineno))
    return found


def _graph() -> dict[str, set[str]]:
    return {
        name: {target for target, _ in _imports(name, path) if target in MODULES} - {name}
        for name, path in MODULES.items()
    }


def test_import_unlearn_theory_loads_no_upper_layer_and_no_heavy_module():
    names = sorted(m for m in MODULES if m.split(".")[0] == "unlearn_theory")
    banned = ("verification", "unlearn_cli", "unlearn_torch", "torch", "sympy", "matplotlib")
    code = (
        "import importlib, sys\n"
        f"for m in {names!r}:\n"
        "    importlib.import_module(m)\n"
        f"print(' '.join(b for b in {banned!r} if b in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == "", f"unlearn_theory loaded: {out.stdout.strip()}"


def test_the_module_list_is_not_empty():
    for pkg in ("unlearn_theory", "verification", "unlearn_cli", "unlearn"):
        assert any(m.split(".")[0] == pkg for m in MODULES), pkg
    assert "unlearn_cli.__main__" in MODULES and "unlearn.__main__" in MODULES


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_point_downwards(name):
    layer = name.split(".")[0]
    bad = []
    for target, line in _imports(name, MODULES[name]):
        top = target.split(".")[0]
        if top in PACKAGES and top != layer and top not in ALLOWED[layer]:
            bad.append(f"line {line}: {target}")
        if layer == "unlearn_theory" and top in HEAVY:
            bad.append(f"line {line}: {target} (heavy)")
    assert not bad, f"{name} imports upwards: {bad}"


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index, low, on_stack, stack, out = {}, {}, set(), [], []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == node:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def test_cycle_finder_finds_a_planted_cycle():
    g = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert _cycles(g) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    graph = _graph()
    cycles = _cycles(graph)
    edges = [
        f"{a} -> {b} (line {line})"
        for comp in cycles
        for a in comp
        for b, line in _imports(a, MODULES[a])
        if b in comp and b != a
    ]
    assert not cycles, f"import cycles between modules: {cycles}; edges: {sorted(set(edges))}"


@pytest.mark.parametrize("module", ["unlearn_cli", "unlearn"])
def test_the_command_line_runs_as_a_module(module):
    out = subprocess.run(
        [sys.executable, "-m", module, "--help"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert out.returncode == 0 and "plan" in out.stdout and "usage: unlearn" in out.stdout


def test_the_shim_is_light_and_imported_by_nothing():
    # ``import unlearn`` loads the version only (the command line when main() runs)
    code = "import sys, unlearn; print(' '.join(m for m in ('unlearn_cli', 'verification', 'torch') if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == ""
    graph = _graph()
    users = sorted(
        a
        for a, targets in graph.items()
        if a.split(".")[0] != "unlearn" and any(t.split(".")[0] == "unlearn" for t in targets)
    )
    assert users == []


def test_every_package_module_is_on_disk():
    # pkgutil agrees with the file walk (no module hidden from the checks)
    for pkg in ("unlearn_theory", "verification", "unlearn_cli", "unlearn"):
        mod = __import__(pkg)
        names = {f"{pkg}.{m.name}" for m in pkgutil.iter_modules(mod.__path__)}
        assert names <= set(MODULES), names - set(MODULES)


def _is_type_checking(test: ast.expr) -> bool:
    """``TYPE_CHECKING`` or ``typing.TYPE_CHECKING`` (false whenever the code runs)."""
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_time_imports(path: Path) -> list[tuple[str, int]]:
    """Modules imported when the file is imported (function bodies and ``if TYPE_CHECKING:``
    blocks excluded)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    out, todo = [], list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            todo.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level:
            out.append((node.module or "", node.lineno))
        todo.extend(ast.iter_child_nodes(node))
    return out


@pytest.mark.parametrize(
    "name", sorted(m for m in MODULES if m.split(".")[0] in ("unlearn_theory", "verification"))
)
def test_torch_and_plotting_are_optional(name):
    """torch (verification's GPU sampling) and matplotlib (plots) load only inside the functions
    that need them, never when a module of the two lower layers is imported."""
    bad = [
        f"line {line}: {mod}"
        for mod, line in _import_time_imports(MODULES[name])
        if mod.split(".")[0] in ("torch", "matplotlib", "sympy")
    ]
    assert not bad, f"{name} imports an optional dependency at import time: {bad}"


def test_import_time_imports_skip_functions_and_type_checking_blocks(tmp_path):
    src = tmp_path / "m.py"
    src.write_text(
        "from typing import TYPE_CHECKING\n"
        "import numpy\n"
        "if TYPE_CHECKING:\n"
        "    import matplotlib\n"
        "else:\n"
        "    import json\n"
        "try:\n"
        "    import torch\n"
        "except ImportError:\n"
        "    pass\n"
        "def f():\n"
        "    import sympy\n"
    )
    assert sorted(m for m, _ in _import_time_imports(src)) == ["json", "numpy", "torch", "typing"]

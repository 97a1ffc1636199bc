"""The packages' direction (SPEC §2): cavra_tui → scheduler → workflows → store.

Checked twice: statically, from every module's import statements (so a rule breaks at once,
whatever is imported lazily inside a function), and at run time, by importing each layer in a
fresh interpreter and looking at what it loaded."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
PACKAGES = ("store", "workflows", "scheduler", "cavra_tui", "screenshots")
# What each package may never import (top-level package names, or exact modules).
FORBIDDEN = {
    "store": {"workflows", "scheduler", "cavra_tui", "textual", "apscheduler", "httpx",
              "smtplib"},
    "workflows": {"scheduler", "cavra_tui", "textual", "apscheduler"},
    "scheduler": {"cavra_tui", "textual"},
}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _modules(package: str) -> list[Path]:
    return [p for p in (ROOT / package).rglob("*.py") if "migrations" not in p.parts]


@pytest.mark.parametrize("package", PACKAGES)
def test_no_module_outside_store_touches_orm_rows(package: str) -> None:
    if package == "store":
        return
    leaks = sorted(str(p.relative_to(ROOT)) for p in _modules(package)
                   if any(n == "store.tables" or n.startswith("store.tables.")
                          for n in _imports(p)))
    assert leaks == [], f"import store.tables outside store/: {leaks}"


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_each_package_imports_only_downwards(package: str) -> None:
    bad = sorted(f"{p.relative_to(ROOT)}: {name}" for p in _modules(package)
                 for name in _imports(p) if name.split(".")[0] in FORBIDDEN[package])
    assert bad == []


def test_the_rule_sees_a_lazy_import(tmp_path: Path) -> None:
    """The static check finds an import inside a function (what the run-time check misses)."""
    module = tmp_path / "lazy.py"
    module.write_text("def f():\n    from store.tables import DeliveryRow\n"
                      "    return DeliveryRow\n")
    assert "store.tables" in _imports(module)


@pytest.mark.parametrize(("package", "never"), [
    ("store", ("textual", "cavra_tui", "scheduler", "workflows", "apscheduler")),
    ("workflows", ("textual", "cavra_tui", "scheduler", "apscheduler")),
    ("scheduler", ("textual", "cavra_tui")),
])
def test_importing_a_layer_loads_nothing_above_it(package: str, never: tuple[str, ...]) -> None:
    code = (f"import sys, pkgutil, importlib, {package}\n"
            f"for mod in pkgutil.walk_packages({package}.__path__, '{package}.'):\n"
            "    if '.migrations' not in mod.name:\n"
            "        importlib.import_module(mod.name)\n"
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in {never!r}))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


DATABASE_FIRST = {"db", "database", "session", "conn", "connection"}


def _service_signatures() -> dict[str, dict[str, list[str]]]:
    """store.services.<module> → public function → its parameter names."""
    found: dict[str, dict[str, list[str]]] = {}
    for path in sorted((ROOT / "store" / "services").glob("*.py")):
        module = f"store.services.{path.stem}"
        found[module] = {node.name: [a.arg for a in node.args.args]
                         for node in ast.parse(path.read_text(encoding="utf-8")).body
                         if isinstance(node, ast.FunctionDef) and not node.name.startswith("_")}
    return found


def test_every_service_called_from_above_the_store_takes_the_context_first() -> None:
    """One kind of first argument (issue 9): a workflow, the scheduler and the console call
    store services with the StoreContext; a step of the caller's transaction takes it too,
    then the session. Functions that take a session or a connection first are the store's
    own building blocks, not called from above it. (Pure helpers that touch no database —
    ``parse_duration(text)``, ``record_kind(record_id)`` — are not services.)"""
    services = _service_signatures()
    bad = []
    for package in ("workflows", "scheduler", "cavra_tui"):
        for path in _modules(package):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not (isinstance(node, ast.ImportFrom) and node.module in services):
                    continue
                for alias in node.names:
                    params = services[node.module].get(alias.name)
                    if params is not None and params[:1] and params[0] in DATABASE_FIRST:
                        bad.append(f"{path.relative_to(ROOT)}: {node.module}.{alias.name}"
                                   f"({', '.join(params[:2])}, …)")
    assert bad == []


def test_no_service_takes_a_bare_database() -> None:
    """Reads take the context like writes do: ``db`` first was the third kind."""
    bad = [f"{module}.{name}" for module, functions in _service_signatures().items()
           for name, params in functions.items() if params[:1] == ["db"]]
    assert bad == []

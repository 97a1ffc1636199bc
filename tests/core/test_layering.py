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

"""Architecture guard: imports point downward, and the ROOT/pyhf/CLI boundaries hold.

Layers (low to high) follow DEVELOPERS.md. A module may import modules of its own layer or
below. Only ``io/`` and ``bookkeeping`` import uproot; only ``stats/`` imports pyhf; nothing
but ``__main__`` imports ``cli``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "recastkit"

LAYERS: dict[str, int] = {
    "exceptions": 0, "units": 0, "config": 0, "_atomic": 0, "_json": 0, "_files": 0,
    "_workers": 0,
    "schemas": 0, "": 0,
    "datasets": 1,
    "lumi": 2,
    "metadata": 3,
    "io": 4, "bookkeeping": 4,
    "selection": 5, "selection_expr": 5, "regions": 5, "histograms": 5, "processing": 5,
    "scaling": 6,
    "stats": 7,
    "report": 8,
    "workflow": 9,
    "cli": 10, "__main__": 10,
}


def _component(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC.parent).with_suffix("")
        name = ".".join(rel.parts).removesuffix(".__init__")
        out.append((name, path))
    return out


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


MODULES = _modules()


def test_every_module_has_a_layer() -> None:
    unknown = {_component(name) for name, _ in MODULES} - set(LAYERS)
    assert not unknown, f"add these to LAYERS and DEVELOPERS.md: {sorted(unknown)}"


@pytest.mark.parametrize(("name", "path"), MODULES, ids=[m for m, _ in MODULES])
def test_imports_point_downward(name: str, path: Path) -> None:
    own = LAYERS[_component(name)]
    for imported in _imports(path):
        if imported == "recastkit" or imported.startswith("recastkit."):
            target = _component(imported)
            assert LAYERS[target] <= own, f"{name} imports {imported} (a higher layer)"


@pytest.mark.parametrize(("name", "path"), MODULES, ids=[m for m, _ in MODULES])
def test_library_boundaries(name: str, path: Path) -> None:
    component = _component(name)
    imported = {i.split(".")[0] for i in _imports(path)}
    if "uproot" in imported:
        assert component in {"io", "bookkeeping"}, f"{name} opens ROOT files (uproot)"
    if "pyhf" in imported:
        assert component == "stats", f"{name} imports pyhf; only stats/ may"
    cli_users = {i for i in _imports(path) if i == "recastkit.cli" or
                 i.startswith("recastkit.cli.")}
    if cli_users:
        assert component in {"cli", "__main__"}, f"{name} imports the CLI"

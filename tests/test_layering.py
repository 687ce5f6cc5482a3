"""Imports flow one way (DESIGN.md section 2): a module may import only lower layers, so there is
no package cycle. Lazy imports inside functions count too: they are dependencies all the same."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "twinrl"

LAYERS: dict[str, int] = {
    "errors": 0,
    "contract": 1,
    "validation": 1,
    "resources": 1,
    "outdir": 1,
    "checkpoint": 2,
    "envs": 3,
    "twin": 4,
    "storage": 5,
    "agents": 6,
    "baselines": 6,
    "assists": 7,
    "resume": 7,
    "training": 8,
    "adaptation": 9,
    "algorithms": 9,
    "testing": 9,
    "tblog": 9,
    "config": 10,
    "experiments": 11,
    "cli": 12,
    "__init__": 13,
}
"""Layer of each top-level module or package of twinrl; a module may import a lower layer or its
own package."""


def _unit(path: Path, src: Path) -> str:
    """The top-level module or package of ``src`` that ``path`` belongs to."""
    return path.relative_to(src).parts[0].removesuffix(".py")


def _imports(path: Path) -> set[str]:
    """The twinrl units ``path`` imports (any import statement, at any depth)."""
    units: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "twinrl" and len(parts) > 1 and parts[1] in LAYERS:
                units.add(parts[1])
    return units


def _violations(src: Path = SRC) -> list[str]:
    found = []
    for path in sorted(src.rglob("*.py")):
        unit = _unit(path, src)
        if unit not in LAYERS:
            found.append(f"{path.relative_to(src)}: unit {unit!r} has no layer in LAYERS")
            continue
        for other in _imports(path) - {unit}:
            if LAYERS[other] >= LAYERS[unit]:
                found.append(
                    f"{path.relative_to(src)} (layer {LAYERS[unit]}) imports twinrl.{other} "
                    f"(layer {LAYERS[other]})"
                )
    return found


def test_no_module_imports_a_higher_or_sibling_layer() -> None:
    assert _violations() == []


def test_the_check_catches_an_upward_import(tmp_path: Path) -> None:
    (tmp_path / "envs").mkdir()
    (tmp_path / "envs" / "x.py").write_text("def f():\n    from twinrl.training import train\n")
    (tmp_path / "training.py").write_text("from twinrl.envs import x\n")
    (tmp_path / "gadgets.py").write_text("")
    assert _violations(tmp_path) == [
        "envs/x.py (layer 3) imports twinrl.training (layer 8)",
        "gadgets.py: unit 'gadgets' has no layer in LAYERS",
    ]

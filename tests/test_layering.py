"""The package's shape, read from its source with ``ast`` (every import, module-level or lazy):

- the subpackages form layers, and a module imports only its own layer or lower ones, so the
  import graph between subpackages has no cycle (``evaluate`` is the bottom of the model stack,
  ``cli`` the top);
- ``data`` never imports torch (beside the run-time check in test_public_api);
- only ``cli`` maps names to classes (``importlib``), apart from the documented exceptions;
- no module imports another package's private (``_x``) module or private name;
- no file is over ~500 lines without a reason in its module docstring.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "recsys_coldstart"

# Lower number = lower layer. A unit is a subpackage or a top-level module of recsys_coldstart.
LAYERS: dict[str, int] = {
    "exceptions": 0, "_utils": 0, "config": 0,
    "data": 1,
    "types": 2, "sparse": 2, "inputs": 2,
    "retrieval": 3, "graph": 3,
    "base": 4, "evaluate": 4,
    "foldin": 5, "train": 5,
    "baselines": 6, "pretrain": 6, "towers": 6,
    "distill": 7, "coldstart": 7,
    "elicit": 8,
    "io": 9, "tune": 9,
    "bench": 10,
    "report": 11,
    "cli": 12,
}

# The only places outside cli that turn strings into classes, and why.
NAME_TO_CLASS_ALLOWED = {
    "__init__.py": "the package facade imports its public estimators lazily on first attribute access",
    "io.py": "load_model reads the class of a saved model from config.json (restricted to recsys_coldstart)",
}

MAX_LINES = 500
LENGTH_REASON = "Length:"  # a module over MAX_LINES says why in its docstring, after this marker


def _modules() -> list[Path]:
    return sorted(p for p in PKG.rglob("*.py") if "__pycache__" not in p.parts)


def _unit(path: Path) -> str:
    rel = path.relative_to(PKG).parts
    return rel[0][:-3] if len(rel) == 1 else rel[0]


def _imports(path: Path) -> list[tuple[str, list[str], int]]:
    """``(module, imported names, line)`` for every import in the file, wherever it stands."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, [], node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.module, [a.name for a in node.names], node.lineno))
    return out


def _target_unit(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "recsys_coldstart" or len(parts) < 2:
        return None
    return parts[1]


def test_every_unit_has_a_layer():
    units = {_unit(p) for p in _modules()} - {"__init__"}
    assert units <= set(LAYERS), f"place these in LAYERS: {sorted(units - set(LAYERS))}"


def test_imports_only_go_down_the_layers():
    bad = []
    for path in _modules():
        unit = _unit(path)
        if unit == "__init__":
            continue
        for module, _, line in _imports(path):
            target = _target_unit(module)
            if target is None or target == unit or target not in LAYERS:
                continue
            if LAYERS[target] > LAYERS[unit]:
                bad.append(f"{path.relative_to(PKG)}:{line} ({unit}, layer {LAYERS[unit]}) imports "
                           f"{module} ({target}, layer {LAYERS[target]})")
    assert not bad, "upward imports:\n" + "\n".join(bad)


def test_no_cycle_between_units():
    graph: dict[str, set[str]] = {}
    for path in _modules():
        unit = _unit(path)
        for module, _, _ in _imports(path):
            target = _target_unit(module)
            if target and target != unit and unit != "__init__":
                graph.setdefault(unit, set()).add(target)
    state: dict[str, int] = {}

    def visit(u: str, stack: list[str]) -> None:
        state[u] = 1
        for v in sorted(graph.get(u, ())):
            if state.get(v) == 1:
                pytest.fail("import cycle: " + " -> ".join(stack + [u, v]))
            if v not in state:
                visit(v, stack + [u])
        state[u] = 2

    for u in sorted(graph):
        if u not in state:
            visit(u, [])


def test_data_never_imports_torch():
    for path in (PKG / "data").rglob("*.py"):
        for module, _, line in _imports(path):
            assert module.split(".")[0] not in ("torch", "torch_geometric"), f"{path}:{line} imports {module}"


def test_only_cli_maps_names_to_classes():
    bad = []
    for path in _modules():
        rel = path.relative_to(PKG)
        if rel.parts[0] == "cli" or str(rel) in NAME_TO_CLASS_ALLOWED:
            continue
        for module, names, line in _imports(path):
            if module == "importlib" or (module.startswith("importlib") and "import_module" in names):
                bad.append(f"{rel}:{line}")
        if "__all__" in path.read_text(encoding="utf-8") and rel.name != "__init__.py":
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, ast.Attribute) and node.attr == "__all__" and isinstance(node.value, ast.Name):
                    bad.append(f"{rel}:{node.lineno} reflects over {node.value.id}.__all__")
    assert not bad, "name -> class resolution outside cli:\n" + "\n".join(bad)


def test_no_private_module_or_name_of_another_package():
    bad = []
    for path in _modules():
        unit = _unit(path)
        for module, names, line in _imports(path):
            target = _target_unit(module)
            if target is None or target == unit:
                continue
            parts = module.split(".")[1:]
            private_module = any(p.startswith("_") and not p.startswith("__") for p in parts)
            # recsys_coldstart._utils is the package-wide private helper module, shared on purpose
            if private_module and parts != ["_utils"]:
                bad.append(f"{path.relative_to(PKG)}:{line} imports private module {module}")
            for n in names:
                if n.startswith("_") and not n.startswith("__"):
                    bad.append(f"{path.relative_to(PKG)}:{line} imports private name {module}.{n}")
    assert not bad, "\n".join(bad)


def test_no_file_over_500_lines_without_a_reason():
    bad = []
    for path in _modules():
        text = path.read_text(encoding="utf-8")
        n = text.count("\n")
        if n > MAX_LINES:
            doc = ast.get_docstring(ast.parse(text)) or ""
            if LENGTH_REASON not in doc:
                bad.append(f"{path.relative_to(PKG)}: {n} lines")
    assert not bad, f"over {MAX_LINES} lines without '{LENGTH_REASON} <why>' in the docstring: {bad}"

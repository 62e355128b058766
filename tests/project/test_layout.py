"""The package is the pipeline: imports run only downwards, never in a circle, and every
module stays small enough to read in one sitting.

Layers, lowest first (README, "Layout"). A module may import its own layer and the
layers below it; within one package the modules must not import each other in a circle.
Every import counts: module level, inside functions, and under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "invoicing"

LAYERS = ("core", "storage", "load", "validate", "pricing", "entitlements", "assemble",
          "render", "publish", "pipeline", "audit", "deliver", "cli")
MAX_LINES = 400


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The invoicing module an imported name lives in (a module, or the package whose
    attribute it is)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            if name.split(".")[0] == "invoicing":
                target = _resolve(name, modules)
                if target is not None:
                    found.add(target)
    return found


def _layer(module: str) -> int:
    parts = module.split(".")
    if len(parts) == 1:  # the root package: __version__
        return -1
    return LAYERS.index(parts[1])


def test_every_module_has_a_layer() -> None:
    unknown = [m for m in _modules() if m != "invoicing" and m.split(".")[1] not in LAYERS
               and not m.startswith("invoicing.locales")]
    assert unknown == []


def test_imports_only_run_downwards() -> None:
    modules = _modules()
    upwards = [f"{source} imports {target}"
               for source, path in modules.items()
               for target in sorted(_imports(path, modules))
               if _layer(target) > _layer(source)]
    assert upwards == []


def test_no_import_cycle() -> None:
    modules = _modules()
    graph = {m: _imports(p, modules) - {m} for m, p in modules.items()}
    # A package's __init__ importing its own submodules is how a package exposes them;
    # a submodule importing the package that imports it back is the cycle that counts.
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*path[path.index(nxt):], nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == []


#: Modules still over the limit, to be split (the list only shrinks).
OVER_LIMIT: set[str] = set()


def test_every_module_is_small() -> None:
    long = {_module_name(p): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) >= MAX_LINES}
    assert sorted(set(long) - OVER_LIMIT) == []

"""The code's shape: no import cycles, and services' packages depend one way only.

Every import counts, including those under ``TYPE_CHECKING`` and inside functions: a cycle that
only type checking sees is still two modules that cannot be understood apart.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bot", "handlers", "services")

# Lower layers never import higher ones; a package may import its own modules and lower layers.
# Layer 0 is the shared vocabulary (errors, texts, the job model, downloads) anyone may use.
LAYERS: dict[str, int] = {
    "services.errors": 0,
    "services.texts": 0,
    "services.texts_ru": 0,
    "services.downloads": 0,
    "services.log_context": 0,
    "services.metrics": 0,
    "services.model": 0,
    "services.media": 1,
    "services.storage": 1,
    "services.telegram": 2,
    "services.providers": 2,
    "services.production": 3,
    "services.conversation": 4,
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def our_modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            found[module_name(path)] = path
    return found


def imports_of(path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules ``path`` imports (``from a import b`` counts ``a.b`` when a module)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        found.update(name for name in names if name in modules)
    # ``from services.media import ffmpeg`` names the module ffmpeg, not a use of the package.
    return {name for name in found if not any(other.startswith(name + ".") for other in found)}


def layer_of(module: str) -> tuple[str, int] | None:
    for prefix, rank in LAYERS.items():
        if module == prefix or module.startswith(prefix + "."):
            return prefix, rank
    return None


def graph() -> dict[str, set[str]]:
    modules = our_modules()
    return {name: imports_of(path, modules) - {name} for name, path in modules.items()}


def test_no_module_imports_itself_back() -> None:
    edges = graph()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)
    assert cycles == []


def test_services_packages_depend_downwards_only() -> None:
    wrong: list[str] = []
    for module, targets in graph().items():
        here = layer_of(module)
        if here is None:
            continue
        for target in targets:
            there = layer_of(target)
            if there is None:
                if target.startswith(("bot", "handlers")):
                    wrong.append(f"{module} -> {target}")
                continue
            if there[0] != here[0] and there[1] >= here[1] and there[1] > 0:
                wrong.append(f"{module} -> {target}")
    assert sorted(wrong) == []


def test_only_the_telegram_edge_speaks_python_telegram_bot() -> None:
    speakers = set()
    for module, path in our_modules().items():
        if not module.startswith("services."):
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "telegram":
                speakers.add(module)
            if isinstance(node, ast.Import) and any(
                a.name.split(".")[0] == "telegram" for a in node.names
            ):
                speakers.add(module)
    assert speakers <= {m for m in our_modules() if m.startswith("services.telegram.")}

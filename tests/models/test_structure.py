"""The models package's structure: no import cycles between its modules, and no test hooks in
the production path (tests interrupt, corrupt and swap models from the outside)."""

from __future__ import annotations

import ast
from pathlib import Path

MODELS = Path(__file__).resolve().parents[2] / "src" / "morphcpt" / "models"


def _imports() -> dict[str, set[str]]:
    """module -> the morphcpt.models modules it imports (at any level, lazily or not)."""
    graph: dict[str, set[str]] = {}
    for path in MODELS.glob("*.py"):
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                if node.module.startswith("morphcpt.models."):
                    deps.add(node.module.split(".")[2])
                elif node.module == "morphcpt.models":
                    deps.update(alias.name for alias in node.names)
            elif isinstance(node, ast.Import):
                deps.update(a.name.split(".")[2] for a in node.names if a.name.startswith("morphcpt.models."))
        graph[path.stem] = deps - {path.stem}
    return graph


def test_models_modules_import_no_cycle():
    graph = _imports()
    assert {"train", "recipe", "step0_gate", "checkpoints", "train_callback"} <= set(graph)
    state: dict[str, str] = {}

    def visit(module: str, stack: list[str]) -> None:
        state[module] = "open"
        for dep in sorted(graph.get(module, ())):
            assert state.get(dep) != "open", f"import cycle: {' -> '.join(stack + [module, dep])}"
            if dep not in state:
                visit(dep, stack + [module])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [])


def test_no_test_hooks_or_dead_code_in_the_production_path():
    source = "\n".join(p.read_text() for p in MODELS.glob("*.py"))
    for hook in ("random_init", "KILL_ENV", "MORPHCPT_TEST_", "SIDECAR_KEYS", "expected_lr"):
        assert hook not in source, hook

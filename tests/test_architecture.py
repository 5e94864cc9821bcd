"""The package's structure: parts import downwards only (no cycles, also not through imports
inside functions), no module over 450 lines, and every task is in the registry."""

import ast
import os

import pytest

PACKAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "keras_nlp_app")
MAX_LINES = 450
# DESIGN.md's layering: a part may import parts of a lower or equal rank, never a higher one
RANKS = {
    "errors": 0, "__init__": 0, "__main__": 9,
    "config": 1, "utils": 1,
    "text": 2, "data": 2, "models": 2, "metrics": 2, "decoding": 2, "ngram": 2, "callbacks": 2, "rulebot": 2,
    "tasks": 3,
    "runs": 4,
    "training": 5, "export": 5, "inference": 5, "rescoring": 5, "inspection": 5,
    "serving": 6,
    "cli": 7,
}


def _modules():
    found = {}
    for folder, _, files in os.walk(PACKAGE):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                relative = os.path.relpath(path, os.path.dirname(PACKAGE))[:-3].replace(os.sep, ".")
                found[relative.removesuffix(".__init__")] = path
    return found


def _imports(path, modules):
    """Package modules a file imports anywhere in it (functions included)."""
    tree = ast.parse(open(path, encoding="utf-8").read())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
        else:
            continue
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name != "keras_nlp_app":
                found.add(name)
    return found


def _graph():
    modules = _modules()
    return {name: _imports(path, modules) - {name} for name, path in modules.items()}


def _part(module):
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _cycle(graph):
    """One import cycle as a list of nodes, or None."""
    state = {}

    def visit(node, stack):
        state[node] = "open"
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "open":
                return stack[stack.index(target):] + [target]
            if target not in state:
                found = visit(target, stack)
                if found:
                    return found
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node, [])
            if found:
                return found
    return None


def test_no_import_cycle_between_modules_counting_imports_inside_functions():
    graph = _graph()
    # a package's __init__ importing its own submodules (the task registry) is not a cycle
    for name in graph:
        graph[name] = {t for t in graph[name] if not name.startswith(t + ".")}
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))


def test_parts_import_downwards_only():
    wrong = []
    for module, targets in _graph().items():
        for target in targets:
            source_part, target_part = _part(module), _part(target)
            if source_part != target_part and RANKS[target_part] > RANKS[source_part]:
                wrong.append(f"{module} imports {target}")
    assert not wrong, "\n".join(sorted(wrong))
    parts = {}
    for module, targets in _graph().items():
        parts.setdefault(_part(module), set()).update(_part(t) for t in targets if _part(t) != _part(module))
    assert _cycle(parts) is None, " -> ".join(_cycle(parts))


def test_no_module_is_over_450_lines():
    long = {name: n for name, path in _modules().items()
            if (n := sum(1 for _ in open(path, encoding="utf-8"))) > MAX_LINES}
    assert not long, long


def test_the_registry_is_the_only_list_of_tasks():
    from keras_nlp_app.config import CHOICES
    from keras_nlp_app.errors import ConfigError
    from keras_nlp_app.tasks import TASKS, Task, get_task

    assert set(TASKS) >= {"classification", "lm", "pretrain", "seq2seq", "tagging"}
    assert "task" not in CHOICES
    assert all(isinstance(task, Task) and task.name == name for name, task in TASKS.items())
    with pytest.raises(ConfigError, match="choose one of classification, lm, pretrain, qa, relation, seq2seq, tagging"):
        get_task("sentiment")
    base = os.path.join(os.path.dirname(PACKAGE), "configs", "base.yaml")
    documented = next(line for line in open(base, encoding="utf-8") if line.startswith("task:"))
    assert all(name in documented for name in TASKS), documented


def test_no_shared_layer_branches_on_a_task():
    """cli, inference, export, serving, runs and training know tasks only through the hooks: no
    comparison with a task's name, no lookup of a task by a literal name, no task module import."""
    from keras_nlp_app.tasks import TASKS

    offenders = []
    for module, path in _modules().items():
        if _part(module) not in ("cli", "inference", "export", "serving", "runs", "training"):
            continue
        tree = ast.parse(open(path, encoding="utf-8").read())
        for node in ast.walk(tree):
            literals = []
            if isinstance(node, ast.Compare):
                literals = [node.left, *node.comparators]
            elif isinstance(node, ast.Call) and getattr(node.func, "id", "") == "get_task":
                literals = node.args
            elif isinstance(node, ast.Subscript) and getattr(node.value, "id", "") == "TASKS":
                literals = [node.slice]
            for literal in literals:
                values = literal.elts if isinstance(literal, (ast.Tuple, ast.List, ast.Set)) else [literal]
                if any(isinstance(v, ast.Constant) and v.value in TASKS for v in values):
                    offenders.append(f"{module}:{node.lineno}")
        offenders += [f"{module} imports {target}" for target in _imports(path, _modules())
                      if target.startswith("keras_nlp_app.tasks.") and target != "keras_nlp_app.tasks.base"]
    assert not offenders, offenders

"""The shape a newcomer can rely on, checked on every run: small files and functions, no import circle, each layer
importing only from the layers below it, and job states spelt only in the job model."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = SRC / "analytics_platform"
MAX_FILE_LINES = 300
MAX_FUNCTION_LINES = 60
#: Low to high; a module imports only from its own package or a lower layer. The neutral modules at the bottom
#: import nothing of the project above ``etl`` (the Lambda package, which imports nothing but itself).
LAYERS = {
    "etl": 0, "exit_codes": 0, "machine_output": 0, "progress": 0, "region_runner": 0.5, "packaging": 0, "__init__": 0,
    "infra": 1, "local": 2, "targeting": 2.5, "analytics": 3, "ops": 4, "console": 5, "demo": 5, "cli": 6,
}  # fmt: skip
JOB_STATES = {"PENDING", "RUNNING", "SUCCEEDED", "FAILED", "DEAD_LETTERED", "SUPERSEDED", "DELETED"}
JOB_MODEL = PACKAGE / "etl" / "job_values.py"
#: Names of constants that hold the same words for other things than a job (Athena query states, SQS move-task
#: states, a region run's result).
OTHER_STATES = ("ATHENA_", "TASK_", "RUN_")


def modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        yield ".".join(parts[:-1] if parts[-1] == "__init__" else parts), path


def layer_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def project_imports(path: Path, *, module_level: bool) -> list[str]:
    """The project modules ``path`` imports (``from a.b import c`` counts ``a.b`` and, if a module, ``a.b.c``);
    never those under ``if TYPE_CHECKING``; with ``module_level``, not those inside functions either."""
    known = {name for name, _ in modules()}
    found: list[str] = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if module_level and isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            if isinstance(child, ast.ImportFrom) and (child.module or "").startswith("analytics_platform"):
                assert child.module is not None
                found.append(child.module)
                found.extend(f"{child.module}.{a.name}" for a in child.names if f"{child.module}.{a.name}" in known)
            elif isinstance(child, ast.Import):
                found.extend(a.name for a in child.names if a.name.startswith("analytics_platform"))
            visit(child)

    visit(ast.parse(path.read_text()))
    return [name for name in found if name in known]


@pytest.mark.parametrize(("module", "path"), list(modules()), ids=[m for m, _ in modules()])
def test_no_file_is_over_300_lines_and_no_function_over_60(module: str, path: Path) -> None:
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_FILE_LINES, f"{path.relative_to(SRC)} has {lines} lines"
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            assert length <= MAX_FUNCTION_LINES, f"{path.relative_to(SRC)}:{node.lineno} {node.name} is {length} lines"


def test_no_import_circle() -> None:
    graph = {module: set(project_imports(path, module_level=True)) - {module} for module, path in modules()}
    visiting: list[str] = []
    done: set[str] = set()

    def walk(module: str) -> None:
        if module in done:
            return
        assert module not in visiting, "import circle: " + " -> ".join([*visiting[visiting.index(module) :], module])
        visiting.append(module)
        for target in sorted(graph.get(module, ())):
            walk(target)
        visiting.pop()
        done.add(module)

    for module in sorted(graph):
        walk(module)


def test_every_layer_imports_only_from_its_own_package_or_below() -> None:
    wrong = []
    for module, path in modules():
        source = layer_of(module)
        assert source in LAYERS, f"{module}: a package the layer map does not know ({source})"
        for target in project_imports(path, module_level=False):
            if layer_of(target) != source and LAYERS[layer_of(target)] >= LAYERS[source]:
                wrong.append(f"{module} imports {target}")
    assert not wrong, "\n".join(wrong)


def test_job_states_are_spelt_only_in_the_job_model() -> None:
    found = []
    for _, path in modules():
        if path == JOB_MODEL:
            continue
        tree = ast.parse(path.read_text())
        allowed: set[int] = set()
        for node in ast.walk(tree):
            targets = node.targets if isinstance(node, ast.Assign) else []
            names = [t.id for t in targets if isinstance(t, ast.Name)]
            if names and all(n == "__all__" or n.startswith(OTHER_STATES) for n in names):
                allowed |= {id(c) for c in ast.walk(node) if isinstance(c, ast.Constant)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and node.value in JOB_STATES and id(node) not in allowed:
                found.append(f"{path.relative_to(SRC)}:{node.lineno} {node.value!r}")
    assert not found, "job states spelt outside etl/job_values.py:\n" + "\n".join(found)


def test_the_checks_see_what_they_must() -> None:
    # the walk finds the modules and their imports (a check that sees nothing passes for the wrong reason)
    names = dict(modules())
    assert {"analytics_platform.etl.job_values", "analytics_platform.cli", "analytics_platform.demo"} <= set(names)
    assert "analytics_platform.etl.job_values" in project_imports(names["analytics_platform.etl.jobs"],
                                                                  module_level=True)  # fmt: skip

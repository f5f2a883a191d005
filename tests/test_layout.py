"""The code's shape as a specification: one-way imports, short modules and functions, torch-only models."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Each layer may import its own and lower layers only (lazy imports inside functions included).
LAYERS = [
    ("pipelines.storage", "pipelines.errors"),
    ("pipelines.data",),
    ("pipelines.config", "pipelines.presets"),
    ("pipelines.cluster", "pipelines.tracking", "pipelines.ray_private"),
    ("pipelines.training",),
    ("pipelines.sweeps",),
    ("pipelines.cli",),  # the command line sits on top of every stage
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every module ``path`` imports, anywhere in the file, as absolute names."""
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            base = base[: len(base) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)  # `from . import storage`
    return found


def pipeline_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted((ROOT / "pipelines").rglob("*.py"))}


def internal_graph() -> dict[str, set[str]]:
    modules = pipeline_modules()
    return {name: {m for m in imports_of(path) if m in modules and m != name} for name, path in modules.items()}


def layer_of(module: str) -> int:
    for index, prefixes in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return index
    return -1  # the package's own __init__


def test_pipeline_imports_form_no_cycle():
    graph = internal_graph()
    state: dict[str, int] = {}

    def visit(node, trail):
        state[node] = 1
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                pytest.fail("import cycle: " + " -> ".join(trail + [node, nxt]))
            if not state.get(nxt):
                visit(nxt, trail + [node])
        state[node] = 2

    for node in graph:
        if not state.get(node):
            visit(node, [])


def test_imports_run_down_the_stages():
    upward = [(module, target) for module, targets in internal_graph().items() for target in targets
              if layer_of(target) > layer_of(module) >= 0]
    assert upward == []


def test_models_know_nothing_of_the_pipeline():
    for path in sorted((ROOT / "smallbig").glob("*.py")):
        banned = {m for m in imports_of(path) if m.split(".")[0] in ("pipelines", "ray", "mlflow", "decord", "av")}
        assert not banned, f"{path.name} imports {banned}"


def long_functions(path: Path, limit: int) -> list[str]:
    tree = ast.parse(path.read_text())
    return [f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
            for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > limit]


def test_modules_and_functions_stay_short():
    """The house rule in every folder of code: a module fits in 300 lines, a function in 60."""
    sources = [p for folder in ("pipelines", "smallbig", "benchmarks") for p in sorted((ROOT / folder).rglob("*.py"))]
    sources.append(ROOT / "run.py")
    assert {p.relative_to(ROOT).parts[0] for p in sources} == {"pipelines", "smallbig", "benchmarks", "run.py"}
    assert [str(p.relative_to(ROOT)) for p in sources if len(p.read_text().splitlines()) > 300] == []
    assert [line for p in sources for line in long_functions(p, 60)] == []


def test_the_training_step_imports_without_ray_mlflow_or_a_decoder():
    """What a GPU machine with only PyTorch runs: the models, the benchmarks and the training step."""
    guard = ("import sys\n"
             "class Refuse:\n"
             "    def find_spec(self, name, path=None, target=None):\n"
             "        if name.split('.')[0] in ('ray', 'mlflow', 'decord', 'av', 'yaml', 'PIL', 'matplotlib'):\n"
             "            raise ImportError(f'{name} is not installed here')\n"
             "sys.meta_path.insert(0, Refuse())\n"
             "import smallbig, benchmarks.model_step, benchmarks.train_step, benchmarks.gpu_check\n"
             "from pipelines.training.step import train_epoch\n"
             "print('ok')\n")
    done = subprocess.run([sys.executable, "-c", guard], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr

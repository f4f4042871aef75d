"""House rules a newcomer relies on: no import cycles, no module over MAX_LINES, shared constants defined once,
and published model files written by one module (model_zoo/store.py).

Plain `ast` and text checks: no TensorFlow, no data; they fail with the offending module named.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("model_zoo", "trainer")
MAX_LINES = 400
APP_FILES = sorted([ROOT / "streamlit_app.py", *ROOT.glob("app_*.py"), *(ROOT / "pages").glob("*.py")])


def _sources() -> list[Path]:
    files = [p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))]
    return files + APP_FILES


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """Project modules `path` imports, at top level or inside functions (a lazy import is still a dependency)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def _graph() -> dict[str, set[str]]:
    files = [p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))]
    modules = {_module_name(p) for p in files}
    graph = {_module_name(p): _imports(p, modules) for p in files}
    # A package's __init__ re-exports its modules; importing the package is not a cycle through them.
    return {m: {t for t in deps if not m.startswith(t + ".")} for m, deps in graph.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, result = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                item = stack.pop()
                on_stack.discard(item)
                component.append(item)
                if item == node:
                    break
            if len(component) > 1:
                result.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return result


def test_no_import_cycles():
    assert _cycles(_graph()) == []


def test_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_app_never_imports_training_code():
    for path in APP_FILES + sorted((ROOT / "model_zoo").rglob("*.py")):
        imported = re.findall(r"^\s*(?:from|import)\s+(trainer)\b", path.read_text(), flags=re.M)
        assert not imported, f"{path.relative_to(ROOT)} imports the trainer"


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_module_size(path: Path):
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(ROOT)} has {lines} lines; split it by concern"


def test_melanoma_labels_have_one_home():
    literal = re.compile(r"""\(\s*["'](?:melanoma|mel)["']\s*,\s*["'](?:melanoma|mel)["']\s*\)""")
    homes = [p.relative_to(ROOT) for p in _sources() if literal.search(p.read_text())]
    assert homes == [Path("model_zoo/constants.py")]


def test_upload_types_have_one_home():
    literal = re.compile(r"""["']jpe?g["']\s*,\s*["']jpe?g["']""")
    homes = [p.relative_to(ROOT) for p in _sources() if literal.search(p.read_text())]
    assert homes == [Path("model_zoo/constants.py")]


MODEL_FILE_NAMES = re.compile(r"CARD_FILE|METRICS_FILE|card\.json|metrics\.json|(card|metrics)_path")
WRITE_CALLS = ("write_json_atomic", "write_text", "write_bytes")


def _model_file_writes(source: str) -> list[int]:
    """Lines that write card.json / metrics.json: a write_json_atomic(target, ...) or target.write_text(...) whose
    target names one of them, directly or through a variable of the same function assigned from one
    (`path = folder / store.METRICS_FILE; write_json_atomic(path, metrics)`)."""
    if not any(call in source for call in WRITE_CALLS):
        return []
    tree = ast.parse(source)
    names_file = lambda node: bool(MODEL_FILE_NAMES.search(ast.unparse(node)))
    scopes = [tree, *(n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)))]
    lines = set()
    for scope in scopes:
        nodes = list(ast.walk(scope))
        aliases = {target.id for node in nodes if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value
                   and names_file(node.value)
                   for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
                   if isinstance(target, ast.Name)}
        for node in nodes:
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name not in WRITE_CALLS:
                continue
            if name == "write_json_atomic":
                target = node.args[0] if node.args else next((k.value for k in node.keywords if k.arg == "path"), None)
            else:
                target = func.value if isinstance(func, ast.Attribute) else None
            if target is not None and (names_file(target) or any(isinstance(n, ast.Name) and n.id in aliases
                                                                 for n in ast.walk(target))):
                lines.add(node.lineno)
    return sorted(lines)


def test_model_files_have_one_writer():
    """Only model_zoo/store.py writes card.json / metrics.json; everyone else calls it."""
    writers = [f"{p.relative_to(ROOT)}:{line}" for p in _sources() if p != ROOT / "model_zoo" / "store.py"
               for line in _model_file_writes(p.read_text())]
    assert writers == []


def test_model_file_writes_are_found():
    """The check above sees a write through a variable as well as a direct one."""
    direct = "def f(folder, card):\n    (folder / store.CARD_FILE).write_text(json.dumps(card))\n"
    aliased = "def f(folder, m):\n    path = folder / store.METRICS_FILE\n    store.write_json_atomic(path, m)\n"
    named = "def f(metrics_path, m):\n    write_json_atomic(metrics_path, m)\n"
    assert [_model_file_writes(s) for s in (direct, aliased, named)] == [[2], [3], [2]]
    assert _model_file_writes("def f(folder, m):\n    store.write_json_atomic(folder / JOB_FILE, m)\n") == []

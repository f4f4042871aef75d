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


def test_model_files_have_one_writer():
    """Only model_zoo/store.py writes card.json / metrics.json; everyone else calls it."""
    writes = re.compile(r"write_json_atomic\([^)]*(CARD_FILE|METRICS_FILE)|(CARD_FILE|METRICS_FILE)\)\.write_text")
    writers = [p.relative_to(ROOT) for p in _sources() if writes.search(p.read_text())]
    assert writers == []

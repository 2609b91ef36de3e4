"""The layering rule (docs/ARCHITECTURE.md), checked on the source: every import statement, at module level or
inside a function, parsed with `ast` — so a lazy import cannot slip a dependency past the rule."""

from __future__ import annotations

import ast
import functools
import re
from collections import defaultdict
from pathlib import Path

import pytest

PACKAGE_DIR = Path(__file__).resolve().parent.parent / "gradient_pipeline"

# Packages below the Dagster layer: they never import the definitions nor the application layer.
LIBRARY = ("core", "book", "exchange", "execution", "monitoring", "marketdata", "research", "localexchange",
           "storage", "signals", "config", "timegrid", "backoff", "runtags")
WIRING = ("gradient_pipeline.defs", "gradient_pipeline.definitions", "gradient_pipeline.app")
# The pure strategy core: no I/O or orchestration library.
CORE_FORBIDDEN = ("dagster", "duckdb", "requests", "httpx", "urllib3", "sqlalchemy", "alembic", "psycopg",
                  "hyperliquid", "eth_account", "starlette", "uvicorn", "apprise")


def _module_name(path: Path, root: Path = PACKAGE_DIR) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@functools.lru_cache(maxsize=None)
def parsed(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), str(path))


def imports_of(path: Path, root: Path = PACKAGE_DIR) -> set[str]:
    """Absolute names of every module `path` (a file under `root`) imports: relative imports resolved; `from a
    import b` yields `a.b` as well as `a`, since `b` may be a submodule."""
    name = _module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(parsed(path)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


@functools.lru_cache(maxsize=1)
def all_modules() -> dict[str, set[str]]:
    return {_module_name(p): imports_of(p) for p in sorted(PACKAGE_DIR.rglob("*.py"))}


def top_level(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "gradient_pipeline" and len(parts) > 1 else None


def _within(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def test_library_never_imports_definitions_or_app():
    bad = [f"{mod} imports {imp}" for mod, imps in all_modules().items() if top_level(mod) in LIBRARY
           for imp in sorted(imps) if _within(imp, WIRING)]
    assert not bad, "library code must not import defs/definitions/app:\n" + "\n".join(bad)


def test_core_imports_no_io_or_orchestration_library():
    bad = [f"{mod} imports {imp}" for mod, imps in all_modules().items() if top_level(mod) == "core"
           for imp in sorted(imps) if _within(imp, CORE_FORBIDDEN)]
    assert not bad, "\n".join(bad)


def package_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for mod, imps in all_modules().items():
        src = top_level(mod)
        for imp in imps:
            dst = top_level(imp)
            if src and dst and dst != src and ((PACKAGE_DIR / dst).is_dir() or (PACKAGE_DIR / f"{dst}.py").exists()):
                graph[src].add(dst)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle in `graph` (as a path that ends where it starts), or None."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_find_cycle_sees_a_cycle_and_its_absence():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_no_cycle_between_top_level_packages():
    cycle = find_cycle(package_graph())
    assert cycle is None, "import cycle between packages: " + " -> ".join(cycle)


@pytest.mark.parametrize(("a", "b"), [("execution", "monitoring")])
def test_execution_and_monitoring_meet_only_in_the_book(a, b):
    graph = package_graph()
    assert b not in graph[a] and a not in graph[b], f"{a} and {b} must depend on book/, not on each other"


def test_imports_of_resolves_relative_and_function_level_imports(tmp_path):
    root = tmp_path / "gradient_pipeline"
    (root / "monitoring").mkdir(parents=True)
    source = root / "monitoring" / "x.py"
    source.write_text("def f():\n    from ..execution import runner\n    import gradient_pipeline.defs\n")
    assert {"gradient_pipeline.execution.runner", "gradient_pipeline.defs"} <= imports_of(source, root)


def test_run_tags_have_one_home():
    """Every `gradient/...` run-tag name is spelled once, in `gradient_pipeline/runtags.py`."""
    tag = re.compile(r"gradient/[a-z_]+")
    bad = []
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        if path.name == "runtags.py" and path.parent == PACKAGE_DIR:
            continue
        for node in ast.walk(parsed(path)):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and tag.fullmatch(node.value):
                bad.append(f"{path.relative_to(PACKAGE_DIR.parent)}:{node.lineno}: {node.value!r}")
    assert not bad, "use gradient_pipeline.runtags instead of a literal run-tag name:\n" + "\n".join(bad)

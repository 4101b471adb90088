"""The shape of the code, checked: dependencies point one way, and errors carry their kind.

- core imports no feature; no feature imports another that (directly or through others)
  imports it back: the features form a layered graph (docs/architecture.md, "Shape").
- No view decides what happened by reading an exception's wording: services raise a kind
  (portal.core.errors) and views look at that.
"""

import ast
from collections import defaultdict
from pathlib import Path

PORTAL = Path(__file__).resolve().parent.parent / "portal"
# Not features: the app factory and what it wires (it may import anything), and shared infrastructure.
APP_LEVEL = {"__init__", "cli", "demo", "config", "extensions"}
CORE = {"core", "extensions", "config"}


def _package_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "portal" and len(parts) > 1 else None


def _imports(tree: ast.AST):
    """Imported module names, leaving out ``if TYPE_CHECKING:`` blocks (annotations only)."""
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            skip.update(id(n) for n in ast.walk(node))
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
        elif isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)


def feature_graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = defaultdict(set)
    for path in PORTAL.rglob("*.py"):
        rel = path.relative_to(PORTAL)
        package = rel.parts[0].removesuffix(".py")
        for module in _imports(ast.parse(path.read_text())):
            other = _package_of(module)
            if other and other != package:
                edges[package].add(other)
    return edges


def _cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """A cycle among the features, if there is one (depth-first search)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt in APP_LEVEL or nxt in CORE:
                continue
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if state.get(nxt) is None and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in APP_LEVEL and node not in CORE and state.get(node) is None and (found := visit(node)):
            return found
    return None


def test_core_imports_no_feature():
    edges = feature_graph()
    for package in CORE:
        features = edges.get(package, set()) - CORE
        assert not features, f"portal/{package} imports features {sorted(features)}: core must not"


def test_features_depend_on_each_other_one_way():
    cycle = _cycle(feature_graph())
    assert cycle is None, "features import each other in a circle: " + " -> ".join(cycle)


def test_the_check_finds_a_cycle_when_there_is_one():
    assert _cycle({"a": {"b", "core"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": {"core"}}) is None


def _reads_exception_text(function: ast.AST) -> list[int]:
    """Lines where a view compares an exception's text (``"..." in str(exc)``, ``... in e for e in form.errors``)."""
    caught = {h.name for h in ast.walk(function) if isinstance(h, ast.ExceptHandler) and h.name}
    found = []
    for node in ast.walk(function):
        if not isinstance(node, ast.Compare) or not any(isinstance(op, (ast.In, ast.NotIn, ast.Eq)) for op in node.ops):
            continue
        for side in [node.left, *node.comparators]:
            inner = (
                side.args[0]
                if isinstance(side, ast.Call) and getattr(side.func, "id", None) == "str" and side.args
                else side
            )
            if isinstance(inner, ast.Name) and inner.id in caught:
                found.append(node.lineno)
            if (
                isinstance(inner, ast.Attribute)
                and inner.attr in ("message", "args")
                and isinstance(inner.value, ast.Name)
                and inner.value.id in caught
            ):
                found.append(node.lineno)
    for node in ast.walk(function):  # any("..." in e for e in form.x.errors)
        if isinstance(node, ast.comprehension) and isinstance(node.iter, ast.Attribute) and node.iter.attr == "errors":
            found.append(node.iter.lineno)
    return found


def view_modules() -> list[Path]:
    return [p for p in PORTAL.rglob("*.py") if "Blueprint(" in p.read_text() or p.name.endswith("views.py")]


def test_no_view_reads_an_exceptions_wording():
    offenders = [
        f"{path.relative_to(PORTAL.parent)}:{line}"
        for path in view_modules()
        for line in _reads_exception_text(ast.parse(path.read_text()))
    ]
    assert offenders == [], "decide by the error's kind (portal.core.errors), not its text: " + ", ".join(offenders)


def test_the_wording_check_finds_one():
    bad = ast.parse(
        'try:\n    pass\nexcept E as exc:\n    conflict = "already handled" in str(exc)\n'
        'x = any("Someone else" in e for e in form.target.errors)'
    )
    assert _reads_exception_text(bad) == [4, 5]

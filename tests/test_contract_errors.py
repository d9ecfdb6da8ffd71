"""docs/ARCHITECTURE.md, ``errors.py``: quantlib raises its own exception family
(``QuantlibError`` and its subclasses), never a bare built-in exception such as ValueError.

Checked on the sources: every ``raise`` of a built-in exception class in quantlib/ is one of
- ``AttributeError`` in a module ``__getattr__`` (Python's protocol for a missing attribute);
- ``NotImplementedError`` in a base-class method a subclass must override;
- ``ValueError`` in a pydantic validator (pydantic collects it; ``load_spec`` turns every
  problem into one SpecError with its JSON path);
- listed in :data:`ALLOWED` with its reason.
"""

from __future__ import annotations

import ast
import builtins
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "quantlib"
BUILTIN_ERRORS = {name for name in dir(builtins) if isinstance(getattr(builtins, name), type)
                  and issubclass(getattr(builtins, name), BaseException)}
# (file, function, exception) -> why a built-in exception is right there.
ALLOWED = {
    ("data/perp_data.py", "_check_funding_frame", "OverflowError"):
        "caught by the enclosing try and raised again as a DataError naming the file",
    ("jit.py", "njit", "TypeError"): "a programmer's misuse of the decorator, not bad input",
    ("optimize/storage.py", "make_storage", "AssertionError"): "after a loop that always returns",
}


def _protocol(function: ast.FunctionDef | None, exception: str) -> bool:
    if function is None:
        return False
    if exception == "AttributeError":
        return function.name == "__getattr__"
    if exception == "NotImplementedError":
        return True
    if exception == "ValueError":
        return any(ast.unparse(d).split("(")[0].endswith("validator")
                   for d in function.decorator_list)
    return False


def bare_raises(source: str, rel: str) -> list[str]:
    """``file:line function raises X`` for each raise of a built-in exception not allowed."""
    found = []

    def visit(node: ast.AST, function: ast.FunctionDef | None) -> None:
        for child in ast.iter_child_nodes(node):
            inner = child if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else function
            if isinstance(child, ast.Raise) and child.exc is not None:
                target = child.exc.func if isinstance(child.exc, ast.Call) else child.exc
                name = target.id if isinstance(target, ast.Name) else ""
                where = inner.name if inner else "<module>"
                if (name in BUILTIN_ERRORS and not _protocol(inner, name)
                        and (rel, where, name) not in ALLOWED):
                    found.append(f"{rel}:{child.lineno} {where} raises {name}")
            visit(child, inner)

    visit(ast.parse(source), None)
    return found


def test_quantlib_raises_its_own_errors():
    found = [problem for path in sorted(PACKAGE.rglob("*.py"))
             for problem in bare_raises(path.read_text(), str(path.relative_to(PACKAGE)))]
    assert found == [], "raise a QuantlibError subclass (quantlib/errors.py) instead: " + str(found)


def test_the_allowed_raises_are_still_there():
    for (rel, function, exception), why in ALLOWED.items():
        tree = ast.parse((PACKAGE / rel).read_text())
        raised = {(f.name, (n.exc.func if isinstance(n.exc, ast.Call) else n.exc).id)
                  for f in ast.walk(tree) if isinstance(f, ast.FunctionDef)
                  for n in ast.walk(f) if isinstance(n, ast.Raise) and n.exc is not None
                  and isinstance(n.exc.func if isinstance(n.exc, ast.Call) else n.exc, ast.Name)}
        assert (function, exception) in raised, f"{rel}: {function} no longer raises " \
                                                f"{exception} ({why}): drop it from ALLOWED"


def test_the_check_can_fail():
    source = ("def load(x):\n    raise ValueError('bad')\n"
              "def __getattr__(name):\n    raise AttributeError(name)\n"
              "class M:\n    @field_validator('a')\n    def _a(cls, v):\n        raise ValueError\n"
              "def ok():\n    raise DataError('named')\n")
    assert bare_raises(source, "x.py") == ["x.py:2 load raises ValueError"]


def test_the_architecture_lists_the_whole_family():
    tree = ast.parse((PACKAGE / "errors.py").read_text())
    family = [node.name for node in tree.body if isinstance(node, ast.ClassDef)
              and node.name != "QuantlibError"]
    text = (PACKAGE.parent / "docs" / "ARCHITECTURE.md").read_text()
    entry = text.split("QuantlibError family:", 1)[1].split("Raise", 1)[0]
    listed = [word.strip(" .\n") for word in entry.split(",")]
    assert listed == family

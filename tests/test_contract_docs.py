"""Every rule of docs/ARCHITECTURE.md names the tests that check it, and the lists the docs
write equal the code's (issue #16: "every rule it states is checked by a test").

Checked without importing quantlib (``ast`` on the sources), so it is fast:

- every bullet of ARCHITECTURE.md names its tests, ``[tests/x.py::test_y]`` (or says why no test
  can check it), and every test so named exists (``Class::method`` too);
- the package tree's bare file names sit in their package; the kernels paragraph names every
  kernel and the tree every module of core; the built-in kind modules and the packages that
  load lazily are the code's; README's layout lists every package;
- every ``quantlib CMD SUB --option`` that ARCHITECTURE.md or README.md writes exists on the
  command line (read from the ``cli.py`` modules).

Names, paths and docstrings: tests/test_docs_references.py.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest

from tests.test_docs_references import (
    ARCHITECTURE,
    BARE_FILE,
    PACKAGE,
    README,
    ROOT,
    _parsed,
    module_file,
)

MARKER = re.compile(r"(tests/[\w/]+\.py)::([\w:]+)")


COMMAND = re.compile(r"^\s*(?:\$ )?(?:\.venv/bin/)?quantlib ([a-z][\w-]*)(?: ([a-z][\w-]*))?",
                     flags=re.M)


# A command group written without the program name: `live stop`.
GROUP_COMMAND = re.compile(r"^(data|live|strategy|report) ([a-z][\w-]*)")


def _test_exists(path: Path, name: str) -> bool:
    tree = _parsed(path)
    scope: list[ast.stmt] = tree.body
    *classes, function = name.split("::")
    for cls in classes:
        node = next((n for n in scope if isinstance(n, ast.ClassDef) and n.name == cls), None)
        if node is None:
            return False
        scope = node.body
    return any(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == function
               for n in scope)


def missing_markers(text: str) -> list[str]:
    """Test markers ``tests/x.py::name`` of ``text`` whose file or test function is gone."""
    problems = []
    for file, name in dict.fromkeys(MARKER.findall(text)):
        path = ROOT / file
        if not path.is_file():
            problems.append(f"{file}::{name}: no such file")
        elif not _test_exists(path, name):
            problems.append(f"{file}::{name}: no such test")
    return problems


def tree_block(text: str) -> str:
    """The package tree of ARCHITECTURE.md: the fenced block that starts with ``quantlib/``."""
    for block in re.findall(r"```\n(.*?)```", text, flags=re.S):
        if block.startswith("quantlib/"):
            return block
    raise AssertionError("ARCHITECTURE.md has no package tree (a block starting 'quantlib/')")


def missing_tree_files(block: str) -> list[str]:
    """Bare file names of the package tree that are not in their package's folder (a kernel
    named inside a module's entry may sit in any sub-folder of it)."""
    problems, package = [], None
    for line in block.splitlines()[1:]:
        head = re.match(r"  (\w+)(/|\.py)\s", line)
        if head:
            package = head.group(1) if head.group(2) == "/" else None
        if package is None:
            continue
        for name in BARE_FILE.findall(line):
            if not list((PACKAGE / package).rglob(name)):
                problems.append(f"{package}/{name}: no such file")
    return problems


@cache
def cli_commands() -> dict[str, frozenset[str]]:
    """The command line, read from the sources: top-level command -> its sub-commands (empty
    for a plain command). The modules come from ``quantlib.cli._COMMANDS``; in each, a
    ``X.command("name")`` registers ``name`` on X's group (``add_typer(X, name=...)``) or, for
    the root app, at the top."""
    table = next(n.value for n in _parsed(PACKAGE / "cli.py").body
                 if isinstance(n, ast.AnnAssign) and getattr(n.target, "id", "") == "_COMMANDS")
    modules = {m.value for t in table.values for m in t.elts}
    commands: dict[str, set[str]] = {}
    for module in modules:
        tree = _parsed(module_file(module))
        groups, named = {}, []
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            owner = getattr(node.func.value, "id", "")
            if node.func.attr == "add_typer":
                name = next(k.value.value for k in node.keywords if k.arg == "name")
                groups[node.args[0].id] = name
                commands.setdefault(name, set())
            elif node.func.attr == "command" and node.args:
                named.append((owner, node.args[0].value))
        for owner, name in named:
            if owner in groups:
                commands[groups[owner]].add(name)
            else:
                commands.setdefault(name, set())
    return {name: frozenset(subs) for name, subs in commands.items()}


def command_lines(text: str) -> list[str]:
    """Where a doc writes a command: the lines of its fenced code blocks and its inline code
    spans (prose such as "quantlib is ..." is not a command)."""
    blocks = re.findall(r"```[^\n]*\n(.*?)```", text, flags=re.S)
    outside = re.sub(r"```.*?```", "", text, flags=re.S)
    return blocks + re.findall(r"`([^`\n]+)`", outside)


def unknown_commands(text: str) -> list[str]:
    """``quantlib CMD [SUB]`` in a doc's code that the command line lacks."""
    problems = []
    commands = cli_commands()
    found = [m for line in command_lines(text)
             for m in COMMAND.findall(line) + GROUP_COMMAND.findall(line)]
    for command, sub in dict.fromkeys(found):
        if command not in commands:
            problems.append(f"quantlib {command}: no such command")
        elif sub and commands[command] and sub not in commands[command]:
            problems.append(f"quantlib {command} {sub}: no such sub-command")
    return problems


@cache
def cli_options() -> frozenset[str]:
    """Every option the command line declares: the ``--flags`` written in its ``cli.py``
    modules, and the ones typer derives from the command functions' parameter names."""
    flags = set()
    for path in PACKAGE.rglob("cli.py"):
        for node in ast.walk(_parsed(path)):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                flags |= set(re.findall(r"^--[\w-]+", node.value))
            elif isinstance(node, ast.FunctionDef):
                flags |= {"--" + a.arg.replace("_", "-")
                          for a in node.args.args + node.args.kwonlyargs}
    return frozenset(flags)


def unknown_options(text: str) -> list[str]:
    """``--flags`` on a ``quantlib ...`` command in a doc's code that no command declares."""
    problems = []
    for code in command_lines(text):
        for line in code.replace("\\\n", " ").splitlines():
            command = re.search(r"(?:^|[\s/])quantlib ([a-z].*)", line)
            if command:
                for flag in re.findall(r"(?<![\w-])--[a-z][\w-]*", command.group(1).split("#")[0]):
                    if flag not in cli_options():
                        problems.append(f"{flag}: no command declares it ({line.strip()})")
    return list(dict.fromkeys(problems))


def lazy_packages_stated(text: str) -> list[str]:
    """The packages ARCHITECTURE.md says load their names lazily ("the package `__init__`s of
    data, backtest and report load ... lazily")."""
    sentence = re.search(r"package `__init__`s of ([\w, ]+?) load", text.replace("\n", " "))
    assert sentence, "ARCHITECTURE.md no longer says which packages load their names lazily"
    return sorted(re.split(r",\s*|\s+and\s+", sentence.group(1)))


def unmarked_rules(text: str) -> list[str]:
    """Bullets of ``text`` (outside code blocks) that name no test: each rule is followed by the
    tests that check it, ``[tests/x.py::test_y]``, or says why none can."""
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    bullets = re.findall(r"^- .*?(?=^- |^\n|^#|\Z)", prose, flags=re.M | re.S)
    return [" ".join(b.split())[:80] for b in bullets
            if not MARKER.search(b) and "no test can check it" not in b]


def test_every_rule_names_its_test():
    assert unmarked_rules(ARCHITECTURE.read_text()) == []


def test_every_test_the_architecture_names_exists():
    text = ARCHITECTURE.read_text()
    assert len(MARKER.findall(text)) >= 40, "the rules lost their test markers"
    assert missing_markers(text) == []


def test_every_file_of_the_architecture_tree_is_in_its_package():
    assert missing_tree_files(tree_block(ARCHITECTURE.read_text())) == []


def test_every_kernel_and_core_module_is_named():
    # The kernels paragraph names every kernel, the package tree every module of core.
    text = ARCHITECTURE.read_text()
    kernels = [p.name for p in PACKAGE.rglob("*_nb.py") if p.name not in text]
    core = [p.name for p in (PACKAGE / "core").glob("*.py")
            if p.name != "__init__.py" and p.name not in tree_block(text)]
    assert kernels == [] and core == []


def test_the_lazy_packages_are_the_documented_ones():
    using = sorted(p.parent.name for p in PACKAGE.glob("*/__init__.py")
                   if "lazy_exports(" in p.read_text())
    assert lazy_packages_stated(ARCHITECTURE.read_text()) == using


def test_the_built_in_kind_modules_are_the_documented_ones():
    text = ARCHITECTURE.read_text().replace("\n", " ")
    listed = re.search(r"BUILTIN_KIND_MODULES` \(([^)]*)\)", text)
    assert listed, "ARCHITECTURE.md no longer lists the built-in kind modules"
    documented = ["quantlib." + name for name in re.findall(r"`([\w.]+)`", listed.group(1))]
    table = next(n.value for n in _parsed(PACKAGE / "core" / "registry.py").body
                 if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "")
                 == "BUILTIN_KIND_MODULES")
    assert documented == [element.value for element in table.elts]


def test_the_readme_layout_lists_every_package():
    layout = README.read_text().split("## Layout", 1)[1].split("```")[1]
    listed = re.findall(r"^quantlib/(\w+)", layout, flags=re.M)
    assert listed == [n for n in listed if (PACKAGE / n / "__init__.py").is_file()]
    assert sorted(listed) == sorted(p.parent.name for p in PACKAGE.glob("*/__init__.py"))


@pytest.mark.parametrize("doc", [ARCHITECTURE, README], ids=["ARCHITECTURE.md", "README.md"])
def test_every_command_the_docs_name_exists(doc):
    assert unknown_commands(doc.read_text()) == []


@pytest.mark.parametrize("doc", [ARCHITECTURE, README], ids=["ARCHITECTURE.md", "README.md"])
def test_every_option_the_docs_give_a_command_exists(doc):
    assert unknown_options(doc.read_text()) == []


def test_the_checks_can_fail():
    # Control: each checker on a text with stale references.
    text = ("(tests/test_architecture.py::test_every_built_in_kind_lives_in_core)"
            " (tests/test_architecture.py::test_nothing) (tests/core/test_gone.py::test_x)\n")
    assert missing_markers(text) == [
        "tests/test_architecture.py::test_nothing: no such test",
        "tests/core/test_gone.py::test_x: no such file"]
    assert unknown_commands("`quantlib live run`, `live drift`, `quantlib report`\n"
                            "quantlib is a workbench\n```bash\n"
                            ".venv/bin/quantlib report prune --keep 3\n"
                            "$ quantlib optimise --kind x\n```\n") == [
        "quantlib optimise: no such command", "quantlib live drift: no such sub-command"]
    assert unknown_options("```\nquantlib live run --mode paper \\\n  --feeed exchange  # --nope\n"
                           "HEALTHCHECK --interval=5m CMD quantlib live status --dir x\n```") == [
        "--feeed: no command declares it (quantlib live run --mode paper    --feeed exchange"
        "  # --nope)"]
    assert lazy_packages_stated("the package `__init__`s of data, backtest and\nml load") == [
        "backtest", "data", "ml"]
    assert unmarked_rules("- a rule [tests/x.py::test_y]\n- a rule alone,\n  two lines\n"
                          "- a review rule (no test can check it)\n```\n- code\n```\n") == [
        "- a rule alone, two lines"]
    tree = "quantlib/\n  core/              bars.py (Bars), gone.py\n  jit.py    njit\n"
    assert missing_tree_files(tree) == ["core/gone.py: no such file"]

"""pyproject.toml and environment.yml must declare the same packages with the same lower bounds."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
# PyPI name -> conda-forge name where they differ.
CONDA_NAME = {"psycopg2-binary": "psycopg2"}
_REQ = re.compile(r"^\s*([A-Za-z0-9_.\-]+)\s*(>=\s*([0-9][^,;\s]*))?")


def _parse(requirement: str) -> tuple[str, str | None]:
    match = _REQ.match(requirement)
    assert match, f"cannot parse requirement {requirement!r}"
    return match.group(1).lower(), match.group(3)


def _pyproject_requirements() -> dict[str, str | None]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"]) + list(project["optional-dependencies"]["dev"])
    return {CONDA_NAME.get(name, name): low for name, low in map(_parse, reqs)}


def _conda_requirements() -> dict[str, str | None]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    specs = [d for d in env["dependencies"] if isinstance(d, str)]
    # packages conda-forge lacks come from PyPI through the environment's pip section
    specs += [s for d in env["dependencies"] if isinstance(d, dict) for s in d.get("pip", [])]
    parsed = dict(_parse(s.replace(" ", "")) for s in specs)
    parsed.pop("python"), parsed.pop("pip")
    return parsed


def test_environment_yml_lists_the_same_packages_as_pyproject():
    assert set(_conda_requirements()) == set(_pyproject_requirements())


def test_environment_yml_has_the_same_lower_bounds_as_pyproject():
    conda, pypi = _conda_requirements(), _pyproject_requirements()
    assert {k: conda[k] for k in pypi} == pypi


def test_environment_pins_python_311():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "python=3.11" in env["dependencies"]

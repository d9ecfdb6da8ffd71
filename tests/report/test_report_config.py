"""Report config loading: every mistake is a ReportError naming the file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from quantlib.errors import ReportError
from quantlib.report.config import load_config, missing_notebooks

REPO = Path(__file__).resolve().parents[2]
PLANNED = ["01_data", "02_backtest", "03_regimes", "04_optimize", "05_walk_forward",
           "06_ml_xgboost", "07_grid_trading", "08_promote", "09_multi_timeframe", "10_perps"]


@pytest.fixture
def project(tmp_path, notebook_factory):
    notebook_factory(tmp_path / "a.ipynb", ["x = 1"], "source = 'sample'  # sample[:seed=..], file:PATH\nn = 3\nlookback: int = 10")
    return tmp_path


def _write(project: Path, text: str) -> Path:
    path = project / "reports.yaml"
    path.write_text(text)
    return path


def test_valid_config_resolves_paths_sources_and_sets(project):
    path = _write(project, "defaults: {source: 'sample:seed=2', hide_code: true, timeout: 30}\n"
                           "notebooks:\n  - name: a\n    params: {big: {n: 50}, long: {lookback: 99, source: x}}\n"
                           "  - name: b\n    path: a.ipynb\n    source: 'file:x.csv'\n")
    cfg = load_config(path)
    a, b = cfg.notebooks
    assert (a.path, a.source, a.param_sets) == (project / "a.ipynb", "sample:seed=2",
                                                {"big": {"n": 50}, "long": {"lookback": 99, "source": "x"}})
    assert (b.path, b.source, b.param_sets) == (project / "a.ipynb", "file:x.csv", {"default": {}})
    assert cfg.hide_code is True and cfg.timeout == 30
    assert [j.name for j in cfg.select(["b"])] == ["b"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("notebooks: [{name: g1}, {name: a}, {name: g2, path: sub/x.ipynb}]",
         r"g1, g2: notebook file\(s\) do not exist"),
        ("notebooks: [{name: a, params: {big: {n_trails: 5}}}]",
         r"notebooks\[0\]\.params\.big\.n_trails: not a parameter of a\.ipynb .*source, n, lookback"),
        ("notebooks: [{name: a}, {name: a}]", r"notebooks\[1\]\.name: duplicate notebook name 'a'"),
        ("notebooks: [{name: 'a/../b'}]", r"notebooks\[0\]\.name: expected a file-name-safe string"),
        ("notebooks: [{name: a, params: [1, 2]}]", r"notebooks\[0\]\.params: expected named parameter sets"),
        ("notebooks: [{name: a, params: {big: 3}}]", r"params\.big: expected a mapping"),
        ("notebooks: [{name: a, colour: red}]", r"notebooks\[0\]: unknown key\(s\) \['colour'\]"),
        ("notebooks: {a: 1}", r"notebooks: expected a list"),
        ("defaults: {timeout: -1}\nnotebooks: []", r"defaults\.timeout: expected a positive integer"),
        ("defaults: {colour: red}\nnotebooks: []", r"defaults: expected a mapping with keys among"),
        ("just: text", r"expected a mapping with a 'notebooks' list"),
        ("notebooks: [unclosed", r"invalid YAML"),
    ],
)
def test_bad_config_names_file_and_field(project, text, expected):
    path = _write(project, text)
    with pytest.raises(ReportError, match=expected) as info:
        load_config(path)
    assert str(path) in str(info.value)


def test_missing_file_and_skip_missing(project):
    with pytest.raises(ReportError, match=r"nope\.yaml: report config file does not exist"):
        load_config(project / "nope.yaml")
    path = _write(project, "notebooks: [{name: ghost}, {name: a}]")
    assert [j.name for j in load_config(path, require_notebooks=False).notebooks] == ["a"]
    assert missing_notebooks(path) == ["ghost"]
    cfg = load_config(path, require_notebooks=False)
    assert [j.name for j in cfg.select(["a"])] == ["a"]  # --only a present notebook runs
    with pytest.raises(ReportError, match=r"ghost: notebook file\(s\) do not exist"):
        cfg.select(["ghost", "a"])
    assert [j.name for j in cfg.select(["ghost", "a"], skip_missing=True)] == ["a"]


def test_only_unknown_name(project):
    cfg = load_config(_write(project, "notebooks: [{name: a}]"))
    with pytest.raises(ReportError, match=r"--only zz: no such notebook in the config \(known: a\)"):
        cfg.select(["zz"])


def test_repo_config_lists_every_planned_notebook():
    path = REPO / "notebooks" / "reports.yaml"
    raw = yaml.safe_load(path.read_text())
    assert [entry["name"] for entry in raw["notebooks"]] == PLANNED
    # the notebooks present now must load with their configured parameters
    loaded = load_config(path, require_notebooks=False)
    present = sorted(p.stem for p in (REPO / "notebooks").glob("*.ipynb"))
    assert sorted(j.name for j in loaded.notebooks) == sorted(set(present) & set(PLANNED))
    assert set(present) <= set(PLANNED), "a notebook in notebooks/ is missing from reports.yaml"

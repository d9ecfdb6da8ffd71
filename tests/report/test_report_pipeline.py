"""The papermill report pipeline on tiny throwaway notebooks (see conftest.write_toy_project)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import plotly
import pytest
import typer
from typer.testing import CliRunner

import quantlib
from quantlib.errors import ReportError
from quantlib.report import load_config, run_report
from quantlib.report.cli import register
from quantlib.report.html import render_html
from quantlib.report.pipeline import _plan, check_kernel
from quantlib.report.store import read_manifest


def _entries(run):
    return {(e["notebook"], e["param_set"]): e for e in run.entries}


def _index_rows(index_html: str) -> list[str]:
    return re.findall(r"<tr class='[^']*'>.*?</tr>", index_html, flags=re.S)


def test_statuses_failures_and_parameters(toy_report):
    run, _, _ = toy_report
    entries = _entries(run)
    assert set(entries) == {("plots", "small"), ("plots", "filedata"), ("fails", "default"),
                            ("quick", "default")}
    assert [e["notebook"] for e in run.failures] == ["fails"]
    assert entries["fails", "default"]["error"].startswith("ValueError: boom at n=2")
    assert entries["plots", "small"]["status"] == "ok"
    # config params plus the config's data source, injected by papermill
    assert entries["plots", "small"]["parameters"] == {"n": 4, "source": "sample:bars=100"}
    assert entries["fails", "default"]["parameters"] == {"source": "file:/nonexistent.csv"}
    nb = nbformat.read(str(run.run_dir / "plots.small.ipynb"), as_version=4)
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert "n = 4" in injected[0].source


def test_metrics_read_back_from_recorded_outputs(toy_report):
    run, _, _ = toy_report
    entries = _entries(run)
    # closed forms: sum(1..n) = n(n+1)/2
    assert entries["plots", "small"]["metrics"] == {"n": 4, "square": 16, "total_close": 10.0}
    assert entries["plots", "filedata"]["metrics"] == {"n": 6, "square": 36, "total_close": 21.0}
    assert entries["quick", "default"]["metrics"] == {"n": 5, "cube": 125}
    # metrics recorded before the failing cell still reach the index
    assert entries["fails", "default"]["metrics"] == {"before_error": 2}


def test_data_provenance_and_synthetic_badge(toy_report):
    run, _, out = toy_report
    entries = _entries(run)
    small, filedata = entries["plots", "small"], entries["plots", "filedata"]
    assert small["data"]["symbol"] == "TOY/USD" and small["data"]["n_bars"] == 4
    assert small["data"]["first_bar"].startswith("2024-01-01 00:00:00")
    assert small["synthetic"] is True and filedata["synthetic"] is False
    rows = _index_rows((out / "index.html").read_text())
    assert len(rows) == 4
    by_set = {}
    for row in rows:
        name = re.search(r"<td>(plots|fails|quick)</td><td><b>(\w+)</b>", row)
        by_set[name.group(1), name.group(2)] = row
    assert "SYNTHETIC" in by_set["plots", "small"]
    assert "SYNTHETIC" not in by_set["plots", "filedata"]
    assert "FAILED" in by_set["fails", "default"] and "class='failed'" in by_set["fails", "default"]
    assert "boom at n=2" in by_set["fails", "default"]
    assert "<b>total_close</b>&nbsp;10" in by_set["plots", "small"]
    for row in rows:  # every link in the index points at a file that exists
        for href in re.findall(r"href='([^']+)'", row):
            assert (out / href).is_file(), href


def test_html_is_offline_with_header(toy_report):
    run, _, out = toy_report
    page = (run.run_dir / "plots.small.html").read_text()
    assert not re.search(r"<script[^>]+src=['\"]?https?:", page)
    assert not re.search(r"<link[^>]+href=['\"]?https?:", page)
    assert "require.min.js" not in page and "mathjax" not in page.lower()
    srcs = re.findall(r"<script[^>]+src=[\'\"]([^'\"]+)", page)
    assert srcs == [f"../assets/plotly-{plotly.__version__}.min.js"]
    shared = (run.run_dir / srcs[0]).resolve()
    packaged = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    assert shared.read_bytes() == packaged.read_bytes()
    assert page.count("class=\"plotly-graph-div\"") == 2  # fig.show() and the displayed bar
    manifest = read_manifest(run.run_dir)
    for fact in (run.run_id, quantlib.__version__, manifest["git_commit"], "sample:bars=100",
                 '{"n": 4, "source": "sample:bars=100"}', "TOY/USD"):
        assert fact in page, fact


def test_failed_report_highlights_error_cell_and_hides_code(toy_report):
    run, _, _ = toy_report
    failed = (run.run_dir / "fails.default.html").read_text()
    error_cells = re.findall(r'class="[^"]*celltag_quantlib-error', failed)
    assert len(error_cells) == 1
    assert "FAILING_CELL_TOKEN" in failed  # the error cell keeps its code
    assert "boom at n=2" in failed and "papermill-error-cell" in failed
    assert "record_metrics(" not in failed  # the other cells' code is hidden
    ok_page = (run.run_dir / "plots.small.html").read_text()
    assert "MARKER_CODE_TOKEN" not in ok_page
    assert not re.findall(r'class="[^"]*celltag_quantlib-error', ok_page)
    nb = nbformat.read(str(run.run_dir / "plots.small.ipynb"), as_version=4)
    shown = render_html(nb, {"run_id": "r", "notebook": "plots", "param_set": "small"},
                        plotly_script="", hide_code=False)
    assert "MARKER_CODE_TOKEN" in shown


def test_durations_in_manifest_and_index(toy_report):
    from datetime import datetime

    run, _, out = toy_report
    manifest = read_manifest(run.run_dir)
    wall = (datetime.fromisoformat(manifest["finished_at"])
            - datetime.fromisoformat(manifest["started_at"])).total_seconds()
    rows = _index_rows((out / "index.html").read_text())
    for entry in run.entries:
        # each notebook's own time: positive, and no longer than the whole run
        assert 0 < entry["duration_s"] <= wall
        row = next(r for r in rows if f"<td>{entry['notebook']}</td><td><b>"
                   f"{entry['param_set']}</b>" in r)
        assert f"{entry['duration_s']:.1f} s" in row


def test_run_log_and_manifest(toy_report):
    run, _, _ = toy_report
    log = (run.run_dir / "run.log").read_text()
    for stem in ("plots.small", "plots.filedata", "fails.default", "quick.default"):
        assert f"running {stem}" in log
    assert "fails.default failed" in log and "boom at n=2" in log
    manifest = read_manifest(run.run_dir)
    assert manifest["status"] == "failed" and manifest["finished_at"] >= manifest["started_at"]


def test_plan_data_override_and_fast(toy_report):
    _, config, _ = toy_report
    jobs = load_config(config).notebooks
    plan = {(j.name, s): (p, src) for j, s, p, src in _plan(jobs, None, fast=False)}
    assert plan["plots", "filedata"] == ({"n": 6, "data_kind": "file", "source": "sample:bars=100"},
                                         "sample:bars=100")
    plan = {(j.name, s): (p, src) for j, s, p, src in _plan(jobs, "sample:seed=3", fast=False)}
    assert plan["fails", "default"] == ({"source": "sample:seed=3"}, "sample:seed=3")
    fast = _plan(jobs, None, fast=True)
    assert [(j.name, s, p) for j, s, p, _ in fast] == [
        ("plots", "fast", {}), ("fails", "fast", {}), ("quick", "fast", {})]
    fast = _plan(jobs, "sample:seed=3", fast=True)
    assert all(p == {"source": "sample:seed=3"} for _, _, p, _ in fast)


def _cli(args):
    app = typer.Typer()
    app.command("version")(lambda: None)  # a second command keeps `report` a sub-command
    register(app)
    return CliRunner().invoke(app, ["report", *args])


def test_cli_exits_nonzero_listing_failures_and_fast_uses_defaults(toy_report, tmp_path):
    _, config, _ = toy_report
    result = _cli(["--config", str(config), "--out", str(tmp_path), "--only", "fails"])
    assert result.exit_code == 1
    assert "FAILED: fails/default" in result.output
    result = _cli(["--config", str(config), "--out", str(tmp_path), "--only", "quick", "--fast"])
    assert result.exit_code == 0, result.output
    runs = sorted(p for p in tmp_path.iterdir() if (p / "run.json").exists())
    assert len(runs) == 2
    fast_entry = [read_manifest(r)["entries"][0] for r in runs
                  if read_manifest(r)["fast"]][0]
    assert fast_entry["parameters"] == {} and fast_entry["metrics"] == {"n": 1, "cube": 1}
    result = _cli(["--config", str(config), "--out", str(tmp_path), "--only", "nope"])
    assert result.exit_code == 2 and "nope" in result.output


def test_fixed_run_id_is_idempotent(toy_report, tmp_path):
    _, config, _ = toy_report
    first = run_report(config, out=tmp_path, only=["quick"], run_id="daily")
    ipynb = first.run_dir / "quick.default.ipynb"
    stamp = ipynb.stat().st_mtime_ns
    again = run_report(config, out=tmp_path, only=["quick"], run_id="daily")
    assert again.skipped and ipynb.stat().st_mtime_ns == stamp
    assert [p.name for p in tmp_path.iterdir() if (p / "run.json").exists()] == ["daily"]
    forced = run_report(config, out=tmp_path, only=["quick"], run_id="daily", force=True)
    assert not forced.skipped and ipynb.stat().st_mtime_ns != stamp
    # a failed run id is re-run, not skipped
    run_report(config, out=tmp_path, only=["fails"], run_id="broken")
    assert not run_report(config, out=tmp_path, only=["fails"], run_id="broken").skipped


def test_concurrent_runs_never_clobber(toy_report, tmp_path):
    _, config, _ = toy_report
    script = textwrap.dedent("""
        import sys, typer
        from quantlib.report.cli import register
        app = typer.Typer(); app.command("version")(lambda: None); register(app)
        app(sys.argv[1:])
    """)
    cmd = [sys.executable, "-c", script, "report", "--config", str(config), "--out",
           str(tmp_path), "--only", "quick"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
             for _ in range(2)]
    outputs = [p.communicate(timeout=600)[0].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    runs = [p for p in tmp_path.iterdir() if (p / "run.json").exists()]
    assert len(runs) == 2
    index = (tmp_path / "index.html").read_text()
    for run_dir in runs:
        manifest = read_manifest(run_dir)
        assert manifest["status"] == "ok" and (run_dir / "quick.default.html").is_file()
        assert run_dir.name in index
    assert len(_index_rows(index)) == 2


def test_timeout_still_writes_html(quantlib_kernel, notebook_factory, tmp_path):
    notebook_factory(tmp_path / "slow.ipynb", ["import time\ntime.sleep(30)"], "source = 'sample'")
    (tmp_path / "r.yaml").write_text("defaults: {timeout: 2}\nnotebooks: [{name: slow}]\n")
    run = run_report(tmp_path / "r.yaml", out=tmp_path / "out")
    (entry,) = run.entries
    assert entry["status"] == "failed" and "Timeout" in entry["error"]
    page = (run.run_dir / "slow.default.html").read_text()
    assert "papermill-error-cell" in page and "Run failed" in page


def test_missing_kernel_is_a_clear_error():
    with pytest.raises(ReportError, match="ipykernel install --sys-prefix --name no-such-kern"):
        check_kernel("no-such-kern")


def test_manifest_json_is_valid_for_every_run(toy_report):
    run, _, _ = toy_report
    json.loads((run.run_dir / "run.json").read_text())


def test_source_not_injected_into_a_notebook_without_source_parameter(tmp_path, caplog):
    from quantlib.report.config import NotebookJob

    job = NotebookJob(name="nosrc", path=tmp_path / "x.ipynb", source="sample",
                      param_sets={"default": {"n": 2}}, parameters=("n", "DATA"))
    with caplog.at_level("WARNING", logger="quantlib.report"):
        ((_, _, params, source),) = _plan((job,), "sample:seed=9", fast=False)
    assert params == {"n": 2} and source is None
    assert "nosrc declares no `source` parameter" in caplog.text


def test_parallel_jobs_overlap_and_keep_config_order(quantlib_kernel, notebook_factory, tmp_path):
    # Two notebooks that meet: each marks that it runs, then waits until the other one does.
    # With jobs=2 their kernels run at the same time and both meet; run one after the other,
    # the first would wait in vain and fail at its deadline. The manifest and index still list
    # them in config order.
    meet = tmp_path / "meet"
    meet.mkdir()
    cells = ["import time\nfrom pathlib import Path\nfrom quantlib.report.record import record_metrics",
             f"meet = Path({str(meet)!r})\n(meet / me).touch()\ndeadline = time.monotonic() + 120\n"
             "while not (meet / other).exists():\n"
             "    assert time.monotonic() < deadline, f'{other} never ran while {me} did'\n"
             "    time.sleep(0.05)\n"
             "record_metrics({'met': other, 'n': n})"]
    notebook_factory(tmp_path / "nb" / "slow_a.ipynb", cells,
                     "source = 'sample'\nn = 1\nme = 'a'\nother = 'b'")
    notebook_factory(tmp_path / "nb" / "slow_b.ipynb", cells,
                     "source = 'sample'\nn = 2\nme = 'b'\nother = 'a'")
    config = tmp_path / "nb" / "reports.yaml"
    config.write_text("notebooks:\n  - name: slow_a\n  - name: slow_b\n")
    run = run_report(config, out=tmp_path / "reports", jobs=2)
    assert [e["notebook"] for e in run.entries] == ["slow_a", "slow_b"]
    assert run.failures == [], [e["error"] for e in run.failures]  # both met: they overlapped
    assert [e["metrics"] for e in run.entries] == [{"met": "b", "n": 1}, {"met": "a", "n": 2}]
    with pytest.raises(ReportError, match="--jobs 0"):
        run_report(config, out=tmp_path / "reports", jobs=0)


def test_report_kernels_skip_only_the_iri_grammar(quantlib_kernel, notebook_factory, tmp_path):
    """A report kernel starts with rfc3987_syntax blanked (jsonschema's optional IRI check), and
    jsonschema still validates; a plain papermill kernel imports as usual."""
    import papermill

    cells = ["import sys\nimport jsonschema\nfrom quantlib.report.record import record_metrics",
             "bad = 0\ntry:\n    jsonschema.validate('x', {'type': 'integer'})\n"
             "except jsonschema.ValidationError:\n    bad = 1\n"
             "jsonschema.validate(3, {'type': 'integer'})\n"
             "record_metrics({'n': n, 'blanked': 'rfc3987_syntax' in sys.modules and "
             "sys.modules['rfc3987_syntax'] is None, 'caught': bad})"]
    notebook_factory(tmp_path / "nb" / "probe.ipynb", cells, "source = 'sample'\nn = 1")
    (tmp_path / "nb" / "r.yaml").write_text("notebooks: [{name: probe}]\n")
    run = run_report(tmp_path / "nb" / "r.yaml", out=tmp_path / "out")
    (entry,) = run.entries
    assert entry["status"] == "ok", entry["error"]
    assert entry["metrics"]["blanked"] is True and entry["metrics"]["caught"] == 1
    plain = tmp_path / "plain.ipynb"
    papermill.execute_notebook(str(tmp_path / "nb" / "probe.ipynb"), str(plain),
                               kernel_name=quantlib_kernel, progress_bar=False)
    from quantlib.report.index import read_recorded

    metrics, _ = read_recorded(nbformat.read(str(plain), as_version=4))
    assert metrics["blanked"] is False and metrics["caught"] == 1

"""Open the generated reports in a real headless Chromium: charts render, no JS errors, offline."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.support.ready import WaitTimeout, wait_until

IN_CI = os.environ.get("CI", "").lower() == "true"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
# --enable-unsafe-swiftshader: software WebGL for plotly's *gl traces under --disable-gpu
# (local file:// pages only).
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--window-size=1400,1000", "--enable-unsafe-swiftshader")


@pytest.fixture(scope="module")
def browser():
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        if IN_CI:
            pytest.fail(f"CI=true but Chromium is missing ({CHROMIUM}, {CHROMEDRIVER}); "
                        ".ci/run must install the chromium and chromium-driver packages")
        pytest.skip("headless Chromium not installed (apt-get install chromium chromium-driver)")
    os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium Manager reach the network
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    yield driver
    driver.quit()


def _open(driver, path: Path) -> list[dict]:
    driver.get(path.resolve().as_uri())
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def _chart_svg_counts(driver) -> list[int]:
    from selenium.webdriver.common.by import By

    charts = driver.find_elements(By.CSS_SELECTOR, ".plotly-graph-div")
    return [len(c.find_elements(By.CSS_SELECTOR, "svg.main-svg")) for c in charts]


def _rendered_svg_counts(driver) -> list[int]:
    """SVGs per chart once every chart drew one (plotly may finish after the load event), or
    the counts at the deadline, which then show the charts that did not draw."""
    try:
        return wait_until(lambda: (counts := _chart_svg_counts(driver)) and all(counts) and counts,
                          60, describe="every chart's SVG")
    except WaitTimeout:
        return _chart_svg_counts(driver)


def test_index_and_report_render_in_chromium(browser, toy_report, tmp_path):
    from selenium.webdriver.common.by import By

    run, _, out = toy_report
    assert _open(browser, out / "index.html") == []
    rows = browser.find_elements(By.CSS_SELECTOR, "#runs tbody tr")
    assert len(rows) == len(run.entries)
    browser.save_screenshot(str(tmp_path / "index.png"))

    report_link = browser.find_element(By.XPATH, "//tr[td='plots' and .//b='small']//a[.='report']")
    report_link.click()
    assert browser.current_url.endswith("plots.small.html")
    counts = _rendered_svg_counts(browser)
    severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert severe == []
    assert len(counts) == 2 and all(n > 0 for n in counts), counts
    # interactive: plotly attached its modebar and drew the trace
    assert browser.find_elements(By.CSS_SELECTOR, ".js-plotly-plot .modebar")
    assert browser.find_elements(By.CSS_SELECTOR, ".js-plotly-plot .scatterlayer .trace")
    browser.save_screenshot(str(tmp_path / "report.png"))
    assert (tmp_path / "report.png").stat().st_size > 10_000

    assert _open(browser, run.run_dir / "fails.default.html") == []
    assert browser.find_elements(By.CSS_SELECTOR, ".celltag_quantlib-error")


def test_checks_detect_a_broken_report(browser, toy_report, tmp_path):
    # Control: the same report without its plotly.js beside it must fail both checks above,
    # proving they can fail.
    run, _, _ = toy_report
    lonely = tmp_path / "moved" / "plots.small.html"
    lonely.parent.mkdir()
    shutil.copy(run.run_dir / "plots.small.html", lonely)
    severe = _open(browser, lonely)
    assert severe and any("Plotly" in e["message"] or "plotly" in e["message"] for e in severe)
    assert all(n == 0 for n in _chart_svg_counts(browser))


def test_self_contained_report_renders_alone(browser, toy_report, tmp_path):
    import nbformat

    from quantlib.report.html import plotly_script_tag, render_html

    run, _, out = toy_report
    nb = nbformat.read(str(run.run_dir / "quick.default.ipynb"), as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("fig", outputs=[nbformat.v4.new_output(
        "display_data", data={"application/vnd.plotly.v1+json": {
            "data": [{"type": "bar", "x": ["a", "b"], "y": [1, 3]}], "layout": {}}})]))
    page = tmp_path / "alone.html"
    script = plotly_script_tag(page, out, self_contained=True)
    page.write_text(render_html(nb, {"run_id": "x", "notebook": "quick", "param_set": "d"},
                                plotly_script=script))
    assert _open(browser, page) == []
    counts = _rendered_svg_counts(browser)
    assert len(counts) == 1 and counts[0] > 0


@pytest.fixture(scope="module")
def project_report(quantlib_kernel, tmp_path_factory):
    """A fresh run of the project's own report config, exactly what `make report` runs
    (`quantlib report` on the default data and the config's parameters)."""
    from quantlib.report import run_report

    out = tmp_path_factory.mktemp("project_reports")
    config = Path(__file__).resolve().parents[2] / "notebooks" / "reports.yaml"
    return run_report(config, out=out, jobs=2), out


def test_project_reports_render(browser, project_report, tmp_path):
    """Every notebook of the report config yields an HTML report whose charts all render."""
    import yaml

    run, out = project_report
    config = Path(__file__).resolve().parents[2] / "notebooks" / "reports.yaml"
    planned = {nb["name"] for nb in yaml.safe_load(config.read_text())["notebooks"]}
    assert {e["notebook"] for e in run.entries} == planned
    assert run.failures == [], [f"{e['notebook']}: {e['error']}" for e in run.failures]
    assert _open(browser, out / "index.html") == []
    problems = []
    for entry in run.entries:
        severe = _open(browser, run.run_dir / entry["html"])
        counts = _rendered_svg_counts(browser)
        severe += [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        browser.save_screenshot(str(tmp_path / f"{entry['notebook']}.png"))
        # every notebook shows at least one chart, and every chart drew its SVG
        if severe or not counts or not all(counts):
            problems.append(f"{entry['html']}: JS errors {severe}, SVGs per chart {counts}")
    assert problems == []


# Tearsheet charts each report must show, by notebook (05's stitched out-of-sample equity has
# no trades or positions, so no trade or exposure chart).
_ALL_CHARTS = {"cumulative", "underwater", "drawdowns", "monthly", "yearly", "rolling",
               "distribution", "trades", "exposure"}
TEARSHEET_CHARTS = {
    "02_backtest": _ALL_CHARTS, "04_optimize": _ALL_CHARTS, "06_ml_xgboost": _ALL_CHARTS,
    "07_grid_trading": _ALL_CHARTS,
    "08_promote": _ALL_CHARTS, "05_walk_forward": _ALL_CHARTS - {"trades", "exposure"},
}

# Per plotly chart of the page: its tearsheet name (layout.meta) and whether a trace holds data.
_TEARSHEET_JS = """
return Array.from(document.querySelectorAll('.js-plotly-plot')).map(function (gd) {
  var meta = (gd.layout && gd.layout.meta) || {};
  var filled = (gd.data || []).some(function (t) {
    // numeric arrays reach the page as base64 typed arrays ({dtype, bdata})
    function n(a) { return !a ? 0 : a.length ? a.length : a.bdata ? a.bdata.length : 0; }
    return n(t.x) + n(t.y) + n(t.z) > 0 ||
           (t.cells && t.cells.values && t.cells.values.length && n(t.cells.values[0]) > 0);
  });
  return [meta.tearsheet || null, filled, gd.querySelectorAll('svg.main-svg').length];
});
"""


def test_project_tearsheets_draw_every_chart_with_data(browser, project_report, tmp_path):
    run, _ = project_report
    problems = []
    seen = set()
    for entry in run.entries:
        expected = TEARSHEET_CHARTS.get(entry["notebook"])
        if expected is None:
            continue
        seen.add(entry["notebook"])
        _open(browser, run.run_dir / entry["html"])
        _rendered_svg_counts(browser)  # wait until every chart drew
        charts = browser.execute_script(_TEARSHEET_JS)
        drawn = {name for name, filled, svgs in charts if name and filled and svgs > 0}
        browser.save_screenshot(str(tmp_path / f"tearsheet_{entry['notebook']}.png"))
        if not expected <= drawn:
            problems.append(f"{entry['html']}: missing or empty tearsheet charts "
                            f"{sorted(expected - drawn)} (charts: {charts})")
    assert seen == set(TEARSHEET_CHARTS), seen
    assert problems == []


@pytest.fixture(scope="module")
def long_source_report(quantlib_kernel, tmp_path_factory):
    """A report run whose data is a real CSV under a very long path (a `file:` source)."""
    import textwrap

    from quantlib.report import run_report
    from tests.report.conftest import write_toy_project

    root = tmp_path_factory.mktemp("long")
    deep = root.joinpath(*(["a_rather_long_directory_name_for_market_data"] * 6))
    deep.mkdir(parents=True)
    csv = deep / "binance_btc_usdt_1h_2017_2025_full_history_with_a_long_name.csv"
    rows = ["timestamp,open,high,low,close,volume"] + [
        f"2024-01-01T{h:02d}:00:00Z,{100 + h},{101 + h},{99 + h},{100.5 + h},{10 + h}"
        for h in range(24)]
    csv.write_text("\n".join(rows) + "\n")
    config = write_toy_project(root / "notebooks")
    config.write_text(textwrap.dedent(f"""
        defaults: {{source: "file:{csv}", hide_code: true, timeout: 60}}
        notebooks:
          - name: quick
            params: {{default: {{n: 5}}, other: {{n: 7}}}}
    """))
    run = run_report(config, out=root / "reports")
    return run, root / "reports", f"file:{csv}"


@pytest.mark.parametrize("width", [1000, 1400, 1920])
def test_index_has_no_horizontal_overflow(browser, long_source_report, tmp_path, width):
    from selenium.webdriver.common.by import By

    run, out, source = long_source_report
    assert run.failures == []
    browser.set_window_size(width, 900)
    try:
        assert _open(browser, out / "index.html") == []
        page_width, view_width = browser.execute_script(
            "return [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
        browser.save_screenshot(str(tmp_path / f"index_{width}.png"))
        assert page_width <= view_width, (page_width, view_width)
        cells = browser.find_elements(By.CSS_SELECTOR, "#runs tbody tr td:nth-child(4)")
        assert cells and all(source in c.text.replace("\n", "") for c in cells)
        # the metrics column stays inside the window
        right = browser.execute_script(
            "return Math.max.apply(null, Array.from(document.querySelectorAll("
            "'#runs td:nth-child(8)')).map(function (td) { return td.getBoundingClientRect().right; }))")
        assert right <= view_width
    finally:
        browser.set_window_size(1400, 1000)


def test_index_sorts_and_filters(browser, long_source_report):
    from selenium.webdriver.common.by import By

    _, out, _ = long_source_report
    assert _open(browser, out / "index.html") == []

    def visible_sets() -> list[str]:
        rows = browser.find_elements(By.CSS_SELECTOR, "#runs tbody tr")
        return [r.find_elements(By.TAG_NAME, "td")[2].text.split("\n")[0] for r in rows
                if r.is_displayed()]

    assert sorted(visible_sets()) == ["default", "other"]
    header = browser.find_elements(By.CSS_SELECTOR, "#runs thead th")[2]
    header.click()
    assert visible_sets() == ["default", "other"]
    header.click()
    assert visible_sets() == ["other", "default"]
    browser.find_element(By.ID, "filter-text").send_keys("other")
    assert visible_sets() == ["other"]
    assert browser.find_element(By.ID, "shown").text == "1 shown"

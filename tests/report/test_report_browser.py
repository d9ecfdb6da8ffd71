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

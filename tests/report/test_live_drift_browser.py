"""The drift report in a real headless Chromium: listed under "Live" in the index, its chart
draws (both curves and the gap), the verdict shows, no JS errors, offline."""

from __future__ import annotations

import io

import pytest

from quantlib.data import synthetic_ohlcv
from quantlib.live.brokers import PaperBroker
from quantlib.live.logs import JsonLogger
from quantlib.live.replay_feeds import ReplayFeed
from quantlib.live.runner import LiveRunner
from quantlib.live.state import StateStore
from quantlib.report.live_drift import write_drift_report
from tests.live.conftest import make_spec
from tests.report.test_report_browser import _open, _rendered_svg_counts, browser  # noqa: F401


@pytest.fixture(scope="module")
def drift_page(tmp_path_factory):
    root = tmp_path_factory.mktemp("drift")
    state = root / "paper.db"
    spec = make_spec("ma_cross", {"fast": 3, "slow": 10})
    store = StateStore(state)
    LiveRunner(spec, PaperBroker(store, spec), store,
               ReplayFeed(synthetic_ohlcv(n_bars=200, seed=4).ohlcv),
               logger=JsonLogger(io.StringIO())).run()
    store.close()
    out = root / "reports"
    return write_drift_report(state, out), out


def test_the_drift_report_draws_from_the_index(browser, drift_page, tmp_path):  # noqa: F811
    from selenium.webdriver.common.by import By

    page, out = drift_page
    assert _open(browser, out / "index.html") == []
    live_rows = browser.find_elements(By.CSS_SELECTOR, "#live-runs tbody tr")
    assert len(live_rows) == 1 and "MATCHES" in live_rows[0].text
    live_rows[0].find_element(By.LINK_TEXT, "report").click()
    assert browser.current_url.endswith("live/paper.db.html")
    counts = _rendered_svg_counts(browser)
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []
    assert len(counts) == 1 and counts[0] > 0, counts
    # the chart holds the three traces with data (as plotly decoded them): backtest, live, gap
    traces = browser.execute_script(
        "var d = document.querySelector('.plotly-graph-div')._fullData;"
        "return d.map(function (t) { return [t.name, t.y.length]; });")
    assert [name for name, _ in traces] == ["backtest", "live", "gap (%)"]
    assert all(n == 200 for _, n in traces), traces
    verdict = browser.find_element(By.ID, "quantlib-verdict")
    assert verdict.is_displayed() and verdict.text.startswith("MATCHES")
    browser.save_screenshot(str(tmp_path / "drift.png"))

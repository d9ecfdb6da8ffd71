"""Promotion evidence: in-sample search, out-of-sample test, overfitting statistics, gates.

:func:`gather_evidence` splits the data in time, sweeps the candidate parameters on the
in-sample part (:func:`quantlib.optimize.sweep`, which already carries ``n_trials``, the DSR of
the selected trial and the CSCV PBO of the search), backtests the winner out of sample and runs
the lookahead check. :func:`export_and_promote` turns that evidence into a draft
:class:`~quantlib.strategy.spec.StrategySpec`, evaluates the promotion gates and approves (and
writes) the spec only when every gate passes.

Examples
--------
>>> from quantlib.data import load
>>> from quantlib.strategy.gates import GateConfig
>>> ev = gather_evidence("ma_cross", load("sample:bars=800"),
...                      [{"fast": 5, "slow": 20}, {"fast": 10, "slow": 40}], n_splits=4)
>>> strict_sharpe = GateConfig(min_oos_sharpe=1e9, min_dsr=0.0, max_pbo=1.0, min_trades=0)
>>> spec, results = export_and_promote(ev, "demo", strict_sharpe)
>>> spec.approval.status, [r.name for r in results if not r.passed]
('draft', ['oos_sharpe'])
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from quantlib.backtest import BacktestConfig, BacktestResult, check_lookahead, run_backtest
from quantlib.core.registry import StrategyKind, get_kind
from quantlib.errors import DataError, ParameterError
from quantlib.optimize.stats import OverfittingReport, ReportFigures
from quantlib.optimize.sweep import SweepResult, sweep
from quantlib.strategy.approvals import grant
from quantlib.strategy.gates import GateConfig, GateResult, check_gates, promote
from quantlib.strategy.spec import StrategySpec, export, save_spec


@dataclass
class PromotionEvidence(ReportFigures):
    """What a promotion decision rests on.

    Attributes
    ----------
    kind : strategy kind name.
    data : the full OHLCV frame (in-sample rows, then out-of-sample rows).
    split_index : position of the first out-of-sample bar (``data.iloc[split_index:]``).
    sweep : the in-sample search; carries ``n_trials``, ``dsr`` and ``pbo``.
    in_sample : backtest of the selected parameters on the in-sample rows.
    out_of_sample : backtest of the selected parameters on the out-of-sample rows.
    lookahead_passed : :func:`quantlib.backtest.check_lookahead` of the selected parameters
        on the in-sample rows.
    """

    kind: str
    data: pd.DataFrame
    split_index: int
    sweep: SweepResult
    in_sample: BacktestResult
    out_of_sample: BacktestResult
    lookahead_passed: bool

    @property
    def best_params(self) -> dict[str, Any]:
        """Parameters with the best in-sample objective."""
        return self.sweep.best_params

    @property
    def report(self) -> OverfittingReport:
        """The in-sample search's overfitting report (``n_trials``, ``dsr``, ``pbo`` read it)."""
        return self.sweep.report

    def summary(self) -> pd.Series:
        """Headline figures, one per row, for a notebook to show."""
        return pd.Series({
            "best params": self.best_params,
            "in-sample sharpe": float(self.in_sample.metrics["sharpe"].iloc[0]),
            "out-of-sample sharpe": float(self.out_of_sample.metrics["sharpe"].iloc[0]),
            "out-of-sample trades": self.out_of_sample.metrics["n_trades"].iloc[0],
            "n_trials": self.n_trials, "DSR": self.dsr, "PBO": self.pbo,
            "lookahead passed": self.lookahead_passed,
        })


def _split_index(n_bars: int, split: float, n_splits: int) -> int:
    if not 0.0 < split < 1.0:
        raise ParameterError(f"split: expected the in-sample fraction in (0, 1), got {split}")
    cut = int(n_bars * split)
    if cut < 2 * n_splits:
        raise ParameterError(f"split: {cut} in-sample bars are too few for n_splits={n_splits} "
                             f"CSCV blocks (need >= {2 * n_splits}); raise split or the data")
    if n_bars - cut < 2:
        raise ParameterError(f"split: leaves {n_bars - cut} out-of-sample bar(s) of {n_bars}; "
                             "expected at least 2")
    return cut


def gather_evidence(kind: str | StrategyKind, data: pd.DataFrame,
                    grid: Sequence[Mapping[str, Any]] | Mapping[str, Any] | None = None, *,
                    split: float = 0.7, n_splits: int = 8, objective: str = "sharpe",
                    config: BacktestConfig | None = None) -> PromotionEvidence:
    """Search in-sample, test the winner out of sample, and collect the overfitting evidence.

    Parameters
    ----------
    kind : registered kind (name or object).
    data : canonical OHLCV frame; the first ``split`` fraction of its rows is in-sample.
    grid : candidate parameters: a list of param dicts, a dict of ranges or None (the kind's
        declared space), as for :func:`quantlib.optimize.sweep`.
    split : in-sample fraction of the rows, in (0, 1).
    n_splits : CSCV blocks for the PBO (even, >= 2).
    objective : metric that selects the best trial (and the trial the DSR deflates).
    config : backtest costs and sizing, used for every backtest.

    Returns
    -------
    PromotionEvidence

    Examples
    --------
    >>> from quantlib.data import load
    >>> ev = gather_evidence("ma_cross", load("sample:bars=800"),
    ...                      [{"fast": 5, "slow": 20}, {"fast": 10, "slow": 40}], n_splits=4)
    >>> ev.n_trials, ev.split_index, 0.0 <= ev.pbo <= 1.0
    (2, 560, True)
    """
    if not isinstance(data, pd.DataFrame):
        raise DataError(f"data: expected a canonical OHLCV DataFrame, got {type(data).__name__}")
    kind_name = get_kind(kind).name if isinstance(kind, str) else kind.name
    cut = _split_index(len(data), split, n_splits)
    insample, oos = data.iloc[:cut], data.iloc[cut:]
    search = sweep(kind, insample, grid, config=config, objective=objective,
                   progress=False, n_splits=n_splits)
    best = search.best_params
    return PromotionEvidence(
        kind=kind_name, data=data, split_index=cut, sweep=search,
        in_sample=run_backtest(kind, insample, best, config),
        out_of_sample=run_backtest(kind, oos, best, config),
        lookahead_passed=bool(check_lookahead(kind, insample, best).passed),
    )


def _probability_or_none(value: float) -> float | None:
    # A one-trial search has no PBO (NaN); the spec stores "not measured", which fails its gate.
    return float(value) if value is not None and math.isfinite(value) else None


def export_and_promote(evidence: PromotionEvidence, name: str, gates: GateConfig | None = None,
                       out_dir: str | Path | None = None, *, by: str = "quantlib",
                       symbols: list[str] | None = None, exchange: str | None = None,
                       notebook: str | None = None,
                       notebook_params: Mapping[str, Any] | None = None,
                       ledger: str | Path | None = None,
                       ) -> tuple[StrategySpec, list[GateResult]]:
    """Export the evidence as a draft spec, check the gates, approve only if all pass.

    Parameters
    ----------
    evidence : from :func:`gather_evidence`.
    name : spec name (also the file name ``<name>.json``).
    gates : gate thresholds (default :class:`~quantlib.strategy.gates.GateConfig`).
    out_dir : where an approved spec is written; None writes nothing. A draft is never written.
    by : approver recorded in the spec.
    symbols, exchange : market of the spec (default: the data's ``attrs``).
    notebook, notebook_params : provenance of the evidence.
    ledger : approvals ledger (:mod:`quantlib.strategy.approvals`) to record an approval in.
        Live trading needs that record; without it the spec says ``approved`` but
        ``quantlib live run --mode live`` refuses it until ``quantlib strategy promote``
        (which re-derives the evidence) records it.

    The evidence's ``in_sample`` metrics carry ``n_bars``, the in-sample row count, so that
    promote can rerun both samples on the same data.

    Returns
    -------
    (spec, gate_results) : the spec is ``approved`` iff every gate result passed, else ``draft``.

    Examples
    --------
    >>> from quantlib.data import load
    >>> ev = gather_evidence("ma_cross", load("sample:bars=800"),
    ...                      [{"fast": 5, "slow": 20}, {"fast": 10, "slow": 40}], n_splits=4)
    >>> lax = GateConfig(min_oos_sharpe=-1e9, min_dsr=0.0, max_pbo=1.0, min_trades=0)
    >>> export_and_promote(ev, "demo", lax)[0].approval.status
    'approved'
    """
    gates = gates or GateConfig()
    spec = export(name, result=evidence.in_sample, kind=evidence.kind,
                  params=evidence.best_params, data=evidence.data,
                  oos_metrics=evidence.out_of_sample.metrics, exchange=exchange, symbols=symbols,
                  n_trials=evidence.n_trials, dsr=_probability_or_none(evidence.dsr),
                  pbo=_probability_or_none(evidence.pbo),
                  lookahead_passed=evidence.lookahead_passed, notebook=notebook,
                  notebook_params=notebook_params)
    # Where the split fell: the evidence is then re-derivable from the data alone.
    spec = spec.model_copy(update={"evidence": spec.evidence.model_copy(update={
        "in_sample": {**spec.evidence.in_sample, "n_bars": float(evidence.split_index)}})})
    results = check_gates(spec, gates)
    if all(r.passed for r in results):
        spec = promote(spec, gates, by=by, out_dir=None)
        if ledger is not None:
            target = Path(out_dir) / f"{name}.json" if out_dir is not None else None
            grant(ledger, spec, gates=results, thresholds=gates.__dict__, approver=by,
                  spec_file=target)
        if out_dir is not None:
            save_spec(spec, Path(out_dir) / f"{spec.name}.json")
    return spec, results


__all__ = ["PromotionEvidence", "gather_evidence", "export_and_promote"]

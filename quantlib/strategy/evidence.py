"""Re-derive a spec's in-sample evidence before promoting it.

A spec's evidence is numbers typed into JSON; promote trusts no number it can recompute. When
the spec's provenance names data available here without a network (a ``file:`` source whose
file exists, or a ``sample`` source, which is generated) and that data's SHA-256
(:func:`~quantlib.strategy.spec.sha256_frame`) equals ``provenance.data_sha256``, the in-sample
backtest is run again: the spec's kind, params and costs (:meth:`StrategySpec.backtest_config`)
on the first ``evidence.in_sample["n_bars"]`` rows (all rows when the evidence does not say),
and every in-sample metric the evidence states must equal the rerun's within
``rel=1e-6, abs=1e-9`` (``None`` in the evidence stands for a metric that is not finite).
When ``n_bars`` is stated, the remaining rows are the out-of-sample test
(:func:`quantlib.optimize.gather_evidence`'s split) and its metrics are checked the same way.
The same code on the same data gives the same numbers to the last bit; the tolerance only
absorbs a different BLAS or numba version.

Exchange sources are not fetched (promote must not wait on the network); such evidence, or
evidence whose data changed, is reported as not re-derived rather than refused. A perp spec
(``market: "perp"``) is rerun with :func:`~quantlib.backtest.perp.run_perp_backtest` on its
candles, mark and funding when they are the generated sample and match
``provenance.perp``'s hashes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from quantlib.errors import QuantlibError, SpecError
from quantlib.strategy.spec import sha256_frame

REL_TOL = 1e-6
ABS_TOL = 1e-9
# evidence keys that describe the sample rather than a metric to recompute
_NOT_METRICS = frozenset({"n_bars"})


@dataclass
class EvidenceCheck:
    """Outcome of :func:`check_in_sample`: ``rederived`` says whether the backtest was rerun;
    ``note`` why not; ``compared`` the metrics checked (name -> (stated, rerun))."""

    rederived: bool
    note: str = ""
    compared: dict[str, tuple[float | None, float]] = field(default_factory=dict)


def _local_frame(source: str, base_dir: Path | None) -> Any | None:
    """The provenance data when it can be had without a network, else None."""
    from quantlib.data import load
    from quantlib.data.sources import parse_source

    parsed = parse_source(source)
    if parsed.kind == "file":
        path = Path(parsed.path)
        if not path.is_absolute() and base_dir is not None and not path.exists():
            path = base_dir / path
        return load(f"file:{path}") if path.exists() else None
    if parsed.kind == "sample":
        return load(source)
    return None


def _same(stated: float | None, rerun: float) -> bool:
    if stated is None:
        return not math.isfinite(rerun)
    if not math.isfinite(rerun):
        return False
    return math.isclose(stated, rerun, rel_tol=REL_TOL, abs_tol=ABS_TOL)


def check_in_sample(spec: Any, base_dir: str | Path | None = None) -> EvidenceCheck:
    """Rerun the in-sample backtest when its data is here; raise SpecError on a mismatch.

    Raises
    ------
    SpecError
        Naming each in-sample metric whose stated value differs from the rerun.
    """
    prov, stated = spec.provenance, spec.evidence.in_sample
    if not prov.data_source or not prov.data_sha256:
        return EvidenceCheck(False, "provenance names no data source with a SHA-256")
    if not any(k not in _NOT_METRICS for k in stated):
        return EvidenceCheck(False, "the evidence states no in-sample metrics")

    perp = None
    try:
        if spec.market == "perp":  # candles, mark and funding; only the sample is offline
            perp = _local_perp(spec)
            frame = perp.ohlcv if perp is not None else None
        else:
            frame = _local_frame(prov.data_source, Path(base_dir) if base_dir else None)
    except QuantlibError as exc:
        return EvidenceCheck(False, f"data {prov.data_source!r} not loadable here ({exc})")
    if frame is None:
        return EvidenceCheck(False, f"data {prov.data_source!r} is not available locally")
    if sha256_frame(frame) != prov.data_sha256:
        return EvidenceCheck(False, f"data {prov.data_source!r} here has another SHA-256 "
                                    "than the evidence's")
    n_bars = stated.get("n_bars")
    samples = [("in_sample", frame, stated)]
    if n_bars is not None:
        if not float(n_bars).is_integer() or not 2 <= n_bars < len(frame):
            raise SpecError(f"spec {spec.name!r}: $.evidence.in_sample.n_bars = {n_bars} does "
                            f"not fit the {len(frame)} rows of {prov.data_source!r}")
        # the out-of-sample rows are the rest (quantlib.optimize.promotion's split)
        samples = [("in_sample", frame.iloc[: int(n_bars)], stated),
                   ("out_of_sample", frame.iloc[int(n_bars):], spec.evidence.out_of_sample)]
    compared, wrong = {}, []
    for label, rows, claimed in samples:
        for name, (value, rerun) in _compare(spec, rows, claimed, perp).items():
            compared[f"{label}.{name}"] = (value, rerun)
            if not _same(value, rerun):
                wrong.append(f"  - $.evidence.{label}.{name}: stated {value!r}, rerun {rerun!r}")
    if wrong:
        raise SpecError(f"spec {spec.name!r} refused: its evidence does not match a rerun of "
                        f"the backtest on {prov.data_source!r} (same SHA-256; tolerance rel "
                        f"{REL_TOL:g}, abs {ABS_TOL:g}):\n" + "\n".join(wrong))
    return EvidenceCheck(True, f"evidence re-derived on {prov.data_source!r}", compared)


def _local_perp(spec: Any) -> Any | None:
    """A perp spec's candles, mark and funding when generated here (a ``sample`` source) and
    the mark and funding are the ones its provenance records; else None."""
    from quantlib.data.perp import load_perp
    from quantlib.data.sources import parse_source

    prov = spec.provenance
    if parse_source(prov.data_source).kind != "sample" or prov.perp is None:
        return None
    perp = load_perp(prov.data_source)
    if (sha256_frame(perp.mark) != prov.perp.mark_sha256
            or sha256_frame(perp.funding) != prov.perp.funding_sha256):
        return None
    return perp


def _compare(spec: Any, rows: Any, claimed: dict[str, float | None], perp: Any = None
             ) -> dict[str, tuple[float | None, float]]:
    """(stated, rerun) for every metric ``claimed`` states that the backtest computes (a perp
    spec: :func:`~quantlib.backtest.perp.run_perp_backtest` with its mark and funding)."""
    if perp is not None:
        from quantlib.backtest.perp import run_perp_backtest

        result = run_perp_backtest(spec.kind, rows, spec.params, spec.perp_config(),
                                   funding=perp.funding, mark=perp.mark.loc[rows.index])
    else:
        from quantlib.backtest.engine import run_backtest

        result = run_backtest(spec.kind, rows, spec.params, spec.backtest_config())
    metrics = result.metrics.iloc[0]
    return {name: (value, float(metrics[name])) for name, value in sorted(claimed.items())
            if name not in _NOT_METRICS and name in metrics.index}


__all__ = ["EvidenceCheck", "check_in_sample", "REL_TOL", "ABS_TOL"]

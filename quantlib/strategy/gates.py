"""Promotion gates: a draft spec becomes ``approved`` only when its evidence passes every gate.

Gates (thresholds configurable through :class:`GateConfig`): minimum out-of-sample Sharpe, minimum
deflated Sharpe ratio (DSR, a probability), maximum probability of backtest overfitting (PBO),
minimum number of trades, lookahead check passed, and every artifact's SHA-256 matching its file.
A refusal lists each failed gate with the measured value.

Examples
--------
>>> from quantlib.strategy.spec import StrategySpec
>>> spec = StrategySpec(name="d", kind="ma_cross", symbols=["BTC/USD"],
...     evidence={"out_of_sample": {"sharpe": 1.5}, "dsr": 0.97, "pbo": 0.1, "n_trades": 80,
...               "lookahead_passed": True})
>>> [g.name for g in check_gates(spec) if not g.passed]
[]
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from quantlib.core.model_files import sha256_file
from quantlib.errors import SpecError
from quantlib.strategy.spec import StrategySpec, save_spec


@dataclass(frozen=True)
class GateConfig:
    """Thresholds of the promotion gates."""

    min_oos_sharpe: float = 1.0
    min_dsr: float = 0.95
    max_pbo: float = 0.5
    min_trades: int = 30
    require_lookahead: bool = True
    sharpe_key: str = "sharpe"


@dataclass(frozen=True)
class GateResult:
    name: str
    passed: bool
    measured: object
    threshold: str

    def __str__(self) -> str:
        mark = "PASS" if self.passed else "FAIL"
        return f"[{mark}] {self.name}: measured {self.measured!r}, required {self.threshold}"


def check_gates(spec: StrategySpec, config: GateConfig | None = None,
                base_dir: str | Path | None = None) -> list[GateResult]:
    """Evaluate every gate on ``spec``'s evidence and artifacts (missing evidence fails)."""
    cfg = config or GateConfig()
    ev = spec.evidence
    sharpe = ev.out_of_sample.get(cfg.sharpe_key)
    n_trades = ev.n_trades if ev.n_trades is not None else ev.out_of_sample.get("n_trades")
    results = [
        GateResult("oos_sharpe", sharpe is not None and sharpe >= cfg.min_oos_sharpe, sharpe,
                   f">= {cfg.min_oos_sharpe}"),
        GateResult("dsr", ev.dsr is not None and ev.dsr >= cfg.min_dsr, ev.dsr,
                   f">= {cfg.min_dsr}"),
        GateResult("pbo", ev.pbo is not None and ev.pbo <= cfg.max_pbo, ev.pbo,
                   f"<= {cfg.max_pbo}"),
        GateResult("min_trades", n_trades is not None and n_trades >= cfg.min_trades, n_trades,
                   f">= {cfg.min_trades}"),
    ]
    if cfg.require_lookahead:
        results.append(GateResult("lookahead", ev.lookahead_passed is True, ev.lookahead_passed,
                                  "True"))
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    for art in spec.artifacts:
        path = Path(art.path) if Path(art.path).is_absolute() else base / art.path
        measured = sha256_file(path) if path.exists() else "missing file"
        results.append(GateResult(f"artifact:{art.path}", measured == art.sha256, measured,
                                  f"== {art.sha256}"))
    return results


def promote(spec: StrategySpec, config: GateConfig | None = None, *, by: str = "quantlib",
            out_dir: str | Path | None = "strategies", base_dir: str | Path | None = None
            ) -> StrategySpec:
    """Approve ``spec`` if every gate passes (and write it to ``out_dir/<name>.json``).

    Raises
    ------
    SpecError
        Listing each failed gate with its measured value; nothing is written.
    """
    results = check_gates(spec, config, base_dir)
    failed = [r for r in results if not r.passed]
    if failed:
        lines = "\n".join(f"  - {r}" for r in failed)
        raise SpecError(f"spec {spec.name!r} refused: {len(failed)} gate(s) failed:\n{lines}")
    approved = spec.model_copy(update={"approval": spec.approval.model_copy(update={
        "status": "approved", "by": by, "at": datetime.now(UTC),
        "gates_passed": [r.name for r in results]})})
    approved = StrategySpec.model_validate(approved.model_dump(mode="json"))
    if out_dir is not None:
        save_spec(approved, Path(out_dir) / f"{spec.name}.json")
    return approved


__all__ = ["GateConfig", "GateResult", "check_gates", "promote"]

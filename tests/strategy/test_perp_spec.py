"""Perp strategy specs: the ``market``/``perp`` fields, hostile values, export of perp results
and ``quantlib backtest --strategy`` on a perp spec."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math

import pytest
from typer.testing import CliRunner

from quantlib.backtest.perp import PerpConfig, run_perp_backtest
from quantlib.core.costs import PERP_FIELDS
from quantlib.data.perp import load_perp
from quantlib.errors import ParameterError, SpecError
from quantlib.strategy.spec import (
    PERP_CONFIG_TO_SPEC,
    StrategySpec,
    dump_spec,
    export,
    load_spec,
    save_spec,
)

PERP = {"name": "carry", "kind": "funding_carry", "params": {"threshold": 0.0001},
        "market": "perp", "exchange": "binanceusdm", "symbols": ["BTC/USDT:USDT"],
        "execution": {"fees": 0.0005, "direction": "both"},
        "perp": {"leverage": 10, "maint_margin_rate": 0.004, "liquidation_fee": 0.01}}


def _problems(data: dict) -> str:
    with pytest.raises(SpecError) as info:
        load_spec(data)
    return str(info.value)


def test_round_trip_and_defaults_written_out():
    spec = load_spec(PERP)
    assert load_spec(dump_spec(spec)) == spec
    assert spec.perp.leverage == 10 and spec.perp.margin_mode == "isolated"
    # a perp spec without a $.perp block trades the block's defaults, which the dump shows
    bare = load_spec({k: v for k, v in PERP.items() if k != "perp"})
    written = json.loads(dump_spec(bare))
    assert written["market"] == "perp"
    assert written["perp"] == {"leverage": 1.0, "margin_mode": "isolated",
                               "maint_margin_rate": 0.005, "liquidation_fee": 0.0125}


def _v2_spot_text() -> str:
    """A version-2 spot spec as it was written before perps existed, field by field in the
    order of the v2 models (hand-written here, not dumped by the code under test)."""
    data = {
        "schema_version": 2, "name": "ma_demo", "kind": "ma_cross",
        "params": {"fast": 5, "slow": 20}, "exchange": "kraken", "symbols": ["BTC/USD"],
        "timeframe": "1h",
        "execution": {"fees": 0.001, "slippage_bps": 5.0, "order_type": "market",
                      "execution": "next_open", "direction": "longonly",
                      "stop_on_exchange": False},
        "risk": {"init_cash": 10000.0, "order_size": 1.0, "size_type": "percent",
                 "max_position": 1.0, "max_daily_loss": None, "max_drawdown": None,
                 "flatten_on_halt": False, "sl_stop": None, "tp_stop": None,
                 "trail_stop": None},
        "provenance": {"data_source": "", "start": None, "end": None, "data_sha256": None,
                       "git_commit": None, "notebook": None, "notebook_params": {},
                       "created_at": None, "informative": {}},
        "evidence": {"in_sample": {}, "out_of_sample": {}, "n_trials": 1, "dsr": None,
                     "pbo": None, "n_trades": None, "lookahead_passed": None},
        "approval": {"status": "draft", "by": None, "at": None, "gates_passed": []},
        "artifacts": [],
    }
    return json.dumps(data, indent=2) + "\n"


def test_old_v2_spot_spec_loads_as_spot_and_keeps_its_hash():
    # no schema bump: a v2 spec without $.market is a spot spec, and it dumps to the same bytes,
    # so approvals and live state files of existing specs keep their hashes
    text = _v2_spot_text()
    spec = load_spec(text)
    assert spec.market == "spot" and spec.perp is None
    assert dump_spec(spec) == text
    assert spec.spec_hash() == hashlib.sha256(text.encode()).hexdigest()


@pytest.mark.parametrize(("change", "path", "words"), [
    ({"perp": {"leverage": 0}}, "$.perp.leverage", "greater than or equal to 1"),
    ({"perp": {"leverage": 1000}}, "$.perp.leverage", "less than or equal to 125"),
    ({"perp": {"leverage": math.nan}}, "$.perp.leverage", "NaN"),
    ({"perp": {"leverage": math.inf}}, "$.perp.leverage", "Infinity"),
    ({"perp": {"leverage": True}}, "$.perp.leverage", ""),
    ({"perp": {"leverage": "5x"}}, "$.perp.leverage", ""),
    ({"perp": {"margin_mode": "cross"}}, "$.perp.margin_mode", "isolated"),
    ({"perp": {"maint_margin_rate": -0.01}}, "$.perp.maint_margin_rate", ""),
    ({"perp": {"leverage": 100, "maint_margin_rate": 0.01}}, "$.perp.maint_margin_rate",
     "must be < 1"),
    ({"perp": {"liquidation_fee": 1.5}}, "$.perp.liquidation_fee", ""),
    ({"perp": {"oops": 1}}, "$.perp.oops", "unknown field"),
    ({"market": "futures"}, "$.market", ""),
    ({"symbols": ["BTC/USDT"]}, "$.symbols[0]", "spot symbol but $.market is 'perp'"),
    ({"symbols": ["BTC/USDT:USDT", "ETH/USDT:USDT"]}, "$.symbols", "one swap"),
    ({"symbols": ["btc-perp"]}, "$.symbols", "BASE/QUOTE:SETTLE"),
    ({"market": "spot"}, "$.symbols[0]", "perpetual-swap symbol but $.market is 'spot'"),
    ({"market": "spot", "symbols": ["BTC/USD"]}, "$.perp", "spot spec"),
    ({"risk": {"sl_stop": 0.05}}, "$.risk.sl_stop", "no sl/tp/trailing exits"),
    ({"execution": {"order_type": "limit"}}, "$.execution.order_type", "market orders"),
    ({"execution": {"stop_on_exchange": True}}, "$.execution.stop_on_exchange", "no exits"),
])
def test_hostile_values_name_the_field(change, path, words):
    message = _problems({**PERP, **change})
    assert f"  - {path}:" in message, message
    assert words in message


def test_perp_config_is_the_spec_fields():
    spec = load_spec({**PERP, "risk": {"init_cash": 5000, "order_size": 0.4},
                      "execution": {"fees": 0.0004, "slippage_bps": 3, "direction": "shortonly"},
                      "timeframe": "4h"})
    assert spec.perp_config() == PerpConfig(
        init_cash=5000, leverage=10, maint_margin_rate=0.004, liquidation_fee=0.01, fees=0.0004,
        slippage_bps=3, size=0.4, direction="shortonly", timeframe="4h")
    with pytest.raises(SpecError, match="perp_config.. is for perp specs"):
        StrategySpec(name="s", kind="ma_cross", symbols=["BTC/USD"]).perp_config()
    with pytest.raises(SpecError, match="never as spot"):
        spec.backtest_config()


@pytest.mark.parametrize("name", sorted(PERP_FIELDS))
def test_perp_bounds_are_one_definition(name):
    # PerpConfig and the spec accept and refuse the same values of every perp field
    field = PERP_FIELDS[name]
    others = {"leverage": 1.0, "maint_margin_rate": 0.0, "liquidation_fee": 0.0}
    # (a maintenance rate of 1 is inside its bounds but refused by the rule mmr x leverage < 1)
    for value, ok in ((field.low, not field.low_open),
                      (field.high, name != "maint_margin_rate"),
                      (field.high * 1.01 + 0.01, False), (field.low - 0.01, False)):
        values = {**others, name: value}
        try:
            PerpConfig(**values)
            config_ok = True
        except ParameterError:
            config_ok = False
        try:
            load_spec({**PERP, "perp": values})
            spec_ok = True
        except SpecError:
            spec_ok = False
        assert config_ok == spec_ok == ok, (name, value)


# -- export -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def perp():
    return load_perp("sample:bars=400,seed=3")


def _non_default_config() -> PerpConfig:
    return PerpConfig(init_cash=2500.0, leverage=7.0, maint_margin_rate=0.02,
                      liquidation_fee=0.004, fees=0.0007, slippage_bps=3.0, size=0.6,
                      size_type="percent", year_days=360.0, timeframe="1h",
                      direction="longonly")


def test_every_perp_config_field_has_a_place():
    assert set(PERP_CONFIG_TO_SPEC) == {f.name for f in dataclasses.fields(PerpConfig)}
    defaults = PerpConfig()
    changed = _non_default_config()
    # the test's config differs from the default in every field that changes fills
    for f in dataclasses.fields(PerpConfig):
        if PERP_CONFIG_TO_SPEC[f.name] is not None and f.name not in ("margin_mode", "size_type"):
            assert getattr(changed, f.name) != getattr(defaults, f.name), f.name


def test_export_carries_every_perp_config_field(perp):
    config = _non_default_config()
    res = run_perp_backtest("ma_cross", perp.ohlcv, {"fast": 5, "slow": 20}, config,
                            funding=perp.funding, mark=perp.mark)
    spec = export("perp_demo", result=res, data=perp, symbols=["BTC/USDT:USDT"])
    assert spec.market == "perp" and spec.exchange != "kraken"
    # everything but year_days (annualisation only) comes back
    assert spec.perp_config() == dataclasses.replace(config, year_days=365.0)
    assert spec.provenance.data_source == "sample:bars=400,seed=3"
    assert spec.provenance.perp.n_funding == len(perp.funding)
    assert spec.provenance.perp.funding_interval == "8h"
    assert load_spec(dump_spec(spec)) == spec


def test_export_records_the_mark_and_funding(perp):
    res = run_perp_backtest("ma_cross", perp.ohlcv, {"fast": 5, "slow": 20}, PerpConfig(),
                            funding=perp.funding, mark=perp.mark)
    first = export("a", result=res, data=perp, symbols=["BTC/USDT:USDT"]).provenance
    funding = perp.funding.copy()
    funding.iloc[5, 0] += 1e-6
    mark = perp.mark.copy()
    mark.iloc[7, 0] += 1.0
    other_funding = export("b", result=res, data=dataclasses.replace(perp, funding=funding),
                           symbols=["BTC/USDT:USDT"]).provenance
    other_mark = export("c", result=res, data=dataclasses.replace(perp, mark=mark),
                        symbols=["BTC/USDT:USDT"]).provenance
    assert other_funding.perp.funding_sha256 != first.perp.funding_sha256
    assert other_funding.perp.mark_sha256 == first.perp.mark_sha256
    assert other_mark.perp.mark_sha256 != first.perp.mark_sha256
    assert other_mark.data_sha256 == first.data_sha256


def test_export_refuses_what_it_cannot_carry(perp):
    res = run_perp_backtest("ma_cross", perp.ohlcv, {"fast": 5, "slow": 20}, PerpConfig(),
                            funding=perp.funding, mark=perp.mark)
    with pytest.raises(SpecError, match="data=PerpData"):
        export("x", result=res, data=perp.ohlcv, symbols=["BTC/USDT:USDT"])
    # a PerpConfig field export does not know is refused by name, never dropped
    newer = dataclasses.make_dataclass("PerpConfig", [("hedge_mode", bool, True)],
                                       bases=(PerpConfig,), frozen=True)
    with pytest.raises(SpecError, match=r"PerpConfig\.hedge_mode = True has no place"):
        export("x", result=res, config=newer(), data=perp, symbols=["BTC/USDT:USDT"])
    # the synthetic market names a spot pair: a perp spec needs the swap named
    with pytest.raises(SpecError, match=r"\$.symbols\[0\].*spot symbol"):
        export("x", result=res, data=perp)


# -- quantlib backtest --strategy -------------------------------------------------------------

def _cli(args):
    from quantlib.cli import app

    out = CliRunner().invoke(app, args)
    assert out.exit_code == 0, out.output
    return json.loads(out.output)


@pytest.mark.parametrize("source", ["sample:bars=400,seed=3", None])
def test_backtest_cli_runs_the_perp_backtest(tmp_path, source):
    spec = load_spec({**PERP, "kind": "ma_cross", "params": {"fast": 5, "slow": 20}})
    path = save_spec(spec, tmp_path / "perp.json")
    printed = _cli(["backtest", "--strategy", str(path)] + (["--data", source] if source else []))
    data = load_perp(source or "sample")  # no --data, no recorded source: the offline sample
    config = PerpConfig(leverage=10, maint_margin_rate=0.004, liquidation_fee=0.01, fees=0.0005,
                        direction="both")
    res = run_perp_backtest("ma_cross", data.ohlcv, {"fast": 5, "slow": 20}, config,
                            funding=data.funding, mark=data.mark)
    row = res.metrics.iloc[0]
    assert set(printed) == set(row.index)
    for key in ("total_return", "sharpe", "funding_net", "n_liquidations", "n_trades"):
        assert float(printed[key]) == pytest.approx(float(row[key]), rel=1e-12), key
    assert printed["funding_net"] != 0


def test_promote_rederives_perp_evidence_with_the_perp_backtest(perp):
    # a perp spec's in-sample evidence is rerun on its candles, mark and funding (a spot
    # rerun would refuse every honest perp spec, or pass a wrong one)
    from quantlib.strategy.evidence import check_in_sample

    res = run_perp_backtest("ma_cross", perp.ohlcv, {"fast": 5, "slow": 20},
                            PerpConfig(leverage=8), funding=perp.funding, mark=perp.mark)
    spec = export("ev", result=res, data=perp, symbols=["BTC/USDT:USDT"])
    check = check_in_sample(spec)
    assert check.rederived, check.note
    assert check.compared["in_sample.funding_net"][1] == pytest.approx(
        float(res.metrics["funding_net"].iloc[0]), rel=1e-12)
    stated = dict(spec.evidence.in_sample, total_return=spec.evidence.in_sample["total_return"]
                  + 0.01)
    tampered = spec.model_copy(update={"evidence": spec.evidence.model_copy(
        update={"in_sample": stated})})
    with pytest.raises(SpecError, match=r"\$.evidence.in_sample.total_return"):
        check_in_sample(tampered)
    # other funding than recorded: not re-derived (never compared on the wrong data)
    other = spec.model_copy(update={"provenance": spec.provenance.model_copy(update={
        "perp": spec.provenance.perp.model_copy(update={"funding_sha256": "0" * 64})})})
    assert not check_in_sample(other).rederived

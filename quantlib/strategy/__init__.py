"""JSON strategy specs (the contract between research and the trading process), the
approvals ledger and promotion gates. The kinds a spec names live in :mod:`quantlib.core`.

Examples
--------
>>> from quantlib.strategy import StrategySpec, load_spec, dump_spec
>>> spec = StrategySpec(name="demo", kind="ma_cross", params={"fast": 5, "slow": 20},
...                     symbols=["BTC/USD"])
>>> load_spec(dump_spec(spec)) == spec
True
"""

from quantlib.strategy.gates import GateConfig, GateResult, check_gates, promote
from quantlib.strategy.spec import StrategySpec, dump_spec, export, load_spec, save_spec

__all__ = [
    "GateConfig", "GateResult", "StrategySpec", "check_gates", "dump_spec", "export", "load_spec",
    "promote", "save_spec",
]

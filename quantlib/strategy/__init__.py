"""Strategy kinds (registry of causal signal functions), JSON strategy specs and promotion gates.

Examples
--------
>>> from quantlib.strategy import StrategySpec, get_kind, load_spec, dump_spec
>>> get_kind("ma_cross").validate({"fast": 5, "slow": 20})
{'fast': 5, 'slow': 20}
>>> spec = StrategySpec(name="demo", kind="ma_cross", params={"fast": 5, "slow": 20},
...                     symbols=["BTC/USD"])
>>> load_spec(dump_spec(spec)) == spec
True
"""

from quantlib.strategy.gates import GateConfig, GateResult, check_gates, promote
from quantlib.strategy.registry import Param, StrategyKind, get_kind, list_kinds, register
from quantlib.strategy.spec import StrategySpec, dump_spec, export, load_spec, save_spec

__all__ = [
    "GateConfig", "GateResult", "Param", "StrategyKind", "StrategySpec", "check_gates",
    "dump_spec", "export", "get_kind", "list_kinds", "load_spec", "promote", "register",
    "save_spec",
]

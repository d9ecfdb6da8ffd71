"""Strategy kinds (registry of causal signal functions) and JSON strategy specs."""

from quantlib.strategy.registry import Param, StrategyKind, get_kind, list_kinds, register

__all__ = ["Param", "StrategyKind", "register", "get_kind", "list_kinds"]

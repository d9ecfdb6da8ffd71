"""The ground floor: everything the trading process and the research layers share, on numpy alone.

- :mod:`~quantlib.core.bars` (``Bars``: OHLCV as numpy arrays), :mod:`~quantlib.core.registry`
  (the kind contract: ``Param``, ``StrategyKind``, ``register``, ``get_kind``, ``list_kinds``),
  :mod:`~quantlib.core.informative` (other timeframes/markets aligned to the base bars: the
  closed-bar rule);
- the built-in kinds: :mod:`~quantlib.core.kinds` (signal kinds), :mod:`~quantlib.core.trend`
  (``htf_trend``), :mod:`~quantlib.core.perp_kinds`, :mod:`~quantlib.core.grid_kind` (the grid
  kind and its one-bar stepping, over the grid engine :mod:`~quantlib.core.grid_nb`),
  :mod:`~quantlib.core.regime_kinds` and :mod:`~quantlib.core.regime_cross` (regime filters, on
  :mod:`~quantlib.core.regime_features` and :mod:`~quantlib.core.regime_filtering`),
  :mod:`~quantlib.core.xgb_kind` (``xgb_classifier``, on :mod:`~quantlib.core.ml_features`,
  :mod:`~quantlib.core.model_files` and :mod:`~quantlib.core.trees`);
- kernels: :mod:`~quantlib.core.indicators_nb` (THE indicator maths: means, deviations, EMA,
  RSI, true range), :mod:`~quantlib.core.order_rule_nb` (the signal order rule),
  :mod:`~quantlib.core.grid_nb`, :mod:`~quantlib.core.regime_filter_nb`,
  :mod:`~quantlib.core.ml_features_nb`, :mod:`~quantlib.core.trees_nb`;
- :mod:`~quantlib.core.config` (``BacktestConfig``) and :mod:`~quantlib.core.costs` (the one
  definition of the cost and sizing fields), :mod:`~quantlib.core.timeframes`,
  :mod:`~quantlib.core.endpoints` (exchange URL overrides).

Modules here import the standard library, numpy, :mod:`quantlib.errors`, :mod:`quantlib.jit`
and each other only (``tests/test_architecture.py``). This ``__init__`` loads the registry
alone: kernels are imported by the modules that use them, after the trading process has chosen
its kernels (:func:`quantlib.jit.use_aot`).

Examples
--------
>>> from quantlib.core import get_kind
>>> get_kind("ma_cross").validate({"fast": 5, "slow": 20})
{'fast': 5, 'slow': 20}
"""

from quantlib.core.registry import Param, StrategyKind, get_kind, list_kinds, register

__all__ = ["Param", "StrategyKind", "get_kind", "list_kinds", "register"]

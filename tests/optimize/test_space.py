"""Search spaces: grids, random samples and CLI range strings against hand-listed values."""

from __future__ import annotations

import numpy as np
import optuna
import pytest

from quantlib.core.registry import Param, StrategyKind
from quantlib.errors import ParameterError
from quantlib.optimize.space import SearchSpace, parse_ranges, product_grid


def _fast_lt_slow(p):
    return None if p["fast"] < p["slow"] else "fast must be < slow"


DEMO = StrategyKind(
    "demo_opt_space",
    params=(Param("fast", int, 5, low=2, high=10, step=4),
            Param("slow", int, 8, low=4, high=12, step=4),
            Param("mode", str, "sma", choices=("sma", "ema")),
            Param("scale", float, 1.0, low=0.5, high=1.5),
            Param("tag", str, "x")),
    signal=lambda df, p: np.zeros(len(df)),
    constraints=(_fast_lt_slow,),
)


def test_declared_grid_respects_steps_choices_and_constraints():
    space = SearchSpace.from_kind(DEMO)
    assert space.names == ["fast", "slow", "mode", "scale"]  # 'tag' has no range: held fixed
    combos = space.grid()
    # fast in {2, 6, 10}, slow in {4, 8, 12}; fast < slow leaves (2,4) (2,8) (2,12) (6,8) (6,12)
    # (10,12) = 6 pairs; x 2 modes x 10 default scale levels = 120.
    assert space.grid_size() == 3 * 3 * 2 * 10
    assert len(combos) == 6 * 2 * 10
    pairs = sorted({(c["fast"], c["slow"]) for c in combos})
    assert pairs == [(2, 4), (2, 8), (2, 12), (6, 8), (6, 12), (10, 12)]
    assert all(c["tag"] == "x" for c in combos)
    scales = sorted({c["scale"] for c in combos})
    assert scales == pytest.approx(list(np.linspace(0.5, 1.5, 10)))


def test_overrides_fixed_and_only_ranges_searched():
    space = SearchSpace.from_kind(DEMO, {"fast": [2, 3], "slow": (5, 9, 2)}, fixed={"mode": "ema"})
    combos = space.grid()
    assert [(c["fast"], c["slow"]) for c in combos] == [(2, 5), (2, 7), (2, 9), (3, 5), (3, 7),
                                                        (3, 9)]
    assert {c["mode"] for c in combos} == {"ema"} and {c["scale"] for c in combos} == {1.0}


def test_random_sample_is_seeded_valid_and_in_range():
    space = SearchSpace.from_kind(DEMO, {"fast": (2, 10), "slow": (3, 12), "scale": (0.5, 1.5)})
    a, b = space.sample(50, seed=7), space.sample(50, seed=7)
    assert a == b and a != space.sample(50, seed=8)
    assert all(c["fast"] < c["slow"] and 0.5 <= c["scale"] <= 1.5 for c in a)
    assert len({c["fast"] for c in a}) > 3


def test_optuna_suggest_uses_declared_ranges():
    space = SearchSpace.from_kind(DEMO, {"fast": (2, 10, 4), "scale": {"low": 0.5, "high": 1.5,
                                                                        "log": True}})
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = []
    for _ in range(20):
        trial = study.ask()
        params = space.suggest(trial)
        if params is not None:
            seen.append(params)
        study.tell(trial, 0.0)
    assert {p["fast"] for p in seen} <= {2, 6}  # 10 violates fast < slow=8
    assert all(0.5 <= p["scale"] <= 1.5 for p in seen)
    dist = study.trials[0].distributions
    assert dist["scale"].log and dist["fast"].step == 4


def test_parse_ranges_and_errors():
    assert parse_ranges("fast=5:50:5, slow=20:200, mode=sma|ema, k=2.5") == {
        "fast": (5, 50, 5), "slow": (20, 200), "mode": ["sma", "ema"], "k": [2.5]}
    with pytest.raises(ParameterError, match="name=low:high"):
        parse_ranges("fast")
    with pytest.raises(ParameterError, match="unknown parameter.*'nope'"):
        SearchSpace.from_kind(DEMO, {"nope": [1]})
    with pytest.raises(ParameterError, match="'slow'.*low <= high"):
        SearchSpace.from_kind(DEMO, {"slow": (9, 3)})
    with pytest.raises(ParameterError, match="no combination"):
        SearchSpace.from_kind(DEMO, {"fast": [9], "slow": [4]}).grid()


def test_product_grid_lists_every_combination_first_name_slowest():
    got = product_grid({"a": [1, 2], "b": ("x", "y", "z")})
    # written out by hand: the first name changes slowest
    assert got == [{"a": 1, "b": "x"}, {"a": 1, "b": "y"}, {"a": 1, "b": "z"},
                   {"a": 2, "b": "x"}, {"a": 2, "b": "y"}, {"a": 2, "b": "z"}]
    assert product_grid({}) == [{}]


@pytest.mark.parametrize("grid, named", [({"fast": 5}, "fast"), ({"mode": "abc"}, "mode"),
                                         ({"slow": []}, "slow")])
def test_product_grid_refuses_a_value_that_is_not_a_list_by_name(grid, named):
    with pytest.raises(ParameterError, match=f"grid parameter '{named}'"):
        product_grid(grid)

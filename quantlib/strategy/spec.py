"""JSON strategy specs: what a notebook approves and what ``quantlib.live`` trades.

A :class:`StrategySpec` names a registered *kind* and its parameters (a spec never carries code),
the market, execution and risk settings, where it came from (provenance), the evidence that
justified it and its approval state. :func:`load_spec` checks everything at once and raises ONE
:class:`~quantlib.errors.SpecError` listing every problem with its JSON path.

Examples
--------
>>> spec = StrategySpec(name="ma_demo", kind="ma_cross", params={"fast": 5, "slow": 20},
...                     exchange="kraken", symbols=["BTC/USD"], timeframe="1h")
>>> load_spec(dump_spec(spec)) == spec
True
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import stat
import subprocess
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)

from quantlib.core.bars import Bars
from quantlib.core.config import BacktestConfig
from quantlib.core.costs import FIELDS as COST_FIELDS
from quantlib.core.costs import PERP_FIELDS
from quantlib.core.informative import align
from quantlib.core.model_files import sha256_file
from quantlib.core.registry import get_kind
from quantlib.errors import ParameterError, SpecError

SCHEMA_VERSION = 2
# What each schema version added, for the message that refuses an older spec.
_VERSION_CHANGES = {
    2: "version 2 added the exits $.risk.sl_stop, $.risk.tp_stop, $.risk.trail_stop and "
       "$.execution.stop_on_exchange, and export now carries every fill setting of the "
       "backtest (a version-1 spec may have lost its backtest's stops)",
}
SCHEMA_PATH = Path(__file__).with_name("schema") / "strategy_spec.schema.json"
_SHA256 = r"^[0-9a-f]{64}$"
_TIMEFRAME = r"^[1-9][0-9]*[smhdw]$"
# ccxt's unified symbols: a spot pair, and a linear swap with its settle currency
_SPOT_SYMBOL = re.compile(r"^[A-Z0-9]+/[A-Z0-9]+$")
_PERP_SYMBOL = re.compile(r"^[A-Z0-9]+/[A-Z0-9]+:[A-Z0-9]+$")


MAX_SPEC_BYTES = 4 * 1024 * 1024  # a spec is a few KB; anything past this is not a spec


class _Model(BaseModel):
    # Unknown fields are errors: a typo in a risk limit must never be silently ignored. NaN and
    # Infinity are refused in every float field: an infinite cash balance validated once, then
    # broke the live state forever.
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


def _bounds(name: str) -> dict[str, Any]:
    """Bounds and description of a cost or sizing field: the one definition in
    :mod:`quantlib.core.costs`, which ``BacktestConfig`` checks with too."""
    field = COST_FIELDS[name]
    return {**field.pydantic_bounds(), "description": field.description()}


def _perp_bounds(name: str) -> dict[str, Any]:
    """Bounds and description of a perp account field (:data:`quantlib.core.costs.PERP_FIELDS`,
    which ``PerpConfig`` checks with too)."""
    field = PERP_FIELDS[name]
    # strict: a bool or a numeric string is no leverage (PerpConfig refuses them too)
    return {**field.pydantic_bounds(), "description": field.description(), "strict": True}


class ExecutionSpec(_Model):
    """How orders are priced: the backtest's cost model, which paper trading reproduces."""

    fees: float = Field(0.001, **_bounds("fees"))
    slippage_bps: float = Field(0.0, **_bounds("slippage_bps"))
    order_type: Literal["market", "limit"] = "market"
    execution: Literal["next_open"] = "next_open"
    direction: Literal["longonly", "shortonly", "both"] = "longonly"
    stop_on_exchange: bool = Field(
        False, description="live mode: rest the stop-loss and take-profit at the exchange from "
        "the close of the entry's bar (the sibling is cancelled when one fills); required for "
        "live exits, which would otherwise fill at a different price than the backtest's")


class RiskSpec(_Model):
    """Sizing and the limits that halt trading."""

    init_cash: float = Field(10_000.0, **_bounds("init_cash"))
    order_size: float = Field(1.0, **_bounds("size"))
    size_type: Literal["percent", "value"] = "percent"
    max_position: float = Field(1.0, gt=0.0, le=1.0,
                                description="cap on |target position|, fraction of a full target")
    max_daily_loss: float | None = Field(None, gt=0.0, le=1.0,
                                         description="halt when equity falls this fraction in a UTC day")
    max_drawdown: float | None = Field(None, gt=0.0, le=1.0,
                                       description="halt when equity falls this fraction from its peak")
    flatten_on_halt: bool = False
    sl_stop: float | None = Field(None, **_bounds("sl_stop"))
    tp_stop: float | None = Field(None, **_bounds("tp_stop"))
    trail_stop: float | None = Field(None, **_bounds("trail_stop"))

    @model_validator(mode="after")
    def _one_stop_loss(self) -> RiskSpec:
        # the backtest has one stop-loss slot: a fixed or a trailing one
        if self.sl_stop is not None and self.trail_stop is not None:
            raise ValueError("sl_stop and trail_stop cannot both be set (one stop-loss, fixed "
                             "or trailing); choose one")
        return self

    @property
    def has_exits(self) -> bool:
        """Whether any stop is set."""
        return any(v is not None for v in (self.sl_stop, self.tp_stop, self.trail_stop))

    @property
    def signal_size(self) -> float:
        """The size of a signal order: ``order_size``, capped at ``max_position`` when it is a
        fraction of cash (percent sizing)."""
        if self.size_type == "percent":
            return min(self.order_size, self.max_position)
        return self.order_size


class PerpSpec(_Model):
    """The perpetual-swap account of a ``market: "perp"`` spec (isolated margin; the rule is
    ``quantlib/live/brokers/perp_rule_nb.py``). Fees, slippage, cash and sizing are the
    ``$.execution`` and ``$.risk`` fields, as for spot; ``$.execution.fees`` is the taker fee
    (every signal order is a market order at the next open)."""

    leverage: float = Field(1.0, **_perp_bounds("leverage"))
    margin_mode: Literal["isolated"] = "isolated"
    maint_margin_rate: float = Field(0.005, **_perp_bounds("maint_margin_rate"))
    liquidation_fee: float = Field(0.0125, **_perp_bounds("liquidation_fee"))

    @model_validator(mode="after")
    def _opens_above_maintenance(self) -> PerpSpec:
        if self.maint_margin_rate * self.leverage >= 1:
            raise ValueError(f"$.perp.maint_margin_rate: {self.maint_margin_rate} x leverage "
                             f"{self.leverage} must be < 1, else a position is liquidated as "
                             "it opens")
        return self


class ProvenancePerpSpec(_Model):
    """The companion series of a perp backtest's data (the candles are ``data_sha256``)."""

    mark_sha256: str | None = Field(None, pattern=_SHA256)
    funding_sha256: str | None = Field(None, pattern=_SHA256)
    funding_interval: str | None = None
    n_funding: int | None = Field(None, ge=0)


class InformativeSpec(_Model):
    """The data of one informative input (another timeframe or symbol the kind reads)."""

    symbol: str | None = None
    timeframe: str | None = None
    data_source: str = ""
    data_sha256: str | None = Field(None, pattern=_SHA256)


class ProvenanceSpec(_Model):
    """Where the evidence came from, so anyone can rebuild it."""

    data_source: str = ""
    start: datetime | None = None
    end: datetime | None = None
    data_sha256: str | None = Field(None, pattern=_SHA256)
    git_commit: str | None = None
    notebook: str | None = None
    notebook_params: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime | None = None
    informative: dict[str, InformativeSpec] = Field(default_factory=dict)
    perp: ProvenancePerpSpec | None = None

    @model_serializer(mode="wrap")
    def _without_empty_perp(self, handler: Any) -> Any:
        # specs of spot backtests dump (and hash) exactly as before perps existed
        data = handler(self)
        if isinstance(data, dict) and data.get("perp") is None:
            data.pop("perp", None)
        return data


class EvidenceSpec(_Model):
    """Backtest evidence the promotion gates judge."""

    in_sample: dict[str, float | None] = Field(default_factory=dict)
    out_of_sample: dict[str, float | None] = Field(default_factory=dict)
    n_trials: int = Field(1, ge=1)
    dsr: float | None = Field(None, ge=0.0, le=1.0)
    pbo: float | None = Field(None, ge=0.0, le=1.0)
    n_trades: int | None = Field(None, ge=0)
    lookahead_passed: bool | None = None


class ApprovalSpec(_Model):
    status: Literal["draft", "approved", "retired"] = "draft"
    by: str | None = None
    at: datetime | None = None
    gates_passed: list[str] = Field(default_factory=list)


class ArtifactSpec(_Model):
    path: str = Field(min_length=1)
    sha256: str = Field(pattern=_SHA256)


class StrategySpec(_Model):
    """A complete, declarative strategy: kind + params + market + costs + risk + evidence."""

    schema_version: Literal[2] = SCHEMA_VERSION
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    kind: str = Field(min_length=1)
    params: dict[str, Any] = Field(default_factory=dict)
    exchange: str = Field("kraken", pattern=r"^[a-z0-9]+$")
    market: Literal["spot", "perp"] = Field(
        "spot", description="spot: symbols BASE/QUOTE; perp: one linear perpetual swap "
        "BASE/QUOTE:SETTLE on isolated margin, set up by $.perp")
    perp: PerpSpec | None = Field(None, description="the perp account (market 'perp' only)")
    symbols: list[str] = Field(min_length=1)
    timeframe: str = Field("1h", pattern=_TIMEFRAME)
    execution: ExecutionSpec = Field(default_factory=ExecutionSpec)
    risk: RiskSpec = Field(default_factory=RiskSpec)
    provenance: ProvenanceSpec = Field(default_factory=ProvenanceSpec)
    evidence: EvidenceSpec = Field(default_factory=EvidenceSpec)
    approval: ApprovalSpec = Field(default_factory=ApprovalSpec)
    artifacts: list[ArtifactSpec] = Field(default_factory=list)

    @field_validator("symbols")
    @classmethod
    def _symbols_look_like_pairs(cls, symbols: list[str]) -> list[str]:
        for s in symbols:
            if not (_SPOT_SYMBOL.match(s) or _PERP_SYMBOL.match(s)):
                raise ValueError(f"symbol {s!r} must look like 'BASE/QUOTE', e.g. 'BTC/USD' "
                                 "(spot), or 'BASE/QUOTE:SETTLE', e.g. 'BTC/USDT:USDT' (perp)")
        return symbols

    @model_validator(mode="before")
    @classmethod
    def _perp_defaults(cls, data: Any) -> Any:
        # a perp spec without a $.perp block trades the block's defaults, written out
        if isinstance(data, Mapping) and data.get("market") == "perp" and data.get("perp") is None:
            data = {**data, "perp": {}}
        return data

    @model_validator(mode="after")
    def _market_fits(self) -> StrategySpec:
        # a spot symbol on a perp spec (or the reverse) would trade another instrument than
        # the backtest's; each problem names its JSON path (validate_spec lists them as such)
        perp = self.market == "perp"
        for i, symbol in enumerate(self.symbols):
            if perp and not _PERP_SYMBOL.match(symbol):
                raise ValueError(f"$.symbols[{i}]: {symbol!r} is a spot symbol but $.market is "
                                 "'perp'; name the swap with its settle currency, e.g. "
                                 "'BTC/USDT:USDT'")
            if not perp and not _SPOT_SYMBOL.match(symbol):
                raise ValueError(f"$.symbols[{i}]: {symbol!r} is a perpetual-swap symbol but "
                                 "$.market is 'spot'; set $.market to 'perp' to trade it")
        if not perp and self.perp is not None:
            raise ValueError("$.perp: a perp account block on a spot spec; set $.market to "
                             "'perp' or remove $.perp")
        if perp:
            if len(self.symbols) > 1:
                raise ValueError(f"$.symbols: a perp spec trades one swap, got "
                                 f"{len(self.symbols)} symbols")
            for name in ("sl_stop", "tp_stop", "trail_stop"):
                if getattr(self.risk, name) is not None:
                    raise ValueError(f"$.risk.{name}: the perp backtest applies no "
                                     "sl/tp/trailing exits (liquidation is its only exit), so "
                                     "a perp spec cannot promise them")
            if self.execution.order_type != "market":
                raise ValueError("$.execution.order_type: a perp spec sends market orders at "
                                 "the next open (the backtest charges the taker fee); got "
                                 f"{self.execution.order_type!r}")
            if self.execution.stop_on_exchange:
                raise ValueError("$.execution.stop_on_exchange: a perp spec has no exits to "
                                 "rest at the exchange")
        return self

    @model_serializer(mode="wrap")
    def _spot_as_before(self, handler: Any) -> Any:
        # A spot spec dumps (and hashes) exactly as it did before perps existed: approvals and
        # live state files of existing specs keep their hashes.
        data = handler(self)
        if isinstance(data, dict) and data.get("market") == "spot":
            data.pop("market", None)
            data.pop("perp", None)
        return data

    @property
    def symbol(self) -> str:
        """The first (trading) symbol."""
        return self.symbols[0]

    def backtest_config(self) -> Any:
        """The :class:`~quantlib.core.config.BacktestConfig` this spec trades with: its
        cash, costs, sizing and direction (what paper trading reproduces). A perp spec has no
        spot config (SpecError): its twin is :meth:`perp_config`."""
        if self.market != "spot":
            raise SpecError(f"spec {self.name!r}: $.market is {self.market!r}; a perp spec "
                            "backtests with perp_config() (run_perp_backtest), never as spot")

        return BacktestConfig(init_cash=self.risk.init_cash, fees=self.execution.fees,
                              slippage_bps=self.execution.slippage_bps,
                              size=self.risk.signal_size, size_type=self.risk.size_type,
                              direction=self.execution.direction, sl_stop=self.risk.sl_stop,
                              tp_stop=self.risk.tp_stop, trail_stop=self.risk.trail_stop)

    def perp_config(self) -> Any:
        """The :class:`~quantlib.backtest.perp.PerpConfig` a perp spec trades with (the perp
        twin of :meth:`backtest_config`; SpecError for a spot spec)."""
        from quantlib.backtest.perp import PerpConfig

        if self.market != "perp" or self.perp is None:
            raise SpecError(f"spec {self.name!r}: $.market is {self.market!r}; perp_config() is "
                            "for perp specs (use backtest_config())")
        return PerpConfig(init_cash=self.risk.init_cash, leverage=self.perp.leverage,
                          margin_mode=self.perp.margin_mode,
                          maint_margin_rate=self.perp.maint_margin_rate,
                          liquidation_fee=self.perp.liquidation_fee, fees=self.execution.fees,
                          slippage_bps=self.execution.slippage_bps, size=self.risk.signal_size,
                          size_type=self.risk.size_type, direction=self.execution.direction,
                          timeframe=self.timeframe)

    def spec_hash(self) -> str:
        """SHA-256 of the canonical JSON; ties live state to the exact spec it runs."""
        return hashlib.sha256(dump_spec(self).encode()).hexdigest()


def _loc(parts: tuple) -> str:
    path = "$"
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _param_problems(kind_name: Any, params: Any) -> list[str]:
    """Every problem with ``kind``/``params``, each prefixed by its JSON path."""
    if not isinstance(kind_name, str) or not kind_name:
        return []  # pydantic already reports the type problem
    try:
        kind = get_kind(kind_name)
    except ParameterError as exc:
        return [f"$.kind: {exc}"]
    if not isinstance(params, Mapping):
        return []
    problems = []
    declared = {p.name: p for p in kind.params}
    for name in sorted(set(params) - set(declared)):
        problems.append(f"$.params.{name}: unknown parameter of kind {kind_name!r}; "
                        f"declared: {sorted(declared)}")
    checked = {}
    for name, param in declared.items():
        try:
            checked[name] = param.check(params.get(name, param.default), kind_name)
        except ParameterError as exc:
            problems.append(f"$.params.{name}: {exc}")
    if not problems:
        for constraint in kind.constraints:
            problem = constraint(checked)
            if problem:
                problems.append(f"$.params: {problem}")
    return problems


def validate_spec(data: Mapping[str, Any] | StrategySpec, *, source: str = "spec") -> StrategySpec:
    """Validate a spec dict; raise one :class:`SpecError` listing every problem with its path.

    Examples
    --------
    >>> try:
    ...     validate_spec({"name": "x", "kind": "nope", "symbols": ["BTC/USD"], "risk": {"oops": 1}})
    ... except SpecError as exc:
    ...     print("$.risk.oops" in str(exc), "$.kind" in str(exc))
    True True
    """
    if isinstance(data, StrategySpec):
        data = data.model_dump(mode="json")
    if not isinstance(data, Mapping):
        raise SpecError(f"{source}: expected a JSON object at $, got {type(data).__name__}")
    _check_version(data.get("schema_version", SCHEMA_VERSION), source)
    problems = _non_finite_problems(data)
    spec = None
    try:
        spec = StrategySpec.model_validate(dict(data))
    except ValidationError as exc:
        problems.extend(_pydantic_problems(exc))
    except RecursionError:
        raise SpecError(f"{source}: the strategy spec is nested too deeply") from None
    problems.extend(_param_problems(data.get("kind"), data.get("params", {})))
    problems = _one_per_path(problems)
    if problems:
        lines = "\n".join(f"  - {p}" for p in problems)
        raise SpecError(f"{source}: {len(problems)} problem(s) in strategy spec:\n{lines}")
    assert spec is not None
    return spec


def _check_version(version: Any, source: str) -> None:
    """Refuse a spec written for an older schema with what changed and how to re-export it."""
    if isinstance(version, bool) or not isinstance(version, int) or version >= SCHEMA_VERSION:
        return  # a newer or malformed version is reported by the model with its path
    changes = "; ".join(_VERSION_CHANGES[v] for v in range(version + 1, SCHEMA_VERSION + 1)
                        if v in _VERSION_CHANGES)
    raise SpecError(
        f"{source}: $.schema_version is {version}, this quantlib reads version {SCHEMA_VERSION} "
        f"({changes}). Re-export the spec from its backtest with quantlib.strategy.spec.export"
        "(name, result=...) (or set $.schema_version to "
        f"{SCHEMA_VERSION} after checking that its backtest used no stops) and approve it again"
    )


# pydantic's wording for these speaks of "input strings" even when the input was a number.
_PYDANTIC_MESSAGES = {
    "extra_forbidden": "unknown field",
    "int_parsing_size": "expected an integer of at most 19 digits",
    "finite_number": "expected a finite number (NaN and Infinity are not allowed)",
}


def _pydantic_problems(exc: ValidationError) -> list[str]:
    problems = []
    for err in exc.errors():
        error = (err.get("ctx") or {}).get("error")
        if err["type"] == "value_error" and str(error).startswith("$"):
            problems.append(str(error))  # a cross-field check that names its own path
            continue
        msg = _PYDANTIC_MESSAGES.get(err["type"], err["msg"])
        problems.append(f"{_loc(err['loc'])}: {msg} (got {_short(err.get('input'))})")
    return problems


def _non_finite_problems(data: Mapping[str, Any]) -> list[str]:
    """``$.path: ...`` for every NaN/Infinity anywhere in ``data``, free-form parts included.

    Python's ``json`` reads ``NaN``, ``Infinity`` and ``1e999`` as floats; JSON itself has no
    such numbers, so a spec holding one is refused wherever it sits (params, notebook_params,
    evidence). Walked with an explicit stack: a deeply nested spec must not overflow Python's.
    """
    problems = []
    stack: list[tuple[tuple, Any]] = [((), data)]
    while stack:
        where, value = stack.pop()
        if isinstance(value, float) and not math.isfinite(value):
            written = "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
            problems.append(f"{_loc(where)}: expected a finite number, got {written} "
                            "(JSON has no NaN or Infinity)")
        elif isinstance(value, Mapping):
            stack.extend((where + (str(key),), item) for key, item in value.items())
        elif isinstance(value, list | tuple):
            stack.extend((where + (i,), item) for i, item in enumerate(value))
    return sorted(problems)


def _one_per_path(problems: list[str]) -> list[str]:
    # A non-finite number also trips the model's or the kind's own check at the same path; the
    # first (clearest) message for a path is enough.
    seen, out = set(), []
    for problem in problems:
        path = problem.split(": ", 1)[0]
        if path not in seen:
            seen.add(path)
            out.append(problem)
    return out


def _short(value: Any) -> str:
    try:
        text = repr(value)
    except (ValueError, RecursionError):  # a 5000-digit int or a very deep list
        return f"a {type(value).__name__} too large to show"
    return text if len(text) <= 60 else text[:57] + "..."


def dump_spec(spec: StrategySpec) -> str:
    """Canonical JSON text of ``spec`` (stable key order, 2-space indent, trailing newline)."""
    return json.dumps(spec.model_dump(mode="json"), indent=2) + "\n"


def load_spec(source: str | Path | Mapping[str, Any]) -> StrategySpec:
    """Load a spec from a file path, a JSON string or a dict and validate it.

    Examples
    --------
    >>> spec = load_spec('{"name": "d", "kind": "ma_cross", "symbols": ["BTC/USD"]}')
    >>> spec.approval.status
    'draft'
    """
    if isinstance(source, Mapping):
        return validate_spec(source)
    if isinstance(source, Path) or (isinstance(source, str) and not source.lstrip().startswith("{")):
        where = _short_path(str(source))
        text = _decode(_read_capped(Path(source), where), where)
    else:
        where, text = "spec", str(source)
        if len(text) > MAX_SPEC_BYTES:
            raise SpecError(f"{where}: {len(text)} characters is too large for a strategy spec "
                            f"(limit {MAX_SPEC_BYTES} bytes)")
    return validate_spec(_parse_json(text, where), source=where)


def _short_path(text: str) -> str:
    # A long string that is not JSON is still taken for a path; keep messages one line.
    return text if len(text) <= 200 else f"{text[:100]!r}... ({len(text)} characters)"


def _read_capped(path: Path, where: str) -> bytes:
    """At most ``MAX_SPEC_BYTES + 1`` bytes of ``path``: ``/dev/zero`` must neither hang nor
    fill memory, and a FIFO nobody writes to must not block the caller forever."""
    try:
        if stat.S_ISFIFO(path.stat().st_mode) or stat.S_ISSOCK(path.stat().st_mode):
            raise SpecError(f"{where}: cannot read strategy spec (not a regular file)")
        with open(path, "rb") as fh:
            raw = fh.read(MAX_SPEC_BYTES + 1)
    except OSError as exc:
        raise SpecError(f"{where}: cannot read strategy spec ({exc.strerror or exc})") from None
    except ValueError as exc:  # e.g. a NUL byte in the path
        raise SpecError(f"{where!r}: cannot read strategy spec ({exc})") from None
    if len(raw) > MAX_SPEC_BYTES:
        raise SpecError(f"{where}: larger than {MAX_SPEC_BYTES} bytes, too large for a strategy "
                        "spec (is this the right file?)")
    return raw


def _decode(raw: bytes, where: str) -> str:
    try:
        return raw.decode("utf-8-sig")  # a byte-order mark some editors write is harmless
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise SpecError(f"{where}: not UTF-8 text (byte {exc.start} on line {line} is "
                        f"{raw[exc.start:exc.start + 1]!r}); save the spec as UTF-8 JSON") from None


def _parse_json(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise SpecError(f"{where}: not valid JSON at line {exc.lineno} column {exc.colno}: "
                        f"{exc.msg}") from None
    except RecursionError:
        raise SpecError(f"{where}: the JSON is nested too deeply to be a strategy spec") from None
    except ValueError as exc:  # e.g. an integer longer than Python's 4300-digit limit
        raise SpecError(f"{where}: not a usable JSON document: {exc}") from None


def save_spec(spec: StrategySpec, path: str | Path) -> Path:
    """Write the canonical JSON of ``spec`` to ``path`` and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dump_spec(spec))
    return path


def spec_json_schema() -> dict:
    """The JSON Schema of :class:`StrategySpec` (the checked-in file is this, dumped)."""
    return StrategySpec.model_json_schema()


def write_json_schema(path: str | Path = SCHEMA_PATH) -> Path:
    """Regenerate the exported JSON Schema file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(spec_json_schema(), indent=2, sort_keys=True) + "\n")
    return path


def sha256_frame(df) -> str:
    """Hex SHA-256 of an OHLCV frame's index and values (data provenance)."""
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(df.index.asi8).tobytes())
    digest.update(np.ascontiguousarray(df.to_numpy(dtype=np.float64)).tobytes())
    return digest.hexdigest()


def _informative_provenance(kind: str, params: Mapping[str, Any] | None, data: Any,
                            given: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Source and SHA-256 of every informative input's data: frames passed by the caller as
    they are, inputs resampled from the base as the closed bars the kind was handed."""
    try:
        kind_obj = get_kind(kind)
        inputs = kind_obj.informative_inputs(kind_obj.validate(params))
    except ParameterError:
        return {}  # validate_spec lists the kind/params problem with its JSON path
    out = {}
    for spec in inputs:
        frame = (given or {}).get(spec.name)
        source = spec.source or ""
        if frame is None and spec.source:
            from quantlib.data import load

            frame = load(spec.source)
        if frame is None:  # resampled from the base data: hash what the signal saw
            frame = align(Bars.from_frame(data), spec, None).bars.frame()
            base = (getattr(data, "attrs", {}) or {}).get("source_string", "")
            source = f"{base}@{spec.timeframe}" if base and spec.timeframe else base
        attrs = dict(getattr(frame, "attrs", {}) or {})
        out[spec.name] = {"symbol": spec.symbol or attrs.get("symbol"),
                          "timeframe": spec.timeframe or attrs.get("timeframe"),
                          "data_source": source or attrs.get("source_string", ""),
                          "data_sha256": sha256_frame(frame) if len(frame) else None}
    return out


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5, cwd=Path(__file__).resolve().parent)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def _metrics_row(metrics: Any) -> dict[str, float | None]:
    if metrics is None:
        return {}
    if hasattr(metrics, "iloc") and getattr(metrics, "ndim", 1) == 2:
        metrics = metrics.iloc[0]
    out = {}
    for key, value in dict(metrics).items():
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        out[str(key)] = number if math.isfinite(number) else None
    return out


# How each BacktestConfig field reaches a spec: (block, spec field), or None for a field that
# changes no fill (only how metrics are annualised). Every field must be listed here: a new
# config field that export does not know is refused, never dropped.
CONFIG_TO_SPEC: dict[str, tuple[str, str] | None] = {
    **{name: tuple(field.spec_path.split(".")) for name, field in COST_FIELDS.items()},
    "size_type": ("risk", "size_type"),
    "direction": ("execution", "direction"),
    "execution": ("execution", "execution"),
    "timeframe": ("spec", "timeframe"),
    "year_days": None,
}


def _place_fields(values: Mapping[str, Any], table: Mapping[str, tuple[str, str] | None],
                  owner: str, where: str, out: dict[str, Any],
                  check: Callable[[str, Any], None] | None = None) -> dict[str, Any]:
    """Put each config value where ``table`` says (``(block, key)``; block ``"spec"`` is the
    spec's top level; ``None`` or a ``None`` value: not carried) into ``out`` and return it.

    A field missing from ``table`` raises SpecError naming ``owner.field``: export refuses a
    setting it does not know rather than dropping it. ``check(field, value)`` runs on every
    carried value first (it raises to refuse one).
    """
    for field, value in values.items():
        if field not in table:
            raise SpecError(f"{where}: {owner}.{field} = {value!r} has no place in a "
                            "strategy spec; export cannot carry it")
        target = table[field]
        if target is None or value is None:
            continue
        if check is not None:
            check(field, value)
        block, key = target
        if block == "spec":
            out[key] = value
        else:
            out[block][key] = value
    return out


def _carry_config(config: Any, kind: str | None, where: str) -> dict[str, Any]:
    """The spec fields of a backtest config: ``{"execution": {...}, "risk": {...}[,
    "timeframe"]}``; a setting the spec cannot express raises SpecError naming it."""
    try:
        config = BacktestConfig.coerce(dict(config) if isinstance(config, Mapping) else config)
    except ParameterError as exc:
        raise SpecError(f"{where}: config: {exc}") from None
    values = config.to_dict()

    def tradable(field: str, value: Any) -> None:
        if field == "execution" and value != "next_open":
            raise SpecError(f"{where}: BacktestConfig.execution = {value!r} cannot be traded: "
                            "live orders fill after the bar closes, at the next open "
                            "('next_open'); re-run the backtest with execution='next_open'")

    out = _place_fields(values, CONFIG_TO_SPEC, "BacktestConfig", where,
                        {"execution": {}, "risk": {}}, check=tradable)
    if kind is not None and any(values[k] is not None for k in ("sl_stop", "tp_stop",
                                                                 "trail_stop")):
        _refuse_grid_exits(kind, values, where)
    return out


# How each PerpConfig field reaches a perp spec (same convention as CONFIG_TO_SPEC): every
# field must be listed; a new one export does not know is refused by name, never dropped.
PERP_CONFIG_TO_SPEC: dict[str, tuple[str, str] | None] = {
    **{name: tuple(COST_FIELDS[name].spec_path.split("."))
       for name in ("init_cash", "fees", "slippage_bps", "size")},
    **{name: tuple(field.spec_path.split(".")) for name, field in PERP_FIELDS.items()},
    "margin_mode": ("perp", "margin_mode"),
    "size_type": ("risk", "size_type"),
    "direction": ("execution", "direction"),
    "timeframe": ("spec", "timeframe"),
    "year_days": None,
}


def _is_perp_config(config: Any) -> bool:
    return type(config).__name__ == "PerpConfig" and hasattr(config, "maint_margin_rate")


def _carry_perp_config(config: Any, where: str) -> dict[str, Any]:
    """The spec fields of a :class:`~quantlib.backtest.perp.PerpConfig`: ``{"execution": ...,
    "risk": ..., "perp": ...[, "timeframe"]}``; a field the spec cannot express raises
    SpecError naming it."""
    return _place_fields(config.to_dict(), PERP_CONFIG_TO_SPEC, "PerpConfig", where,
                         {"execution": {}, "risk": {}, "perp": {}})


def _perp_provenance(data: Any, where: str) -> dict[str, Any]:
    """The companion series of a perp backtest's data (a :class:`~quantlib.data.perp.PerpData`)."""
    if not all(hasattr(data, name) for name in ("ohlcv", "mark", "funding")):
        raise SpecError(f"{where}: a perp result exports with data=PerpData (load_perp(...)), "
                        "so the spec records the candles, mark and funding it was backtested "
                        f"on; got {type(data).__name__}")
    funding = data.funding
    return {"mark_sha256": sha256_frame(data.mark) if len(data.mark) else None,
            "funding_sha256": sha256_frame(funding) if len(funding) else None,
            "funding_interval": funding.attrs.get("funding_interval"),
            "n_funding": len(funding)}


def _refuse_grid_exits(kind: str, values: dict[str, Any], where: str) -> None:
    try:
        engine = get_kind(kind).engine
    except ParameterError:
        return  # validation reports the unknown kind
    if engine == "grid":
        field = next(k for k in ("sl_stop", "tp_stop", "trail_stop") if values[k] is not None)
        raise SpecError(f"{where}: BacktestConfig.{field} = {values[field]!r}: the grid engine "
                        "does not apply sl/tp/trailing exits (use the grid's own stop "
                        "parameters), so a spec cannot promise them")


def _export_symbols(symbols: list[str] | None, result: Any, attrs: dict,
                    where: str) -> list[str]:
    """The spec's symbols: explicit, else the backtest's portfolio, else the data's market. A
    portfolio backtest exported with another number of symbols is refused: the spec would
    trade something else than the evidence is about."""
    ran = list((getattr(result, "extras", None) or {}).get("symbols") or [])
    if symbols:
        if len(ran) > 1 and len(symbols) != len(ran):
            raise SpecError(f"{where}: symbols: the backtest ran the {len(ran)}-symbol "
                            f"portfolio {ran}, but {len(symbols)} symbol(s) {list(symbols)} were "
                            "given; name one market per backtested symbol, in the same order")
        return list(symbols)
    if len(ran) > 1:
        return ran
    return [attrs["symbol"]] if attrs.get("symbol") else []


def export(
    name: str,
    *,
    result: Any = None,
    kind: str | None = None,
    params: Mapping[str, Any] | None = None,
    data: Any = None,
    oos_metrics: Any = None,
    exchange: str | None = None,
    symbols: list[str] | None = None,
    timeframe: str | None = None,
    config: Any = None,
    risk: Mapping[str, Any] | None = None,
    n_trials: int = 1,
    dsr: float | None = None,
    pbo: float | None = None,
    lookahead_passed: bool | None = None,
    notebook: str | None = None,
    notebook_params: Mapping[str, Any] | None = None,
    artifacts: list[str | Path] | None = None,
    path: str | Path | None = None,
    informative: Mapping[str, Any] | None = None,
) -> StrategySpec:
    """Build a **draft** spec from a backtest (or study) result and its data.

    ``result`` is a :class:`quantlib.backtest.BacktestResult` (its first combination is exported)
    or any object with ``kind``/``params``/``metrics``; explicit arguments override what it
    carries. A result of :func:`~quantlib.backtest.perp.run_perp_backtest` (its config a
    ``PerpConfig``) exports a ``market: "perp"`` spec carrying every ``PerpConfig`` field; pass
    ``data=`` the :class:`~quantlib.data.perp.PerpData` it ran on (its mark and funding are
    recorded in ``$.provenance.perp``) and ``symbols=["BTC/USDT:USDT"]`` when the data names
    no swap. Only :func:`quantlib.strategy.gates.promote` turns a draft into ``approved``.

    Examples
    --------
    >>> spec = export("demo", kind="ma_cross", params={"fast": 5, "slow": 20},
    ...               symbols=["BTC/USD"], timeframe="1h")
    >>> spec.approval.status
    'draft'
    """
    res_params = getattr(result, "params", None)
    if params is None and res_params is not None:
        params = res_params[0] if isinstance(res_params, list) else res_params
    if kind is None and result is not None:
        kind_obj = getattr(result, "kind", None)
        kind = getattr(kind_obj, "name", kind_obj)
    where = f"export({name!r})"
    config = config if config is not None else getattr(result, "config", None)
    perp = _is_perp_config(config)
    perp_fields: dict[str, Any] = {}
    perp_provenance = None
    if perp:  # candles, mark and funding of the backtest; the candles are the data below
        perp_provenance = _perp_provenance(data, where)
        data = data.ohlcv
    attrs = dict(getattr(data, "attrs", {}) or {})
    exec_fields: dict[str, Any] = {}
    risk_fields: dict[str, Any] = dict(risk or {})
    if config is not None:
        carried = (_carry_perp_config(config, where) if perp
                   else _carry_config(config, kind, where))
        perp_fields = carried.pop("perp", {})
        exec_fields.update(carried.pop("execution"))
        for key, value in carried.pop("risk").items():
            risk_fields.setdefault(key, value)
        timeframe = timeframe or carried.get("timeframe")
    provenance: dict[str, Any] = {"created_at": datetime.now(UTC).isoformat(),
                                  "git_commit": _git_commit()}
    if data is not None and len(data):
        provenance.update(data_source=attrs.get("source_string", ""), start=data.index[0].isoformat(),
                          end=data.index[-1].isoformat(), data_sha256=sha256_frame(data))
    if notebook:
        provenance["notebook"] = notebook
    provenance["notebook_params"] = dict(notebook_params or {})
    if kind is not None and data is not None and len(data):
        provenance["informative"] = _informative_provenance(kind, params, data, informative)
    if perp_provenance is not None:
        provenance["perp"] = perp_provenance
    in_sample = _metrics_row(getattr(result, "metrics", None))
    out_sample = _metrics_row(oos_metrics)
    n_trades = out_sample.get("n_trades", in_sample.get("n_trades"))
    spec_dict = {
        "name": name,
        "kind": kind,
        "params": dict(params or {}),
        "exchange": exchange or attrs.get("exchange") or ("binanceusdm" if perp else "kraken"),
        **({"market": "perp", "perp": perp_fields} if perp else {}),
        "symbols": _export_symbols(symbols, result, attrs, where),
        "timeframe": timeframe or attrs.get("timeframe") or "1h",
        "execution": exec_fields,
        "risk": risk_fields,
        "provenance": provenance,
        "evidence": {"in_sample": in_sample, "out_of_sample": out_sample, "n_trials": n_trials,
                     "dsr": dsr, "pbo": pbo, "lookahead_passed": lookahead_passed,
                     "n_trades": int(n_trades) if n_trades is not None else None},
        "artifacts": [{"path": str(a), "sha256": sha256_file(a)} for a in (artifacts or [])],
    }
    spec = validate_spec(spec_dict, source=where)
    if path is not None:
        save_spec(spec, path)
    return spec


__all__ = [
    "StrategySpec", "ExecutionSpec", "RiskSpec", "ProvenanceSpec", "InformativeSpec", "PerpSpec",
    "ProvenancePerpSpec", "PERP_CONFIG_TO_SPEC",
    "EvidenceSpec", "ApprovalSpec",
    "ArtifactSpec", "validate_spec", "load_spec", "dump_spec", "save_spec", "export",
    "spec_json_schema", "write_json_schema", "sha256_frame", "SCHEMA_VERSION",
    "MAX_SPEC_BYTES",
]

"""docs/ARCHITECTURE.md "Live runner": the portfolio rule "intents of a bar are stored and
re-sent in that order" (the spec's symbol order), checked on the state store itself.

Client ids are hashes, so an order by id would scramble the symbols; a restart re-sends what is
still ``new`` in the order ``StateStore.orders`` returns it.
"""

from __future__ import annotations

from quantlib.live.state import OrderRow, StateStore


def _intent(client_id: str, bar_time: int, symbol: str, status: str = "new") -> OrderRow:
    return OrderRow(client_id=client_id, bar_time=bar_time, symbol=symbol, intent="target",
                    side=1, amount=1.0, target=1.0, order_type="market", price=None,
                    status=status, exchange_id=None, detail="", attempts=0)


def test_intents_come_back_per_bar_in_the_order_they_were_written(tmp_path):
    store = StateStore(tmp_path / "state.db")
    # spec order ETH, BTC, SOL; ids that sort the other way round; an earlier bar written last
    written = [("ff", 2, "ETH/USD"), ("aa", 2, "BTC/USD"), ("00", 2, "SOL/USD"),
               ("zz", 1, "XRP/USD"), ("11", 1, "ADA/USD")]
    with store.transaction():
        for client_id, bar_time, symbol in written:
            assert store.add_order(_intent(client_id, bar_time, symbol))
        store.add_order(_intent("done", 1, "DOT/USD", status="filled"))
    pending = [(o.client_id, o.bar_time, o.symbol) for o in store.orders("new")]
    expected = sorted(written, key=lambda row: row[1])  # stable: within a bar, as written
    assert pending == expected
    assert [o.client_id for o in store.orders()] == ["zz", "11", "done", "ff", "aa", "00"]
    store.close()


PARITY_FILES = ("test_parity.py", "test_parity_cross.py", "test_parity_mtf.py",
                "test_perp_paper.py")


def kinds_named_in(paths: list) -> set[str]:
    """Kind names written as string literals in the parity tests' sources."""
    import ast

    names = set()
    for path in paths:
        names |= {n.value for n in ast.walk(ast.parse(path.read_text()))
                  if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    return names


def test_every_built_in_kind_has_a_parity_test_through_the_trading_process():
    # ARCHITECTURE.md: the parity tests run every kind through the real AOT process. A new
    # built-in kind must join one of them (they run `quantlib live run --kernels aot`).
    from pathlib import Path

    from quantlib.core import get_kind, list_kinds
    from quantlib.core.registry import BUILTIN_KIND_MODULES

    # built-ins only: other tests register kinds of their own in the same session
    built_in = {k for k in list_kinds() if get_kind(k).signal.__module__ in BUILTIN_KIND_MODULES}
    assert {"ma_cross", "grid", "xgb_classifier"} <= built_in
    here = Path(__file__).parent
    paths = [here / name for name in PARITY_FILES]
    # each file builds (or shares) the AOT kernels fixture its trading-process runs use
    assert all("_aot_kernels" in p.read_text() for p in paths)
    missing = built_in - kinds_named_in(paths)
    assert missing == set(), f"no parity test runs {sorted(missing)}"

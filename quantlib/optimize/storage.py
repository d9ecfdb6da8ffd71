"""Where optuna studies live: any SQLAlchemy URL (SQLite file, PostgreSQL server) or RAM.

Opening a storage fails with a :class:`~quantlib.errors.ParameterError` that names the URL
(password hidden) and the reason, never a SQLAlchemy traceback: a server that is down, a host
that does not answer (PostgreSQL waits at most 10 s), a SQLite folder that does not exist, a
driver that is not installed or a URL SQLAlchemy does not understand.
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path
from typing import Any

import optuna

from quantlib.errors import ParameterError


def default_storage() -> str:
    """``sqlite:///<cwd>/reports/optuna.db`` (directory created)."""
    path = Path.cwd() / "reports" / "optuna.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def make_storage(url: str | None):
    """An optuna storage for a SQLAlchemy URL; None -> default SQLite file; "memory" -> RAM.

    A storage that cannot be opened (server down, wrong host, missing folder or driver, a URL
    SQLAlchemy does not understand) raises ParameterError naming the URL (password hidden).
    """
    if url == "memory":
        return optuna.storages.InMemoryStorage()
    url = url or default_storage()
    if not isinstance(url, str) or "://" not in url:
        raise ParameterError(f"storage: expected a SQLAlchemy URL such as "
                             f"'sqlite:///reports/optuna.db' or 'postgresql://user@host/db', "
                             f"got {url!r}")
    _check_sqlite_folder(url)
    typed, url = url, _with_installed_driver(url)
    import sqlalchemy.exc

    for attempt in range(5):
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs=_engine_kwargs(url))
        except sqlalchemy.exc.DBAPIError as exc:
            # Workers starting together on an empty database race to create optuna's schema;
            # the loser sees a duplicate-table error and succeeds once the schema exists.
            if attempt == 4:
                raise _storage_error(typed, exc) from None
            time.sleep(0.5 * (attempt + 1))
        except (sqlalchemy.exc.SQLAlchemyError, ImportError, ValueError) as exc:
            raise _storage_error(typed, exc) from None
    raise AssertionError("unreachable")


def _engine_kwargs(url: str) -> dict:
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": 60}}  # several processes share one file: wait
    if url.startswith("postgresql"):
        return {"connect_args": {"connect_timeout": 10}}  # a dead host must not hang the CLI
    return {}


def storage_label(url: str | None) -> str:
    """The storage URL for messages, with any password hidden."""
    if url in (None, "memory"):
        return "in-memory storage" if url == "memory" else f"storage {default_storage()}"
    try:
        from sqlalchemy.engine import make_url

        return f"storage {make_url(url).render_as_string(hide_password=True)}"
    except Exception:  # noqa: BLE001 - an unparseable URL is shown as typed
        return f"storage {url!r}"


def _check_sqlite_folder(url: str) -> None:
    # SQLite creates the file but not its folder; say so instead of "unable to open database".
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        folder = Path(url[len("sqlite:///"):]).expanduser().parent
        if not folder.is_dir():
            raise ParameterError(f"storage {url}: folder {folder} does not exist")


def _storage_error(url: str, exc: BaseException) -> ParameterError:
    reason = " ".join(str(getattr(exc, "orig", None) or exc).split())
    reason = reason if len(reason) <= 300 else reason[:297] + "..."
    return ParameterError(f"{storage_label(url)}: cannot open the optuna storage "
                          f"({type(getattr(exc, 'orig', None) or exc).__name__}: {reason})")


def load_study(name: str, url: str | None, **kwargs: Any) -> optuna.Study:
    """``optuna.load_study`` with a ParameterError when the storage has no such study."""
    storage = make_storage(url)
    try:
        return optuna.load_study(study_name=name, storage=storage, **kwargs)
    except KeyError:
        known = [s.study_name for s in optuna.get_all_study_summaries(storage)]
        raise ParameterError(f"{storage_label(url)} has no study named {name!r}; it holds "
                             f"{known[:20]}") from None


def _with_installed_driver(url: str) -> str:
    # SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3; fall back to psycopg2 (a project
    # dependency) when psycopg 3 is not installed.
    if url.startswith("postgresql://"):
        if importlib.util.find_spec("psycopg") is None:
            return "postgresql+psycopg2://" + url[len("postgresql://"):]
    return url


__all__ = ["default_storage", "make_storage", "storage_label", "load_study"]

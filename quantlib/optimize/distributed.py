"""Fan sweep chunks out over dask.distributed (a LocalCluster by default, any scheduler address).

Chunks are independent backtests, so the distributed result is exactly the serial one: results
are gathered back in submission order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import contextmanager
from typing import Any

from tqdm.auto import tqdm

from quantlib.errors import ParameterError


@contextmanager
def dask_client(scheduler: Any = "local", n_workers: int = 2, processes: bool = False,
                threads_per_worker: int = 1):
    """Yield a ``distributed.Client``.

    ``scheduler`` may be ``"local"`` (start a LocalCluster with ``n_workers``; closed on exit),
    ``"tcp://host:port"`` (connect to a running scheduler) or an existing Client (used as is).

    Examples
    --------
    >>> with dask_client("local", n_workers=1) as client:  # doctest: +SKIP
    ...     client.submit(sum, [1, 2]).result()
    3
    """
    from distributed import Client, LocalCluster

    if isinstance(scheduler, Client):
        yield scheduler
        return
    if scheduler == "local":
        # Threads talk over inproc://; worker processes bind to loopback only.
        network = {"host": "127.0.0.1"} if processes else {}
        cluster = LocalCluster(n_workers=n_workers, threads_per_worker=threads_per_worker,
                               processes=processes, dashboard_address=None, **network)
        client = Client(cluster)
        try:
            yield client
        finally:
            client.close()
            cluster.close()
        return
    if isinstance(scheduler, str) and "://" in scheduler:
        client = Client(scheduler)
        try:
            yield client
        finally:
            client.close()
        return
    raise ParameterError(f"scheduler: expected 'local', a scheduler address like "
                         f"'tcp://127.0.0.1:8786' or a distributed.Client, got {scheduler!r}")


def map_chunks(fn: Callable, chunks: Sequence[list], *, data: Any, scheduler: Any = "local",
               n_workers: int = 2, progress: bool = False, **kwargs: Any) -> list:
    """``[fn(kind, data, chunk, config, n_splits) for chunk in chunks]`` computed on dask.

    ``data`` is scattered once to every worker instead of being shipped with each task.
    """
    from distributed import as_completed

    with dask_client(scheduler, n_workers=n_workers) as client:
        data_future = client.scatter(data, broadcast=True)
        futures = [client.submit(fn, kwargs["kind"], data_future, chunk, kwargs.get("config"),
                                 kwargs.get("n_splits", 16), pure=False) for chunk in chunks]
        if progress:
            for _ in tqdm(as_completed(futures), total=len(futures), unit="chunk",
                          desc="sweep (dask)"):
                pass
        return client.gather(futures)


__all__ = ["dask_client", "map_chunks"]

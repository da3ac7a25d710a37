"""Worker processes for per-frame work that holds the GIL (pydensecrf's mean field): a batch's frames
go to as many spawned processes as the run has threads, and the caller goes on meanwhile (the
network's next batch) until it needs the results.
"""

from __future__ import annotations

import functools
import multiprocessing
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import torch


@functools.cache
def worker_pool(processes: int) -> ProcessPoolExecutor | None:
    """``processes`` spawned worker processes, made once per process and kept; None with fewer than
    two, or in a daemonic process (a Dask worker), which may have no children."""
    if processes < 2 or multiprocessing.current_process().daemon:
        return None
    return ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn"))


def start_on_workers(function: Callable[..., Any], *iterables: Iterable[Any]) -> Callable[[], list[Any]]:
    """``function`` (picklable: a module-level function or a partial of one) over the zipped
    ``iterables``, started on :func:`worker_pool` of ``torch.get_num_threads()`` processes -> a call
    that waits for the results and returns them in order. Without a pool the work is done by that
    call, in this process."""
    items = list(zip(*iterables))
    pool = worker_pool(torch.get_num_threads())
    if pool is None:
        return lambda: [function(*item) for item in items]
    futures = [pool.submit(function, *item) for item in items]
    return lambda: [future.result() for future in futures]

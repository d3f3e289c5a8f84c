"""Running test work on many threads at once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
BARRIER_TIMEOUT = 120  # only a safety net against a hung run; nothing waits on time


def run_together(count: int, work: Callable[[int], T]) -> list[T]:
    """Run work(0..count-1) on `count` threads released at once; re-raise the first error."""
    barrier = threading.Barrier(count, timeout=BARRIER_TIMEOUT)
    results: dict[int, T] = {}
    errors: list[BaseException] = []

    def worker(index: int) -> None:
        try:
            barrier.wait()
            results[index] = work(index)
        except BaseException as error:
            errors.append(error)
            barrier.abort()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return [results[i] for i in range(count)]

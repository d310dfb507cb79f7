"""Writes done on a thread of their own, one after another in the order given, so that encoding a PNG
does not hold up the dream (a GPU step can be shorter than encoding its image)."""
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable


class BackgroundWriter:
    """Runs write calls in order on one thread. A failed write is raised by the next submit or by close;
    close waits for every write given, also when the job was interrupted, so nothing is lost."""

    def __init__(self, name: str = "dreamrun-writer"):
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._pending: list[Future] = []

    def submit(self, write: Callable[..., Any], *args: Any) -> None:
        self._raise_failed()
        self._pending.append(self._pool.submit(write, *args))

    def _raise_failed(self) -> None:
        done = [future for future in self._pending if future.done()]
        self._pending = [future for future in self._pending if not future.done()]
        for future in done:
            future.result()

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        pending, self._pending = self._pending, []
        for future in pending:
            future.result()

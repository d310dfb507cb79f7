"""Ctrl-C and SIGTERM as normal events: the first one stops the job cleanly, a second one at once.

The first signal raises KeyboardInterrupt (Terminated for SIGTERM) where the job is, so its
`except`/`finally` blocks save the last finished image, close TensorBoard and write result.json.
A second signal while that cleanup runs exits immediately: every file is written atomically,
so what is there is whole.
"""
import os
import signal
import threading
from contextlib import contextmanager
from types import FrameType
from typing import Iterator, Optional

from dreamrun.errors import EXIT_INTERRUPTED, EXIT_TERMINATED


class Terminated(KeyboardInterrupt):
    """SIGTERM: a cluster's time limit, `kill`, a container stopping. Handled like Ctrl-C."""


_received: Optional[int] = None


def _handle(signum: int, frame: Optional[FrameType]) -> None:
    global _received
    if _received is not None:
        os._exit(EXIT_TERMINATED if signum == signal.SIGTERM else EXIT_INTERRUPTED)
    _received = signum
    raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


@contextmanager
def handled() -> Iterator[None]:
    """Handle SIGINT and SIGTERM this way while the block runs, then put back the handlers there were
    before, so a notebook or a host program keeps its own (signal handlers live in the main thread only).

    A signal this process was started ignoring (`nohup`, `cmd &` in a script) stays ignored.
    """
    global _received
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    outermost = _handle not in previous.values()
    for signum, handler in previous.items():
        if handler is not signal.SIG_IGN:
            signal.signal(signum, _handle)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if outermost:
            _received = None


def exit_status(interrupt: KeyboardInterrupt) -> int:
    return EXIT_TERMINATED if isinstance(interrupt, Terminated) else EXIT_INTERRUPTED

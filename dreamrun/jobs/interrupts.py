"""Ctrl-C and SIGTERM as normal events: the first one stops the job cleanly, a second one at once.

The first signal raises KeyboardInterrupt (Terminated for SIGTERM) where the job is, so its
`except`/`finally` blocks save the last finished image, close TensorBoard and write result.json.
A second signal while that cleanup runs exits immediately: every file is written atomically,
so what is there is whole.

In a cluster job, the warning a scheduler sends before the time limit (submitit asks SLURM for
SIGUSR2) is handled the same way, as TimeLimitNear (handle_time_limit_warning).
"""
import os
import signal
import threading
from contextlib import contextmanager
from types import FrameType
from typing import Iterator, Optional

from dreamrun.errors import EXIT_INTERRUPTED, EXIT_TERMINATED


class Terminated(KeyboardInterrupt):
    """SIGTERM: `kill`, `scancel`, a container stopping. Handled like Ctrl-C."""

    reason = "SIGTERM"


class TimeLimitNear(Terminated):
    """The scheduler's warning that the job's time limit is near: stop while the last image can be saved."""

    def __init__(self, signum: int):
        super().__init__()
        self.reason = f"{signal.Signals(signum).name}: the cluster job's time limit is near"


_received: Optional[int] = None
_time_limit_signal: Optional[int] = None  # set in a cluster job by handle_time_limit_warning
_pending: Optional[int] = None  # that warning, come before the job was running


def _interrupt(signum: int) -> KeyboardInterrupt:
    if signum == _time_limit_signal:
        return TimeLimitNear(signum)
    return Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def _handle(signum: int, frame: Optional[FrameType]) -> None:
    global _received
    if _received is not None:
        os._exit(EXIT_INTERRUPTED if signum == signal.SIGINT else EXIT_TERMINATED)
    _received = signum
    raise _interrupt(signum)


def _remember(signum: int, frame: Optional[FrameType]) -> None:
    global _pending
    _pending = signum


def handle_time_limit_warning(signum: int) -> None:
    """From now on in this process (a cluster job), signum stops a running job as SIGTERM does, as
    TimeLimitNear. One that comes while no job runs (the job's process still starting) stops the next
    job as soon as it starts: the warning comes once, and the time limit follows it."""
    global _time_limit_signal
    _time_limit_signal = signum
    signal.signal(signum, _remember)


@contextmanager
def handled() -> Iterator[None]:
    """Handle SIGINT and SIGTERM (and a cluster's time-limit warning) this way while the block runs, then
    put back the handlers there were before, so a notebook or a host program keeps its own (signal
    handlers live in the main thread only).

    A signal this process was started ignoring (`nohup`, `cmd &` in a script) stays ignored.
    """
    global _received, _pending
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    signums = [signal.SIGINT, signal.SIGTERM] + ([_time_limit_signal] if _time_limit_signal else [])
    previous = {signum: signal.getsignal(signum) for signum in signums}
    outermost = _handle not in previous.values()
    for signum, handler in previous.items():
        if handler is not signal.SIG_IGN:
            signal.signal(signum, _handle)
    try:
        if outermost and _pending is not None:
            _received, _pending = _pending, None
            raise _interrupt(_received)
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if outermost:
            _received = None


@contextmanager
def deferred() -> Iterator[None]:
    """Where handled() handles SIGINT and SIGTERM, hold them back while the block runs and raise the first
    that came as it ends: for importing torch and the like, whose imports a KeyboardInterrupt in their
    middle leaves half done (an ImportError later, or the interrupt swallowed and the job run anyway)."""
    global _received
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    previous = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    for signum, handler in previous.items():
        if handler is _handle:
            signal.signal(signum, lambda signum, frame: held.append(signum))
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if held:
        _received = held[0]
        raise _interrupt(held[0])


def reason(interrupt: KeyboardInterrupt) -> str:
    """What stopped the job, for result.json."""
    return interrupt.reason if isinstance(interrupt, Terminated) else "Ctrl-C"


def exit_status(interrupt: KeyboardInterrupt) -> int:
    return EXIT_TERMINATED if isinstance(interrupt, Terminated) else EXIT_INTERRUPTED

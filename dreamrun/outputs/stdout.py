"""stdout holds the one path a command made: while jobs run, whatever else writes there goes to stderr."""
import os
import sys
import threading
from contextlib import contextmanager
from typing import Iterator

_stdout = threading.Lock()
_stdout_users = 0  # jobs running with stdout sent to stderr (the batched launcher's run in threads)
_saved_stdout = -1


@contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """While a job runs, whatever writes to stdout goes to stderr: torch.hub's "Downloading …", a library's
    print, C code writing to file descriptor 1. stdout holds the one path the command made, so
    `open "$(dreamrun)"` works on a first run too."""
    global _stdout_users, _saved_stdout
    try:
        sys.stdout.flush()
        own_fd = sys.stdout.fileno() == 1
    except (AttributeError, OSError, ValueError):
        own_fd = False
    if not own_fd:  # stdout is no file of this process's (a test's capture, an embedding host): leave it
        yield
        return
    with _stdout:
        if _stdout_users == 0:
            _saved_stdout = os.dup(1)
            os.dup2(2, 1)
        _stdout_users += 1
    try:
        yield
    finally:
        with _stdout:
            _stdout_users -= 1
            if _stdout_users == 0:
                sys.stdout.flush()
                _flush_c_stdio()  # what C code printed sits in libc's buffer until flushed: on stderr too
                os.dup2(_saved_stdout, 1)
                os.close(_saved_stdout)


def _flush_c_stdio() -> None:
    try:
        import ctypes

        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError, TypeError):  # no C library to ask (not a POSIX platform)
        pass

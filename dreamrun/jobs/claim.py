"""A run dir belongs to one run at a time, and says so, even after the run died.

    .dreamrun.lock   locked (flock) by the live run that claimed the dir, for as long as its process lives:
                     the kernel lets go when the process ends, however it ends (SIGKILL, the OOM killer)
    result.json      {"status": "running", "pid": ..., "host": ...} from the claim on; the outcome once the
                     run ends

So a dir whose result.json says running while nobody holds its lock belongs to a run that died. A run
claims its dir before it writes anything there (for the CLI, before Hydra's own record): a second run
into a claimed dir is refused and touches nothing. The lock is a file of its own, never removed: result.json
is replaced at the run's end (atomically), and a lock on a replaced file would lock nothing.

Where the file system has no locks (some network file systems), liveness falls back on the process id,
which is only known on the host that claimed the dir; elsewhere such a run counts as live.
"""
import errno
import fcntl
import os
import socket
from dataclasses import asdict
from pathlib import Path
from typing import Optional, Sequence

from dreamrun.errors import DreamError
from dreamrun.jobs.record import COMPLETED, RUNNING, JobRecord, clear_results, has_results, read_record
from dreamrun.outputs.files import FILE_MODE, save_json
from dreamrun.outputs.run_files import LOCK_FILE, RESULT_FILE

DIED = "died"  # result.json says running, but no process holds the dir
NO_LOCKS = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL}

_held: dict[Path, int] = {}  # run dir -> the descriptor whose lock claims it, in this process


def _key(run_dir: Path) -> Path:
    return Path(run_dir).absolute()


def _lock(path: Path, how: int) -> Optional[int]:
    """An open descriptor of path locked as how says; None where another process holds the lock. Raises
    OSError with an errno in NO_LOCKS where the file system has no locks."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE)
    try:
        fcntl.flock(fd, how | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except OSError:
        os.close(fd)
        raise
    return fd


def _process_alive(record: JobRecord) -> bool:
    """Whether the record's process still runs; a process on another host counts as alive (unknowable)."""
    if record.host != socket.gethostname():
        return True
    try:
        os.kill(record.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def is_live(run_dir: Path, record: Optional[JobRecord] = None) -> bool:
    """Whether a live process holds run_dir (this one included)."""
    run_dir = Path(run_dir)
    if _key(run_dir) in _held:
        return True
    lock = run_dir / LOCK_FILE
    if not lock.exists():
        return False
    try:
        fd = _lock(lock, fcntl.LOCK_SH)
    except OSError as e:
        if e.errno not in NO_LOCKS:
            return False  # an unreadable lock file: nothing can hold it through us either
        record = record or read_record(run_dir)
        return record is not None and record.status == RUNNING and _process_alive(record)
    if fd is None:
        return True
    os.close(fd)
    return False


def run_status(run_dir: Path) -> Optional[str]:
    """What result.json says became of the run in run_dir, with `running` told apart: still running, or
    died (its process gone without a word). None: no readable result.json."""
    record = read_record(run_dir)
    if record is None or record.status != RUNNING or is_live(run_dir, record):
        return record and record.status
    record = read_record(run_dir)  # it may have ended between the two looks
    return DIED if record is not None and record.status == RUNNING else record and record.status


def describe_holder(record: Optional[JobRecord]) -> str:
    return f"pid {record.pid} on {record.host}, started {record.started}" if record else "no result.json yet"


def claim(run_dir: Path, *, overwrite: bool = False, resume: bool = False, overrides: Sequence[str] = (),
          key: str = "run dir") -> bool:
    """Make run_dir this process's, marked running in result.json, or raise DreamError naming who has it and
    the way forward, having touched nothing there. An earlier run's files are refused unless overwrite
    (which removes them first: a finished or dead run's, never a live one's) or resume (which continues
    them). key: what the user sets to choose another dir, for the message. Returns False where this
    process holds the dir already (the CLI claims it before Hydra writes)."""
    run_dir = Path(run_dir)
    if _key(run_dir) in _held:
        return False
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        fd = _lock(run_dir / LOCK_FILE, fcntl.LOCK_EX)
    except OSError as e:
        if e.errno not in NO_LOCKS:
            raise DreamError(f"cannot claim {run_dir}: {e.strerror or e}: choose another {key}") from None
        fd = -1  # no locks here: the process id tells a live run (is_live)
        if is_live(run_dir):
            fd = None
    if fd is None:
        raise DreamError(f"{run_dir} is in use by a run that is still going ({describe_holder(read_record(run_dir))}): "
                         f"wait for it to end, or choose another {key}")
    try:
        record = read_record(run_dir)
        if not resume and (record is not None or has_results(run_dir)):
            if not overwrite:
                raise DreamError(_taken(run_dir, record, key))
            clear_results(run_dir)
        save_json(asdict(JobRecord(overrides=list(overrides))), run_dir / RESULT_FILE)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        raise
    _held[_key(run_dir)] = fd
    return True


def hold_sweep_dir(sweep_dir: Path) -> None:
    """Hold sweep_dir for this process (the sweep's) until it ends, or raise DreamError while another sweep
    holds it. Its jobs claim their own dirs; a sweep dir has no result.json of its own."""
    sweep_dir = Path(sweep_dir)
    if _key(sweep_dir) in _held:
        return
    try:
        fd = _lock(sweep_dir / LOCK_FILE, fcntl.LOCK_EX)
    except OSError as e:
        if e.errno not in NO_LOCKS:
            raise DreamError(f"cannot claim {sweep_dir}: {e.strerror or e}: choose another hydra.sweep.dir") from None
        return  # no locks here: its jobs' own claims still tell live runs
    if fd is None:
        raise DreamError(f"{sweep_dir} is in use by a sweep that is still going: wait for it to end, or choose "
                         "another hydra.sweep.dir")
    _held[_key(sweep_dir)] = fd


def _taken(run_dir: Path, record: Optional[JobRecord], key: str) -> str:
    if record is not None and record.status == RUNNING:
        return (f"{run_dir} holds the files of a run that died before it finished ({describe_holder(record)}): "
                f"pass overwrite=true to replace them, or choose another {key}")
    what = "the results of a run" if record is None or record.status == COMPLETED else f"a {record.status} run"
    return f"{run_dir} already holds {what}: choose another {key}, or pass overwrite=true to replace them"


def settle_claims(status: str, error: str) -> None:
    """Record status in each run dir this process still holds, then let go of every dir it holds: for a
    run stopped (Ctrl-C) or failed between its claim and its job, which would otherwise read as died."""
    for run_dir in list(_held):
        record = read_record(run_dir)
        if record is not None and record.status == RUNNING and record.pid == os.getpid():
            JobRecord(overrides=record.overrides, started=record.started).finish(run_dir, status, error=error)
        release(run_dir)


def release(run_dir: Path) -> None:
    """Let go of run_dir, once its result.json says how the run ended."""
    fd = _held.pop(_key(run_dir), None)
    if fd is not None and fd >= 0:
        os.close(fd)

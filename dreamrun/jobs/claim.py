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
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional, Sequence

from dreamrun.errors import DreamError
from dreamrun.jobs.record import COMPLETED, RUNNING, JobRecord, clear_results, has_results, read_record
from dreamrun.outputs.files import FILE_MODE, save_json
from dreamrun.outputs.run_files import LOCK_FILE, RESULT_FILE

DIED = "died"  # result.json says running, but no process holds the dir
NO_LOCKS = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL}
CLAIM_TRIES = 5  # a reader's brief shared lock (is_live) must not pass for a live run: try again a few times


@dataclass
class _Hold:
    fd: int  # the descriptor whose lock holds the dir; -1 where the file system has no locks
    handed_over: bool = False  # claimed for a job of this process to take over (the CLI's, before Hydra writes)


_held: dict[str, _Hold] = {}  # run dir (absolute, normalised) -> how this process holds it


def _key(run_dir: Path) -> str:
    return os.path.abspath(run_dir)  # as Hydra's runtime.output_dir: a/../a/run and a/run are one dir


def _lock(path: Path, how: int, *, create: bool = True) -> Optional[int]:
    """An open descriptor of path locked as how says; None where another process holds the lock. Raises
    OSError (with an errno in NO_LOCKS where the file system has no locks)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT if create else os.O_RDONLY, FILE_MODE)
    try:
        fcntl.flock(fd, how | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except OSError:
        os.close(fd)
        raise
    return fd


def _close_in_child() -> None:
    """A forked child (a worker pool) shares the parent's locks: it must not keep them alive after the parent.
    Closing its copies leaves the parent's lock alone (flock belongs to the open file, which the parent keeps)."""
    for hold in _held.values():
        if hold.fd >= 0:
            os.close(hold.fd)
    _held.clear()


os.register_at_fork(after_in_child=_close_in_child)


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
    try:
        fd = _lock(run_dir / LOCK_FILE, fcntl.LOCK_SH, create=False)  # read-only: a colleague's dir too
    except FileNotFoundError:
        return False  # never claimed (a run of an older dreamrun)
    except OSError:  # no locks here, or a lock file this user may not open: the record's process tells
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
          key: str = "run dir", hand_over: bool = False) -> None:
    """Make run_dir this job's, marked running in result.json, or raise DreamError naming who has it and
    the way forward, having touched nothing there. An earlier run's files are refused unless overwrite
    (which removes them first: a finished or dead run's, never a live one's) or resume (which continues
    them). key: what the user sets to choose another dir, for the message.

    hand_over: claimed for a job of this process, whose own claim takes it over (the CLI claims a run's
    dir before Hydra writes there, then runs the job). Any other claim of a dir this process holds is
    refused: two jobs of one process (threads of the batched launcher) never share a dir."""
    run_dir = Path(run_dir)
    held = _held.get(_key(run_dir))
    if held is not None and held.handed_over:
        held.handed_over = False
        return
    if held is not None:
        raise DreamError(_in_use(run_dir, key))
    try:
        _claim(run_dir, overwrite, resume, overrides, key, hand_over)
    except OSError as e:  # a dir this user may not write into, say
        raise DreamError(f"cannot claim {run_dir}: {e.strerror or e}: choose another {key}") from None


def _claim(run_dir: Path, overwrite: bool, resume: bool, overrides: Sequence[str], key: str, hand_over: bool) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    fd = _exclusive(run_dir)
    if fd is None:
        raise DreamError(_in_use(run_dir, key))
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
    _held[_key(run_dir)] = _Hold(fd, handed_over=hand_over)


def _exclusive(directory: Path) -> Optional[int]:
    """A descriptor holding directory's lock alone; -1 where the file system has no locks and no live process
    holds it by its record; None where a live process holds it. Other OSErrors are raised."""
    fd: Optional[int] = None
    for attempt in range(CLAIM_TRIES):
        try:
            fd = _lock(directory / LOCK_FILE, fcntl.LOCK_EX)
        except OSError as e:
            if e.errno not in NO_LOCKS:
                raise
            fd = None if is_live(directory) else -1  # no locks here: the record's process id tells a live run
        if fd is not None:
            return fd
        time.sleep(0.02 * (attempt + 1))
    return None


def _in_use(run_dir: Path, key: str) -> str:
    return (f"{run_dir} is in use by a run that is still going ({describe_holder(read_record(run_dir))}): "
            f"wait for it to end, or choose another {key}")


def hold_sweep_dir(sweep_dir: Path) -> None:
    """Hold sweep_dir for this process (the sweep's) until it ends, or raise DreamError while another sweep
    holds it. Its jobs claim their own dirs; a sweep dir has no result.json of its own."""
    if _key(sweep_dir) in _held:
        return
    try:
        fd = _exclusive(Path(sweep_dir))
    except OSError as e:
        raise DreamError(f"cannot claim {sweep_dir}: {e.strerror or e}: choose another hydra.sweep.dir") from None
    if fd is None:
        raise DreamError(f"{sweep_dir} is in use by another run that is still going: wait for it to end, or "
                         "choose another hydra.sweep.dir")
    _held[_key(sweep_dir)] = _Hold(fd)


def _taken(run_dir: Path, record: Optional[JobRecord], key: str) -> str:
    if record is not None and record.status == RUNNING:
        return (f"{run_dir} holds the files of a run that died before it finished ({describe_holder(record)}): "
                f"pass overwrite=true to replace them, or choose another {key}")
    what = "the results of a run" if record is None or record.status == COMPLETED else \
        f"{'an' if record.status[0] in 'aeiou' else 'a'} {record.status} run"
    return f"{run_dir} already holds {what}: choose another {key}, or pass overwrite=true to replace them"


def settle_claims(status: str, error: str) -> None:
    """Record status in each run dir this process still holds, then let go of every dir it holds: for a
    run stopped (Ctrl-C) or failed between its claim and its job, which would otherwise read as died."""
    for run_dir in list(_held):
        record = read_record(Path(run_dir))
        if record is not None and record.status == RUNNING and record.pid == os.getpid():
            try:
                JobRecord(overrides=record.overrides, started=record.started).finish(Path(run_dir), status,
                                                                                     error=error)
            except (DreamError, OSError):
                pass  # the disk will not take it: the dir reads as died, which overwrite=true clears
        release(run_dir)


def release(run_dir: Path) -> None:
    """Let go of run_dir, once its result.json says how the run ended."""
    hold = _held.pop(_key(run_dir), None)
    if hold is not None and hold.fd >= 0:
        os.close(hold.fd)

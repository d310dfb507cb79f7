"""Files that are whole or absent: every result is written to a temporary file beside it, then renamed.
A disk that will not take a file (full, over quota, read-only, failing) is one line naming the file."""
import errno
import io
import json
import math
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator, Optional

from dreamrun.errors import DreamError
from dreamrun.outputs.run_files import PARTIAL

DISK_ERRORS = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded",
               errno.EFBIG: "file too large", errno.EROFS: "read-only file system",
               errno.EIO: "input/output error"}


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# mkstemp makes 0600 files; results should get the permissions any other new file gets
FILE_MODE = 0o666 & ~_umask()


@contextmanager
def atomic_path(path: Path, suffix: str = ".tmp", size: Optional[int] = None) -> Iterator[Path]:
    """A temporary file beside path to write (suffix: for tools that read the format from it); it
    replaces path when the block ends without an error, and is removed otherwise. A disk error on the
    way is a DreamError naming path (size: the bytes it needs, where known)."""
    tmp: Optional[Path] = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}{PARTIAL}", suffix=suffix)
        tmp = Path(name)
        os.fchmod(fd, FILE_MODE)
        os.close(fd)
        yield tmp
        os.replace(tmp, path)
    except OSError as e:
        if e.errno not in DISK_ERRORS:
            raise
        written = tmp.stat().st_size if tmp is not None and tmp.exists() else 0
        what = f"{_size(size)} needed for {path.name}" if size is not None else \
            f"{path.name} stopped at {_size(written)}"
        raise DreamError(_disk_error(e.errno, path, what)) from None
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)


def _disk_error(code: int, path: Path, what: str) -> str:
    """One line: why the disk refused path, what was being written (what), and the space left."""
    if code in (errno.ENOSPC, errno.EDQUOT):
        try:
            free = f", {_size(shutil.disk_usage(path.parent).free)} free in {path.parent}"
        except OSError:
            free = f" in {path.parent}"
        return f"{DISK_ERRORS[code]}: {what}{free}"
    if code == errno.EFBIG:
        return f"{DISK_ERRORS[code]}: {what} in {path.parent}, over this process's file-size limit (ulimit -f)"
    return f"{DISK_ERRORS[code]}: cannot write {path.name} in {path.parent}"


def disk_error(error: OSError, directory: Path) -> Optional[DreamError]:
    """A write that met a disk error (TensorBoard's, say), as one line naming the file where the error does,
    else a file in directory (where the job was writing); None where error is something else."""
    if error.errno not in DISK_ERRORS:
        return None
    path = Path(os.fsdecode(error.filename)) if error.filename else Path(directory) / "a file"
    return DreamError(_disk_error(error.errno, path, f"writing {path.name}"))


def _size(count: float) -> str:
    """2.1 MB: decimal units, as df -H and file managers count."""
    unit = "B"
    for larger in ("KB", "MB", "GB"):
        if count < 1000:
            break
        count, unit = count / 1000, larger
    return f"{count} B" if unit == "B" else f"{count:.1f} {unit}"


def write_atomic(path: Path, write: Callable[[BinaryIO], Any], size: Optional[int] = None) -> None:
    with atomic_path(path, size=size) as tmp, open(tmp, "wb") as f:
        write(f)


def save_png(image: Any, path: str | os.PathLike, text: Optional[dict[str, str]] = None) -> None:
    """A Pillow image as a PNG file (encoded first, so a full disk can say how much it needed), with text
    chunks (key -> value: the recipe that made it, outputs.recipe)."""
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    for key, value in (text or {}).items():
        info.add_itxt(key, value, zip=True)
    encoded = io.BytesIO()
    image.save(encoded, format="PNG", pnginfo=info)
    save_bytes(encoded.getvalue(), path)


def save_bytes(data: bytes, path: str | os.PathLike) -> None:
    write_atomic(Path(path), lambda f: f.write(data), size=len(data))


def save_text(text: str, path: str | os.PathLike) -> None:
    save_bytes(text.encode(), path)


def json_safe(data: Any) -> Any:
    """data with every NaN or infinite float as None: most JSON readers refuse NaN and Infinity."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {key: json_safe(value) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [json_safe(value) for value in data]
    return data


def save_json(data: Any, path: str | os.PathLike) -> None:
    save_text(json.dumps(json_safe(data), indent=2, allow_nan=False) + "\n", path)

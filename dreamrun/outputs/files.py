"""Files that are whole or absent: every result is written to a temporary file beside it, then renamed."""
import json
import math
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# mkstemp makes 0600 files; results should get the permissions any other new file gets
FILE_MODE = 0o666 & ~_umask()


@contextmanager
def atomic_path(path: Path, suffix: str = ".tmp") -> Iterator[Path]:
    """A temporary file beside path to write (suffix: for tools that read the format from it); it
    replaces path when the block ends without an error, and is removed otherwise."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.fchmod(fd, FILE_MODE)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def write_atomic(path: Path, write: Callable[[BinaryIO], Any]) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        write(f)


def save_png(image: Any, path: str | os.PathLike) -> None:
    """A Pillow image as a PNG file."""
    write_atomic(Path(path), lambda f: image.save(f, format="PNG"))


def save_bytes(data: bytes, path: str | os.PathLike) -> None:
    write_atomic(Path(path), lambda f: f.write(data))


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

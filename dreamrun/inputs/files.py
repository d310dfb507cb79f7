"""A file the user names: refused in one line when it is not a regular file dreamrun may read."""
import os
import stat
from pathlib import Path

from dreamrun.errors import DreamError

OTHER_FILE_KINDS = {stat.S_IFIFO: "named pipe", stat.S_IFCHR: "character device", stat.S_IFBLK: "block device",
                    stat.S_IFSOCK: "socket"}


def input_file(path: str | os.PathLike, what: str) -> Path:
    """path, ~ expanded, if it names a regular file dreamrun may read; else a DreamError naming it and
    what it is instead. A named pipe or a device is refused unopened: reading one could wait forever."""
    path = Path(path).expanduser()
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        broken = f" (a broken symlink to {os.readlink(path)})" if path.is_symlink() else ""
        raise DreamError(f"{what} not found: {path}{broken}") from None
    except (OSError, ValueError) as e:  # a symlink loop, a name too long, a dir it may not enter, a NUL
        raise DreamError(f"cannot read {what} {path}: {getattr(e, 'strerror', None) or e}") from None
    article = "an" if what[0] in "aeiou" else "a"
    if stat.S_ISDIR(mode):
        raise DreamError(f"{path} is a directory, not {article} {what}")
    if not stat.S_ISREG(mode):
        raise DreamError(f"{path} is a {OTHER_FILE_KINDS.get(stat.S_IFMT(mode), 'special file')}, "
                         f"not {article} {what}")
    if not os.access(path, os.R_OK):
        raise DreamError(f"cannot read {what} {path}: permission denied")
    return path

"""`dreamrun PATH [overrides]`: a first argument naming an existing file dreams it, whatever its name holds.

Hydra's override grammar refuses many ordinary file names (`photo (1).jpg`, `a,b.jpg`, `it's.jpg`), so the
file becomes an override quoted the way the grammar reads back exactly, with the input preset its kind needs:

    dreamrun 'photo (1).jpg' octaves=3   ->  input=image "input.path='photo (1).jpg'" octaves=3
    dreamrun clip.mp4                    ->  mode=video input=video input.path='clip.mp4'
"""
import mimetypes
import re
from pathlib import Path
from typing import Optional

from dreamrun.errors import DreamError


def hydra_quoted(value: str) -> str:
    """value as a single-quoted Hydra override value that Hydra and OmegaConf read back as exactly value.

    Inside quotes, Hydra unescapes only the backslashes before a quote or at the end, and OmegaConf reads
    `${` as an interpolation unless escaped (a backslash run before it is doubled, as before a quote)."""
    escaped = re.sub(r"\\+(?='|\$\{|$)", lambda run: run.group(0) * 2, value)
    return "'" + escaped.replace("'", "\\'").replace("${", "\\${") + "'"


def is_video(path: Path) -> bool:
    """A file Pillow cannot read as an image, unless its name says image: a video for PyAV to read."""
    import warnings

    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path):
                return False
    except Image.DecompressionBombError:  # an image, and a huge one: the image reader refuses it in one line
        return False
    except (UnidentifiedImageError, OSError):
        guessed = mimetypes.guess_type(path.name)[0] or ""
        return not guessed.startswith("image/")


def file_argument(overrides: list[str]) -> list[str]:
    """overrides with the word naming the file to dream turned into the overrides that dream it: the first
    word, whatever it holds, or a later word with no `=` (an override always has one).

    A word with no `=` that names no file is a missing file, said as one (Hydra would call it a malformed
    override); `~key` deletes a key, as in Hydra, unless a file of that name exists."""
    at = next((i for i, word in enumerate(overrides) if (i == 0 or "=" not in word) and _names_a_file(word)), None)
    if at is None:
        _refuse_a_missing_file(overrides)
        return overrides
    path, rest = _expanded(overrides[at]), overrides[:at] + overrides[at + 1:]
    given = {_key(o) for o in rest}
    video = is_video(path)
    words = [f"input.path={hydra_quoted(str(path))}"]
    if "input" not in given:
        words.insert(0, "input=video" if video else "input=image")
    if video and "mode" not in given:
        words.insert(0, "mode=video")
    return words + rest


def _names_a_file(word: str) -> bool:
    return _is_file(_expanded(word))


def _refuse_a_missing_file(overrides: list[str]) -> None:
    for word in overrides:
        if "=" in word or (word.startswith("~") and not word.startswith("~/")):
            continue
        if _expanded(word).is_dir():
            raise DreamError(f"{word} is a directory: dreamrun dreams one file, a photo or a video "
                             f"(a sweep over several: -m 'input.path=a.jpg,b.jpg')")
        raise DreamError(f"no such file: {word} (an argument without '=' names the photo or video to dream)")


def _expanded(word: str) -> Path:
    try:
        return Path(word).expanduser()
    except RuntimeError:  # ~name of no user: a Hydra deletion (~target), or a name to take as it is
        return Path(word)


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):  # a name too long for the system, a NUL byte: an override, not a file
        return False


def _key(override: str) -> Optional[str]:
    return override.split("=", 1)[0].lstrip("+~") if "=" in override else None

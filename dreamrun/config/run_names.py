"""Run dir names: readable, safe to type in a shell, never shared between two runs.

    outputs/2026-11-27/14-35-57_efficientnet_lite0_block_12      a run: its model and target presets
    outputs/2026-11-27/14-35-57_efficientnet_lite0_block_12_2    another run started in the same second
    outputs/2026-11-27/14-35-57_efficientnet_lite0_block_12@5-17 a run with 'target.block_12=[5,17]'
    outputs/multirun/2026-11-27/14-35-57/1_octaves=4_target=mixed_6
    outputs/multirun/2026-11-27/14-35-57/0_target.block_12=5-17

A name holds only characters no shell expands or splits (letters, digits and `._-+=@%`), so it can be
pasted unquoted. From a job's overrides: the `,` between two overrides becomes `_`; inside `[…]` and
`{…}` the `,` and `:` become `-`, and brackets and spaces vanish; quotes vanish, and what they enclose is
kept; accents are dropped (é → e); any other run of characters becomes one `_`. That can map two
override sets to one name, but never within a sweep: its job dirs start with the job number.
"""
import hashlib
import re
import unicodedata
from pathlib import Path
from typing import Any, Optional

from omegaconf import DictConfig, ListConfig, OmegaConf

MAX_LENGTH = 80
TIME_LENGTH = len("14-35-57_")
UNSAFE = re.compile(r"[^A-Za-z0-9._+=@%-]+")


def _ascii(text: str) -> str:
    """Accents dropped (é → e, ﬁ → fi); a character with no ASCII form becomes '?', so later '_'."""
    folded = (c if c.isascii() else unicodedata.normalize("NFKD", c).encode("ascii", "ignore").decode() for c in text)
    return "".join(f or "?" for f in folded)


def _flatten(overrides: str) -> str:
    """Hydra's override text, its lists, dicts, quotes and escapes flattened as the module docstring says."""
    out, depth, quote, escaped = [], 0, None, False
    for c in _ascii(overrides):
        if escaped or (quote and c != quote):
            out.append(c)
            escaped = False
        elif quote:
            quote = None
        elif c == "\\":
            escaped = True
        elif c in "'\"":
            quote = c
        elif c in "[{(":
            depth += 1
        elif c in "]})":
            depth = max(depth - 1, 0)
        elif depth == 0:
            out.append("_" if c == "," else c)  # Hydra joins a job's overrides with ','
        elif c in ",:":
            out.append("-")
        elif not c.isspace():
            out.append(c)
    return "".join(out)


def slug(overrides: str, max_length: int = MAX_LENGTH) -> str:
    """One shell-safe path component from a job's overrides: no separator, no traversal, at most max_length
    characters."""
    name = UNSAFE.sub("_", _flatten(overrides)).strip("._") or "defaults"
    if len(name) > max_length:
        # keeps long names distinct; surrogatepass: argv that is not UTF-8 arrives with lone surrogates
        digest = hashlib.sha1(overrides.encode("utf-8", "surrogatepass")).hexdigest()[:8]
        name = f"{name[:max_length - 9]}-{digest}"
    return name


def _edits_target(overrides: list[str]) -> bool:
    """The command line changed the target dictionary itself, not only which preset it comes from."""
    for override in overrides:
        key, _, value = override.lstrip("+~").partition("=")
        if key.startswith("target.") or (key == "target" and value.lstrip().startswith("{")):
            return True
    return False


def _target_label(target: dict[str, Any]) -> str:
    """block_12+block_3@5-17: each layer, with its channels (or settings) when not all."""
    return "+".join(layer if chosen == "all" else f"{layer}@{chosen}" for layer, chosen in target.items())


def run_name(model: Optional[str], target_preset: Optional[str], overrides: ListConfig,
             target: Optional[DictConfig]) -> str:
    """efficientnet_lite0_block_12: what a single run dreams with, for its dir (and TensorBoard run) name.

    The target preset names the target, unless the command line edited the dictionary: then its layers
    are named, with their channels, so that dreams of one layer's channel 5 and of the whole layer differ.
    (target is None where Hydra's config is shown alone: `--cfg hydra --resolve`.)
    """
    edited = target is not None and _edits_target(list(overrides))
    label = _target_label(OmegaConf.to_container(target)) if edited else target_preset
    text = "_".join(str(part) for part in (model, label) if part)
    # no '=': `hydra.run.dir=DIR` (resume=true, overwrite=true) must parse without quotes
    return slug(text, MAX_LENGTH - TIME_LENGTH).replace("=", "-")


def claim_fresh_dir(path: str) -> str:
    """path, or path_2, path_3, … : the first that did not exist, created here so no other run takes it.

    mkdir is atomic, so two dreamruns started in the same second get different dirs.
    """
    for n in range(1, 10_000):
        candidate = Path(path if n == 1 else f"{path}_{n}")
        try:
            candidate.mkdir(parents=True)
        except FileExistsError:
            continue
        return str(candidate)
    raise RuntimeError(f"no free run dir next to {path}")


def register_resolvers() -> None:
    OmegaConf.register_new_resolver("dreamrun_slug", slug, replace=True)
    OmegaConf.register_new_resolver("dreamrun_run_name", run_name, replace=True)

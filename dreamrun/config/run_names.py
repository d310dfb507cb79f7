"""Run dir names: readable and safe for sweep jobs, never shared between two runs.

    outputs/2026-11-27/14-35-57                       a run
    outputs/2026-11-27/14-35-57_2                     another run started in the same second
    outputs/multirun/2026-11-27/14-35-57/1_octaves=4,target=mixed_6
"""
import hashlib
import re
from pathlib import Path

from omegaconf import OmegaConf

MAX_LENGTH = 80


def slug(overrides: str) -> str:
    """One path component from a job's overrides: no separators or traversal, at most MAX_LENGTH chars."""
    name = re.sub(r"[^A-Za-z0-9._=,+\-\[\]]+", "_", overrides).strip("._") or "defaults"
    if len(name) > MAX_LENGTH:
        digest = hashlib.sha1(overrides.encode()).hexdigest()[:8]  # keeps long names distinct
        name = f"{name[:MAX_LENGTH - 9]}-{digest}"
    return name


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

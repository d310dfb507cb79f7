"""Readable, safe names for sweep job dirs (and so TensorBoard runs), made from their overrides.

    outputs/multirun/2026-11-27/14-35-57/1_octaves=4,target=mixed_6
"""
import hashlib
import re

from omegaconf import OmegaConf

MAX_LENGTH = 80


def slug(overrides: str) -> str:
    """One path component from a job's overrides: no separators or traversal, at most MAX_LENGTH chars."""
    name = re.sub(r"[^A-Za-z0-9._=,+\-\[\]]+", "_", overrides).strip("._") or "defaults"
    if len(name) > MAX_LENGTH:
        digest = hashlib.sha1(overrides.encode()).hexdigest()[:8]  # keeps long names distinct
        name = f"{name[:MAX_LENGTH - 9]}-{digest}"
    return name


def register_resolver() -> None:
    OmegaConf.register_new_resolver("dreamrun_slug", slug, replace=True)

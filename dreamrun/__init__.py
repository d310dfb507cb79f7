"""dreamrun: DeepDream as an experiment runner (Hydra configs, octaves, jitter, Inception-v3)."""
from dreamrun.errors import DreamError

__all__ = ["dream", "DreamError"]


def __getattr__(name: str):
    # dream() needs torch; importing it lazily keeps `python -m dreamrun --help` and the CLI's
    # config errors from paying for torch
    if name == "dream":
        from dreamrun.api import dream

        return dream
    raise AttributeError(f"module 'dreamrun' has no attribute {name!r}")

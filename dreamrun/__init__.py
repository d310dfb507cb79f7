"""dreamrun: DeepDream as an experiment runner (Hydra configs, octaves, jitter, Inception-v3)."""
from dreamrun.api import dream
from dreamrun.errors import DreamError

__all__ = ["dream", "DreamError"]

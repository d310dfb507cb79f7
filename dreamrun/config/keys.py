"""A config as flat dotted keys: what HParams compares and what a zoom's resume must match."""
from typing import Any, Collection

from omegaconf import DictConfig, OmegaConf


def flatten_config(cfg: DictConfig, skip: Collection[str] = ()) -> dict[str, Any]:
    """{"jitter.max_shift": 32, ...}: every leaf by its dotted key, the target dictionary as one
    value, and nothing under the keys in skip."""
    flat: dict[str, Any] = {}

    def walk(node: Any, prefix: str) -> None:
        if prefix in skip:
            return
        if isinstance(node, dict) and prefix != "target":
            for key, value in node.items():
                walk(value, f"{prefix}.{key}" if prefix else str(key))
        else:
            flat[prefix] = node

    walk(OmegaConf.to_container(cfg, resolve=True, enum_to_str=True), "")
    return flat

"""Keys added with `+` must exist in the schema: `+octave=3` is a typo, not a new setting.

Hydra lets `+key=value` add any key, even to a typed config, so a misspelt `+octave=3` would run
with the default octaves and an unused `octave: 3`. Only the target dictionary and the model's
layers and builder arguments take entries the schema cannot know.
"""
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from dreamrun.config.hydra_errors import OPEN_KEYS, schema_keys, unknown_key
from dreamrun.errors import refuse


def unknown_added_keys(overrides: list[str], groups: set[str]) -> list[str]:
    """The keys of `+key=…` and `++key=…` overrides that are neither in the schema, nor entries of an
    open dictionary, nor config groups (groups: the config groups there are)."""
    known = set(schema_keys())
    unknown = []
    for override in OverridesParser.create().parse_overrides(overrides):
        if not (override.is_add() or override.is_force_add()):
            continue
        key = override.key_or_group
        under_open = any(key.startswith(f"{open_key}.") for open_key in OPEN_KEYS)
        if key in known or under_open or key in groups or key.split(".")[0] == "hydra":
            continue
        unknown.append(key)
    return unknown


class AddedKeyCheck(Callback):
    """Refuses a run or a sweep that adds a key the schema does not have, before any dir is made."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check(config)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check(config)

    @staticmethod
    def _check(config: DictConfig) -> None:
        groups = set(config.hydra.runtime.choices.keys())
        unknown = unknown_added_keys(list(config.hydra.overrides.task), groups)
        if unknown:
            refuse(unknown_key(unknown[0]))

"""The presets on disk: dreamrun's conf/ and the user's own config dir, read as plain YAML (no torch, no
network), to say which target presets belong to which model.

A user's dir holds files laid out as conf/ is (model/resnet18.yaml, target/my_eyes.yaml); Hydra searches
it after dreamrun's own (hydra.searchpath in conf/config.yaml), as it does a --config-dir.
"""
import os
import re
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Sequence

from omegaconf import DictConfig, OmegaConf

from dreamrun.config.compose import config_dir

USER_CONFIG_ENV = "DREAMRUN_CONFIG_DIR"


def user_config_dir() -> Path:
    """Where a user's own presets live: $DREAMRUN_CONFIG_DIR, else $XDG_CONFIG_HOME/dreamrun
    (~/.config/dreamrun). It need not exist."""
    if os.environ.get(USER_CONFIG_ENV):
        return Path(os.environ[USER_CONFIG_ENV]).expanduser()
    config_home = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(config_home) / "dreamrun"


def config_dirs(extra: Iterable[Path] = ()) -> list[Path]:
    """The dirs a composition searches, in Hydra's order: those of the running Hydra app (its --config-dir
    included), else dreamrun's conf/, the user's dir and extra."""
    from hydra.core.hydra_config import HydraConfig

    ours = Path(config_dir())
    if HydraConfig.initialized():  # dreamrun's app, not one that calls dream() inside its own
        dirs = [Path(source.path) for source in HydraConfig.get().runtime.config_sources if source.schema == "file"]
        if ours in dirs:
            return dirs
    return [ours, *(d for d in (user_config_dir(), *extra) if d.is_dir())]


def _natural(name: str) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _preset_files(group: str, dirs: Sequence[Path]) -> dict[str, Path]:
    """Each preset of a group by name, the first dir's where two dirs have one (as Hydra picks)."""
    found: dict[str, Path] = {}
    for d in dirs:
        for path in (d / group).glob("*.yaml"):
            found.setdefault(path.stem, path)
    return dict(sorted(found.items(), key=lambda item: _natural(item[0])))


def target_presets(dirs: Optional[Sequence[Path]] = None) -> dict[str, DictConfig]:
    """Every target preset (target/*.yaml) by name, in natural order: block_2 before block_10."""
    return {name: OmegaConf.load(path) for name, path in _preset_files("target", dirs or config_dirs()).items()}


def fitting_target_presets(layers: Sequence[str], dirs: Optional[Sequence[Path]] = None) -> dict[str, DictConfig]:
    """The target presets whose layers all belong to a model with these layers."""
    return {name: targets for name, targets in target_presets(dirs).items()
            if targets and set(targets) <= set(layers)}


def model_layers(dirs: Optional[Sequence[Path]] = None) -> dict[str, list[str]]:
    """Each model preset's layer names, for the presets that list them themselves."""
    layers = {}
    for name, path in _preset_files("model", dirs or config_dirs()).items():
        named = OmegaConf.select(OmegaConf.load(path), "model.layers")
        if isinstance(named, Mapping) and named:
            layers[name] = list(named)
    return layers


def preset_named(target: Mapping[str, Any], presets: Mapping[str, DictConfig]) -> Optional[str]:
    """The preset this target dictionary is, if it is one (as typed: target=mixed_6)."""
    chosen = OmegaConf.to_container(OmegaConf.create(dict(target)))
    return next((name for name, targets in presets.items() if OmegaConf.to_container(targets) == chosen), None)


def default_model() -> Optional[str]:
    """The model preset the primary config chooses."""
    for entry in OmegaConf.load(Path(config_dir()) / "config.yaml").get("defaults", []):
        if isinstance(entry, Mapping) and "model" in entry:
            return str(entry["model"])
    return None


def another_models_target(target: Mapping[str, Any], model: str, layers: Sequence[str]) -> Optional[str]:
    """Why a target none of whose layers this model has is refused, where it is another model's target:

    target=mixed_6 is a preset of inception_v3 (model=inception_v3), not of googlenet; googlenet's target
    presets: inception_3a, ...
    """
    if not target or set(target) & set(layers):
        return None
    dirs = config_dirs()
    owners = [name for name, named in model_layers(dirs).items() if set(target) <= set(named)]
    if not owners:
        return None
    preset = preset_named(target, target_presets(dirs))
    layers_named = f"{', '.join(target)} {'is a layer' if len(target) == 1 else 'are layers'}"
    what = f"target={preset} is a preset" if preset else layers_named
    own = ", ".join(fitting_target_presets(layers, dirs)) or "none; `dreamrun-layers` lists its layers"
    return (f"{what} of {' or '.join(owners)} (model={owners[0]}), not of {model}; "
            f"{model}'s target presets: {own}")

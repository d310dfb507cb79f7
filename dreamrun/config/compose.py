"""Where the config tree is, and composing it: one function for the API, the layer browser, the tests
and the benchmarks, giving exactly what `python -m dreamrun OVERRIDES` would run with.

    cfg = compose_config("model=efficientnet_lite0", "target=block_12", "octaves=3")
"""
from pathlib import Path
from typing import Sequence

from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from omegaconf import DictConfig, OmegaConf

from dreamrun.config import run_names
from dreamrun.config.file_argument import hydra_quoted
from dreamrun.config.hydra_errors import one_line, raised_by_hydra
from dreamrun.config.schema import register_configs


def config_dir() -> str:
    """conf/ shipped inside an installed package, else the source checkout's top-level conf/."""
    package = Path(__file__).resolve().parent.parent
    packaged = package / "conf"
    return str(packaged if (packaged / "config.yaml").is_file() else package.parent / "conf")


def _user_config_dir() -> str:
    """The user's config dir for hydra.searchpath; without one, dreamrun's own again (Hydra warns of a
    search path that does not exist, and would on every run of everyone who has no presets of their own)."""
    from dreamrun.config.presets import user_config_dir

    user = user_config_dir().expanduser()
    return str(user.resolve() if user.is_dir() else Path(config_dir()).resolve())


def _gpu_count() -> int:
    import torch  # only a sweep's launcher config asks, so the CLI's start need not import torch

    return torch.cuda.device_count()


def register() -> None:
    """The schema and the resolvers the config tree uses; safe to call again."""
    register_configs()
    run_names.register_resolvers()
    OmegaConf.register_new_resolver("dreamrun_user_config_dir", _user_config_dir, replace=True)  # hydra.searchpath
    # the local (submitit) launcher preset asks for every GPU here, so sweeps.launch.device_for_job can share them out
    OmegaConf.register_new_resolver("dreamrun_gpu_count", _gpu_count, replace=True)


def compose_config(*overrides: str, config_dirs: Sequence[Path] = ()) -> DictConfig:
    """The config `python -m dreamrun OVERRIDES` runs with (Hydra's own keys aside); config_dirs are
    searched after dreamrun's own and the user's, as with `--config-dir`."""
    register()
    # the primary config searches the user's dir (hydra.searchpath); an override replaces that list
    dirs = [_user_config_dir(), *(str(Path(d).expanduser().resolve()) for d in config_dirs)]
    searched = [f"hydra.searchpath=[{','.join(hydra_quoted(f'file://{d}') for d in dirs)}]"]
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        try:
            return compose(config_name="config", overrides=list(overrides) + (searched if config_dirs else []))
        except ValueError as e:
            if not raised_by_hydra(e):
                raise
            raise ConfigCompositionException(one_line(e, overrides)) from None

"""A user's own presets for dreamrun, after `pip install .`: Hydra searches the user's config dir
($DREAMRUN_CONFIG_DIR, else ~/.config/dreamrun) after dreamrun's conf/, as it does a --config-dir, for
the CLI, dreamrun-layers and dream() alike. Hydra imports this at every start: keep it light."""
from pathlib import Path

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin


class DreamrunUserConfigs(SearchPathPlugin):
    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        from dreamrun.config.compose import config_dir
        from dreamrun.config.presets import user_config_dir

        ours = Path(config_dir()).resolve()
        # file://DIR, or a plain DIR (initialize_config_dir's, as the API and dreamrun-layers compose)
        searched = [Path(element.path.removeprefix("file://")) for element in search_path.get_path()
                    if element.path and (element.path.startswith("file://") or "://" not in element.path)]
        user = user_config_dir()
        if any(_same(path, ours) for path in searched) and user.is_dir():  # dreamrun's app, not another's
            search_path.append(provider="dreamrun-user", path=f"file://{user.resolve()}")


def _same(path: Path, other: Path) -> bool:
    try:
        return path.resolve() == other
    except OSError:
        return False

"""Hydra's config errors as one line a user can act on: the closest real key for a typo, the presets to
choose from, the plugin a launcher needs.

    octave=3                  ->  unknown key 'octave': did you mean 'octaves'?
    model=vgg                 ->  model=vgg: no such preset; choose one of custom, efficientnet_lite0, ...
    target=mixed_9            ->  target=mixed_9: no such preset for inception_v3; choose one of mixed_5, ...
    hydra/launcher=parallel   ->  hydra/launcher=parallel needs its Hydra plugin: pip install 'dreamrun[launchers]'
    input.path=a (1).jpg      ->  cannot read the override ...: quote the value for Hydra, "input.path='a (1).jpg'"
"""
import difflib
import shlex
from typing import Any, Iterator, Optional, Sequence

from hydra.errors import ConfigCompositionException, MissingConfigException, OverrideParseException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, ValidationError

from dreamrun.config.file_argument import hydra_quoted
from dreamrun.config.schema import DreamConfig

CONFIG_ERRORS = (ConfigCompositionException, OverrideParseException)  # MissingConfigException is one of the first

# the plugin schema each of dreamrun's launcher presets extends (conf/hydra/launcher/*.yaml)
LAUNCHER_PLUGIN_SCHEMAS = {"hydra/launcher/joblib": "parallel", "hydra/launcher/submitit_local": "local"}

# keys whose entries the user names: no typo there is unknown
OPEN_KEYS = ("target", "model.layers", "model.kwargs")


def raised_by_hydra(error: Exception) -> bool:
    """A ValueError Hydra raises while composing, for an override it cannot take (target=null): the
    user's mistake, not a bug, though Hydra does not say so with one of CONFIG_ERRORS."""
    frame = error.__traceback__
    while frame is not None and frame.tb_next is not None:
        frame = frame.tb_next
    module = frame.tb_frame.f_globals.get("__name__", "") if frame is not None else ""
    return isinstance(error, ValueError) and module.startswith("hydra.")


def one_line(error: Exception, overrides: Sequence[str] = ()) -> str:
    """What is wrong with the config, in one line, for any of CONFIG_ERRORS or raised_by_hydra, with the
    overrides it came from (a target preset is chosen from the model's own)."""
    if isinstance(error, ValueError) and "Got NoneType" in str(error):
        return "a config group cannot be null: drop it with ~GROUP (e.g. ~target), or choose a preset"
    cause = error.__cause__
    if isinstance(error, MissingConfigException):
        return _missing_config(error, overrides)
    if isinstance(error, OverrideParseException):
        return _unreadable_override(error.override, error.message.splitlines()[0])
    if isinstance(cause, (ConfigAttributeError, ConfigKeyError)) and cause.full_key:
        return unknown_key(cause.full_key)
    if isinstance(cause, ValidationError):
        override = str(error).removeprefix("Error merging override ").strip()
        return f"{override}: {str(cause).splitlines()[0]}"
    return str(error).splitlines()[0]


def _unreadable_override(override: str, reason: str) -> str:
    """Hydra's grammar refused an override: the quoting that works. A value that is no list or dict is
    most often a file name (`input.path=photo (1).jpg`): quoted for Hydra inside quotes for the shell."""
    key, equals, value = override.partition("=")
    if not equals or value.lstrip().startswith(("[", "{")):
        return (f"cannot read the override '{override}' ({reason}): quote lists and dicts for the shell, "
                "e.g. 'target.Mixed_6c=[12,45]'")
    works = _for_the_shell(f"{key}={hydra_quoted(value)}")
    hint = f"; or name the file first: dreamrun {shlex.quote(value)}" if key.lstrip("+") == "input.path" else ""
    return f"cannot read the override '{override}' ({reason}): quote the value for Hydra, {works}{hint}"


def _for_the_shell(word: str) -> str:
    """word quoted for a POSIX shell, in double quotes where they need no escapes (it reads best)."""
    return f'"{word}"' if not set(word) & set('"$`\\!') else shlex.quote(word)


def unknown_key(key: str) -> str:
    """The message for a key the schema does not have, naming the closest one it has."""
    close = difflib.get_close_matches(key, list(schema_keys()), n=1, cutoff=0.7)
    hint = f"did you mean '{close[0]}'?" if close else "`python -m dreamrun --cfg job` lists every key"
    return f"unknown key '{key}': {hint}"


def schema_keys() -> Iterator[str]:
    """Every dotted key of the schema (entries of the open dictionaries aside)."""
    def walk(node: Any, prefix: str) -> Iterator[str]:
        for key in node:
            dotted = f"{prefix}.{key}" if prefix else str(key)
            yield dotted
            value = node._get_node(key)
            if isinstance(value, DictConfig) and dotted not in OPEN_KEYS:
                yield from walk(value, dotted)

    yield from walk(OmegaConf.structured(DreamConfig), "")


def _missing_config(error: MissingConfigException, overrides: Sequence[str]) -> str:
    missing = error.missing_cfg_file or ""
    if missing in LAUNCHER_PLUGIN_SCHEMAS:
        return (f"hydra/launcher={LAUNCHER_PLUGIN_SCHEMAS[missing]} needs its Hydra plugin: "
                "pip install 'dreamrun[launchers]'")
    group, _, option = missing.rpartition("/")
    if not group or not error.options:
        return str(error).splitlines()[0]
    options, model = sorted(error.options), None
    if group == "target":  # only the chosen model's: 57 presets of six models help no one
        options, model = _model_target_presets(options, overrides)
    close = difflib.get_close_matches(option, options, n=1, cutoff=0.7)
    hint = f"did you mean {group}={close[0]}? " if close else ""
    whose = f" for {model}" if model else ""
    return f"{group}={option}: no such preset{whose}; {hint}choose one of {', '.join(options)}"


def _model_target_presets(options: list[str], overrides: Sequence[str]) -> tuple[list[str], Optional[str]]:
    """The target presets among options that fit the model the overrides choose, and its name; all of
    them, and None, where the model's layers cannot be read without building it."""
    from dreamrun.config.presets import default_model, fitting_target_presets, model_layers

    chosen = [o.split("=", 1)[1] for o in overrides if o.lstrip("+").startswith("model=")]
    model = chosen[-1] if chosen else default_model()
    layers = model_layers().get(model or "")
    if not layers:
        return options, None
    fitting = [name for name in fitting_target_presets(layers) if name in options]
    return (fitting, model) if fitting else (options, None)

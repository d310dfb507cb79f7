"""The recipe inside the image: every dream PNG carries what remakes it, in PNG text chunks.

    dreamrun-recipe dream.png              # the command that made it
    dreamrun-recipe dream.png --run        # remake it into a new run dir (extra overrides may follow)

A recipe is the job's overrides (its file paths made absolute, so it runs from any directory), the composed
config, the versions of dreamrun, torch and torchvision, the device and the seed. On the CPU with the same
versions, the command makes the same pixels.
"""
import argparse
import json
import logging
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

from omegaconf import DictConfig, OmegaConf

from dreamrun.config.file_argument import hydra_quoted
from dreamrun.errors import EXIT_USER_ERROR, DreamError

CHUNK = "dreamrun:recipe"  # one iTXt chunk of JSON: a re-save by most tools drops it, which we say
PATH_KEYS = ("input.path", "guide.path", "mask.path", "model.weights")
NOT_REMADE = ("overwrite", "resume")  # how the earlier run met its run dir, not how its pixels were made


@dataclass(frozen=True)
class Recipe:
    overrides: tuple[str, ...]
    config: dict[str, Any]
    versions: dict[str, str]
    device: str
    seed: int

    def command(self) -> str:
        """The shell command that remakes the image, on the device it was made on."""
        return " ".join(shell_quoted(word) for word in ["dreamrun", *self.arguments()])

    def arguments(self, device: Optional[str] = None) -> list[str]:
        kept = [o for o in self.overrides if _key(o) != "device"]
        return [*kept, f"device={device or self.device}"]

    def png_text(self) -> dict[str, str]:
        return {CHUNK: json.dumps({"overrides": list(self.overrides), "config": self.config,
                                   "versions": self.versions, "device": self.device, "seed": self.seed})}


def shell_quoted(word: str) -> str:
    """word for a POSIX shell, in double quotes where it holds single quotes and nothing a shell expands
    there ("input.path='photo (1).jpg'" rather than shlex's '"'"' runs)."""
    quoted = shlex.quote(word)
    if quoted != word and "'" in word and not any(c in word for c in '"$`\\!'):
        return f'"{word}"'
    return quoted


def versions() -> dict[str, str]:
    """The installed versions (read from the packages' metadata: no import, so a broken torchvision cannot
    fail here)."""
    from importlib.metadata import PackageNotFoundError, version

    def installed(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "unknown"

    return {name: installed(name) for name in ("dreamrun", "torch", "torchvision")}


def recipe_of(cfg: DictConfig, overrides: Sequence[str], device: str) -> Recipe:
    """The recipe of a job made from overrides (Hydra's task overrides) into cfg, dreamed on device. Files
    named by a relative path are named absolutely, in the overrides and the config: it runs from anywhere."""
    paths = {key: path for key in PATH_KEYS if (path := _absolute_file(OmegaConf.select(cfg, key)))}
    kept = [f"{o.split('=', 1)[0]}={hydra_quoted(paths[_key(o)])}" if _key(o) in paths and "=" in o else o
            for o in overrides if _key(o) not in NOT_REMADE]
    config = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    for key, path in paths.items():
        *parents, last = key.split(".")
        node = config
        for parent in parents:
            node = node[parent]
        node[last] = path
    return Recipe(tuple(kept), config, versions(), device, int(cfg.seed))


def _absolute_file(value: Any) -> Optional[str]:
    """The absolute path of the existing file value names by a relative path; None for anything else (an
    absolute path, a weights name like DEFAULT, null)."""
    if not isinstance(value, str) or Path(value).expanduser().is_absolute() or not Path(value).expanduser().exists():
        return None
    return str(Path(value).expanduser().resolve())


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def read_recipe(path: str | Path) -> Recipe:
    """The recipe a dream PNG carries; a DreamError where the file has none or cannot be read."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path).expanduser()
    try:
        with Image.open(path) as image:
            text = dict(getattr(image, "text", {}) or {})
    except FileNotFoundError:
        raise DreamError(f"no such file: {path}") from None
    except (UnidentifiedImageError, OSError) as e:
        raise DreamError(f"cannot read {path} as an image: {e}") from None
    if CHUNK not in text:
        raise DreamError(f"{path} holds no dreamrun recipe: the recipe lives in a dream PNG's text chunks, "
                         "which a JPEG, a re-save or a screenshot drops; use the dream.png of the run dir")
    try:
        data = json.loads(text[CHUNK])
        return Recipe(tuple(data["overrides"]), data["config"], data["versions"], data["device"], data["seed"])
    except (ValueError, KeyError, TypeError):
        raise DreamError(f"{path}'s dreamrun recipe is damaged (its {CHUNK} text chunk is not the recipe's JSON)") \
            from None


def differences(recipe: Recipe, arguments: Sequence[str], extra: Sequence[str] = ()) -> list[str]:
    """What differs between the recipe and a remake here: versions, and config keys the same overrides now
    compose differently (changed defaults, a user config dir), each as a short phrase. Keys the extra
    overrides set differ on purpose."""
    from dreamrun.config.compose import compose_config

    found = [f"{name} {made} made it, this is {here}" for name, made in recipe.versions.items()
             if (here := versions().get(name)) != made]
    composed = OmegaConf.to_container(compose_config(*arguments), resolve=True, enum_to_str=True)
    made, now = _flat(recipe.config), _flat(composed)
    changed = [key for key in sorted(set(made) | set(now))
               if key.split(".")[0] not in ("device", *NOT_REMADE) and made.get(key, "<absent>") != now.get(key, "<absent>")
               and not any(f"{key}.".startswith(f"{_key(o)}.") for o in extra)]
    if changed:
        found.append(f"the config now differs in {', '.join(changed[:5])}" + (" …" if len(changed) > 5 else ""))
    return found


def _flat(data: Any, prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} as {"a.b": 1}."""
    if not isinstance(data, Mapping):
        return {prefix[:-1]: data}
    flat: dict[str, Any] = {}
    for key, value in data.items():
        flat.update(_flat(value, f"{prefix}{key}."))
    return flat


def remake(recipe: Recipe, extra: Sequence[str]) -> int:
    """Run the recipe (plus extra overrides) as a new dreamrun job; returns its exit status."""
    import torch

    device = recipe.device
    if device.startswith("cuda") and not torch.cuda.is_available():
        logging.warning("made on %s; this machine has no CUDA, so it dreams on the CPU and the pixels will differ "
                        "slightly", device)
        device = "cpu"
    elif device.startswith("cuda:") and int(device.split(":")[1]) >= torch.cuda.device_count():
        device = "cuda"  # a sweep's job on its own GPU of several: any GPU of the same kind makes the same pixels
    arguments = [*recipe.arguments(device), *extra]
    for difference in differences(recipe, arguments, extra):
        logging.warning("the pixels may differ: %s", difference)
    logging.info("%s", " ".join(shell_quoted(word) for word in ["dreamrun", *arguments]))
    return subprocess.run([sys.executable, "-m", "dreamrun", *arguments]).returncode


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(
        prog="dreamrun-recipe", description="The command that made a dream PNG, read from the image itself.")
    parser.add_argument("image", help="a dream.png (or a frame) that dreamrun wrote")
    parser.add_argument("--run", action="store_true", help="remake it into a new run dir")
    parser.add_argument("overrides", nargs="*", help="with --run: overrides added to the recipe's (steps=20)")
    args = parser.parse_intermixed_args(argv)
    logging.basicConfig(format="%(message)s", level=logging.INFO, stream=sys.stderr)
    try:
        recipe = read_recipe(args.image)
        if args.overrides and not args.run:
            raise DreamError("overrides after the image go with --run (dreamrun-recipe IMAGE --run steps=20)")
        if not args.run:
            print(recipe.command())
            return
        sys.exit(remake(recipe, args.overrides))
    except DreamError as e:
        print(f"dreamrun-recipe: error: {e}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)

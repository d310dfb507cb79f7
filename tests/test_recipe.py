"""The recipe inside the image: a dream PNG says how to remake itself, and `dreamrun-recipe --run` does."""
import json
import os
import shlex
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from conftest import TINY, ZOOM, run_cli
from dreamrun.jobs.frame_state import frame_path
from dreamrun.outputs.recipe import CHUNK, shell_quoted


RECIPE = str(Path(sys.executable).parent / "dreamrun-recipe")  # the console script pip installed


def run_recipe(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([RECIPE, *args], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def _chunk(path: Path) -> dict:
    with Image.open(path) as image:
        return json.loads(image.text[CHUNK])


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """A tiny dream of a photo named relatively, with spaces, from its own directory."""
    where = tmp_path_factory.mktemp("made")
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 96, 3), dtype=np.uint8)).save(where / "my (1).png")
    proc = run_cli("my (1).png", *TINY, "seed=7", "overwrite=true", "hydra.run.dir=run", cwd=where)
    assert proc.returncode == 0, proc.stderr
    return where


def test_a_dream_png_carries_its_overrides_config_versions_device_and_seed(made):
    recipe = _chunk(made / "run" / "dream.png")
    assert recipe["versions"] == {"dreamrun": version("dreamrun"), "torch": version("torch"),
                                  "torchvision": version("torchvision")}
    assert recipe["device"] == "cpu" and recipe["seed"] == 7 == recipe["config"]["seed"]
    assert recipe["config"]["model"]["name"] == "efficientnet_lite0" and recipe["config"]["steps"] == 2
    # the photo's path made absolute, so the recipe runs from anywhere; how the run met its dir is not kept
    assert f"input.path='{made / 'my (1).png'}'" in recipe["overrides"]
    assert "overwrite=true" not in recipe["overrides"]
    # the octave images carry it too
    assert _chunk(made / "run" / "octave_0.png") == recipe


def test_the_printed_command_is_the_recipe_for_a_shell(made):
    proc = run_recipe(str(made / "run" / "dream.png"), cwd=made)
    assert proc.returncode == 0, proc.stderr
    words = shlex.split(proc.stdout)
    recipe = _chunk(made / "run" / "dream.png")
    # the device it was made on, last, in place of the device override it was given
    assert words == ["dreamrun", *[o for o in recipe["overrides"] if not o.startswith("device=")], "device=cpu"]


def test_run_remakes_the_same_pixels_from_another_directory(made, tmp_path):
    proc = run_recipe(str(made / "run" / "dream.png"), "--run", f"hydra.run.dir={tmp_path / 'again'}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(tmp_path / "again" / "dream.png")
    assert "may differ" not in proc.stderr
    np.testing.assert_array_equal(_pixels(tmp_path / "again" / "dream.png"), _pixels(made / "run" / "dream.png"))


def test_run_takes_added_overrides(made, tmp_path):
    proc = run_recipe(str(made / "run" / "dream.png"), "--run", "steps=1", "log=none",
                      f"hydra.run.dir={tmp_path / 'fewer'}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert _chunk(tmp_path / "fewer" / "dream.png")["config"]["steps"] == 1


def test_a_remake_names_what_differs_from_the_making(made, tmp_path):
    """An image made by another torch, with a default since changed: both said before the remake."""
    recipe = _chunk(made / "run" / "dream.png")
    recipe["versions"]["torch"] = "1.0.0"
    recipe["config"]["octave_scale"] = 1.3
    info = PngInfo()
    info.add_itxt(CHUNK, json.dumps(recipe))
    with Image.open(made / "run" / "dream.png") as dream:
        dream.save(tmp_path / "older.png", pnginfo=info)
    proc = run_recipe(str(tmp_path / "older.png"), "--run", "log=none", f"hydra.run.dir={tmp_path / 'again'}",
                      cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    said = proc.stderr.splitlines()
    assert f"the pixels may differ: torch 1.0.0 made it, this is {version('torch')}" in said
    # log=none differs on purpose: only octave_scale is named
    assert "the pixels may differ: the config now differs in octave_scale" in said


def test_zoom_frames_carry_the_recipe_of_the_zoom(tmp_path):
    proc = run_cli(*ZOOM, "log=none", f"hydra.run.dir={tmp_path / 'zoom'}")
    assert proc.returncode == 0, proc.stderr
    for frame in [frame_path(tmp_path / "zoom", 3), tmp_path / "zoom" / "dream.png"]:
        recipe = _chunk(frame)
        assert "mode=zoom" in recipe["overrides"] and recipe["config"]["zoom"]["frames"] == 4


@pytest.mark.parametrize("strip", ["jpeg", "re-saved png"])
def test_an_image_without_its_recipe_is_one_line(made, tmp_path, strip):
    with Image.open(made / "run" / "dream.png") as dream:
        path = tmp_path / ("dream.jpg" if strip == "jpeg" else "dream.png")
        dream.convert("RGB").save(path)
    proc = run_recipe(str(path), cwd=tmp_path)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [
        f"dreamrun-recipe: error: {path} holds no dreamrun recipe: the recipe lives in a dream PNG's text chunks, "
        "which a JPEG, a re-save or a screenshot drops; use the dream.png of the run dir"]


@pytest.mark.parametrize("word", ["steps=3", "input.path='photo (1).jpg'", "a'b\"c", "x=$HOME", "tab\there",
                                  "café ~/x", "it's", "'", "back\\slash'"])
def test_shell_quoting_reads_back_as_the_word(word):
    assert shlex.split(shell_quoted(word)) == [word]

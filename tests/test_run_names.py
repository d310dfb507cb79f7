"""Run dir and sweep job dir names: readable, shell-safe, never shared."""
import os
import re
import shlex
import shutil
import string
import subprocess
import sys
from pathlib import Path

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from hypothesis import given, settings, strategies as st
from omegaconf import OmegaConf

from conftest import REPO
from dreamrun.config.run_names import MAX_LENGTH, TIME_LENGTH, run_name, slug

SAFE = set(string.ascii_letters + string.digits + "._-+=@%")  # nothing a shell expands or splits

NASTY = [
    "input.path='my photo.jpg'", 'input.path="a b\tc"', "x=*", "x=?", "x=a*b?[c]", "x=$HOME", "x=${oc.env:HOME}",
    "x=`rm -rf ~`", "x=$(reboot)", "x={a: 1, b: [2, 3]}", "x=a;b", "x=a|b&c", "x=a>b<c", "x=!1", "x=#1",
    "x=~/photos", "x='it\\'s'", "x=a\\,b", "x=été", "x=日本語", "x=😀", "x=\u202etxt.exe", "x=a\nb", "x=a\x00b",
    "input.path=../../etc/passwd", "x=..", ".", "..", "", "   ", "~target.block_12", "x=-rf", "x=(a)",
]


def _is_safe(name: str) -> bool:
    return set(name) <= SAFE and shlex.quote(name) == name and name not in ("", ".", "..")


@pytest.mark.parametrize("overrides, name", [
    ("octaves=4,target=mixed_6", "octaves=4_target=mixed_6"),                      # between overrides: _
    ("target.block_12=[5]", "target.block_12=5"),                                  # brackets vanish
    ("target.block_12=[5,17]", "target.block_12=5-17"),                            # inside lists: -
    ("+target.block_3=[1, 2],octaves=1", "+target.block_3=1-2_octaves=1"),
    ("+target.inception_3b={weight: -0.5}", "+target.inception_3b=weight--0.5"),  # dicts: , and : become -
    ("input.path='my photo, 2.jpg',seed=1", "input.path=my_photo_2.jpg_seed=1"),   # quoted: kept, made safe
    ("guide.path=été.jpg", "guide.path=ete.jpg"),                                  # accents dropped
])
def test_overrides_make_a_readable_shell_safe_name(overrides, name):
    assert slug(overrides) == name


@pytest.mark.parametrize("overrides", NASTY)
def test_nasty_overrides_still_make_a_shell_safe_name(overrides):
    assert _is_safe(slug(overrides))


@settings(max_examples=500, deadline=None)
@given(st.text())
def test_every_name_is_one_shell_safe_path_component(overrides):
    name = slug(overrides)
    assert _is_safe(name) and len(name) <= MAX_LENGTH
    assert not name.startswith((".", "_"))


def test_paths_and_traversal_cannot_escape_the_sweep_dir():
    name = slug("input.path=../../etc/passwd,x=a\\b")
    assert "/" not in name and "\\" not in name
    assert slug("..") == "defaults" and slug("") == "defaults"


def test_long_names_are_cut_but_stay_distinct():
    a = slug("target=" + "x" * 200 + ",seed=1")
    b = slug("target=" + "x" * 200 + ",seed=2")
    assert len(a) == len(b) == MAX_LENGTH
    assert a != b


@pytest.mark.skipif(not shutil.which("bash"), reason="needs bash")
def test_a_shell_reads_each_name_as_one_word_unchanged(tmp_path):
    names = [f"0_{slug(o)}" for o in NASTY]
    for name in names:
        (tmp_path / name).mkdir(exist_ok=True)  # something for a glob to match, were there one
    script = 'shopt -s extglob nullglob; printf "%s\\n" ' + " ".join(names)
    shown = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert shown.stdout.splitlines() == names


def _run_name(model, preset, overrides, target):
    return run_name(model, preset, OmegaConf.create(overrides), OmegaConf.create(target))


def test_a_run_is_named_by_its_model_and_target_presets():
    assert _run_name("efficientnet_lite0", "block_12", ["model=efficientnet_lite0"], {"block_12": "all"}) == \
        "efficientnet_lite0_block_12"
    assert _run_name("inception_v3", "mixed_6", ["target=mixed_6"], {f"Mixed_6{c}": "all" for c in "abcde"}) == \
        "inception_v3_mixed_6"


@pytest.mark.parametrize("overrides, target, name", [
    (["target.block_12=[5,17]"], {"block_12": [5, 17]}, "efficientnet_lite0_block_12@5-17"),
    (["target={block_12: [5]}"], {"block_12": [5]}, "efficientnet_lite0_block_12@5"),
    (["+target.block_3=all"], {"block_12": "all", "block_3": "all"}, "efficientnet_lite0_block_12+block_3"),
    (["~target.block_12", "+target.block_3=all"], {"block_3": "all"}, "efficientnet_lite0_block_3"),
    (["~target.block_12", "+target.logits={classes: ['great white shark']}"],
     {"logits": {"classes": ["great white shark"]}}, "efficientnet_lite0_logits@classes-great_white_shark"),
])
def test_a_target_edited_on_the_command_line_is_named_by_its_layers(overrides, target, name):
    assert _run_name("efficientnet_lite0", "block_12", overrides, target) == name


# OmegaConf refuses a malformed interpolation ('${') when the config is made, so no target holds one
_CONFIG_TEXT = st.text().filter(lambda s: "${" not in s)


@settings(max_examples=300, deadline=None)
@given(st.text(), st.dictionaries(st.text(min_size=1), st.one_of(st.just("all"), st.lists(st.integers()),
                                                                 _CONFIG_TEXT), min_size=1))
def test_a_run_name_is_shell_safe_and_can_be_given_back_as_hydra_run_dir(model, target):
    name = _run_name(model, "block_12", ["target.x=[1]"], target)
    assert _is_safe(name) and len(name) <= MAX_LENGTH - TIME_LENGTH
    run_dir = f"outputs/2026-12-02/10-50-29_{name}_2"  # as resume=true and overwrite=true need it, unquoted
    assert OverridesParser.create().parse_override(f"hydra.run.dir={run_dir}").value() == run_dir


def _dreamrun(cwd, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}  # an uninstalled checkout runs from another cwd too
    return subprocess.Popen([sys.executable, "-m", "dreamrun", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_runs_started_together_get_their_own_readable_dirs(tmp_path):
    """Two runs of the model's default target (most often in the same second) and one of a channel."""
    tiny = ["model=efficientnet_lite0", "input.size=64", "octaves=1", "steps=1", "device=cpu"]
    runs = [_dreamrun(tmp_path, *tiny, *edit) for edit in ([], [], ["target.block_12=[5]"])]
    dreams = []
    for run in runs:
        out, err = run.communicate(timeout=300)
        assert run.returncode == 0, err
        dreams.append(Path(out.strip().splitlines()[-1]))
    assert len(set(dreams)) == 3 and all(dream.is_file() for dream in dreams)
    names = [dream.parent.name for dream in dreams]
    assert all(re.fullmatch(r"\d\d-\d\d-\d\d_efficientnet_lite0_block_12(_2)?", name) for name in names[:2]), names
    assert re.fullmatch(r"\d\d-\d\d-\d\d_efficientnet_lite0_block_12@5", names[2]), names

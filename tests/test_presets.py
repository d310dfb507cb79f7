"""Presets as a user finds them: another model's target named as such, only the model's own listed, and
presets of the user's own (a config dir searched after dreamrun's) for the CLI, dreamrun-layers and dream()."""
from pathlib import Path

import pytest
from omegaconf import OmegaConf
from PIL import Image

from conftest import TINY, run_cli
from dreamrun import dream
from dreamrun.config.compose import compose_config, config_dir
from dreamrun.config.hydra_errors import CONFIG_ERRORS, one_line
from dreamrun.errors import DreamError
from dreamrun.jobs.dreamer import compile_target
from dreamrun.nets import layers

MINE = {"model": {"name": "lite0_mine", "arch": "efficientnet_lite0", "weights": None, "min_size": 32,
                  "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5],
                  "layers": {"early": "_blocks.3", "late": "_blocks.9"}}}


def user_dir(root):
    """A config dir with a model preset and a target preset of the user's own."""
    (root / "model").mkdir(parents=True)
    (root / "target").mkdir()
    (root / "model" / "lite0_mine.yaml").write_text("# @package _global_\ndefaults:\n  - override /target: late_eyes\n"
                                                    + OmegaConf.to_yaml(MINE))
    (root / "target" / "late_eyes.yaml").write_text("late: [1, 2]\n")
    return root


def refusal(*overrides):
    with pytest.raises(CONFIG_ERRORS) as e:
        compose_config(*overrides)
    return one_line(e.value, overrides)


def test_another_models_target_preset_is_named_as_such(compose_cfg):
    cfg = compose_cfg("model=googlenet", "target=mixed_6")
    with pytest.raises(DreamError) as e:
        compile_target(cfg)
    assert str(e.value).startswith("target=mixed_6 is a preset of inception_v3 (model=inception_v3), not of "
                                   "googlenet; googlenet's target presets: inception_3a, inception_3b,")


def test_a_missing_target_preset_lists_only_the_models_own(compose_cfg):
    line = refusal("target=block_99")  # the default model: inception_v3
    assert line.startswith("target=block_99: no such preset for inception_v3; choose one of mixed_5, ")
    listed = line.split("choose one of ")[1].split(", ")
    # an independent reference: Inception-v3's presets are the files named after its Mixed blocks
    assert listed == sorted(path.stem for path in (Path(config_dir()) / "target").glob("mixed_*.yaml"))
    line = refusal("model=efficientnet_lite0", "target=block_99")
    assert "no such preset for efficientnet_lite0; did you mean target=block_9?" in line
    assert "mixed" not in line


def test_a_user_config_dir_adds_presets_to_the_cli_and_dream(tmp_path, monkeypatch):
    mine = user_dir(tmp_path / "mine")
    monkeypatch.setenv("DREAMRUN_CONFIG_DIR", str(mine))
    cfg = compose_config("model=lite0_mine", "target=late_eyes")
    assert (cfg.model.name, OmegaConf.to_container(cfg.target)) == ("lite0_mine", {"late": [1, 2]})
    proc = run_cli(*TINY, "model=lite0_mine", "target=late_eyes", "octaves=1", "hydra.run.dir=run",
                   cwd=tmp_path, env={"DREAMRUN_CONFIG_DIR": str(mine)})  # from anywhere, not the checkout
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "run" / "dream.png").is_file()
    dreamed = dream(Image.new("RGB", (96, 64)), model="lite0_mine", octaves=1, steps=1, device="cpu", progress=False)
    assert list(dreamed.info["dreamrun"]["targets"]) == ["late[1,2]"]  # the default target: the user's preset


def test_config_dir_flag_works_for_dreamrun_and_dreamrun_layers(tmp_path, monkeypatch, capsys):
    mine = user_dir(tmp_path / "mine")
    monkeypatch.setenv("DREAMRUN_CONFIG_DIR", str(tmp_path / "none"))
    layers.main(["--config-dir", str(mine), "model=lite0_mine"])
    listing = capsys.readouterr().out.splitlines()
    assert listing[0] == "lite0_mine: input at least 32 px"
    assert [row.split()[0] for row in listing[2:4]] == ["early", "late"]
    assert listing[3].endswith("late_eyes")
    proc = run_cli("--config-dir", str(mine), "model=lite0_mine", "target=late_eyes", "--cfg", "job")
    assert proc.returncode == 0, proc.stderr
    assert "name: lite0_mine" in proc.stdout


def test_without_a_user_dir_nothing_changes(tmp_path, monkeypatch):
    monkeypatch.setenv("DREAMRUN_CONFIG_DIR", str(tmp_path / "not there"))
    assert "model=lite0_mine: no such preset" in refusal("model=lite0_mine")
    proc = run_cli("--cfg", "job", env={"DREAMRUN_CONFIG_DIR": str(tmp_path / "not there")})
    assert proc.returncode == 0 and proc.stderr == ""  # not Hydra's warning of a search path that is not there


def test_layers_of_another_model_that_are_no_preset_are_named_as_layers(compose_cfg):
    cfg = compose_cfg("model=efficientnet_lite0", "~target", "+target.Mixed_6e=all", "+target.Mixed_7a=[1]")
    with pytest.raises(DreamError, match=r"^Mixed_6e, Mixed_7a are layers of inception_v3 \(model=inception_v3\), "
                                         r"not of efficientnet_lite0; efficientnet_lite0's target presets: block_0,"):
        compile_target(cfg)

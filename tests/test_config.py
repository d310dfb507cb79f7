from enum import Enum
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from dreamrun.config.compose import config_dir
from dreamrun.config.keys import flatten_config
from dreamrun.core.objectives import parse_target
from dreamrun.config.presets import fitting_target_presets

CONF = Path(config_dir())


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def test_every_target_preset_composes_with_a_model_that_has_its_layers(compose_cfg):
    fitting = {model: list(fitting_target_presets(list(compose_cfg(f"model={model}").model.layers)))
               for model in options("model") if model != "custom"}
    for name in options("target"):
        models = [model for model, presets in fitting.items() if name in presets]
        assert models, f"no model has the layers of target={name}"
        for model in models:
            cfg = compose_cfg(f"model={model}", f"target={name}")
            assert parse_target(OmegaConf.to_container(cfg.target), list(cfg.model.layers)).layers


@pytest.mark.parametrize("group", ["jitter", "input", "schedule", "model", "gradient"])
def test_every_preset_of_a_group_composes_to_what_its_file_says(compose_cfg, group):
    """Each value a preset's YAML file sets is what the composed config holds (`# @package _global_`
    files set keys from the top). ??? marks a value the user must give: a merge leaves it unset."""
    for name in options(group):
        cfg = compose_cfg(f"{group}={name}")
        text = (CONF / group / f"{name}.yaml").read_text()
        preset = OmegaConf.create(text)
        node = cfg if "@package _global_" in text else cfg[group]
        leaves = flatten_config(OmegaConf.masked_copy(preset, [k for k in preset if k != "defaults"]))
        for key, value in leaves.items():
            if value == "???":
                continue
            composed = OmegaConf.select(node, key)
            composed = OmegaConf.to_container(composed) if OmegaConf.is_config(composed) else composed
            assert (composed.value if isinstance(composed, Enum) else composed) == value, (name, key)


def test_presets_exist_for_every_inception_block_and_stage():
    blocks = [f"mixed_{b}" for b in ("5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e", "7a", "7b", "7c")]
    assert set(blocks + ["mixed_5", "mixed_6", "mixed_7"]) <= set(options("target"))
    assert {f"block_{i}" for i in range(16)} <= set(options("target"))


def test_stage_preset_targets_every_block_of_the_stage(compose_cfg):
    cfg = compose_cfg("target=mixed_6")
    assert list(cfg.target) == ["Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e"]


def test_default_target_follows_the_model(compose_cfg):
    assert all(k.startswith("Mixed_") for k in compose_cfg().target)
    defaults = {"googlenet": ["inception_4c"], "vgg16": ["conv4_3"], "vgg19": ["conv4_3"], "resnet50": ["layer3"]}
    assert {model: list(compose_cfg(f"model={model}").target) for model in defaults} == defaults
    assert list(compose_cfg("model=custom").target) == []
    assert list(compose_cfg("model=efficientnet_lite0").target) == ["block_12"]
    assert list(compose_cfg("model=efficientnet_lite0", "target=block_3").target) == ["block_3"]


def test_target_dictionary_is_editable_from_the_command_line(compose_cfg):
    cfg = compose_cfg("target=mixed_6", "+target.Mixed_5b=all", "target.Mixed_6e=[12,45]", "~target.Mixed_6a")
    assert cfg.target.Mixed_5b == "all"
    assert list(cfg.target.Mixed_6e) == [12, 45]
    assert "Mixed_6a" not in cfg.target


@pytest.mark.parametrize("n", [1, 2, 4, 7])
def test_octaves_takes_any_count(compose_cfg, n):
    assert compose_cfg(f"octaves={n}").octaves == n


def test_schedule_sets_the_four_keys_and_they_still_override(compose_cfg):
    fine = compose_cfg("schedule=fine")
    assert (fine.octaves, fine.steps) == (6, 20)
    cfg = compose_cfg("schedule=fine", "octaves=3", "steps=4", "step_size=0.5", "octave_scale=2")
    assert (cfg.octaves, cfg.steps, cfg.step_size, cfg.octave_scale) == (3, 4, 0.5, 2.0)


def test_misspelt_key_is_refused(compose_cfg):
    with pytest.raises(ConfigCompositionException, match="octave"):
        compose_cfg("octave=3")


def test_wrong_type_is_refused(compose_cfg):
    with pytest.raises(ConfigCompositionException, match="octaves"):
        compose_cfg("octaves=many")


def test_job_name_is_dreamrun_and_runs_do_not_chdir():
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="config", return_hydra_config=True)
    assert cfg.hydra.job.name == "dreamrun"
    assert cfg.hydra.job.chdir is False


def test_only_open_dictionaries_and_schema_keys_may_be_added_with_plus():
    from dreamrun.config.added_keys import unknown_added_keys

    fine = ["+target.block_3=[1]", "+model.layers={stage3: body.3}", "+model.kwargs.width=4", "++octaves=2",
            "+hydra.job.env_set.X=1", "+jitter=strong", "octaves=3"]
    assert unknown_added_keys(fine, groups={"jitter", "model", "target"}) == []
    assert unknown_added_keys(["+octave=3", "+zoom.frame=5", "++stepsize=0.1", "+model.layerz.a=b"],
                              groups={"jitter"}) == ["octave", "zoom.frame", "stepsize", "model.layerz.a"]

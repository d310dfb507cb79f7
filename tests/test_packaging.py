import re
import subprocess
import sys
from pathlib import Path

import pytest
from dreamrun.inputs.images import sample_image

from conftest import REPO, TINY


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """dreamrun installed from its wheel (pip install ., not editable) into a dir of its own."""
    tmp_path = tmp_path_factory.mktemp("installed")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", tmp_path / "wheel", REPO],
                   check=True, capture_output=True)
    wheel = next((tmp_path / "wheel").glob("dreamrun-*.whl"))
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", site, wheel],
                   check=True, capture_output=True)
    return site


def recipe(page: Path, name: str) -> str:
    """The bash block that follows `<!-- recipe: NAME -->` in a page of the manual, as a reader copies it."""
    match = re.search(rf"<!-- recipe: {name} -->\s*```bash\n(.*?)```", page.read_text(), re.S)
    assert match, f"no recipe {name} in {page}"
    return match.group(1)


@pytest.mark.slow
def test_the_manuals_recipe_for_a_model_of_your_own_works_after_pip_install(installed, tmp_path):
    """docs/models.md's recipe, word for word, on an installed wheel: a preset in ~/.config/dreamrun."""
    import torch
    import torchvision

    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    home.mkdir()
    elsewhere.mkdir()
    sample_image().resize((144, 96)).save(elsewhere / "photo.jpg")
    weights = torchvision.models.ResNet18_Weights.IMAGENET1K_V1  # random, where the download would put them
    cache = tmp_path / "torch" / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    torch.save(torchvision.models.resnet18().state_dict(), cache / Path(weights.url).name)
    env = {"PYTHONPATH": str(installed), "PATH": f"{installed / 'bin'}:/usr/bin:/bin", "HOME": str(home),
           "TORCH_HOME": str(tmp_path / "torch")}
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", recipe(REPO / "docs" / "models.md", "user-model")],
                          cwd=elsewhere, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    listing, dream = proc.stdout.splitlines()[:-1], Path(proc.stdout.splitlines()[-1])
    assert any(line.startswith("layer3 ") and "resnet18_eyes" in line for line in listing), proc.stdout
    assert "default target: target=resnet18_eyes" in listing
    assert dream.is_file() and dream.name == "dream.png" and dream.is_relative_to(elsewhere / "outputs")


@pytest.mark.slow
def test_a_non_editable_install_finds_its_config_tree(installed, tmp_path):
    """pip install . (a wheel) must ship conf/ and the sample photo inside the package."""
    site = installed
    elsewhere = tmp_path / "elsewhere"  # no conf/ here: the installed package must bring its own
    elsewhere.mkdir()
    env = {"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"}
    where = subprocess.run([sys.executable, "-c", "import dreamrun; print(dreamrun.__file__)"],
                           cwd=elsewhere, env=env, capture_output=True, text=True, check=True)
    assert where.stdout.startswith(str(site))
    proc = subprocess.run([sys.executable, site / "bin" / "dreamrun", *TINY, "hydra.run.dir=run"],
                          cwd=elsewhere, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert (elsewhere / "run" / "dream.png").is_file()
    assert (site / "bin" / "dreamrun-summarize").is_file()
    sweep = subprocess.run([sys.executable, site / "bin" / "dreamrun", "-m", "hydra/launcher=parallel",
                            *(o for o in TINY if not o.startswith("octaves=")), "octaves=1,2", "hydra.sweep.dir=sweep"],
                           cwd=elsewhere, env=env, capture_output=True, text=True)
    assert sweep.returncode == 0, sweep.stderr  # the launcher presets ship in the wheel too
    assert (elsewhere / "sweep" / "summary.png").is_file()
    # dreamrun's own launchers ship in the hydra_plugins namespace, where Hydra's scan finds them
    listed = subprocess.run([sys.executable, "-c", "from hydra.core.plugins import Plugins\n"
                             "from hydra.plugins.launcher import Launcher\n"
                             "print(*(f'{c.__module__}.{c.__name__}' for c in Plugins.instance().discover(Launcher)))"],
                            cwd=elsewhere, env=env, capture_output=True, text=True, check=True)
    assert {"hydra_plugins.dreamrun_launchers.slurm.SlurmLauncher",
            "hydra_plugins.dreamrun_launchers.batched.BatchedLauncher"} <= set(listed.stdout.split())

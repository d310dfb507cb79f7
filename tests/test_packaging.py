import subprocess
import sys

import pytest

from conftest import REPO, TINY


@pytest.mark.slow
def test_a_non_editable_install_finds_its_config_tree(tmp_path):
    """pip install . (a wheel) must ship conf/ and the sample photo inside the package."""
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", tmp_path / "wheel", REPO],
                   check=True, capture_output=True)
    wheel = next((tmp_path / "wheel").glob("dreamrun-*.whl"))
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", site, wheel],
                   check=True, capture_output=True)
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

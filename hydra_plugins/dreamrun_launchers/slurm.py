"""hydra/launcher=slurm: a sweep as one SLURM job array, through submitit (dreamrun.sweeps.cluster)."""
from typing import Any, Sequence

from hydra.core.utils import JobReturn

from hydra_plugins.dreamrun_launchers import DreamrunLauncher


class SlurmLauncher(DreamrunLauncher):
    def __init__(self, **params: Any) -> None:
        self.params = params  # hydra.launcher's keys (dreamrun.config.schema.SlurmLauncherConfig)

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from dreamrun.sweeps import cluster

        return cluster.launch(self, job_overrides, initial_job_idx)

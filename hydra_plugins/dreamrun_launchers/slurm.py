"""hydra/launcher=slurm: a sweep as one SLURM job array, through submitit (dreamrun.sweeps.cluster)."""
from typing import Any, Optional, Sequence

from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


class SlurmLauncher(Launcher):
    def __init__(self, **params: Any) -> None:
        self.params = params  # hydra.launcher's keys (config.schema.SlurmLauncherConfig)
        self.config: Optional[DictConfig] = None
        self.hydra_context: Optional[HydraContext] = None
        self.task_function: Optional[TaskFunction] = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config, self.hydra_context, self.task_function = config, hydra_context, task_function

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from dreamrun.sweeps import cluster

        return cluster.launch(self, job_overrides, initial_job_idx)

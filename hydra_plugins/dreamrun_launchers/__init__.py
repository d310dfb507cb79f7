"""dreamrun's Hydra launchers. A module of the hydra_plugins namespace, as Hydra requires of a launcher;
the work is done in dreamrun.sweeps. Hydra imports every module here at start-up: keep them light."""
from typing import Optional

from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


class DreamrunLauncher(Launcher):
    """What Hydra hands a launcher before the sweep, kept for launch (each launcher's own; abstract here,
    so Hydra lists it as no launcher of its own)."""

    config: Optional[DictConfig] = None
    hydra_context: Optional[HydraContext] = None
    task_function: Optional[TaskFunction] = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config, self.hydra_context, self.task_function = config, hydra_context, task_function

"""hydra/launcher=local: every job in a subprocess of its own on this machine, through submitit
(dreamrun.sweeps.cluster), followed to its end even where a job's process is killed."""
from typing import Any, Sequence

from hydra.core.utils import JobReturn

from hydra_plugins.dreamrun_launchers import DreamrunLauncher


class LocalLauncher(DreamrunLauncher):
    def __init__(self, **params: Any) -> None:
        self.params = params  # hydra.launcher's keys (submitit's local queue schema, conf/hydra/launcher/local.yaml)

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from dreamrun.sweeps import cluster

        return cluster.launch_local(self, job_overrides, initial_job_idx)

"""hydra/launcher=batched: a sweep's jobs dream together, one network, one batch (dreamrun.sweeps.batched)."""
from typing import Sequence

from hydra.core.utils import JobReturn

from hydra_plugins.dreamrun_launchers import DreamrunLauncher


class BatchedLauncher(DreamrunLauncher):
    def __init__(self, exact: bool = True) -> None:
        self.exact = exact

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from dreamrun.sweeps import batched

        return batched.launch(self, job_overrides, initial_job_idx)

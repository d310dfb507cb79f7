"""hydra/launcher=slurm: submitit's SLURM launcher, followed to the end of every job (dreamrun.sweeps.cluster)."""
import signal
from typing import Any, Sequence

try:
    from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher as SubmititSlurmLauncher
except ImportError:  # the launchers extra is not installed: no class, and Hydra lists no launcher here
    SubmititSlurmLauncher = None

if SubmititSlurmLauncher is not None:
    from hydra.core.singleton import Singleton
    from hydra.core.utils import JobReturn, JobStatus

    class SlurmLauncher(SubmititSlurmLauncher):
        """One SLURM job array per sweep. Unlike the plugin's own, it waits for every job however it ends,
        with squeue rather than sacct, and a job stops cleanly at SLURM's time-limit warning."""

        def __call__(self, *args: Any, **kwargs: Any) -> JobReturn:
            """One job, in its SLURM job's process."""
            import os

            from dreamrun.jobs import interrupts

            warning = os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2")  # what submitit asks SLURM to send
            interrupts.handle_time_limit_warning(getattr(signal, f"SIG{warning}", signal.SIGUSR2))
            return super().__call__(*args, **kwargs)

        def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
            import submitit

            from dreamrun.errors import refuse
            from dreamrun.sweeps import cluster

            executor = submitit.AutoExecutor(folder=self.params["submitit_folder"], cluster="slurm",
                                             slurm_max_num_timeout=self.params.get("max_num_timeout", 0))
            executor.update_parameters(**cluster.executor_parameters(self.params))
            numbers = [initial_job_idx + i for i in range(len(job_overrides))]
            arguments = [(list(overrides), "hydra.sweep.dir", num, f"job_id_for_{num}", Singleton.get_state())
                         for num, overrides in zip(numbers, job_overrides)]
            try:
                jobs = executor.map_array(self, *zip(*arguments))
            except submitit.core.utils.FailedJobError as e:  # sbatch said no: a request the cluster cannot meet
                refuse(cluster.refused_submission(str(e)))
            returns = []
            for job, num, overrides, how in zip(jobs, numbers, job_overrides, cluster.wait_for(jobs)):
                cluster.report(job, num, how)
                if how.result is not None and how.result[0] == "success":
                    returns.append(how.result[1])
                else:  # the job's result.json and the summary say what became of it
                    returns.append(JobReturn(overrides=list(overrides), status=JobStatus.COMPLETED))
            return returns

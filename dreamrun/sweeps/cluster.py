"""A sweep on a SLURM cluster, through submitit, followed to its end whatever SLURM does to its jobs.

The launching process submits one job array and waits until every job has ended: with a result
(submitit's result file), or gone from SLURM's queue without one (cancelled, timed out, its node lost).
It asks `squeue`, which every cluster answers; submitit alone asks `sacct`, which fails where accounting
is off, and then waits forever for a cancelled job and warns at every poll. What became of each job is
in its run dir's result.json, written by the job itself (dreamrun.jobs.skeleton), and in the summary.

In the job's process, the warning SLURM sends before the time limit (submitit asks for SIGUSR2,
`signal_delay_s` before it) stops the job like SIGTERM: its last image is kept and result.json says
`interrupted`. Jobs are not requeued: a requeued job would start its dream over, in a dir that holds
what it made before.
"""
import logging
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

from hydra.core.utils import JobReturn, run_job, setup_globals
from omegaconf import open_dict

from dreamrun.config.schema import SUBMITIT_KEYS
from dreamrun.errors import refuse
from dreamrun.sweeps.launch import failed_return, job_configs

log = logging.getLogger("dreamrun")

POLL_SECONDS = 2.0
# a job gone from the queue may still be writing its result file (on a network file system, showing it)
RESULT_GRACE_SECONDS = 10.0



def launch(launcher: Any, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> list[JobReturn]:
    """What SlurmLauncher.launch does: submit the sweep's jobs as one array, wait for every one to end."""
    import submitit  # there: sweeps.launch.LauncherCheck said so before the sweep began

    jobs = [SubmititJob(sweep_config, launcher.hydra_context, launcher.task_function)
            for sweep_config in job_configs(launcher, job_overrides, initial_job_idx)]
    executor = submitit.AutoExecutor(folder=launcher.params["submitit_folder"], cluster="slurm",
                                     slurm_max_num_timeout=0)
    executor.update_parameters(**executor_parameters(launcher.params))
    try:
        submitted = executor.map_array(_run, jobs)
    except submitit.core.utils.FailedJobError as e:  # sbatch said no: a request the cluster cannot meet
        refuse(refused_submission(str(e)))
    returns = []
    for job, done, how in zip(jobs, submitted, wait_for(submitted)):
        report(done, job.config.hydra.job.num, how)
        if how.result is not None and how.result[0] == "success":
            returns.append(how.result[1])
        else:  # its result.json and the sweep's summary say what became of it
            why = how.state if how.result is None else "failed"
            returns.append(failed_return(job.config, f"SLURM {how.job_id} ended {why}"))
    return returns


@dataclass
class SubmititJob:
    """One job of the sweep, pickled by submitit into its SLURM job (or local subprocess), where it runs
    through Hydra's run_job."""

    config: Any  # the job's config, composed in the launching process
    hydra_context: Any
    task_function: Any

    def __call__(self) -> JobReturn:
        import submitit

        from dreamrun.jobs import interrupts

        warning = os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2")  # what submitit asks SLURM to send
        interrupts.handle_time_limit_warning(getattr(signal, f"SIG{warning}", signal.SIGUSR2))
        setup_globals()
        with open_dict(self.config):
            self.config.hydra.job.id = submitit.JobEnvironment().job_id
        return run_job(hydra_context=self.hydra_context, task_function=self.task_function, config=self.config,
                       job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir")


def _run(job: SubmititJob) -> JobReturn:
    return job()


def launch_local(launcher: Any, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> list[JobReturn]:
    """What LocalLauncher.launch does: every job in a subprocess of its own on this machine, all at once.
    A job whose process ended without a result (killed: the out-of-memory killer, say) is a failed job,
    its result.json calls it died, and the sweep goes on to its summary."""
    import submitit

    jobs = [SubmititJob(sweep_config, launcher.hydra_context, launcher.task_function)
            for sweep_config in job_configs(launcher, job_overrides, initial_job_idx)]
    executor = submitit.AutoExecutor(folder=launcher.params["submitit_folder"], cluster="local")
    executor.update_parameters(**{key: value for key, value in launcher.params.items() if key in SUBMITIT_KEYS})
    returns = []
    for job, done in zip(jobs, executor.map_array(_run, jobs)):
        try:
            returns.append(done.results()[0])
        except submitit.core.utils.UncompletedJobError:
            log.warning("job %d ended without returning (its process killed?): its log is %s",
                        job.config.hydra.job.num, done.paths.stderr)
            returns.append(failed_return(job.config, "its process ended without a result"))
        except submitit.core.utils.FailedJobError as e:  # raised outside the job's own error handling
            last_line = str(e).strip().splitlines()[-1] if str(e).strip() else "?"
            log.warning("job %d failed: %s; its log is %s", job.config.hydra.job.num, last_line, done.paths.stderr)
            returns.append(failed_return(job.config, last_line))
    return returns


def executor_parameters(params: dict[str, Any]) -> dict[str, Any]:
    """The launcher config (hydra.launcher) as submitit's AutoExecutor.update_parameters takes it."""
    parameters = {key if key in SUBMITIT_KEYS else f"slurm_{key}": value
                  for key, value in params.items() if key not in ("submitit_folder", "_target_")}
    extra = dict(parameters.get("slurm_additional_parameters") or {})
    if not {"requeue", "no_requeue"} & set(extra):
        extra["no_requeue"] = True  # see the module's docstring
    parameters["slurm_additional_parameters"] = extra
    return parameters


def refused_submission(sbatch_error: str) -> str:
    """The line for a sweep sbatch would not take."""
    said = "; ".join(line.strip() for line in sbatch_error.splitlines() if line.strip()) or "no reason given"
    hint = " (a CPU-only cluster: hydra.launcher.gpus_per_task=0)" if "gres" in said.lower() else ""
    return (f"sbatch refused the sweep's jobs: {said}. Check hydra.launcher.partition and what each job asks "
            f"for{hint}; `sinfo` lists the partitions")


@dataclass
class Ended:
    """How a job of the sweep ended, as the launching process sees it."""

    job_id: str
    result: Optional[tuple[str, Any]]  # submitit's ("success", value) or ("error", traceback); None: none
    state: str  # SLURM's JobState when there is no result (CANCELLED, TIMEOUT, ...), else ""


def queued(job_ids: Sequence[str]) -> Optional[set[str]]:
    """Which of these jobs SLURM still holds (pending, running, completing); None if squeue failed."""
    arrays = sorted({job_id.split("_")[0] for job_id in job_ids})
    try:
        listed = subprocess.run(["squeue", "--noheader", "--array", "--format=%i", f"--jobs={','.join(arrays)}"],
                                capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if listed.returncode != 0:
        # squeue refuses ids it no longer knows, even beside known ones: ask again array by array
        if len(arrays) > 1:
            found = [queued([job for job in job_ids if job.split("_")[0] == array]) for array in arrays]
            return None if any(f is None for f in found) else set().union(*found)
        return set() if "Invalid job id" in listed.stderr else None
    return set(listed.stdout.split()) & set(job_ids)


def slurm_state(job_id: str) -> str:
    """SLURM's JobState of a job that has left the queue (scontrol remembers it for a few minutes)."""
    try:
        shown = subprocess.run(["scontrol", "--oneliner", "show", "job", job_id], capture_output=True, text=True,
                               timeout=60).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "UNKNOWN"
    fields = dict(field.split("=", 1) for field in shown.split() if "=" in field)
    return fields.get("JobState", "UNKNOWN")


def wait_for(jobs: Sequence[Any], poll: float = POLL_SECONDS) -> list[Ended]:
    """Wait until every submitit job has ended; how each did, in order. A job's result file says it ended
    (then submitit's job.result() reads it at once); one gone from the queue without it ended otherwise."""
    gone_since: dict[str, float] = {}
    ended: dict[str, Ended] = {}
    while len(ended) < len(jobs):
        waiting = [job for job in jobs if job.job_id not in ended]
        in_queue = queued([job.job_id for job in waiting])
        for job in waiting:
            if Path(job.paths.result_pickle).exists():
                ended[job.job_id] = Ended(job.job_id, _outcome(job), "")
            elif in_queue is not None and job.job_id not in in_queue:
                gone_since.setdefault(job.job_id, time.monotonic())
                if time.monotonic() - gone_since[job.job_id] >= RESULT_GRACE_SECONDS:
                    ended[job.job_id] = Ended(job.job_id, None, slurm_state(job.job_id))
        if len(ended) < len(jobs):
            time.sleep(poll)
    return [ended[job.job_id] for job in jobs]


def _outcome(job: Any) -> tuple[str, Any]:
    """submitit's ("success", value) or ("error", what it raised) of a job whose result file exists."""
    try:
        return "success", job.result()
    except Exception as e:  # what the job raised, with its traceback, as submitit tells it
        return "error", str(e)


def report(job: Any, job_num: int, how: Ended) -> None:
    """One line on stderr for a job that did not return normally; its own result.json says more."""
    if how.result is None:
        log.warning("job %d (SLURM %s) ended %s without returning: its log is %s", job_num, how.job_id, how.state,
                    job.paths.stderr)
    elif how.result[0] != "success":
        last_line = str(how.result[1]).strip().splitlines()[-1] if str(how.result[1]).strip() else "?"
        log.warning("job %d (SLURM %s) failed: %s; its log is %s", job_num, how.job_id, last_line, job.paths.stderr)

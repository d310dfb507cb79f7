"""Many jobs in one process or one sweep, with their memory and open files sampled: shared by
tests/test_soak.py and benchmarks/soak.py."""
import gc
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent.parent
TINY = ["model=efficientnet_lite0", "input.size=64", "octaves=1", "steps=1", "device=cpu"]


def status_field(field_name: str, pid: int | str = "self") -> int:
    """A number of /proc/PID/status: VmRSS and VmHWM in kB, Threads."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field_name}:"):
            return int(line.split()[1])
    raise KeyError(field_name)


def rss_mb() -> float:
    gc.collect()
    return status_field("VmRSS") / 1024


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@dataclass
class Soak:
    """What one soak measured. RSS in MB. Open fds and threads: in process, before the first job, after
    the warm-up and after the last (Python threads); a sweep's, sampled from outside while jobs run (each
    holding its own files open for a moment): the first sample, and the most seen up to the end of the
    warm-up and after it (OS threads: torch's and the launcher's too)."""

    kind: str
    jobs: int
    warmup: int
    seconds: float
    rss_start: float
    rss_warm: float
    rss_end: float
    rss_peak: float
    fds: list[int] = field(default_factory=list)
    threads: list[int] = field(default_factory=list)
    new_threads: list[str] = field(default_factory=list)  # alive after the last job, not before the first
    completed: int = 0

    @property
    def growth(self) -> float:
        """MB the RSS grew between the end of the warm-up and the last job."""
        return self.rss_end - self.rss_warm

    @property
    def growth_per_job_kb(self) -> float:
        return self.growth * 1024 / max(1, self.jobs - self.warmup)

    def report(self) -> str:
        lines = [f"{self.kind}: {self.jobs} jobs ({self.completed} completed) in {self.seconds:.1f} s "
                 f"({self.seconds / self.jobs:.2f} s/job)",
                 f"  RSS MB: start {self.rss_start:.1f}, after {self.warmup} jobs {self.rss_warm:.1f}, "
                 f"end {self.rss_end:.1f}, peak {self.rss_peak:.1f}",
                 f"  growth after the warm-up: {self.growth:+.1f} MB over {self.jobs - self.warmup} jobs "
                 f"({self.growth_per_job_kb:+.1f} kB/job)"]
        if self.kind == "sweep":
            lines.append(f"  open fds (first, most up to job {self.warmup}, most after): {self.fds}   "
                         f"OS threads: {self.threads}")
        else:
            lines.append(f"  open fds (start, warm, end): {self.fds}   threads: {self.threads}, "
                         f"new: {', '.join(self.new_threads) or 'none'}")
        return "\n".join(lines)


def photo(path: Path, size: int = 64) -> Path:
    pixels = np.random.default_rng(0).integers(0, 256, (size * 3 // 4, size, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def _api_job(workdir: Path, image: Path, seed: int) -> bool:
    from dreamrun import dream

    dream(str(image), model="efficientnet_lite0", size=64, octaves=1, steps=1, seed=seed, device="cpu")
    return True


def _file_job(workdir: Path, image: Path, seed: int) -> bool:
    from dreamrun.config.compose import compose_config
    from dreamrun.jobs.dream import DreamJob
    from dreamrun.jobs.record import RESULT_FILE
    from dreamrun.jobs.skeleton import run_job

    run_dir = workdir / f"job_{seed}"
    cfg = compose_config(*TINY, "log=tensorboard", "input=image", f"input.path={image}", f"seed={seed}")
    run_job(DreamJob(cfg, run_dir, progress=False))
    return json.loads((run_dir / RESULT_FILE).read_text())["status"] == "completed"


IN_PROCESS: dict[str, Callable[[Path, Path, int], bool]] = {"api": _api_job, "files": _file_job}


def soak_in_process(kind: str, jobs: int, warmup: int, workdir: Path) -> Soak:
    """jobs tiny jobs of this kind (api or files) one after another in this process."""
    import torch

    torch.set_num_threads(min(2, torch.get_num_threads()))
    job = IN_PROCESS[kind]
    image = photo(workdir / "photo.png")
    fds, threads, first_threads = [open_fds()], [threading.active_count()], set(threading.enumerate())
    rss_start = rss_warm = rss_mb()
    completed = 0
    start = time.perf_counter()
    for seed in range(jobs):
        completed += job(workdir, image, seed)
        if seed + 1 == warmup:
            rss_warm = rss_mb()
            fds.append(open_fds())
            threads.append(threading.active_count())
    seconds = time.perf_counter() - start
    fds.append(open_fds())
    threads.append(threading.active_count())
    new_threads = sorted(thread.name for thread in set(threading.enumerate()) - first_threads)
    return Soak(kind, jobs, warmup, seconds, rss_start, rss_warm, rss_mb(), status_field("VmHWM") / 1024,
                fds, threads, new_threads, completed)


@dataclass
class Sample:
    seconds: float
    rss: float  # MB
    fds: int
    threads: int  # the process's OS threads (torch's, the launcher's, Python's)
    done: int  # result.json files written so far


def soak_sweep(jobs: int, warmup: int, sweep_dir: Path, interval: float = 0.1) -> tuple[Soak, list[Sample]]:
    """A jobs-job sweep through the CLI's basic launcher (all jobs in one process), sampled from outside."""
    command = [sys.executable, "-m", "dreamrun", "-m", *TINY, f"seed=range(0,{jobs})", f"hydra.sweep.dir={sweep_dir}"]
    start = time.perf_counter()
    proc = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "2"})
    stderr = []
    reader = threading.Thread(target=lambda: stderr.extend(proc.stderr), daemon=True)
    reader.start()
    samples: list[Sample] = []
    peak = 0.0
    while proc.poll() is None:
        try:
            rss, peak = status_field("VmRSS", proc.pid) / 1024, status_field("VmHWM", proc.pid) / 1024
            fds, threads = len(os.listdir(f"/proc/{proc.pid}/fd")), status_field("Threads", proc.pid)
        except (OSError, KeyError):  # exited between poll() and the read; a zombie has no VmRSS
            break
        done = len(list(sweep_dir.glob("*/result.json")))
        samples.append(Sample(time.perf_counter() - start, rss, fds, threads, done))
        time.sleep(interval)
    proc.wait()
    reader.join()
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"the sweep exited {proc.returncode}:\n{''.join(stderr)[-3000:]}")
    results = [json.loads(path.read_text()) for path in sweep_dir.glob("*/result.json")]
    completed = sum(result["status"] == "completed" for result in results)
    warm, end = when_done(samples, warmup), when_done(samples, jobs)
    during_warmup, after = samples[: samples.index(warm) + 1], samples[samples.index(warm):]
    soak = Soak("sweep", jobs, warmup, seconds, samples[0].rss, warm.rss, end.rss, peak,
                [samples[0].fds, max(s.fds for s in during_warmup), max(s.fds for s in after)],
                [samples[0].threads, max(s.threads for s in during_warmup), max(s.threads for s in after)],
                completed=completed)
    return soak, samples


def when_done(samples: list[Sample], jobs: int) -> Sample:
    """The first sample taken once this many jobs had written their result.json (the last job's: before
    the sweep's summary is drawn)."""
    return next(sample for sample in samples if sample.done >= jobs)

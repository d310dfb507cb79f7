"""Many jobs in one process leak neither memory, nor open files, nor threads: the soaks of
benchmarks/soak.py, in process at a CI size (30 jobs, not the benchmark's 200) and a sweep at full size
(50 jobs). About a minute on 2 idle cores; several times that on a busy machine.

    python -m pytest tests/test_soak.py
    python benchmarks/soak.py                  # full sizes, the figures printed

The bounds come from the full soaks on a 2-core CPU (RSS after gc.collect(), growth from the end of a
10-job warm-up to the last job): dream() +2.1 and +7.1 MB over 190 jobs, file-writing jobs +16.6 and
+21.3 MB over 190, a sweep +37.7, +43.8 and +45.9 MB over 40 (+56.1 MB over 140). RSS moves by tens of
MB either way between jobs (the allocator's pools; a sweep's rose 80 MB by job 30, then fell back), with
no steady climb, so each bound is 3x the largest growth of its kind: 64 MB in process, 140 MB for a
sweep. A leak of what a job is made of breaks them: EfficientNet-Lite0's weights alone are 19 MB, 380 MB
over the 20 jobs measured in process. A TensorBoard writer left open is too small for RSS to show but
holds an event file and a thread, so open files and threads must come back to their counts.
"""
import pytest

from helpers.soak import Soak, soak_in_process, soak_sweep

IN_PROCESS_JOBS = 30
SWEEP_JOBS = 50
WARMUP = 10
IN_PROCESS_GROWTH_MB = 64.0
SWEEP_GROWTH_MB = 140.0
# threads a process keeps once started, one however many jobs: tqdm's monitor of its progress bars
PROCESS_THREADS = {"tqdm_monitor"}
# a sweep is sampled from outside while its jobs run: a sample may catch one job's own files and a
# short-lived thread, so two windows' counts may differ by that much without a leak
IN_FLIGHT = 2


def _check_in_process(soak: Soak) -> None:
    assert soak.completed == soak.jobs, soak.report()
    assert soak.growth < IN_PROCESS_GROWTH_MB, soak.report()
    start, warm, end = soak.fds
    assert start == warm == end, soak.report()
    assert soak.threads[-1] == soak.threads[1] and set(soak.new_threads) <= PROCESS_THREADS, soak.report()


@pytest.mark.slow
def test_dream_api_in_a_loop_keeps_its_memory_files_and_threads(tmp_path):
    _check_in_process(soak_in_process("api", IN_PROCESS_JOBS, WARMUP, tmp_path))


@pytest.mark.slow
def test_file_writing_jobs_in_a_loop_close_their_tensorboard_writers(tmp_path):
    _check_in_process(soak_in_process("files", IN_PROCESS_JOBS, WARMUP, tmp_path))


@pytest.mark.slow
def test_a_sweep_in_one_process_completes_every_job_without_growing(tmp_path):
    soak, samples = soak_sweep(SWEEP_JOBS, WARMUP, tmp_path / "sweep")
    assert soak.completed == SWEEP_JOBS, soak.report()
    assert soak.growth < SWEEP_GROWTH_MB, soak.report()
    # what a leak raises is the floor: the fewest fds and threads the process holds over ten jobs just after the
    # warm-up against the last ten. (The most in flight depends on when the sampler looks: on a fast machine
    # ten warm-up jobs can pass without a sample catching a job's writer threads, forty cannot.)
    early = [s for s in samples if WARMUP <= s.done < WARMUP + 10]
    late = [s for s in samples if s.done >= SWEEP_JOBS - 10]
    for what in ("fds", "threads"):
        floor_early, floor_late = (min(getattr(s, what) for s in window) for window in (early, late))
        assert floor_late <= floor_early + IN_FLIGHT, (what, floor_early, floor_late, soak.report())

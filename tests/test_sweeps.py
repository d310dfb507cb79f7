"""Sweeps: every job's result.json, the summary (contact sheet, CSV, Markdown, TensorBoard),
failure isolation, killed sweeps, the launcher presets and job names."""
import csv
import io
import json
import multiprocessing
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from conftest import REPO, TINY, fake_sweep_job, run_cli, start_cli
from dreamrun.config.run_names import claim_fresh_dir
from dreamrun.outputs.contact_sheet import Layout
from dreamrun.sweeps.job_lines import JobLines
from dreamrun.sweeps.launch import constant_keys, device_for_job
from dreamrun.sweeps.summary import TENSORBOARD_SUFFIX, main as summarize_main, split_axes, write_summary

# everything but the swept octaves; 2 steps keep each job well under a second
BASE = [o for o in TINY if not o.startswith("octaves=")]


def _csv(sweep_dir: Path) -> list[dict[str, str]]:
    with open(sweep_dir / "summary.csv") as f:
        return list(csv.DictReader(f))


def _results(sweep_dir: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in sweep_dir.glob("*/result.json")}


def _layout(dream: Path, **labels: bool) -> Layout:
    with Image.open(dream) as image:
        return Layout.for_images(image.size, **labels)


def _shows(sheet: Image.Image, layout: Layout, row: int, col: int, dream: Path) -> bool:
    """Cell (row, col) of the sheet shows this dream, fitted into its thumbnail frame."""
    with Image.open(dream) as image:
        box = layout.thumbnail_box(image.size, row, col)
        expected = np.asarray(image.convert("RGB").resize((box[2] - box[0], box[3] - box[1]), Image.LANCZOS))
    shown = np.asarray(sheet.convert("RGB").crop(box)).astype(float)
    return np.abs(shown - expected).mean() < 2


def _check_grid_sweep(sweep_dir: Path) -> None:
    """A 2x2 sweep of octaves=1,2 x target=block_5,block_12 that completed."""
    results = _results(sweep_dir)
    assert sorted(results) == ["0_octaves=1_target=block_5", "1_octaves=1_target=block_12",
                               "2_octaves=2_target=block_5", "3_octaves=2_target=block_12"]
    for name, result in results.items():
        assert result["status"] == "completed" and result["error"] is None
        assert result["metrics"]["gain"] > 0 and result["paths"]["dream"] == "dream.png"
        assert f"octaves={name[10]}" in result["overrides"]
    rows = _csv(sweep_dir)
    assert [(r["job"], r["status"], r["octaves"], r["target"]) for r in rows] == [
        ("0", "completed", "1", "block_5"), ("1", "completed", "1", "block_12"),
        ("2", "completed", "2", "block_5"), ("3", "completed", "2", "block_12")]
    assert all(float(r["gain"]) == pytest.approx(results[r["dir"]]["metrics"]["gain"], rel=1e-3) for r in rows)
    layout = _layout(next(sweep_dir.glob("0_*/dream.png")), row_labels=True, col_labels=True)
    assert layout.thumb == (192, 128)  # the dreams' 3:2, not a square
    with Image.open(sweep_dir / "summary.png") as sheet:
        assert sheet.size == layout.size(2, 2)  # octaves down, target across
        for num, name in enumerate(sorted(results)):
            assert _shows(sheet, layout, num // 2, num % 2, sweep_dir / name / "dream.png"), name


@pytest.mark.slow
def test_basic_launcher_sweep_writes_every_result_and_a_summary(tmp_path):
    proc = run_cli("-m", *BASE, "octaves=1,2", "target=block_5,block_12", f"hydra.sweep.dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr
    _check_grid_sweep(tmp_path)
    # stdout: the summary's path and nothing else (Hydra's "Launching" lines and each job's path: stderr)
    assert proc.stdout.splitlines() == [str(tmp_path / "summary.png")]
    assert "Launching 4 jobs locally" in proc.stderr
    assert sorted(line for line in proc.stderr.splitlines() if line.endswith("dream.png")) == \
        sorted(str(p) for p in tmp_path.glob("*/dream.png"))
    assert "4 jobs: 4 completed" in proc.stderr
    board = EventAccumulator(str(tmp_path), size_guidance={"images": 0, "scalars": 0}).Reload()
    assert board.Tags()["images"] == ["sweep/summary"]
    assert [e.step for e in board.Scalars("sweep/gain")] == [0, 1, 2, 3]


@pytest.mark.slow
def test_submitit_local_sweep_runs_jobs_as_subprocesses(tmp_path):
    proc = run_cli("-m", "hydra/launcher=local", *BASE, "octaves=1,2", "target=block_5,block_12",
                   f"hydra.sweep.dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr
    _check_grid_sweep(tmp_path)
    pids = {result["pid"] for result in _results(tmp_path).values()}
    assert len(pids) == 4  # one process per job (the basic launcher runs them all in its own)
    # submitit's jobs print into files: the launching process says when each one finished
    assert sorted(line for line in proc.stderr.splitlines() if line.endswith("dream.png")) == \
        sorted(str(p) for p in tmp_path.glob("*/dream.png"))
    assert proc.stdout.splitlines() == [str(tmp_path / "summary.png")]


def test_job_lines_report_each_finished_job_once(tmp_path):
    stream = io.StringIO()
    lines = JobLines(tmp_path, stream)
    fake_sweep_job(tmp_path, 0, ["seed=0"], "completed")
    lines.report_new()
    fake_sweep_job(tmp_path, 1, ["seed=1"], "failed")
    fake_sweep_job(tmp_path, 2, ["seed=2"], None)  # still running: no result.json yet
    lines.report_new()
    lines.stop()
    assert stream.getvalue().splitlines() == [str(tmp_path / "0_job" / "dream.png"), "failed 1_job: boom"]


@pytest.mark.slow
def test_a_bad_job_fails_alone_and_the_sweep_exits_non_zero(tmp_path):
    # joblib: the jobs run in worker processes, so the failure must travel through files
    proc = run_cli("-m", "hydra/launcher=parallel", *BASE, "octaves=1", "target.block_12=[3],[5000],[7]",
                   f"hydra.sweep.dir={tmp_path}")
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    results = _results(tmp_path)
    statuses = {name.split("_")[0]: r["status"] for name, r in results.items()}
    assert statuses == {"0": "completed", "1": "failed", "2": "completed"}
    message = "channel 5000 is out of range: block_12 has 192 channels"
    failed = next(r for r in results.values() if r["status"] == "failed")
    assert message in failed["error"] and failed["metrics"] == {}
    rows = _csv(tmp_path)
    assert [r["status"] for r in rows] == ["completed", "failed", "completed"]
    assert message in rows[1]["error"]
    assert message in (tmp_path / "summary.md").read_text()
    assert f"failed 1_target.block_12=5000: target.block_12: {message}" in proc.stderr
    dream = next(tmp_path.glob("0_*/dream.png"))
    layout = _layout(dream, col_labels=True)
    with Image.open(tmp_path / "summary.png") as sheet:
        assert sheet.size == layout.size(1, 3)
        assert _shows(sheet, layout, 0, 0, dream) and _shows(sheet, layout, 0, 2, next(tmp_path.glob("2_*/dream.png")))
        x, y = layout.frame(0, 1)
        inside = np.asarray(sheet.convert("RGB").crop((x + 10, y + 10, x + layout.thumb[0] - 10, y + 30)))
        assert inside.std() < 1  # no picture in the failed job's cell: its placeholder


def _interrupt_midway(sweep_dir: Path, sig: signal.Signals) -> subprocess.CompletedProcess:
    """Start a 3-job sweep and send sig while job 1 runs: job 0 finished quickly, job 2 never starts."""
    proc = start_cli("-m", *BASE, "octaves=1", "steps=2,100000,3", f"hydra.sweep.dir={sweep_dir}",
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list(sweep_dir.glob("1_*/input.png")) and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(0.5)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _check_midway_summary(sweep_dir: Path, status_of_job_1: str) -> None:
    rows = _csv(sweep_dir)
    assert [(r["job"], r["steps"], r["status"]) for r in rows] == [
        ("0", "2", "completed"), ("1", "100000", status_of_job_1), ("", "3", "not run")]
    dream = next(sweep_dir.glob("0_*/dream.png"))
    layout = _layout(dream, col_labels=True)
    with Image.open(sweep_dir / "summary.png") as sheet:
        assert sheet.size == layout.size(1, 3)
        assert _shows(sheet, layout, 0, 0, dream)


@pytest.mark.slow
def test_ctrl_c_in_a_sweep_still_writes_its_summary(tmp_path):
    proc = _interrupt_midway(tmp_path, signal.SIGINT)
    assert proc.returncode == 130
    assert "Traceback" not in proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == str(tmp_path / "summary.png")
    _check_midway_summary(tmp_path, "interrupted")


@pytest.mark.slow
def test_summarize_a_sweep_killed_midway(tmp_path):
    _interrupt_midway(tmp_path, signal.SIGKILL)
    assert not (tmp_path / "summary.png").exists()
    summarized = subprocess.run([sys.executable, "-m", "dreamrun.sweeps.summary", str(tmp_path)],
                                capture_output=True, text=True, timeout=120)
    assert summarized.returncode == 0, summarized.stderr
    assert summarized.stdout.strip() == str(tmp_path / "summary.png")
    _check_midway_summary(tmp_path, "died")  # its result.json says running, and no process holds its dir


@pytest.mark.slow
def test_sweep_jobs_get_readable_dirs_and_one_tensorboard_run_each(tmp_path):
    proc = run_cli("-m", *BASE, "octaves=1,2", "+target.block_3=[1,2],[0]", f"hydra.sweep.dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr
    jobs = sorted(p.name for p in tmp_path.iterdir() if p.is_dir())
    # named by what differs between the jobs; the overrides they share would only hide it
    assert jobs == ["0_+target.block_3=1-2_octaves=1", "1_+target.block_3=0_octaves=1",
                    "2_+target.block_3=1-2_octaves=2", "3_+target.block_3=0_octaves=2"]
    for job in jobs:
        assert (tmp_path / job / "dream.png").is_file()
        assert len(list((tmp_path / job).glob("events.out.tfevents.*"))) == 1


def test_a_sweep_that_is_not_a_grid_is_shown_in_job_order(tmp_path):
    # no multirun.yaml and two keys that vary together: not a product, so no grid axes
    fake_sweep_job(tmp_path, 0, ["seed=1", "steps=5"], "completed", (250, 0, 0))
    fake_sweep_job(tmp_path, 1, ["seed=2", "steps=6"], "completed", (0, 250, 0))
    fake_sweep_job(tmp_path, 2, ["seed=3", "steps=5"], "failed")
    summary = write_summary(tmp_path, tensorboard=False)
    assert summary.grid is None and [key for key, _ in summary.axes] == ["seed", "steps"]
    layout = _layout(tmp_path / "0_job" / "dream.png")
    with Image.open(tmp_path / "summary.png") as sheet:
        assert sheet.size == layout.size(2, 2)  # 3 jobs, 2 per row
        for num in (0, 1):
            assert _shows(sheet, layout, 0, num, tmp_path / f"{num}_job" / "dream.png")
    assert [r["status"] for r in _csv(tmp_path)] == ["completed", "completed", "failed"]


def test_summarizing_twice_keeps_one_tensorboard_run(tmp_path):
    fake_sweep_job(tmp_path, 0, ["seed=1"], "completed")
    write_summary(tmp_path)
    write_summary(tmp_path)
    assert len(list(tmp_path.glob("events.out.tfevents.*"))) == 1


def test_the_tensorboard_run_holds_the_sheet_the_table_and_each_jobs_figures(tmp_path):
    for num in range(3):
        fake_sweep_job(tmp_path, num, [f"seed={num}"], "completed", (80 * num, 100, 200))
    fake_sweep_job(tmp_path, 3, ["seed=3"], "failed")
    write_summary(tmp_path)
    board = EventAccumulator(str(tmp_path), size_guidance={"images": 0, "scalars": 0, "tensors": 0}).Reload()
    [logged] = board.Images("sweep/summary")
    with Image.open(io.BytesIO(logged.encoded_image_string)) as shown, Image.open(tmp_path / "summary.png") as sheet:
        assert shown.size == sheet.size == (logged.width, logged.height)
        assert np.array_equal(np.asarray(shown.convert("RGB")), np.asarray(sheet.convert("RGB")))
    [text] = board.Tensors("sweep/summary/text_summary")
    assert text.tensor_proto.string_val[0].decode() == (tmp_path / "summary.md").read_text()
    assert board.SummaryMetadata("sweep/summary/text_summary").plugin_data.plugin_name == "text"  # the Text tab
    metrics = {int(name.split("_")[0]): result["metrics"] for name, result in _results(tmp_path).items()
               if result["status"] == "completed"}
    for key in ("gain", "seconds"):
        logged_values = {event.step: event.value for event in board.Scalars(f"sweep/{key}")}
        assert logged_values == {num: pytest.approx(m[key]) for num, m in metrics.items()}  # the failed job: none


def test_summarize_does_not_import_torch(tmp_path):
    """dreamrun-summarize needs neither torch nor torchvision, which take seconds to import."""
    fake_sweep_job(tmp_path, 0, ["seed=1"], "completed")
    script = ("import sys\n"
              f"sys.argv = ['dreamrun-summarize', {str(tmp_path)!r}]\n"
              "from dreamrun.sweeps.summary import main\n"
              "main()\n"
              "print(sorted(m for m in ('torch', 'torchvision') if m in sys.modules), file=sys.stderr)\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == "[]", proc.stderr
    assert len(list(tmp_path.glob(f"events.out.tfevents.*{TENSORBOARD_SUFFIX}"))) == 1


def test_summarize_refuses_what_is_not_a_sweep(tmp_path, capsys):
    for argv, message in [([str(tmp_path / "missing")], "is not a directory"), ([str(tmp_path)], "no sweep jobs")]:
        with pytest.raises(SystemExit) as exit_:
            summarize_main(argv)
        assert exit_.value.code == 2
        assert message in capsys.readouterr().err


def test_grid_axes_split_to_keep_the_sheet_square():
    axes = [("target", ["a", "b", "c"]), ("octaves", ["2", "4"]), ("jitter.max_shift", ["16", "64"])]
    rows, cols = split_axes(axes)
    assert [k for k, _ in rows] == ["target"] and [k for k, _ in cols] == ["octaves", "jitter.max_shift"]
    assert split_axes(axes[:1]) == ([], axes[:1])


def test_jobs_are_named_by_their_swept_keys_only():
    assert constant_keys(["model=efficientnet_lite0", "octaves=1,2", "+target.block_5=[0],[9]", "steps=2"]) == [
        "model", "steps"]


@pytest.mark.parametrize("device, count, expected", [
    ("auto", 4, ["cuda:0", "cuda:1", "cuda:2", "cuda:3", "cuda:0"]),
    ("auto", 1, ["auto"] * 5),
    ("auto", 0, ["auto"] * 5),
    ("cuda:1", 4, ["cuda:1"] * 5),
])
def test_local_parallel_jobs_spread_over_the_gpus(device, count, expected):
    assert [device_for_job(device, num, count) for num in range(5)] == expected


def _claim(path: str, queue) -> None:
    queue.put(claim_fresh_dir(path))


def test_runs_started_in_the_same_second_get_their_own_dirs(tmp_path):
    path = str(tmp_path / "14-35-57")
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    workers = [context.Process(target=_claim, args=(path, queue)) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
    claimed = sorted(queue.get(timeout=5) for _ in workers)
    assert claimed == sorted([path, f"{path}_2", f"{path}_3", f"{path}_4"])


def test_help_lists_the_config_groups_and_launchers():
    proc = run_cli("--help")
    assert proc.returncode == 0
    for line in ["model: custom, efficientnet_lite0, googlenet, inception_v3, resnet50, vgg16, vgg19", "jitter: default, none, strong"]:
        assert line in proc.stdout
    # the launcher line is written by hand in conf/config.yaml: it must name every preset there is
    launchers = next(line for line in proc.stdout.splitlines() if line.strip().startswith("hydra/launcher:"))
    presets = {p.stem for p in (REPO / "conf" / "hydra" / "launcher").glob("*.yaml")}
    assert presets and all(re.search(rf"\b{name}\b", launchers) for name in presets | {"basic"})
    assert "mixed_6" in proc.stdout and "dreamrun-summarize" in proc.stdout


@pytest.mark.parametrize("preset, plugin, needs", [("parallel", "hydra_plugins.hydra_joblib_launcher", "its Hydra plugin"),
                                                   ("local", "hydra_plugins.hydra_submitit_launcher", "its Hydra plugin"),
                                                   ("slurm", "submitit", "submitit")])
def test_a_launcher_without_its_plugin_says_what_to_install(tmp_path, preset, plugin, needs):
    # Hydra finds plugins by walking the hydra_plugins namespace: hide one as if it were not installed,
    # from the walk and from imports (dreamrun's own slurm launcher needs submitit itself, no plugin)
    hide = ("import importlib.abc, pkgutil, sys\n"
            "walk = pkgutil.walk_packages\n"
            f"pkgutil.walk_packages = lambda *a, **k: (m for m in walk(*a, **k) if {plugin!r} not in m.name)\n"
            "class NotInstalled(importlib.abc.MetaPathFinder):\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            f"        if name.split('.')[:{plugin.count('.') + 1}] == {plugin.split('.')!r}:\n"
            "            raise ModuleNotFoundError(name)\n"
            "sys.meta_path.insert(0, NotInstalled())\n"
            "sys.argv = ['dreamrun', *sys.argv[1:]]\n"
            "from dreamrun.cli import main\n"
            "main()\n")
    sweep_dir = tmp_path / "sweep"
    proc = subprocess.run([sys.executable, "-c", hide, "-m", f"hydra/launcher={preset}", "octaves=1,2",
                           f"hydra.sweep.dir={sweep_dir}"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [f"dreamrun: error: hydra/launcher={preset} needs {needs}: "
                                        "pip install 'dreamrun[launchers]'"]
    assert not sweep_dir.exists()


def test_the_slurm_preset_asks_sbatch_for_partition_gpus_and_time(tmp_path):
    """A stand-in sbatch (and srun) on PATH captures the job-array script the preset makes."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "sbatch").write_text('#!/bin/sh\ncp "$1" "$SBATCH_CAPTURE"\necho "sbatch: no cluster" >&2\nexit 1\n')
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    script = tmp_path / "job.sh"
    proc = run_cli("-m", "hydra/launcher=slurm", "hydra.launcher.partition=gpu", "hydra.launcher.timeout_min=90",
                   "hydra.launcher.array_parallelism=1", 'hydra.launcher.setup=["source .venv/bin/activate"]', *BASE, "octaves=1,2", f"hydra.sweep.dir={tmp_path / 'sweep'}",
                   env={"PATH": f"{bin_dir}:{os.environ['PATH']}", "SBATCH_CAPTURE": str(script)})
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "dreamrun: error: sbatch refused the sweep's jobs: sbatch: no cluster. Check" in proc.stderr
    lines = script.read_text().splitlines()
    for option in ["--partition=gpu", "--gpus-per-task=1", "--time=90", "--array=0-1%1", "--job-name=dreamrun"]:
        assert f"#SBATCH {option}" in lines, option
    assert "source .venv/bin/activate" in lines


def test_slurm_without_slurm_is_one_clear_line(tmp_path):
    no_tools = tmp_path / "bin"  # a PATH without srun, on a machine that has SLURM too
    no_tools.mkdir()
    proc = run_cli("-m", "hydra/launcher=slurm", "octaves=1,2", f"hydra.sweep.dir={tmp_path / 'sweep'}",
                   env={"PATH": str(no_tools)})
    assert proc.returncode == 2 and not (tmp_path / "sweep").exists()
    assert proc.stderr.strip() == ("dreamrun: error: hydra/launcher=slurm needs SLURM, and srun is not on "
                                   "PATH here: run the sweep from the cluster's login node, or try it locally with "
                                   "hydra/launcher=local")


def test_a_jobs_record_reads_as_omegaconf_reads_it(tmp_path):
    """collect_jobs parses Hydra's .hydra/ files with libyaml (fast), and must read what OmegaConf,
    which wrote them, reads back: tricky overrides included."""
    from omegaconf import OmegaConf

    from dreamrun.sweeps.summary import collect_jobs, parse_overrides

    overrides = ["input.path='/tmp/a b/ph=oto.jpg'", "target.block_12=[5,17]", "~target", "step_size=1e-3",
                 "+model.name=yes", "guide.path=null", "model.name='ünïcode: x'", 'seed="0"', "zoom.targets=[]"]
    job = tmp_path / "7_x"
    (job / ".hydra").mkdir(parents=True)
    OmegaConf.save(OmegaConf.create({"hydra": {"job": {"num": 7, "name": "${now:%H}"}}}), job / ".hydra" / "hydra.yaml")
    OmegaConf.save(OmegaConf.create(overrides), job / ".hydra" / "overrides.yaml")
    (found,) = collect_jobs(tmp_path)
    reference = list(OmegaConf.load(job / ".hydra" / "overrides.yaml"))
    assert found.num == 7 and reference == overrides
    assert found.overrides == parse_overrides(reference)

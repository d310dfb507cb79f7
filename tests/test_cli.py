"""The command line as a user meets it: real subprocesses, run dirs in a temp folder."""
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from conftest import REPO, TINY, default_signals, logged_progress_images, run_cli, start_cli


def test_cli_dream_writes_a_run_dir_and_prints_the_dream_path_last(tmp_path):
    run_dir = tmp_path / "run"
    proc = run_cli(*TINY, f"hydra.run.dir={run_dir}")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == str(run_dir / "dream.png")
    assert (run_dir / "dream.png").is_file() and (run_dir / "input.png").is_file()
    assert {p.name for p in run_dir.glob("octave_*.png")} == {"octave_0.png", "octave_1.png"}
    result = json.loads((run_dir / "result.json").read_text())
    assert result["status"] == "completed" and result["overrides"] == TINY
    assert result["metrics"] == json.loads((run_dir / "metrics.json").read_text())
    assert (run_dir / ".hydra" / "config.yaml").is_file() and (run_dir / "dreamrun.log").is_file()
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_cli_inception_path_runs_offline_with_random_weights(tmp_path):
    proc = run_cli("target=mixed_6", "octaves=2", "steps=1", "model.weights=null", "input.size=160",
                   "device=cpu", f"hydra.run.dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr
    assert "random weights" in proc.stderr
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["model"] == "inception_v3" and metrics["weights"] is None
    assert set(metrics["targets"]) == {"Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e"}


def test_weights_that_cannot_be_downloaded_say_where_to_put_them(tmp_path):
    env_proxy = {"https_proxy": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9",
                 "TORCH_HOME": str(tmp_path / "torch")}
    proc = run_cli("input.size=128", "octaves=1", "steps=1", "device=cpu",
                   f"hydra.run.dir={tmp_path / 'run'}", env=env_proxy)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "could not download" in proc.stderr
    assert str(tmp_path / "torch" / "hub" / "checkpoints" / "inception_v3_google-0cc3c7bd.pth") in proc.stderr
    assert "model.weights=" in proc.stderr


@pytest.mark.parametrize("overrides, line", [
    (["octave=3"], "unknown key 'octave': did you mean 'octaves'?"),
    (["zoom.frame=5"], "unknown key 'zoom.frame': did you mean 'zoom.frames'?"),
    (["octaves=many"], "octaves=many: Value 'many' of type 'str' could not be converted to Integer"),
    (["jitter=strng"], "jitter=strng: no such preset; did you mean jitter=strong? choose one of default, none, strong"),
    (["target.Mixed_6c=[1"], "cannot read the override 'target.Mixed_6c=[1' (no viable alternative at input '[1'): "
                             "quote lists and dicts for the shell, e.g. 'target.Mixed_6c=[12,45]'"),
    (["-m", "octave=3,4"], "unknown key 'octave': did you mean 'octaves'?"),
    (["+octave=3"], "unknown key 'octave': did you mean 'octaves'?"),  # Hydra's own hint, taken
    (["+zoom.frame=5"], "unknown key 'zoom.frame': did you mean 'zoom.frames'?"),
    (["-m", "+octave=3,4"], "unknown key 'octave': did you mean 'octaves'?"),
])
def test_config_mistakes_are_one_line_naming_the_closest_key(tmp_path, overrides, line):
    proc = run_cli(*overrides, f"hydra.run.dir={tmp_path / 'run'}", f"hydra.sweep.dir={tmp_path / 'sweep'}")
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [f"dreamrun: error: {line}"]
    assert "+" not in proc.stderr.split(":", 1)[1] and proc.stdout == ""
    assert not (tmp_path / "run").exists() and not list(tmp_path.glob("sweep/*/result.json"))


@pytest.mark.parametrize("sig, status, cause", [(signal.SIGINT, 130, "Ctrl-C"), (signal.SIGTERM, 143, "SIGTERM")])
def test_a_signal_midway_leaves_a_consistent_run_dir(tmp_path, sig, status, cause):
    run_dir = tmp_path / "run"
    # an image logged every step: once TensorBoard has flushed two to disk, two steps have finished
    proc = start_cli(*TINY, "steps=100000", "log.image_every=1", "log.image_max_side=16",
                     f"hydra.run.dir={run_dir}", stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while logged_progress_images(run_dir) < 2 and time.monotonic() < deadline:
        time.sleep(0.5)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == status
    assert "Traceback" not in err and out == ""
    result = json.loads((run_dir / "result.json").read_text())
    assert result["status"] == "interrupted" and result["error"] == cause
    assert result["paths"]["interrupted"] == "interrupted.png"
    with Image.open(run_dir / "interrupted.png") as last, Image.open(run_dir / "input.png") as source:
        # the last finished step (in octave 0 of 2) carried up to the input's size
        assert last.size == source.size == (96, 64)
        assert np.abs(np.asarray(last, dtype=float) - np.asarray(source, dtype=float)).mean() > 0.5
    assert not (run_dir / "dream.png").exists() and not (run_dir / "metrics.json").exists()
    assert not list(run_dir.glob(".*.tmp"))  # no half-written file
    board = EventAccumulator(str(run_dir), size_guidance={"scalars": 0}).Reload()
    assert len(board.Scalars("dream/loss")) > 1  # flushed: the steps before the signal are there


def test_a_second_signal_exits_at_once(tmp_path):
    """While the first Ctrl-C is being handled (saving, closing), a second one ends the process."""
    marker = tmp_path / "cleanup_finished"
    script = (
        "import os, signal, time\n"
        "from dreamrun.jobs import interrupts\n"
        "with interrupts.handled():\n"
        "    try:\n"
        "        os.kill(os.getpid(), signal.SIGINT); time.sleep(5)\n"
        "    except KeyboardInterrupt:\n"
        "        os.kill(os.getpid(), signal.SIGINT); time.sleep(5)\n"
        f"        open({str(marker)!r}, 'w').close()\n"
    )
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                          preexec_fn=default_signals)
    assert proc.returncode == 130 and not marker.exists()
    assert time.monotonic() - started < 4  # did not sit out the cleanup's sleep


def test_signal_handlers_are_dreamruns_only_while_a_job_runs():
    """A notebook or host program gets its own SIGINT and SIGTERM handlers back after the block."""
    from dreamrun.jobs import interrupts

    host = lambda signum, frame: None  # the host program's own handler  # noqa: E731
    saved = {s: signal.signal(s, host) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        with interrupts.handled():
            assert signal.getsignal(signal.SIGINT) is not host
            with pytest.raises(KeyboardInterrupt):
                signal.raise_signal(signal.SIGINT)
        assert all(signal.getsignal(s) is host for s in saved)
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)


def test_a_run_dir_with_results_is_not_overwritten_unless_asked(tmp_path):
    run_dir = tmp_path / "run"
    first = run_cli(*TINY, f"hydra.run.dir={run_dir}")
    assert first.returncode == 0, first.stderr
    before = {p.name: p.read_bytes() for p in [run_dir / "dream.png", run_dir / ".hydra" / "config.yaml"]}

    again = run_cli(*TINY, "seed=1", f"hydra.run.dir={run_dir}")
    assert again.returncode == 2 and again.stdout == ""
    assert again.stderr.strip() == (f"dreamrun: error: {run_dir} already holds the results of a run: choose another "
                                    "hydra.run.dir, or pass overwrite=true to replace them")
    assert {p.name: p.read_bytes() for p in [run_dir / "dream.png", run_dir / ".hydra" / "config.yaml"]} == before

    replaced = run_cli(*(o for o in TINY if not o.startswith("octaves=")), "octaves=1", "seed=1", "overwrite=true",
                       f"hydra.run.dir={run_dir}")
    assert replaced.returncode == 0, replaced.stderr
    assert (run_dir / "dream.png").read_bytes() != before["dream.png"]
    assert sorted(p.name for p in run_dir.glob("octave_*.png")) == ["octave_0.png"]  # the old octave_1 is gone
    assert len(list(run_dir.glob("events.out.tfevents.*"))) == 1


def test_a_sweep_dir_with_results_is_not_overwritten_unless_asked(tmp_path):
    sweep = [*(o for o in TINY if not o.startswith("octaves=")), "octaves=1,2", f"hydra.sweep.dir={tmp_path}"]
    assert run_cli("-m", *sweep).returncode == 0
    again = run_cli("-m", *sweep)
    assert again.returncode == 2 and "already holds the results of a sweep" in again.stderr


@pytest.mark.parametrize("args", [["--help"], ["octave=3"]])
def test_help_and_config_errors_answer_without_importing_torch(args):
    """They need neither torch nor torchvision, which take seconds to import."""
    script = ("import sys\n"
              f"sys.argv = ['dreamrun', *{args!r}]\n"
              "from dreamrun import cli\n"
              "try:\n"
              "    cli.main()\n"
              "except SystemExit:\n"
              "    pass\n"
              "print(sorted(m for m in ('torch', 'torchvision') if m in sys.modules), file=sys.stderr)\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.stderr.strip().splitlines()[-1] == "[]", proc.stderr


def test_a_default_run_dir_is_never_one_another_run_has(tmp_path):
    """outputs/DATE/TIME_MODEL_TARGET already taken (another run started in the same second): the run
    gets TIME_MODEL_TARGET_2."""
    from datetime import datetime, timedelta

    start = datetime.now()
    taken = [tmp_path / "outputs" / t.strftime("%Y-%m-%d") / t.strftime("%H-%M-%S_efficientnet_lite0_block_12")
             for t in (start + timedelta(seconds=s) for s in range(60))]
    for run_dir in taken:
        run_dir.mkdir(parents=True)
        (run_dir / "dream.png").write_bytes(b"an earlier run's dream")
    proc = run_cli(*TINY, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    dream = Path(proc.stdout.strip().splitlines()[-1])
    assert dream.name == "dream.png" and dream.parent.name.endswith("_2")
    assert dream.parent.with_name(dream.parent.name.removesuffix("_2")) in [d.resolve() for d in taken]
    assert all((d / "dream.png").read_bytes() == b"an earlier run's dream" for d in taken)


def test_stdout_is_the_one_path_even_when_a_library_prints_there(tmp_path):
    """A first run downloads its weights, and torch.hub says so: that, and anything else a library
    prints (from Python or from C), goes to stderr, so `open "$(dreamrun …)"` opens the dream."""
    run_dir = tmp_path / "run"
    chatty = [*[o for o in TINY if not o.startswith("model=")], "octaves=1", "model=custom",
              "model._target_=tiny_net.build_chatty", "+model.layers={features: '3'}", "+target.features=all",
              "model.weights=null"]
    proc = run_cli(*chatty, f"hydra.run.dir={run_dir}", env={"PYTHONPATH": str(Path(__file__).parent)})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"{run_dir / 'dream.png'}\n"
    assert "Downloading: " in proc.stderr and "1.00M/1.00M" in proc.stderr
    # a batched sweep builds its group's network outside any one job
    sweep = run_cli("-m", "hydra/launcher=batched", *chatty, "seed=0,1", f"hydra.sweep.dir={tmp_path / 'sweep'}",
                    env={"PYTHONPATH": str(Path(__file__).parent)})
    assert sweep.returncode == 0, sweep.stderr
    assert sweep.stdout == f"{tmp_path / 'sweep' / 'summary.png'}\n"
    assert "Downloading: " in sweep.stderr


def test_runs_and_sweeps_print_absolute_paths_however_their_dir_was_given(tmp_path):
    """One form for every printed path: absolute, so it works from any directory."""
    run = run_cli(*TINY, "octaves=1", "steps=1", "hydra.run.dir=rel/run", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == [str(tmp_path / "rel" / "run" / "dream.png")]
    sweep = run_cli("-m", *TINY, "octaves=1", "steps=1", "seed=0,1", "hydra.sweep.dir=rel/sweep", cwd=tmp_path)
    assert sweep.returncode == 0, sweep.stderr
    assert sweep.stdout.splitlines() == [str(tmp_path / "rel" / "sweep" / "summary.png")]


@pytest.mark.parametrize("typed, flags_first_by_hand", [
    ("target=block_3 -m seed=0,1", "-m target=block_3 seed=0,1"),
    ("octaves=2 --cfg job target=block_3 --resolve", "--cfg job --resolve octaves=2 target=block_3"),
    ("-cn config octaves=2 --info defaults seed=3", "-cn config --info defaults octaves=2 seed=3"),
    ("octaves=2 --info seed=3 --multirun", "--info --multirun octaves=2 seed=3"),
    ("+target.block_3=all ~guide --config-dir=/tmp seed=3", "--config-dir=/tmp +target.block_3=all ~guide seed=3"),
])
def test_hydra_flags_may_follow_the_overrides(typed, flags_first_by_hand):
    """Hydra's parser refuses overrides after a flag as unrecognized arguments; dreamrun hands it the
    flags first, so it reads what it reads of the same command written flags first."""
    from hydra._internal.utils import get_args_parser

    from dreamrun.cli import flags_first

    parse = get_args_parser().parse_args
    assert vars(parse(flags_first(typed.split()))) == vars(parse(flags_first_by_hand.split()))


def test_a_sweep_flag_after_the_overrides_runs_the_sweep(tmp_path):
    proc = run_cli(*TINY, "octaves=1", "steps=1", "-m", "seed=0,1", f"hydra.sweep.dir={tmp_path / 'sweep'}")
    assert proc.returncode == 0, proc.stderr
    assert len(list((tmp_path / "sweep").glob("*/dream.png"))) == 2


@pytest.mark.parametrize("mode", ["run", "sweep"])
def test_a_run_dir_the_file_system_will_not_have_is_refused_in_one_line(tmp_path, mode):
    (tmp_path / "a_file").write_text("not a dir")
    where = tmp_path / "a_file" / "runs"
    args = ["-m", *TINY, "seed=0,1", f"hydra.sweep.dir={where}"] if mode == "sweep" else [*TINY, f"hydra.run.dir={where}"]
    proc = run_cli(*args)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [f"dreamrun: error: cannot make hydra.{mode}.dir={where}: Not a "
                                                f"directory: choose another hydra.{mode}.dir"]


def test_a_default_run_dir_the_file_system_will_not_have_is_refused_in_one_line(tmp_path):
    (tmp_path / "outputs").write_text("a file where the outputs dir would be")
    proc = run_cli(*TINY, cwd=tmp_path)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert proc.stderr.startswith("dreamrun: error: cannot make hydra.run.dir=outputs/"), proc.stderr


@pytest.mark.parametrize("upscale, dreamed, said", [
    (False, (80, 60), "input: 80x60 px, dreamed at that size (smaller than input.size=96; input.upscale=true"),
    (True, (96, 72), "input: 80x60 px, dreamed at 96x72 px (input.size=96)")])
def test_a_small_photo_is_not_enlarged_unless_asked(tmp_path, upscale, dreamed, said):
    photo = tmp_path / "small.png"
    Image.new("RGB", (80, 60), (90, 140, 200)).save(photo)
    proc = run_cli(*TINY, "octaves=1", f"input.path={photo}", f"input.upscale={str(upscale).lower()}",
                   f"hydra.run.dir={tmp_path / 'run'}")
    assert proc.returncode == 0, proc.stderr
    with Image.open(tmp_path / "run" / "dream.png") as dream:
        assert dream.size == dreamed
    assert said in proc.stderr

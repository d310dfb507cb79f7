"""A sweep's results side by side: summary.png, summary.csv, summary.md and a TensorBoard run.

    dreamrun-summarize outputs/multirun/2026-11-27/14-35-57

Everything is read from the files the jobs left (result.json, .hydra/), so it works on a sweep
that is still running, was killed midway, or ran on other machines.
"""
import argparse
import csv
import io
import itertools
import math
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence
from urllib.parse import quote

import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf
from PIL import Image, UnidentifiedImageError

from dreamrun.errors import EXIT_USER_ERROR
from dreamrun.jobs.claim import run_status
from dreamrun.jobs.record import COMPLETED, FAILED, JobRecord, read_record
from dreamrun.outputs.contact_sheet import Layout, Tile, contact_sheet
from dreamrun.outputs.files import save_png, save_text


UNFINISHED = "unfinished"  # started, no result.json yet: killed before it claimed its dir, or about to
NOT_RUN = "not run"  # in the sweep's grid, never started
TENSORBOARD_SUFFIX = ".summary"
MAX_ROW = 8  # pictures in a row of one swept key's values
SUMMARY_FILES = {"image": "summary.png", "table": "summary.csv", "report": "summary.md"}  # in the sweep dir

Axis = tuple[str, list[str]]  # a swept key and its values, in sweep order


@dataclass
class Job:
    num: int
    dir: Optional[Path]  # None: never started
    overrides: dict[str, str]  # key -> value, as typed on the command line
    record: Optional[JobRecord] = None
    seen: Optional[str] = None  # its status when the summary looked (jobs.claim.run_status): died told apart

    @property
    def status(self) -> str:
        if self.dir is None:
            return NOT_RUN
        return self.seen or UNFINISHED

    @property
    def gain(self) -> Optional[float]:
        return self.record.metrics.get("gain") if self.record else None

    @property
    def seconds(self) -> Optional[float]:
        return self.record.metrics.get("seconds") if self.record else None

    def dream(self) -> Optional[Image.Image]:
        if not (self.record and "dream" in self.record.paths):
            return None
        try:
            with Image.open(self.dir / self.record.paths["dream"]) as image:
                return image.convert("RGB")
        except (OSError, UnidentifiedImageError):  # deleted or damaged since: show the job without it
            return None


@dataclass
class Summary:
    sweep_dir: Path
    jobs: list[Job]
    axes: list[Axis]
    grid: Optional[list[list[Job]]]  # rows of jobs when the sweep is a grid over its axes

    def headline(self) -> str:
        """The counts line, e.g. 4 jobs: 3 completed, 1 failed."""
        counts = Counter(job.status for job in self.jobs)
        return f"{len(self.jobs)} jobs: " + ", ".join(f"{n} {status}" for status, n in counts.items())

    @property
    def all_completed(self) -> bool:
        return all(job.status == COMPLETED for job in self.jobs)


def parse_overrides(overrides: Sequence[str]) -> dict[str, str]:
    parsed = OverridesParser.create().parse_overrides(list(overrides))
    return {o.key_or_group: _unquote(o.get_value_element_as_str()) for o in parsed if not o.is_sweep_override()}


def _unquote(value: str) -> str:
    return value[1:-1] if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"" else value


def _read_yaml(path: Path) -> Any:
    """A YAML file Hydra wrote, as plain data: with libyaml's parser, many times faster than
    OmegaConf.load (benchmarks/README.md), which counts in a sweep of hundreds of jobs."""
    with open(path, encoding="utf-8") as f:
        return yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def collect_jobs(sweep_dir: Path) -> list[Job]:
    """Every job that started: a subdir with Hydra's .hydra/ record of its overrides."""
    jobs = []
    for hydra_dir in sweep_dir.glob("*/.hydra"):
        job_dir = hydra_dir.parent
        try:
            num = int(_read_yaml(hydra_dir / "hydra.yaml")["hydra"]["job"]["num"])
            overrides = [str(o) for o in _read_yaml(hydra_dir / "overrides.yaml")]
        except Exception:  # a job killed while Hydra wrote these files: nothing to show for it
            continue
        seen = run_status(job_dir)  # once: a job still running may end while the summary is made
        jobs.append(Job(num, job_dir, parse_overrides(overrides), read_record(job_dir), seen))
    return sorted(jobs, key=lambda job: job.num)


def sweep_axes(sweep_dir: Path, jobs: Sequence[Job]) -> tuple[list[Axis], bool]:
    """The swept keys and their values, and whether they come from the sweep's own command line.

    From the command line (multirun.yaml) when it is a discrete sweep, so jobs that never started
    still have a place; else the keys whose values differ between the jobs found.
    """
    try:
        task = list(OmegaConf.load(sweep_dir / "multirun.yaml").hydra.overrides.task)
        parsed = OverridesParser.create().parse_overrides(task)
        swept = [o for o in parsed if o.is_sweep_override()]
        if swept and all(o.is_discrete_sweep() for o in swept):
            return [(o.key_or_group, [_unquote(v) for v in o.sweep_string_iterator()]) for o in swept], True
    except Exception:  # no multirun.yaml, or a sweeper we cannot read: fall back to the jobs
        pass
    axes: list[Axis] = []
    for key in dict.fromkeys(k for job in jobs for k in job.overrides):
        values = list(dict.fromkeys(job.overrides.get(key, "") for job in jobs))
        if len(values) > 1:
            axes.append((key, values))
    return axes, False


def split_axes(axes: Sequence[Axis]) -> tuple[list[Axis], list[Axis]]:
    """Row axes and column axes, keeping the sweep's order, so the grid is as square as it can be."""
    if len(axes) < 2:
        return [], list(axes)
    sizes = [len(values) for _, values in axes]
    best = min(range(1, len(axes)), key=lambda i: abs(math.prod(sizes[:i]) - math.prod(sizes[i:])))
    return list(axes[:best]), list(axes[best:])


def combinations(axes: Sequence[Axis]) -> list[dict[str, str]]:
    keys = [key for key, _ in axes]
    return [dict(zip(keys, values)) for values in itertools.product(*(values for _, values in axes))]


def arrange_grid(jobs: Sequence[Job], axes: Sequence[Axis], planned: bool) -> Optional[list[list[Job]]]:
    """jobs on the grid of axes, or None if they do not fit one. planned: the axes are the sweep's own,
    so a missing cell is a job that never started (NOT_RUN); else every cell must have its job."""
    if not axes or (not planned and len(jobs) != math.prod(len(values) for _, values in axes)):
        return None
    keys = [key for key, _ in axes]
    by_values: dict[tuple[str, ...], Job] = {}
    for job in jobs:
        values = tuple(job.overrides.get(key) for key in keys)
        if any(value not in axis_values for value, (_, axis_values) in zip(values, axes)) or values in by_values:
            return None
        by_values[values] = job
    row_axes, col_axes = split_axes(axes)
    grid = []
    for row in combinations(row_axes):
        cells = []
        for col in combinations(col_axes):
            overrides = {**row, **col}
            values = tuple(overrides[key] for key in keys)
            cells.append(by_values.get(values) or Job(-1, None, overrides))
        grid.append(cells)
    return grid


def summarize(sweep_dir: Path) -> Summary:
    jobs = collect_jobs(sweep_dir)
    axes, planned = sweep_axes(sweep_dir, jobs)
    grid = arrange_grid(jobs, axes, planned)
    if grid is not None:  # the grid knows the jobs that never started
        started = {id(job) for job in jobs}
        jobs = jobs + [job for row in grid for job in row if id(job) not in started]
    return Summary(sweep_dir, jobs, axes, grid)


def _caption(job: Job, overrides: Sequence[str]) -> Tile:
    head = [f"{key}={job.overrides.get(key, '')}" for key in overrides]
    number = f"#{job.num} " if job.num >= 0 else ""
    if job.status == COMPLETED:
        gain = f"gain {job.gain:.3g}x · " if job.gain is not None else ""  # zoom jobs have none
        return Tile(job.dream(), head + [f"{number}{gain}{job.seconds:.3g} s"])
    if job.status == FAILED:
        return Tile(None, head + [f"{number}failed: {job.record.error}"], placeholder="FAILED", alert=True)
    return Tile(job.dream(), head + [f"{number}{job.status}"], placeholder=job.status.upper())


def _one_long_axis(axes: Sequence[Axis]) -> bool:
    """One swept key with more values than a row holds (an atlas's channels): wrapped into a square grid,
    each picture captioned with its value."""
    return len(axes) == 1 and len(axes[0][1]) > MAX_ROW


def sheet(summary: Summary) -> Image.Image:
    """The contact sheet: the grid of the swept keys when the sweep is a grid, else jobs in order."""
    row_labels: list[str] = []
    col_labels: list[str] = []
    if summary.grid is not None and not _one_long_axis(summary.axes):
        row_axes, col_axes = split_axes(summary.axes)
        row_labels = ["\n".join(f"{k}={row[0].overrides[k]}" for k, _ in row_axes) for row in summary.grid] \
            if row_axes else []
        col_labels = ["\n".join(f"{k}={job.overrides[k]}" for k, _ in col_axes) for job in summary.grid[0]]
        tiles = [[_caption(job, []) for job in row] for row in summary.grid]
    else:
        keys = [key for key, _ in summary.axes]
        # in the sweep's order, the jobs that never started in their places
        jobs = [job for row in summary.grid for job in row] if summary.grid is not None else summary.jobs
        cols = max(1, math.ceil(math.sqrt(len(jobs))))
        flat = [_caption(job, keys) for job in jobs]
        tiles = [flat[i:i + cols] for i in range(0, len(flat), cols)]
    first = next((tile.image.size for row in tiles for tile in row if tile.image is not None), None)
    layout = Layout.for_images(first, row_labels=bool(row_labels), col_labels=bool(col_labels))
    return contact_sheet(tiles, layout, row_labels, col_labels)


def table(summary: Summary) -> tuple[list[str], list[list[str]]]:
    """One row per job: number, status, each swept key, gain, seconds, error, dir."""
    keys = [key for key, _ in summary.axes]
    header = ["job", "status", *keys, "gain", "seconds", "error", "dir"]
    rows = []
    for job in summary.jobs:
        rows.append([
            str(job.num) if job.num >= 0 else "", job.status, *(job.overrides.get(key, "") for key in keys),
            f"{job.gain:.4g}" if job.gain is not None else "",
            f"{job.seconds:.3g}" if job.seconds is not None else "",
            (job.record.error or "") if job.record else "",
            job.dir.name if job.dir else "",
        ])
    return header, rows


def markdown(summary: Summary, header: list[str], rows: list[list[str]]) -> str:
    lines = [f"# Sweep {summary.sweep_dir.name}", "", summary.headline(), "",
             f"![contact sheet]({SUMMARY_FILES['image']})", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [cell.replace("|", "\\|").replace("\n", " ") for cell in row]
        if row[-1]:
            text = row[-1].replace("[", "\\[").replace("]", "\\]")
            cells[-1] = f"[{text}]({quote(row[-1], safe='=,')}/)"
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_summary(sweep_dir: str | Path, tensorboard: bool = True) -> Summary:
    """summary.png, summary.csv, summary.md (and a TensorBoard run) in sweep_dir; returns what it found."""
    sweep_dir = Path(sweep_dir)
    summary = summarize(sweep_dir)
    image = sheet(summary)
    header, rows = table(summary)
    save_png(image, sweep_dir / SUMMARY_FILES["image"])
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows([header, *rows])
    save_text(buffer.getvalue(), sweep_dir / SUMMARY_FILES["table"])
    text = markdown(summary, header, rows)
    save_text(text, sweep_dir / SUMMARY_FILES["report"])
    if tensorboard:
        _log_to_tensorboard(sweep_dir, image, text, summary)
    return summary


def _log_to_tensorboard(sweep_dir: Path, image: Image.Image, text: str, summary: Summary) -> None:
    """One run at the sweep root; summarising again replaces it instead of adding a second."""
    from dreamrun.outputs.event_file import EventFile  # imports numpy and protobuf: only when asked

    for old in sweep_dir.glob(f"events.out.tfevents.*{TENSORBOARD_SUFFIX}"):
        old.unlink()
    with EventFile(sweep_dir, filename_suffix=TENSORBOARD_SUFFIX) as events:
        events.add_image("sweep/summary", image, 0)
        events.add_text("sweep/summary", text, 0)
        for job in summary.jobs:
            if job.gain is not None:
                events.add_scalar("sweep/gain", job.gain, job.num)
                events.add_scalar("sweep/seconds", job.seconds, job.num)


def report(summary: Summary) -> str:
    """A few lines for the terminal: counts, each failure with its message, where the summary is."""
    lines = [f"sweep: {summary.headline()}"]
    for job in summary.jobs:
        if job.status != COMPLETED:
            detail = f": {job.record.error}" if job.record and job.record.error else ""
            where = job.dir.name if job.dir else ", ".join(f"{k}={v}" for k, v in job.overrides.items())
            lines.append(f"  {job.status} {where}{detail}")
    lines.append(f"sweep summary: {summary.sweep_dir / SUMMARY_FILES['report']}")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(
        prog="dreamrun-summarize",
        description="Summarise a dreamrun sweep dir: summary.png (contact sheet), summary.csv, summary.md "
                    "and a TensorBoard run at its root. Works on partly failed or killed sweeps.")
    parser.add_argument("sweep_dir", type=Path, help="e.g. outputs/multirun/2026-11-27/14-35-57")
    parser.add_argument("--no-tensorboard", action="store_true", help="skip the TensorBoard run")
    args = parser.parse_args(argv)
    if not args.sweep_dir.is_dir():
        print(f"dreamrun-summarize: error: {args.sweep_dir} is not a directory", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
    if not collect_jobs(args.sweep_dir):
        print(f"dreamrun-summarize: error: no sweep jobs in {args.sweep_dir} (no */.hydra/ job dirs): "
              "pass the dir that `python -m dreamrun -m ...` printed", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
    summary = write_summary(args.sweep_dir, tensorboard=not args.no_tensorboard)
    print(report(summary), file=sys.stderr)
    print((args.sweep_dir / SUMMARY_FILES["image"]).absolute())


if __name__ == "__main__":
    main()

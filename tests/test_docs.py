"""The README and the manual: the site builds strict, the README stays a front door, every command in them
is checked here or marked with why not, and the example notebook runs."""
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from PIL import Image

from conftest import REPO
from dreamrun.cli import split_flags
from dreamrun.config.compose import compose_config
from dreamrun.config.file_argument import file_argument

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
BLOCK = re.compile(r"(?:<!--\s*(?P<mark>[^>]*?)\s*-->\s*\n)?```bash\n(?P<body>.*?)```", re.S)
DREAMRUN = ("dreamrun ", "python -m dreamrun ")
# files the manual's commands name, made in the dir they are checked from
INPUTS = ("photo.jpg", "holiday (2).jpg", "guide.jpg", "style.jpg", "mask.png")


def commands(page: Path) -> list[tuple[str, str]]:
    """Each command of the page's bash blocks, with its block's mark (`not run by the tests: why`,
    `recipe: NAME` for a block another test runs word for word, or '')."""
    found = []
    for block in BLOCK.finditer(page.read_text()):
        text = block["body"].replace("\\\n", " ")
        for line in text.splitlines():
            line = line.split(" #", 1)[0].strip() if not line.lstrip().startswith("#") else ""
            if line:
                found.append((line, block["mark"] or ""))
    return found


def every_command() -> list[tuple[str, str, str]]:
    return [(page.name, line, mark) for page in PAGES for line, mark in commands(page)]


def test_the_site_builds_strict(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", tmp_path / "site"],
                          cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "site" / "models" / "index.html").is_file()


def test_the_readme_is_a_front_door():
    assert len((REPO / "README.md").read_text().splitlines()) <= 200


@pytest.mark.parametrize("page, line, mark", every_command(), ids=lambda v: v[:60] if isinstance(v, str) else v)
def test_every_command_is_checked_or_says_why_not(page, line, mark, tmp_path, monkeypatch):
    if mark.startswith("recipe:"):
        return  # run word for word by the test that names it (tests/test_packaging.py)
    checked = line.startswith(DREAMRUN) or line.startswith("dreamrun-layers ")
    if mark.startswith("not run by the tests:"):
        assert mark.removeprefix("not run by the tests:").strip(), f"{page}: say why not: {line}"
        if not checked or " ... " in line:  # a fragment of a command above
            return
    assert checked, f"{page}: `{line}` is neither checked here nor marked <!-- not run by the tests: why -->"
    monkeypatch.chdir(tmp_path)
    for name in INPUTS:
        Image.new("RGB", (96, 64), (90, 140, 200)).save(name)
    words = shlex.split(line)
    words = words[3:] if words[0] == "python" else words[1:]
    flags, overrides = split_flags(words)
    if line.startswith("dreamrun-layers"):
        config_dirs = [Path(flags[i + 1]) for i, flag in enumerate(flags) if flag in ("--config-dir", "-cd")]
        compose_config(*overrides, config_dirs=config_dirs)
        return
    if re.search(r"\.(mp4|mov|mkv|webm)\b", line):
        pytest.importorskip("av")
        from helpers.clips import panning_clip

        for name in re.findall(r"[\w./-]+\.(?:mp4|mov|mkv|webm)", line):
            panning_clip(Path(name), frames=2, width=32, height=24)
    overrides = file_argument(overrides)
    if "-m" in flags or "--multirun" in flags:  # a sweep: its first job's config
        parsed = OverridesParser.create().parse_overrides(overrides)
        overrides = [o.input_line if not o.is_sweep_override() else
                     f"{o.get_key_element()}={next(o.sweep_string_iterator())}" for o in parsed]
    compose_config(*(o for o in overrides if not o.startswith("hydra.")))


def test_the_example_notebook_runs(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    notebook = nbformat.read(REPO / "docs" / "example.ipynb", as_version=4)
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code"), \
        "commit the notebook without outputs"
    nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    shown = [output for cell in notebook.cells for output in cell.get("outputs", [])]
    assert any("image/png" in output.get("data", {}) for output in shown), "the notebook shows no dream"
    text = "".join(output.get("text", "") for output in shown)
    widgets = [o for o in shown if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert widgets or "step/s" in text or "s/step" in text, "the notebook shows no progress bar"
    assert "Warning" not in text, text
    assert (tmp_path / "dream.png").is_file()

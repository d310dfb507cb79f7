import threading

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import interrupt_at_step
from dreamrun.core import engine
from dreamrun.core.engine import Ascent
from dreamrun.errors import DreamError
from dreamrun.inputs.images import load_image, resize_long_side, sample_image, to_tensor
from dreamrun.jobs.dream import DreamJob
from dreamrun.jobs.skeleton import run_job
from dreamrun.outputs import octave_images
from dreamrun.outputs.files import save_png
from dreamrun.outputs.images import to_pil

EXIF_ORIENTATION = 0x0112


def test_sample_photo_ships_with_the_package():
    image = sample_image()
    assert image.mode == "RGB" and image.size == (600, 400)


def test_exif_orientation_is_applied(tmp_path):
    path = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6  # stored landscape, to be shown rotated 90 degrees
    Image.new("RGB", (60, 40), "red").save(path, exif=exif)
    assert load_image(path).size == (40, 60)


@pytest.mark.parametrize("mode, pixel, expected", [
    ("L", 128, (128, 128, 128)),
    ("CMYK", (0, 255, 255, 0), (255, 0, 0)),
    ("RGBA", (0, 0, 255, 255), (0, 0, 255)),
    ("RGBA", (0, 0, 255, 0), (255, 255, 255)),  # fully transparent: shown over white
    ("I;16", 65535, (255, 255, 255)),
    ("I;16", 32768, (128, 128, 128)),
])
def test_every_mode_becomes_8_bit_rgb(tmp_path, mode, pixel, expected):
    path = tmp_path / ("image.tiff" if mode == "CMYK" else "image.png")
    Image.new(mode, (16, 16), pixel).save(path)
    image = load_image(path)
    assert image.mode == "RGB"
    assert image.getpixel((3, 3)) == expected


def test_palette_with_transparency(tmp_path):
    path = tmp_path / "palette.png"
    image = Image.new("P", (16, 16), 1)
    image.putpalette([0, 0, 0, 10, 200, 30] + [0] * 762)
    image.save(path, transparency=0)
    assert load_image(path).getpixel((0, 0)) == (10, 200, 30)


@pytest.mark.parametrize("name, content", [
    ("text.jpg", b"this is not an image"),
    ("empty.png", b""),
])
def test_unreadable_files_give_a_message(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DreamError, match="cannot read image"):
        load_image(path)


def test_truncated_png_gives_a_message(tmp_path):
    path = tmp_path / "cut.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(path)
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(DreamError, match="cannot read image"):
        load_image(path)


def test_missing_file_and_directory_give_a_message(tmp_path):
    with pytest.raises(DreamError, match="not found"):
        load_image(tmp_path / "nope.png")
    with pytest.raises(DreamError, match="directory"):
        load_image(tmp_path)


def test_resize_long_side_keeps_the_aspect_ratio():
    assert resize_long_side(Image.new("RGB", (600, 400)), 150).size == (150, 100)
    assert resize_long_side(Image.new("RGB", (400, 600)), 150).size == (100, 150)
    assert resize_long_side(Image.new("RGB", (30, 20)), None).size == (30, 20)


def test_tensor_round_trip_is_lossless():
    image = Image.fromarray(np.random.default_rng(1).integers(0, 255, (9, 13, 3), dtype=np.uint8))
    tensor = to_tensor(image)
    assert tensor.shape == (1, 3, 9, 13) and 0 <= tensor.min() and tensor.max() <= 1
    assert np.array_equal(np.asarray(to_pil(tensor)), np.asarray(image))


def test_results_get_the_usual_file_permissions(tmp_path):
    """Written through a temp file, but readable like any new file (mkstemp alone would make 0600)."""
    save_png(Image.new("RGB", (4, 4)), tmp_path / "dream.png")
    (tmp_path / "plain").write_bytes(b"")
    assert (tmp_path / "dream.png").stat().st_mode & 0o777 == (tmp_path / "plain").stat().st_mode & 0o777


def test_octave_images_are_encoded_off_the_dreams_thread_in_order(tmp_path, monkeypatch):
    """A GPU step can be shorter than encoding a PNG: the dream goes on while another thread writes."""
    written = []
    real_save = octave_images.save_png

    def save_png(image, path, text=None):
        written.append((threading.current_thread() is threading.main_thread(), path.name))
        real_save(image, path, text)

    monkeypatch.setattr(octave_images, "save_png", save_png)
    observer = octave_images.OctaveImages(tmp_path)
    engine.dream(torch.rand(1, 3, 48, 48), lambda x: x.pow(2).mean(), Ascent(octaves=3, steps=2, max_shift=0),
                 generator=torch.Generator(), observers=[observer])
    observer.close()
    assert written == [(False, f"octave_{i}.png") for i in range(3)]
    assert all((tmp_path / f"octave_{i}.png").is_file() for i in range(3))


def test_an_interrupted_dream_keeps_every_octave_image_it_reached(compose_cfg, tmp_path, monkeypatch):
    interrupt_at_step(monkeypatch, 5)  # in the last octave, after two octave images were handed over
    with pytest.raises(KeyboardInterrupt):
        run_job(DreamJob(compose_cfg("model=efficientnet_lite0", "input.size=128", "octaves=3", "steps=2",
                                      "device=cpu", "log=none"), tmp_path, progress=False))
    assert [Image.open(tmp_path / f"octave_{i}.png").size for i in range(2)] == [(65, 43), (91, 61)]
    assert not (tmp_path / "octave_2.png").exists() and (tmp_path / "interrupted.png").is_file()


def test_a_failed_octave_image_write_fails_the_job(tmp_path, monkeypatch):
    """Disk full in the writer's thread is not swallowed: it reaches the job at the next octave or its end."""
    def save_png(image, path, text=None):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(octave_images, "save_png", save_png)
    observer = octave_images.OctaveImages(tmp_path)
    with pytest.raises(OSError, match="No space left"):
        engine.dream(torch.rand(1, 3, 48, 48), lambda x: x.pow(2).mean(), Ascent(octaves=3, steps=1, max_shift=0),
                     generator=torch.Generator(), observers=[observer])
        observer.close()

"""A video dreamed frame by frame, each frame starting from the previous dream carried along the
optical flow, so the dream moves with the picture instead of flickering.

    python -m dreamrun mode=video input=video input.path=clip.mp4 model=efficientnet_lite0
    python -m dreamrun mode=video ... resume=true hydra.run.dir=<the run dir it printed>

Files: frames/<k>.png, dream.mp4 (at the input's fps / video.every, with its sound), preview.gif
(input and dream side by side), dream.png (the last frame), input.png (the first), metrics.json and a
TensorBoard run. After every frame its PNG and video_state.json are written atomically, so a killed
run resumes after its last saved frame and makes exactly the frames an uninterrupted run would have
made.
"""
import itertools
import logging
import math
import time
from dataclasses import replace
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterator, Optional

import torch
from PIL import Image

from dreamrun.config.schema import DreamConfig, InputKind
from dreamrun.core.frames import FrameSettings
from dreamrun.core.octaves import check_octaves
from dreamrun.core.video import video_dream
from dreamrun.errors import DreamError
from dreamrun.inputs.images import size_note
from dreamrun.inputs.masks import load_mask
from dreamrun.inputs.video import VideoInfo, frames_expected, probe, read_frames, require_video_libraries
from dreamrun.jobs.dreamer import Dreamer, ascent, build_dreamer, compile_target, describe
from dreamrun.jobs.frame_files import FramesJob
from dreamrun.jobs.frame_plan import video_plan
from dreamrun.jobs.frame_state import VIDEO, frame_path
from dreamrun.jobs.skeleton import JobResult
from dreamrun.outputs.animation import encode_images
from dreamrun.outputs.files import save_bytes, save_json, save_png
from dreamrun.outputs.images import to_pil
from dreamrun.outputs.run_files import OUTPUT_FILES
from dreamrun.outputs.tensorboard import log_encoded_image
from dreamrun.outputs.video_files import save_mp4

log = logging.getLogger(__name__)

PREVIEW_SIDE = 256  # px: each half of preview.gif; the full-size dream is dream.mp4 and frames/
PREVIEW_FRAMES = 120  # preview.gif shows the start of a long video


def validate_video(cfg: DreamConfig) -> None:
    video = cfg.video
    checks = [
        (cfg.input.kind == InputKind.video, "mode=video dreams a video file: add input=video input.path=clip.mp4"),
        (video.max_frames is None or video.max_frames >= 1,
         f"video.max_frames must be at least 1 (or null: every frame), got {video.max_frames}"),
        (video.every >= 1, f"video.every must be at least 1 (1: every frame), got {video.every}"),
        (video.octaves >= 1, f"video.octaves must be at least 1, got {video.octaves}"),
        (math.isfinite(video.blend) and 0 <= video.blend <= 1,
         f"video.blend is the part of the previous dream a frame starts from: 0 to 1, got {video.blend}"),
        (math.isfinite(video.hold) and 0 <= video.hold <= 1,
         f"video.hold is the part of a carried pixel's new steps held back: 0 to 1, got {video.hold}"),
        (video.log_every >= 0, f"video.log_every must be 0 (off) or a frame count, got {video.log_every}"),
    ]
    for ok, message in checks:
        if not ok:
            raise DreamError(message)


class VideoJob(FramesJob):
    frame_kind = VIDEO
    resumed_image: Optional[torch.Tensor] = None  # the dream of frame start-1
    info: VideoInfo

    def validate(self):
        validate_video(self.cfg)
        self.plan = video_plan(self.cfg)  # step_size and steps per frame, numbers or keyframes
        self.plan.check_weights(compile_target(self.cfg))
        require_video_libraries()

    def load_input(self):
        cfg = self.cfg
        self.info = probe(cfg.input.path)
        image = next(self.decode())
        height, width = image.shape[-2:]
        stored = (self.info.width, self.info.height)
        if (stored[0] > stored[1]) != (width > height):  # a portrait video stored sideways, turned upright
            stored = stored[::-1]
        self.input_note = size_note(stored, (width, height), cfg.input.size, what="video frames")
        self.mask = load_mask(cfg.mask, (height, width))
        for key, octaves in (("octaves", cfg.octaves), ("video.octaves", cfg.video.octaves)):
            check_octaves(height, width, octaves, cfg.octave_scale, cfg.model.min_size,
                          what="the video's frames are too small:", key=key, max_side=cfg.input.size,
                          upscale=cfg.input.upscale)
        self.resumed_image = self.resume()
        if self.resumed_image is None:
            save_png(to_pil(image), self.run_dir / OUTPUT_FILES["input"])
        return image

    def decode(self) -> Iterator[torch.Tensor]:
        cfg = self.cfg
        return read_frames(cfg.input.path, size=cfg.input.size, every=cfg.video.every,
                           max_frames=cfg.video.max_frames, upscale=cfg.input.upscale)

    def build(self, image):
        return build_dreamer(self.cfg, image=image)

    def frame_settings(self, dreamer: Dreamer) -> Callable[[int], FrameSettings]:
        """Frame k's settings: frame 0 a whole dream (octaves, steps), each next one video.octaves of the plan's
        steps; the step size and the weights at k."""
        plan, step_size = self.plan, self.plan.value("step_size", 0)
        first, each = (ascent(self.cfg, dreamer, step_size=step_size),
                       ascent(self.cfg, dreamer, octaves=self.cfg.video.octaves, step_size=step_size))

        def settings(frame: int) -> FrameSettings:
            weighed = dreamer.at_frame(frame, plan.easing)
            climb = first if frame == 0 else replace(each, steps=plan.steps(frame))
            return FrameSettings(
                objective=weighed,
                ascent=replace(climb, step_size=plan.value("step_size", frame)),
                logged={name: value for name, value in plan.logged(frame, weighed.objective).items()
                        if frame > 0 or name != "steps_per_frame"})  # frame 0 is a whole dream: octaves x steps

        return settings

    def run(self, image, dreamer, observers):
        cfg, video = self.cfg, self.cfg.video
        self.frames = 0  # how many frames the video has (after video.every and max_frames), counted as decoded
        self.thumbnails: list[Image.Image] = []  # the input's side of preview.gif, kept as the frames go by
        previous: Optional[tuple[torch.Tensor, torch.Tensor]] = None

        def frames_to_dream() -> Iterator[torch.Tensor]:
            nonlocal previous
            for index, frame in enumerate(self.decode()):
                self.frames = index + 1
                if index < PREVIEW_FRAMES:
                    self.thumbnails.append(_thumbnail(to_pil(frame)))
                if index == self.start - 1:
                    previous = (frame.to(dreamer.device), self.resumed_image.to(dreamer.device))
                if index >= self.start:
                    yield frame.to(dreamer.device)

        frames = frames_to_dream()
        first = next(frames, None)  # decodes up to the resume point, so `previous` is known
        clock = time.perf_counter()
        if first is not None:
            video_dream(itertools.chain([first], frames), self.frame_settings(dreamer),
                        blend=video.blend, hold=video.hold, flow=video.flow_method.value if video.flow else None,
                        generator=self.generator, start=self.start, previous=previous,
                        total=frames_expected(self.info, video.every, video.max_frames), observers=observers,
                        mask=None if self.mask is None else self.mask.to(dreamer.device))
        seconds = time.perf_counter() - clock
        made = max(0, self.frames - self.start)
        fps = self.info.fps / video.every
        result = self._write_outputs(fps)
        result.metrics.update({"resumed_at": self.start if cfg.resume else None, "frames_made": made,
                               "seconds": round(seconds, 3),
                               "seconds_per_frame": round(seconds / made, 3) if made else None,
                               **describe(cfg, dreamer)})
        save_json(result.metrics, self.run_dir / OUTPUT_FILES["metrics"])
        log.info("%d frames (%d made now) in %.1f s: %s", self.frames, made, seconds, result.output)
        return result

    def _write_outputs(self, fps: Fraction) -> JobResult:
        """dream.mp4, dream.png (the last frame) and preview.gif from the frame files."""
        cfg = self.cfg
        frames = [frame_path(self.run_dir, k) for k in range(self.frames)]
        output = self.run_dir / OUTPUT_FILES["dream_video"]
        save_mp4(frames, output, fps, audio_from=Path(cfg.input.path).expanduser())
        with Image.open(frames[-1]) as last:
            save_png(last.convert("RGB"), self.run_dir / OUTPUT_FILES["dream"], last.text)
            size = list(last.size)
        preview = encode_images(_side_by_side(self.thumbnails, frames), float(fps))
        save_bytes(preview, self.run_dir / OUTPUT_FILES["preview"])
        if self.board:
            with Image.open(self.run_dir / OUTPUT_FILES["preview"]) as gif:
                log_encoded_image(self.board.writer, "video/preview", preview, gif.size, self.frames - 1)
        metrics = {"mode": "video", "frames": self.frames, "size": size, "fps": float(fps),
                   "video": output.name, "preview": OUTPUT_FILES["preview"], "input_codec": self.info.codec,
                   "blend": cfg.video.blend, "hold": cfg.video.hold,
                   "flow": cfg.video.flow_method.value if cfg.video.flow else None}
        return JobResult(output, metrics)


def _thumbnail(image: Image.Image) -> Image.Image:
    image.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE), Image.LANCZOS)
    return image


def _side_by_side(inputs: list[Image.Image], dreams: list[Path]) -> Iterator[Image.Image]:
    """Each input thumbnail beside its dream, shrunk alike."""
    for before, dream_path in zip(inputs, dreams):
        with Image.open(dream_path) as dream:
            after = _thumbnail(dream.convert("RGB"))
        pair = Image.new("RGB", (before.width + after.width, max(before.height, after.height)))
        pair.paste(before, (0, 0))
        pair.paste(after, (before.width, 0))
        yield pair

"""One zoom dream from a config: frames, resume, the animation, a TensorBoard run.

    python -m dreamrun mode=zoom input=noise input.size=256 model=efficientnet_lite0 'target.block_12=[3,17]'
    python -m dreamrun mode=zoom ... resume=true hydra.run.dir=outputs/2026-11-27/14-35-57_efficientnet_lite0_block_12@3-17

After every frame, frames/<k>.png and zoom_state.json (the frame number and the jitter RNG's
state) are written atomically, so a run killed at any point resumes after its last saved frame
and makes exactly the frames an uninterrupted run would have made.
"""
import logging
import math
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable, Optional

from omegaconf import OmegaConf
from PIL import Image

from dreamrun.config.schema import DreamConfig
from dreamrun.core.engine import Ascent
from dreamrun.core.frames import FrameSettings
from dreamrun.core.objectives import Objective, parse_target
from dreamrun.core.octaves import check_octaves
from dreamrun.core.zoom import zoom_dream
from dreamrun.errors import DreamError
from dreamrun.jobs.dreamer import ascent, build_dreamer, compile_target, describe
from dreamrun.jobs.frame_files import FramesJob
from dreamrun.jobs.frame_plan import zoom_plan
from dreamrun.jobs.frame_state import ZOOM, frame_path
from dreamrun.jobs.skeleton import JobResult
from dreamrun.nets.build import class_names
from dreamrun.outputs.animation import encode_animation, save_animation
from dreamrun.outputs.files import save_json, save_png
from dreamrun.outputs.images import to_pil
from dreamrun.outputs.run_files import ANIMATIONS, OUTPUT_FILES
from dreamrun.outputs.tensorboard import FramesTensorBoardLogger, log_encoded_image
from dreamrun.outputs.video_files import can_write_mp4, note_no_mp4, save_mp4

log = logging.getLogger(__name__)

TENSORBOARD_ANIMATION_SIDE = 256  # px: the animation in TensorBoard is a preview; the files are full size


def validate_zoom(cfg: DreamConfig) -> None:
    zoom = cfg.zoom
    checks = [
        (zoom.frames >= 1, f"zoom.frames must be at least 1, got {zoom.frames}"),
        (zoom.octaves >= 1, f"zoom.octaves must be at least 1, got {zoom.octaves}"),
        (math.isfinite(zoom.fps) and zoom.fps > 0, f"zoom.fps must be positive, got {zoom.fps}"),
        (zoom.frames_per_target >= 1, f"zoom.frames_per_target must be at least 1, got {zoom.frames_per_target}"),
        (zoom.log_every >= 0, f"zoom.log_every must be 0 (off) or a frame count, got {zoom.log_every}"),
    ]
    for ok, message in checks:
        if not ok:
            raise DreamError(message)


def frame_objectives(cfg: DreamConfig) -> list[Objective]:
    """The objective of each entry of zoom.targets, or of `target` when there is no schedule."""
    if not cfg.zoom.targets:
        return [compile_target(cfg)]
    if cfg.guide.path:
        raise DreamError("a zoom with guide.path takes one target, not a zoom.targets schedule")
    objectives = []
    for i, target in enumerate(cfg.zoom.targets):
        if not OmegaConf.is_dict(target):
            raise DreamError(f"zoom.targets[{i}] must be a target dictionary like {{block_12: [3, 17]}}, got {target}")
        try:
            objectives.append(parse_target(OmegaConf.to_container(target), list(cfg.model.layers),
                                           class_names(cfg.model.categories)))
        except DreamError as e:
            raise DreamError(f"zoom.targets[{i}]: {e}") from None
    return objectives


class ZoomJob(FramesJob):
    """The whole zoom in a run dir: frames/, zoom.gif (or .webp), zoom.mp4 with PyAV, dream.png
    (the last frame), input.png, metrics.json and a TensorBoard run."""

    frame_kind = ZOOM

    def validate(self):
        validate_zoom(self.cfg)
        self.plan = zoom_plan(self.cfg)  # factor, rotation, shift, step_size and steps, numbers or keyframes
        self.objectives = frame_objectives(self.cfg)
        for objective in self.objectives:
            self.plan.check_weights(objective)

    def load_input(self):
        cfg = self.cfg
        image = super().load_input()
        check_octaves(*image.shape[-2:], cfg.zoom.octaves, cfg.octave_scale, cfg.model.min_size,
                      max_side=cfg.input.size, upscale=cfg.input.upscale)
        self.first_image = image  # a resumed zoom picks its {strongest: K} channels where it first did
        resumed = self.resume()
        if resumed is not None:
            return resumed
        save_png(to_pil(image), self.run_dir / OUTPUT_FILES["input"])
        return image

    def build(self, image):
        # one network cut at every layer the schedule names; each frame's dreamer shares it
        dreamer = build_dreamer(self.cfg, sum(self.objectives[1:], self.objectives[0]), image=self.first_image,
                                long_side=max(image.shape[-2:]))
        terms = iter(dreamer.objective.terms)  # the schedule's terms in order, with what building added
        self.dreamers = [replace(dreamer, objective=Objective(tuple(next(terms) for _ in objective.terms)))
                         for objective in self.objectives] if len(self.objectives) > 1 else [dreamer]
        return dreamer

    def frame_settings(self, climb: Ascent) -> Callable[[int], FrameSettings]:
        """Frame k's settings: its schedule entry's dreamer with the weights at k, and the plan's values at k."""
        plan, zoom = self.plan, self.cfg.zoom

        def settings(frame: int) -> FrameSettings:
            dreamer = self.dreamers[frame // zoom.frames_per_target % len(self.dreamers)].at_frame(frame, plan.easing)
            return FrameSettings(
                objective=dreamer,
                ascent=replace(climb, steps=plan.steps(frame), step_size=plan.value("step_size", frame)),
                factor=plan.value("factor", frame), rotation=plan.value("rotation", frame),
                shift=plan.value("shift", frame), logged=plan.logged(frame, dreamer.objective))

        return settings

    def run(self, image, dreamer, observers):
        cfg, zoom = self.cfg, self.cfg.zoom
        clock = time.perf_counter()
        if self.start < zoom.frames:
            climb = ascent(cfg, dreamer, octaves=zoom.octaves, step_size=self.plan.value("step_size", 0))
            zoom_dream(image.to(dreamer.device), self.frame_settings(climb),
                       frames=zoom.frames, start=self.start, generator=self.generator, observers=observers,
                       mask=None if self.mask is None else self.mask.to(dreamer.device))
        seconds = time.perf_counter() - clock
        result = _write_outputs(cfg, self.run_dir, self.board)
        made = max(0, zoom.frames - self.start)
        result.metrics.update({"resumed_at": self.start if cfg.resume else None, "frames_made": made,
                               "seconds": round(seconds, 3),
                               "seconds_per_frame": round(seconds / made, 3) if made else None,
                               **describe(cfg, dreamer)})
        save_json(result.metrics, self.run_dir / OUTPUT_FILES["metrics"])
        log.info("%d frames (%d made now) in %.1f s: %s", zoom.frames, made, seconds, result.output)
        return result


def _write_outputs(cfg: DreamConfig, run_dir: Path, board: Optional[FramesTensorBoardLogger]) -> JobResult:
    """The animation, the MP4 where PyAV is, and dream.png (the last frame) from the frame files."""
    frames = [frame_path(run_dir, k) for k in range(cfg.zoom.frames)]
    animation = run_dir / ANIMATIONS[cfg.zoom.animation.value]
    save_animation(frames, animation, cfg.zoom.fps)
    with Image.open(frames[-1]) as last:
        save_png(last.convert("RGB"), run_dir / OUTPUT_FILES["dream"], last.text)
        size = list(last.size)
    video = run_dir / OUTPUT_FILES["video"] if can_write_mp4() else None
    if video:
        save_mp4(frames, video, cfg.zoom.fps)
    else:
        note_no_mp4()
    if board:
        preview = encode_animation(frames, cfg.zoom.fps, max_side=TENSORBOARD_ANIMATION_SIDE)
        with Image.open(frames[0]) as first:
            first.thumbnail((TENSORBOARD_ANIMATION_SIDE, TENSORBOARD_ANIMATION_SIDE))
            log_encoded_image(board.writer, "zoom/animation", preview, first.size, cfg.zoom.frames - 1)
    metrics = {"mode": "zoom", "frames": cfg.zoom.frames, "size": size, "animation": animation.name,
               "video": video.name if video else None}
    return JobResult(animation, metrics)

"""Which job kind runs a config: a dream, a zoom or a video, by its mode."""
from dreamrun.config.schema import Mode
from dreamrun.jobs.skeleton import JobKind


def job_kind(mode: Mode) -> type[JobKind]:
    from dreamrun.jobs.dream import DreamJob
    from dreamrun.jobs.video import VideoJob
    from dreamrun.jobs.zoom import ZoomJob

    return {Mode.dream: DreamJob, Mode.zoom: ZoomJob, Mode.video: VideoJob}[mode]

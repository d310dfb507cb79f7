"""The names of what a job leaves in its run dir, each defined here once: the jobs write them,
result.json names them by role (jobs.record), overwrite=true removes them."""
import re

# role -> file name, relative to the run dir so a moved sweep dir stays readable
OUTPUT_FILES = {"dream": "dream.png", "input": "input.png", "metrics": "metrics.json", "log": "dreamrun.log",
                "interrupted": "interrupted.png",  # the last finished step of an interrupted dream
                "last_good": "last_good.png",  # the image before the objective became NaN or infinite
                "animation": "zoom.gif", "animation_webp": "zoom.webp", "video": "zoom.mp4",
                "dream_video": "dream.mp4", "preview": "preview.gif"}
ANIMATIONS = {"gif": OUTPUT_FILES["animation"], "webp": OUTPUT_FILES["animation_webp"]}
RESULT_FILE = "result.json"
LOCK_FILE = ".dreamrun.lock"  # held by the live run that claimed the dir (jobs.claim)
PARTIAL = ".part-"  # in the name of a file being written, until it replaces its final name whole
FRAMES_DIR = "frames"
HYDRA_DIR = ".hydra"
TENSORBOARD_PREFIX = "events.out.tfevents."
OCTAVE_IMAGE = re.compile(r"(octave_\d+)\.png")


def octave_image(octave: int) -> str:
    """The dream at the end of an octave."""
    return f"octave_{octave}.png"


def frame_file(frame: int) -> str:
    """A zoom's or a video's frame, under FRAMES_DIR."""
    return f"{frame:06d}.png"


def state_file(kind: str) -> str:
    """Where a zoom or a video keeps what a resumed run continues from."""
    return f"{kind}_state.json"


# everything a job writes besides Hydra's .hydra/, the log and the lock: what overwrite=true removes first,
# with what a killed run was writing
RESULT_GLOBS = [RESULT_FILE, OUTPUT_FILES["metrics"], "*.png", f"{TENSORBOARD_PREFIX}*", *ANIMATIONS.values(),
                OUTPUT_FILES["video"], state_file("*"), FRAMES_DIR, OUTPUT_FILES["dream_video"], OUTPUT_FILES["preview"],
                f".*{PARTIAL}*"]

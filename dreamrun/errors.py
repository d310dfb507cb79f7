"""The one error type a user sees, the exit statuses, and refusing from inside Hydra."""
import sys
from typing import NoReturn


class DreamError(Exception):
    """A problem with the user's input or config. The CLI prints its message as one line."""


class JobFailed(Exception):
    """A sweep's job failed; its result.json and log say why. Raised out of the task function, so that
    Hydra records the job as FAILED and a callback's on_job_end sees it as such; Hydra's sweeper raises
    it again once every job of its batch has run, and the CLI makes it the sweep's exit status."""


EXIT_SWEEP_FAILED = 1  # a sweep in which some job failed or did not finish
EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT)
EXIT_TERMINATED = 143  # SIGTERM (128 + SIGTERM)


def refuse(message: str) -> NoReturn:
    """Print a DreamError's one line and exit, from where raising it would not reach the CLI: Hydra's
    callbacks turn any Exception into a warning and go on, but let SystemExit through."""
    print(f"dreamrun: error: {message}", file=sys.stderr)
    sys.exit(EXIT_USER_ERROR)

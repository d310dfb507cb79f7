class DreamError(Exception):
    """A problem with the user's input or config. The CLI prints its message as one line."""


EXIT_SWEEP_FAILED = 1  # a sweep in which some job failed or did not finish (Hydra's own config errors: 1 too)
EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130

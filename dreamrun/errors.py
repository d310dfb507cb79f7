class DreamError(Exception):
    """A problem with the user's input or config. The CLI prints its message as one line."""


EXIT_SWEEP_FAILED = 1  # a sweep in which some job failed or did not finish (Hydra's own config errors: 1 too)
EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT)
EXIT_TERMINATED = 143  # SIGTERM (128 + SIGTERM)

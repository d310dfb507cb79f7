class DreamError(Exception):
    """A problem with the user's input or config. The CLI prints its message as one line."""


EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130

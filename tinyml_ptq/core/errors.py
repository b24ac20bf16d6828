"""Error types shared by every stage.

A `UserError` is something the user can fix (bad path, bad data, unsupported
model). The CLI prints it as one `error: ...` line and exits with status 2.
Anything else is a bug in tinyml-ptq and keeps its traceback.
"""


class UserError(Exception):
    """Bad input from the user; the message says what was wrong and what to do."""

    exit_code = 2


def shorten(name: str, limit: int = 60) -> str:
    """A name from a model (tensor names run to hundreds of characters) cut to fit a message."""
    return name if len(name) <= limit else name[: limit - 3] + "..."

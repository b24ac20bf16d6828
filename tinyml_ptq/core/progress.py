"""Progress for long steps: a bar on a terminal, plain parseable lines otherwise."""

from __future__ import annotations

import sys
import time
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")

_enabled = True
_stream = None  # where progress goes; None: sys.stderr


def set_enabled(enabled: bool) -> None:
    """The CLI turns progress off for --quiet / --json on stdout."""
    global _enabled
    _enabled = enabled


def enabled() -> bool:
    return _enabled


def set_stream(stream) -> None:
    """Show progress on `stream` instead of sys.stderr (a child process on its parent's terminal)."""
    global _stream
    _stream = stream


def warn(message: str) -> None:
    """A `warning: ...` line on stderr, shown even when progress is off: something is missing from the results."""
    print(f"warning: {message}", file=sys.stderr, flush=True)


def log(message: str) -> None:
    """A status line on stderr (stdout stays for results)."""
    if _enabled:
        print(message, file=_stream or sys.stderr, flush=True)


def track(items: Iterable[T], label: str, total: int | None = None) -> Iterator[T]:
    """Iterate over `items`, showing progress on stderr.

    On a TTY this redraws one bar line; otherwise it prints `label: i/total`
    about ten times, so logs stay short and machine-readable.
    """
    if total is None:
        try:
            total = len(items)  # type: ignore[arg-type]
        except TypeError:
            total = None
    stream = _stream or sys.stderr
    tty = stream.isatty()
    step = max(1, (total or 10) // 10)
    start = time.monotonic()
    done = 0
    for item in items:
        yield item
        done += 1
        if not _enabled:
            continue
        if tty:
            if total:
                width = 30
                filled = int(width * done / total)
                bar = "#" * filled + "-" * (width - filled)
                stream.write(f"\r{label} [{bar}] {done}/{total} {time.monotonic() - start:5.1f}s")
            else:
                stream.write(f"\r{label} {done}")
            stream.flush()
        elif done % step == 0 or done == total:
            stream.write(f"{label}: {done}/{total if total else '?'}\n")
            stream.flush()
    if _enabled and tty and done:
        stream.write("\n")
        stream.flush()

"""LiteRT (the TFLite interpreter) in a child process, for the quantize report and calibration:
it runs the float and the non-int8 models, and keeps every intermediate tensor when asked."""

from __future__ import annotations

from .isolation import IsolatedInterpreter


def open_litert(tflite: bytes, preserve: bool = False, reuse: IsolatedInterpreter | None = None) -> IsolatedInterpreter:
    """A LiteRT interpreter over `tflite`; `reuse` opens it in that one's child process instead of a new one."""
    # Without the default XNNPACK delegate every operator runs on its own, so
    # each intermediate tensor exists and belongs to one operator.
    options = {"no_delegates": True, "experimental_preserve_all_tensors": preserve}
    if reuse is not None:
        reuse.reopen(tflite, **options)
        return reuse
    return IsolatedInterpreter("litert", tflite, **options)

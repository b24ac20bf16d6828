"""Native interpreters (TFLite Micro, LiteRT) and the TensorFlow converter run in a child
process, never in ours.

All are C++ that trusts the model (TF 2.21's calibrator segfaults on some
recurrent layers): a degenerate quantization makes TFLite
Micro abort() (exit 134: a SOFTMAX input scale below 2^-26, as a dead layer
before it gives), and a damaged model can make either read out of bounds. In
a child, an abort or a segfault ends the child only; the toolkit gets an
`InterpreterFailure` saying which interpreter, doing what, and the last line
the interpreter printed, and decides whether the stage stops or goes on
without that reference.

`IsolatedInterpreter(kind, model, ...)` starts a Python child running `serve()`,
which opens the interpreter and then serves method calls: each call and its
result cross the pipe pickled (numpy arrays included).
"""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import tempfile

from ..core import progress
from ..core.errors import UserError

NAMES = {"tflm": "the TFLite Micro reference interpreter", "litert": "the LiteRT interpreter",
         "converter": "the TensorFlow converter"}
CHILD = "from tinyml_ptq.interpreters.isolation import serve; serve()"


class InterpreterFailure(UserError):
    """The interpreter raised an error or died; `crashed` when it died (abort, segfault)."""

    def __init__(self, kind: str, action: str, detail: str, crashed: bool):
        self.kind, self.action, self.detail, self.crashed = kind, action, detail, crashed
        super().__init__(f"{NAMES[kind]} {'crashed' if crashed else 'failed'} {action}: {detail}")


class IsolatedInterpreter:
    """An interpreter of `kind` ("tflm" or "litert") over `model_bytes`, in a child process.

    Any method of the real interpreter can be called on this object; arguments and
    results must pickle. The child ends with `close()` or when this object is collected.
    """

    def __init__(self, kind: str, model, wait: bool = True, opener: str | None = None, **options):
        """model: the .tflite bytes, or for the converter (path, loader). wait=False returns at
        once; the child opens the model meanwhile and the first call waits for it. opener:
        "module:function" the child calls with (model, options) to open a kind this module does
        not know (the converter's, in conversion.py)."""
        self.kind, self._child, self._said_from = kind, None, 0
        self._stderr = tempfile.TemporaryFile()
        # The converter's calibration is a long step: its progress goes to our stderr.
        progress_fd = _stderr_fd() if kind == "converter" and progress.enabled() else None
        if progress_fd is not None:
            options = {**options, "progress_fd": progress_fd}
        # -W ignore: preserve_all_tensors warns that it is for debugging; it is.
        try:
            self._child = subprocess.Popen([sys.executable, "-W", "ignore", "-c", CHILD], stdin=subprocess.PIPE,
                                           stdout=subprocess.PIPE, stderr=self._stderr,
                                           pass_fds=() if progress_fd is None else (progress_fd,))
        finally:
            if progress_fd is not None:
                os.close(progress_fd)  # the child has its copy
        self._opening = self._busy = False
        self._send("loading the model", "__open__", kind, model if opener else bytes(model), options, opener)
        self._opening = True
        if wait:
            self._receive("loading the model")

    def reopen(self, model, **options) -> None:
        """Open another model in the same child: no new process (about a second each) per model."""
        self._call("loading the model", "__open__", self.kind, bytes(model), options, None)

    def __getattr__(self, name: str):
        if name.startswith("__"):  # copy, pickle and the like probe for these: not the interpreter's
            raise AttributeError(name)
        return lambda *args, **kwargs: self._call(f"in {name}()", name, *args, **kwargs)

    def _call(self, action: str, name: str, *args, **kwargs):
        if self._opening:
            self._receive("loading the model")
        self._send(action, name, *args, **kwargs)
        return self._receive(action)

    def _send(self, action: str, name: str, *args, **kwargs) -> None:
        if self._child is None:
            raise RuntimeError("the isolated interpreter is closed")
        self._stderr.seek(0, os.SEEK_END)
        self._said_from = self._stderr.tell()  # what the interpreter prints from here on explains this call
        try:
            self._busy = True
            pickle.dump((name, args, kwargs), self._child.stdin, protocol=pickle.HIGHEST_PROTOCOL)
            self._child.stdin.flush()
        except BrokenPipeError:
            raise self._died(action) from None

    def _receive(self, action: str):
        self._opening = False
        try:
            status, value = pickle.load(self._child.stdout)
        except (EOFError, pickle.UnpicklingError):
            raise self._died(action) from None
        self._busy = False
        if status == "user":  # the toolkit's own refusal, raised in the child: passed on as it is
            raise UserError(value)
        if status != "ok":
            said = self._last_words()
            raise InterpreterFailure(self.kind, action, f"{value}{'; it printed: ' + said if said else ''}",
                                     crashed=False)
        return value

    def _died(self, action: str) -> InterpreterFailure:
        code = self._child.wait()
        self._child = None
        reason = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"
        said = self._last_words()
        return InterpreterFailure(self.kind, action, f"{reason}{'; it printed: ' + said if said else ''}", crashed=True)

    def _last_words(self) -> str:
        """The distinct lines the interpreter printed during the failed call, as one line."""
        self._stderr.seek(self._said_from)
        text = self._stderr.read().decode("utf-8", "replace")
        lines = dict.fromkeys(line.strip() for line in text.splitlines() if line.strip())
        return "; ".join(lines)[:300]

    def close(self) -> None:
        if self._child is not None:
            if self._busy:  # closed while a call runs (an error or Ctrl-C here): its result is not wanted
                self._child.kill()
            self._child.stdin.close()
            self._child.wait()
            self._child.stdout.close()
            self._child = None
        self._stderr.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown: the pipes may be gone already
            pass


def _stderr_fd() -> int | None:
    """A copy of the file descriptor behind sys.stderr (the child's own fd 2 is taken), if it
    has one (not under pytest's capture)."""
    try:
        sys.stderr.flush()
        return os.dup(sys.stderr.fileno())
    except (AttributeError, OSError, ValueError):
        return None


def _open(kind: str, model, options: dict, opener: str | None):
    if "progress_fd" in options:
        progress.set_stream(os.fdopen(options.pop("progress_fd"), "w", buffering=1))
        progress.set_enabled(True)
    if opener is not None:
        import importlib

        module, function = opener.split(":")
        return getattr(importlib.import_module(module), function)(model, **options)
    model_bytes = model
    if kind == "tflm":
        from tflite_micro.python.tflite_micro import runtime

        arena = options.get("arena_size") or max(len(model_bytes) * 10, 1 << 20)
        return runtime.Interpreter.from_bytes(model_bytes, arena_size=arena)
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    resolver = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES if options.pop("no_delegates", False) \
        else OpResolverType.AUTO
    interpreter = Interpreter(model_content=model_bytes, experimental_op_resolver_type=resolver, **options)
    interpreter.allocate_tensors()
    return interpreter


def serve() -> None:
    """The child's side: open the interpreter, then answer calls until the parent closes the pipe."""
    # The results go out on a private copy of stdout; fd 1 joins fd 2, so whatever the native
    # code prints cannot corrupt them.
    channel = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    requests = sys.stdin.buffer
    progress.set_enabled(False)  # the parent says what the child is doing
    interpreter = kind = None
    while True:
        try:
            name, args, kwargs = pickle.load(requests)
        except EOFError:
            return
        try:
            if name == "__open__":
                kind = args[0]
                interpreter = _open(*args)
                value = None
            else:
                if name == "invoke" and kind == "litert":
                    # Each inference from the model's initial state: an LSTM's state does not
                    # carry over between samples (as on the device and in the TFLM reference).
                    interpreter.reset_all_variables()
                value = getattr(interpreter, name)(*args, **kwargs)
            reply = ("ok", value)
        except UserError as exc:
            reply = ("user", str(exc))
        except Exception as exc:  # the interpreter's own error, reported to the parent as a line
            reply = ("failed", f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}")
        pickle.dump(reply, channel, protocol=pickle.HIGHEST_PROTOCOL)
        channel.flush()


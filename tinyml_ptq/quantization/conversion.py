"""The TFLite converter: a loaded float model -> .tflite bytes, float or quantized.

`Conversions(loaded)` runs the converter in this process; `Converter(path)`
runs the same conversions in a child process (isolation.py) that loads the same
file, so a crash of TensorFlow's converter or calibrator
ends the child only and becomes a one-line error naming the model and its
layers of the kinds known to crash it. The stages use `Converter`.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from ..core import progress
from ..core.errors import UserError

# Layer kinds TF 2.21's calibrator has been seen to crash on (segmentation fault).
CRASH_PRONE_LAYERS = ("LSTM", "GRU", "SimpleRNN", "RNN", "Bidirectional", "ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D")


def open_conversions(model: tuple[str, str | None]) -> Conversions:
    """The converter child's opener (isolation.IsolatedInterpreter): the model (path, loader) loaded."""
    from .model_loader import load_model

    return Conversions(load_model(*model))


class Conversions:
    """The converter's work on one loaded model, in this process."""

    def __init__(self, loaded):
        self.loaded = loaded

    def convert(self, mode: str, calib_xs: list[np.ndarray] | None, per_tensor: bool = False) -> bytes:
        """Convert with a static batch of 1. mode: one of quantize.MODES, or "float32".
        calib_xs: the calibration samples, [N, *shape] per input."""
        from .model_loader import import_tensorflow, native_stderr_captured

        tf = import_tensorflow()
        converter = self.loaded.converter()
        if mode in ("int8", "int16x8"):
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = _representative(calib_xs)
            if mode == "int8":
                converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
                converter.inference_input_type = tf.int8
                converter.inference_output_type = tf.int8
            else:
                converter.target_spec.supported_ops = [
                    tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
                converter.inference_input_type = tf.int16
                converter.inference_output_type = tf.int16
            if per_tensor:
                converter._experimental_disable_per_channel = True
        elif mode == "dynamic":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        elif mode == "float16":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.target_spec.supported_types = [tf.float16]
        try:
            with native_stderr_captured():
                return _io_in_signature_order(bytes(converter.convert()))
        except Exception as exc:  # ConverterError and friends: the model uses something TFLite cannot do
            text = " ".join(str(exc).split())
            raise UserError(f"{self.loaded.path}: TFLite conversion ({mode}) failed: {text[:300]}") from None

    def calibrate_only(self, calib_xs: list[np.ndarray]) -> bytes:
        """The float model with the converter's calibrated min/max on every activation tensor."""
        from .model_loader import import_tensorflow, native_stderr_captured

        tf = import_tensorflow()
        converter = self.loaded.converter()
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
        converter.exclude_conversion_metadata = True
        converter._experimental_calibrate_only = True
        converter.representative_dataset = _representative(calib_xs)
        try:
            with native_stderr_captured():
                return bytes(converter.convert())
        except Exception as exc:  # ConverterError and friends
            text = " ".join(str(exc).split())
            raise UserError(f"{self.loaded.path}: TFLite calibration failed: {text[:300]}") from None


def _representative(calib_xs: list[np.ndarray]):
    """The calibration samples one at a time, batch 1. Several inputs go by their signature
    names (x0, x1, ...): the converter's own input order is not the model's."""
    from ..core.datasets import input_names

    names = input_names(len(calib_xs))

    def samples():
        for i in progress.track(range(len(calib_xs[0])), "calibrating"):
            if len(calib_xs) == 1:
                yield [calib_xs[0][i][None]]
            else:
                yield {name: x[i][None] for name, x in zip(names, calib_xs)}

    return samples


def _io_in_signature_order(tflite: bytes) -> bytes:
    """The converter lists a model's inputs and outputs in an order of its own (x1 before x0,
    output_1 before output_0); put them in the signature's, the Keras model's, which the data
    files' x0, x1, ... and every later stage follow."""
    from tensorflow.lite.tools import flatbuffer_utils

    from ..compiler.tflite_reader import io_counts
    from ..core.datasets import input_names

    if io_counts(tflite) == (1, 1):  # nothing to order: spare the whole model's decoding
        return tflite
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(tflite))
    graph = model.subgraphs[0]
    if not model.signatureDefs:
        return tflite

    def names(entries) -> dict[str, int]:
        return {t.name.decode() if isinstance(t.name, bytes) else t.name: t.tensorIndex for t in entries}

    signature = model.signatureDefs[0]
    inputs, outputs = names(signature.inputs), names(signature.outputs)
    in_order = [inputs[name] for name in input_names(len(graph.inputs))] if len(graph.inputs) > 1 \
        else list(graph.inputs)
    out_order = [outputs[f"output_{k}"] for k in range(len(graph.outputs))] if len(graph.outputs) > 1 \
        else list(graph.outputs)
    if list(graph.inputs) == in_order and list(graph.outputs) == out_order:
        return tflite
    graph.inputs, graph.outputs = np.array(in_order, dtype=np.int32), np.array(out_order, dtype=np.int32)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


class ConverterCrash(UserError):
    """The converter's child process died (a segmentation fault, an abort)."""


class Converter:
    """`Conversions` of the model file `source` in a child process, which loads it (as
    load_model does) while the caller goes on.

    A model edited in memory (equalization) is given with `edited_copy_of`: it is saved for
    the child, which must convert what the caller holds.
    """

    def __init__(self, source: str | os.PathLike, edited_copy_of=None):
        from ..interpreters.isolation import IsolatedInterpreter

        self.source = Path(source)
        self._copy, loader = None, None
        if edited_copy_of is not None:
            self._copy = tempfile.TemporaryDirectory(prefix="tinyml-ptq-convert-")
            source, loader = edited_copy_of.save_copy(Path(self._copy.name)), edited_copy_of.loader
        self._child = IsolatedInterpreter("converter", (str(source), loader), wait=False,
                                          opener=f"{__name__}:{open_conversions.__name__}")

    def convert(self, mode: str, calib_xs: list[np.ndarray] | None, per_tensor: bool = False) -> bytes:
        calibrating = f", calibrating on {len(calib_xs[0])} samples" if mode in ("int8", "int16x8") else ""
        progress.log(f"converting ({mode}{calibrating})")
        return self._run("convert", mode, calib_xs, per_tensor)

    def calibrate_only(self, calib_xs: list[np.ndarray]) -> bytes:
        progress.log(f"calibrating on {len(calib_xs[0])} samples")
        return self._run("calibrate_only", calib_xs)

    def _run(self, name: str, *args) -> bytes:
        from ..interpreters.isolation import InterpreterFailure

        try:
            return getattr(self._child, name)(*args)
        except InterpreterFailure as exc:
            if exc.crashed:
                raise ConverterCrash(f"the TensorFlow converter crashed on {self.source} ({exc.detail})") from None
            raise UserError(f"{self.source}: the TensorFlow converter failed: {exc.detail}") from None

    def close(self) -> None:
        self._child.close()
        if self._copy is not None:
            self._copy.cleanup()


def crash_prone_layers(loaded) -> list[str]:
    """'KIND name' for each layer of `loaded` (a Keras model) of a kind the converter crashed on."""
    model = getattr(loaded, "_model", None)  # loaded may be None: the crash came first
    if model is None:
        return []
    found = []
    for layer in _all_layers(model):
        kind = type(layer).__name__
        if kind in CRASH_PRONE_LAYERS:
            found.append(f"{kind} '{layer.name}'")
    return found


def _all_layers(model):
    for layer in getattr(model, "layers", []):
        yield layer
        if hasattr(layer, "layers"):  # a nested model
            yield from _all_layers(layer)

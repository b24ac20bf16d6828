"""Load a float model (.keras, .h5, SavedModel folder) for quantization.

Real models break naive loading (Keras 2 HDF5 files that Keras 3 cannot read,
TF 2.3 SavedModels that `from_saved_model` cannot convert), so each format has
an ordered list of loaders: Keras 3, then tf_keras, then the SavedModel's
`serving_default` signature. The result says which one worked, runs float
inference, and gives a TFLite converter for a graph with a static batch of 1
(a dynamic batch turns Keras' Flatten into SHAPE/STRIDED_SLICE/PACK).
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from .errors import UserError

LOADERS = ("keras3", "tf_keras", "saved_model")

_ZIP_MAGIC = b"PK\x03\x04"
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


@contextlib.contextmanager
def native_stderr_captured() -> Iterator[None]:
    """Hide what TensorFlow's C++ side prints on fd 2 (absl banners, converter chatter).

    Python's sys.stderr is pointed at a copy of the real stderr meanwhile, so our
    own progress lines and errors still show; the native noise is discarded.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    sink = tempfile.TemporaryFile()
    os.dup2(sink.fileno(), 2)
    old_stderr = sys.stderr
    sys.stderr = os.fdopen(os.dup(saved), "w", buffering=1)
    try:
        yield
    finally:
        sys.stderr.flush()
        sys.stderr.close()
        sys.stderr = old_stderr
        os.dup2(saved, 2)
        os.close(saved)
        sink.close()


def import_tensorflow():
    """TensorFlow, imported quietly (it is slow and loud, so only stages that need it pay)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    with native_stderr_captured():
        import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    return tf


class LoadedModel:
    """A float model with one input and one output, however it was loaded."""

    loader: str

    def __init__(self, path: Path, input_shape: tuple[int, ...], output_shape: tuple[int | None, ...]):
        self.path = path
        self.input_shape = input_shape  # without the batch dimension
        self.output_shape = output_shape  # without the batch dimension

    def _call(self, batch: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def predict(self, x: np.ndarray, batch_size: int = 64) -> np.ndarray:
        """Float outputs for float32 samples [N, *input_shape]."""
        outputs = [np.asarray(self._call(x[i: i + batch_size])) for i in range(0, len(x), batch_size)]
        return np.concatenate(outputs).astype(np.float32)

    def converter(self):
        """A fresh `tf.lite.TFLiteConverter` for the model with input shape [1, *input_shape]."""
        raise NotImplementedError

    def save_copy(self, folder: Path) -> Path:
        """The model as it is now (edited, say), saved in `folder` for this loader to read back."""
        model = getattr(self, "_model", None)
        if model is None:
            raise UserError(f"{self.path}: a {self.loader} model cannot be edited or saved again")
        path = folder / ("model.keras" if self.loader == "keras3" else "model.h5")
        model.save(path)
        return path

    def _batch1_spec(self, tf):
        return tf.TensorSpec([1, *self.input_shape], tf.float32)


class _Keras3Model(LoadedModel):
    loader = "keras3"

    def __init__(self, path: Path, model):
        super().__init__(path, *_keras_shapes(path, model))
        self._model = model
        self._export_dir: tempfile.TemporaryDirectory | None = None

    def _call(self, batch):
        return self._model(batch, training=False)

    def converter(self):
        import keras

        tf = import_tensorflow()
        # A concrete function over a Keras 3 model keeps its variables as
        # resources (READ_VARIABLE at calibration); an exported SavedModel is frozen cleanly.
        if self._export_dir is None:
            export_dir = tempfile.TemporaryDirectory(prefix="tinyml-ptq-export-")
            archive = keras.export.ExportArchive()
            archive.track(self._model)
            archive.add_endpoint("serve", lambda x: self._model(x, training=False),
                                 input_signature=[self._batch1_spec(tf)])
            with native_stderr_captured():
                archive.write_out(export_dir.name, verbose=False)
            self._export_dir = export_dir
        return tf.lite.TFLiteConverter.from_saved_model(self._export_dir.name)


class _TfKerasModel(LoadedModel):
    loader = "tf_keras"

    def __init__(self, path: Path, model):
        super().__init__(path, *_keras_shapes(path, model))
        self._model = model

    def _call(self, batch):
        return self._model(batch, training=False)

    def converter(self):
        tf = import_tensorflow()
        model = self._model
        fn = tf.function(lambda x: model(x, training=False), input_signature=[self._batch1_spec(tf)])
        return tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], model)


class _SavedModelSignature(LoadedModel):
    loader = "saved_model"

    def __init__(self, path: Path, obj):
        signatures = getattr(obj, "signatures", {})
        if "serving_default" not in signatures:
            raise UserError(f"{path}: SavedModel has no 'serving_default' signature; re-export it with one")
        self._obj = obj
        self._signature = signatures["serving_default"]
        inputs = self._signature.structured_input_signature[1]
        outputs = self._signature.structured_outputs
        if len(inputs) != 1 or len(outputs) != 1:
            raise UserError(f"{path}: serving_default has {len(inputs)} inputs and {len(outputs)} outputs; "
                            "quantize takes models with one input and one output (a .tflite with several goes "
                            "through generate, verify and run)")
        (self._input_name, in_spec), = inputs.items()
        (self._output_name, out_spec), = outputs.items()
        if in_spec.dtype.name != "float32":
            raise UserError(f"{path}: model input is {in_spec.dtype.name}; only float32 inputs can be quantized")
        super().__init__(path, _static_shape(path, in_spec.shape.as_list()),
                         tuple(out_spec.shape.as_list()[1:]))

    def _call(self, batch):
        tf = import_tensorflow()
        return self._signature(**{self._input_name: tf.constant(batch)})[self._output_name]

    def converter(self):
        tf = import_tensorflow()
        signature, name, output = self._signature, self._input_name, self._output_name
        # Re-trace the signature with batch 1; `from_saved_model` itself fails on TF 2.3-era models.
        fn = tf.function(lambda x: signature(**{name: x})[output], input_signature=[self._batch1_spec(tf)])
        return tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], self._obj)


def _static_shape(path: Path, shape: list) -> tuple[int, ...]:
    dims = list(shape)[1:]
    if any(d is None for d in dims):
        raise UserError(f"{path}: model input shape {[None, *dims]} has unknown dimensions besides the batch; "
                        "give the model a fixed input shape")
    return tuple(int(d) for d in dims)


def _keras_shapes(path: Path, model) -> tuple[tuple[int, ...], tuple[int | None, ...]]:
    try:
        inputs, outputs = model.inputs, model.outputs
    except (AttributeError, ValueError):
        inputs = outputs = None
    if not inputs or not outputs:
        raise UserError(f"{path}: model has no defined inputs; save a Functional or Sequential model")
    if len(inputs) != 1 or len(outputs) != 1:
        raise UserError(f"{path}: model has {len(inputs)} inputs and {len(outputs)} outputs; "
                        "quantize takes models with one input and one output (a .tflite with several goes "
                        "through generate, verify and run)")
    dtype = str(getattr(inputs[0].dtype, "name", inputs[0].dtype))
    if dtype != "float32":
        raise UserError(f"{path}: model input is {dtype}; only float32 inputs can be quantized")
    return _static_shape(path, list(inputs[0].shape)), tuple(outputs[0].shape[1:])


def _load_keras3(path: Path) -> LoadedModel:
    import_tensorflow()
    import keras

    return _Keras3Model(path, nearest_upsampling_as_resizing(keras.saving.load_model(path, compile=False)))


def nearest_upsampling_as_resizing(model):
    """`model` with each nearest-neighbour UpSampling2D replaced by the equivalent Resizing layer.

    Keras 3 implements UpSampling2D by repeating elements, which the converter turns into
    RESHAPE + TILE, and TFLite Micro has no TILE kernel; Resizing to the integer multiple
    converts to RESIZE_NEAREST_NEIGHBOR (half-pixel centres: output row r reads input row
    r // factor, the same values). Other models come back unchanged.
    """
    import keras

    def is_nearest_upsampling(layer) -> bool:
        return (isinstance(layer, keras.layers.UpSampling2D) and layer.interpolation == "nearest"
                and layer.data_format == "channels_last" and None not in tuple(layer.input.shape[1:3]))

    try:
        targets = [layer for layer in model.layers if is_nearest_upsampling(layer)]
    except (AttributeError, ValueError):  # a subclassed model: no layer graph to rewrite
        return model
    if not targets:
        return model

    def clone(layer):
        if layer in targets:
            height, width = layer.input.shape[1:3]
            return keras.layers.Resizing(height * layer.size[0], width * layer.size[1], interpolation="nearest",
                                         name=layer.name)
        return layer.__class__.from_config(layer.get_config())

    rewritten = keras.models.clone_model(model, clone_function=clone)
    rewritten.set_weights(model.get_weights())
    from . import progress

    progress.log(f"{len(targets)} UpSampling2D (nearest) layer{'s' if len(targets) > 1 else ''} converted as "
                 "Resizing (RESIZE_NEAREST_NEIGHBOR; TFLite Micro has no kernel for the TILE they give)")
    return rewritten


def _load_tf_keras(path: Path) -> LoadedModel:
    import_tensorflow()
    import tf_keras

    return _TfKerasModel(path, tf_keras.models.load_model(path, compile=False))


def _load_saved_model(path: Path) -> LoadedModel:
    tf = import_tensorflow()
    return _SavedModelSignature(path, tf.saved_model.load(str(path)))


_LOADER_FUNCS: dict[str, Callable[[Path], LoadedModel]] = {
    "keras3": _load_keras3, "tf_keras": _load_tf_keras, "saved_model": _load_saved_model,
}


def _candidates(path: Path) -> list[str]:
    """Loaders worth trying for this file, in fallback order."""
    if not path.exists():
        raise UserError(f"{path}: no such file or folder; give a .keras file, an .h5 file or a SavedModel folder")
    if path.is_dir():
        if not (path / "saved_model.pb").is_file() and not (path / "saved_model.pbtxt").is_file():
            raise UserError(f"{path} is a folder but not a SavedModel (no saved_model.pb); "
                            "give a .keras file, an .h5 file or a SavedModel folder")
        # Keras 3 cannot read SavedModels. tf_keras only rebuilds a true Keras model when
        # the folder has Keras metadata; otherwise the signature is the faithful graph.
        return ["tf_keras", "saved_model"] if (path / "keras_metadata.pb").is_file() else ["saved_model"]
    with open(path, "rb") as f:
        head = f.read(8)
    if not head:
        raise UserError(f"{path} is empty; re-save the model")
    if head.startswith(_ZIP_MAGIC) or head == _HDF5_MAGIC:
        return ["keras3", "tf_keras"]
    raise UserError(f"{path}: unknown model format (neither a .keras zip nor HDF5); "
                    "give a .keras file, an .h5 file or a SavedModel folder")


def _short(exc: BaseException, limit: int = 160) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def load_model(path: str | os.PathLike, loader: str | None = None) -> LoadedModel:
    """Load MODEL with the first loader that works (or only `loader`, if given)."""
    path = Path(path)
    names = _candidates(path)
    if loader is not None:
        if loader not in LOADERS:
            raise UserError(f"unknown loader {loader!r}; choose one of {', '.join(LOADERS)}")
        names = [loader]
    failures = []
    for name in names:
        try:
            with native_stderr_captured():
                return _LOADER_FUNCS[name](path)
        except UserError:
            raise
        except Exception as exc:  # each loader fails in its own way on files it cannot read
            failures.append(f"{name}: {_short(exc)}")
    raise UserError(f"{path}: could not load the model, it may be corrupt or truncated "
                    f"({'; '.join(failures)}); re-save it with model.save()")

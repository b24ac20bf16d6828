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

from ..core.errors import UserError

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
    """A float model with one or more inputs and outputs, however it was loaded."""

    loader: str

    def __init__(self, path: Path, input_shapes: list[tuple[int, ...]],
                 output_shapes: list[tuple[int | None, ...]]):
        self.path = path
        # Without the batch dimension, in the model's order.
        self.input_shapes = input_shapes
        self.output_shapes = output_shapes

    def _call(self, batch: list[np.ndarray]) -> list:
        """The model's outputs (a list) for one batch of every input."""
        raise NotImplementedError

    def predict(self, xs: list[np.ndarray], batch_size: int = 64) -> list[np.ndarray]:
        """Float outputs, [N, *shape] for each output, for float32 samples, [N, *shape] for each input."""
        count = len(xs[0])
        batches = [self._call([x[i: i + batch_size] for x in xs]) for i in range(0, count, batch_size)]
        return [np.concatenate([np.asarray(b[k]) for b in batches]).astype(np.float32)
                for k in range(len(self.output_shapes))]

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

    def _batch1_specs(self, tf) -> list:
        """The inputs with a batch of 1, named as the converted model's signature names them
        (x, or x0, x1, ...: the keys the calibration samples are fed by)."""
        from ..core.datasets import input_names

        return [tf.TensorSpec([1, *shape], tf.float32, name=name)
                for shape, name in zip(self.input_shapes, input_names(len(self.input_shapes)))]

    def _keras_inputs(self, xs):
        """Keras models take one tensor, or a list for several inputs."""
        return xs[0] if len(xs) == 1 else list(xs)


class _Keras3Model(LoadedModel):
    loader = "keras3"

    def __init__(self, path: Path, model):
        super().__init__(path, *_keras_shapes(path, model))
        self._model = model
        self._export_dir: tempfile.TemporaryDirectory | None = None

    def _call(self, batch):
        return _as_list(self._model(self._keras_inputs(batch), training=False))

    def converter(self):
        import keras

        tf = import_tensorflow()
        # A concrete function over a Keras 3 model keeps its variables as
        # resources (READ_VARIABLE at calibration); an exported SavedModel is frozen cleanly.
        if self._export_dir is None:
            export_dir = tempfile.TemporaryDirectory(prefix="tinyml-ptq-export-")
            archive = keras.export.ExportArchive()
            archive.track(self._model)
            archive.add_endpoint("serve", lambda *xs: self._model(self._keras_inputs(xs), training=False),
                                 input_signature=self._batch1_specs(tf))
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
        return _as_list(self._model(self._keras_inputs(batch), training=False))

    def converter(self):
        tf = import_tensorflow()
        model = self._model
        fn = tf.function(lambda *xs: model(self._keras_inputs(xs), training=False),
                         input_signature=self._batch1_specs(tf))
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
                            "quantize takes a SavedModel signature with one input and one output (save the Keras "
                            "model as .keras for several inputs or outputs)")
        (self._input_name, in_spec), = inputs.items()
        (self._output_name, out_spec), = outputs.items()
        if in_spec.dtype.name != "float32":
            raise UserError(f"{path}: model input is {in_spec.dtype.name}; only float32 inputs can be quantized")
        super().__init__(path, [_static_shape(path, in_spec.shape.as_list())],
                         [tuple(out_spec.shape.as_list()[1:])])

    def _call(self, batch):
        tf = import_tensorflow()
        return [self._signature(**{self._input_name: tf.constant(batch[0])})[self._output_name]]

    def converter(self):
        tf = import_tensorflow()
        signature, name, output = self._signature, self._input_name, self._output_name
        # Re-trace the signature with batch 1; `from_saved_model` itself fails on TF 2.3-era models.
        fn = tf.function(lambda x: signature(**{name: x})[output], input_signature=self._batch1_specs(tf))
        return tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], self._obj)


def _as_list(outputs) -> list:
    """A Keras model's outputs as a list (one output comes bare)."""
    return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]


def _static_shape(path: Path, shape: list) -> tuple[int, ...]:
    dims = list(shape)[1:]
    if any(d is None for d in dims):
        raise UserError(f"{path}: model input shape {[None, *dims]} has unknown dimensions besides the batch; "
                        "give the model a fixed input shape")
    return tuple(int(d) for d in dims)


def _keras_shapes(path: Path, model) -> tuple[list[tuple[int, ...]], list[tuple[int | None, ...]]]:
    try:
        inputs, outputs = model.inputs, model.outputs
    except (AttributeError, ValueError):
        inputs = outputs = None
    if not inputs or not outputs:
        raise UserError(f"{path}: model has no defined inputs; save a Functional or Sequential model")
    for i, tensor in enumerate(inputs):
        dtype = str(getattr(tensor.dtype, "name", tensor.dtype))
        if dtype != "float32":
            which = f"input {i}" if len(inputs) > 1 else "input"
            raise UserError(f"{path}: model {which} is {dtype}; only float32 inputs can be quantized")
    return [_static_shape(path, list(t.shape)) for t in inputs], [tuple(t.shape[1:]) for t in outputs]


def _load_keras3(path: Path) -> LoadedModel:
    import_tensorflow()
    import keras

    from . import keras_layers  # noqa: F401  (its layers must be known to load a rewritten model)

    model = nearest_upsampling_as_resizing(keras.saving.load_model(path, compile=False))
    model = layer_norm_without_neg(model)
    return _Keras3Model(path, recurrent_layers_convertible(model, keras))


def _rebuilt(model, keras_module, replacement):
    """`model` cloned with each layer for which `replacement(layer)` gives a new one replaced
    by it (holding the same weights in the same order), every weight copied over."""
    def clone(layer):
        return replacement(layer) or layer.__class__.from_config(layer.get_config())

    rewritten = keras_module.models.clone_model(model, clone_function=clone)
    rewritten.set_weights(model.get_weights())
    return rewritten


def _layers_of(model, wanted) -> list | None:
    """The layers of `model` that `wanted(layer)` picks; None for a subclassed model (no layer graph)."""
    try:
        return [layer for layer in model.layers if wanted(layer)]
    except (AttributeError, ValueError):
        return None


def layer_norm_without_neg(model):
    """`model` with each last-axis LayerNormalization computed as keras_layers.LayerNormFromOps
    does: the same function, without the float NEG that Keras 3's form converts to."""
    import keras

    from ..core import progress
    from .keras_layers import LayerNormFromOps

    def last_axis_layer_norm(layer) -> bool:
        if not isinstance(layer, keras.layers.LayerNormalization) or getattr(layer, "rms_scaling", False):
            return False
        axes = [layer.axis] if isinstance(layer.axis, int) else list(layer.axis)
        rank = len(layer.input.shape)
        return [a % rank for a in axes] == [rank - 1]

    targets = _layers_of(model, last_axis_layer_norm)
    if not targets:
        return model
    rewritten = _rebuilt(model, keras, lambda layer: LayerNormFromOps(
        layer.epsilon, layer.center, layer.scale, name=layer.name) if layer in targets else None)
    progress.log(f"{len(targets)} LayerNormalization layer{'s' if len(targets) > 1 else ''} converted as "
                 "(x - mean) * gamma * rsqrt(var + eps) + beta (Keras 3's form leaves a float NEG)")
    return rewritten


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

    targets = _layers_of(model, is_nearest_upsampling)
    if not targets:
        return model

    def resizing(layer):
        if layer in targets:
            height, width = layer.input.shape[1:3]
            return keras.layers.Resizing(height * layer.size[0], width * layer.size[1], interpolation="nearest",
                                         name=layer.name)
        return None

    rewritten = _rebuilt(model, keras, resizing)
    from ..core import progress

    progress.log(f"{len(targets)} UpSampling2D (nearest) layer{'s' if len(targets) > 1 else ''} converted as "
                 "Resizing (RESIZE_NEAREST_NEIGHBOR; TFLite Micro has no kernel for the TILE they give)")
    return rewritten


def recurrent_layers_convertible(model, keras_module):
    """`model` with its LSTM, GRU and SimpleRNN layers in a form TF 2.21 quantizes to full int8.

    A rolled recurrent layer converts to a WHILE loop, and TF 2.21's calibrator segfaults on
    it (Keras 3 and tf_keras alike). A standard LSTM (tanh, sigmoid, bias, forwards, not
    stateful) becomes TFLite's fused UNIDIRECTIONAL_SEQUENCE_LSTM instead: tf_keras's LSTM
    converts so as it is; a Keras 3 LSTM is made to run tf_keras's implementation (same gates,
    same weight layout, marked for the converter's LSTM fusion). Every other one (GRU,
    SimpleRNN, other LSTMs) is rebuilt with unroll=True and the same weights: FULLY_CONNECTED,
    ADD, MUL, LOGISTIC, TANH... once per time step. Bidirectional layers are left as they are
    (unrolled, the converter leaves a float SPLIT in the backward direction).
    `keras_module`: `keras` for a Keras 3 model, `tf_keras` for a tf_keras one.
    """
    layers = keras_module.layers
    recurrent = (layers.LSTM, layers.GRU, layers.SimpleRNN)

    def is_recurrent(layer) -> bool:
        return isinstance(layer, recurrent) and not layer.stateful

    found = _layers_of(model, is_recurrent)
    if not found:
        return model
    # The fusion takes no mask (a masked model is not int8 anyway: the masks are bool).
    masked = any(isinstance(layer, layers.Masking) or getattr(layer, "mask_zero", False) for layer in model.layers)
    fused = [layer for layer in found if _fusable_lstm(layer, layers) and not masked]
    if keras_module.__name__ == "keras":
        fused = [layer for layer in fused if _run_as_tf_keras_lstm(layer)]
    targets = [layer for layer in found if layer not in fused]
    from ..core import progress

    if fused:
        progress.log(f"{len(fused)} LSTM layer{'s' if len(fused) > 1 else ''} converted as "
                     "UNIDIRECTIONAL_SEQUENCE_LSTM (TF 2.21's calibrator crashes on a rolled LSTM's WHILE loop)")
    if not targets:
        return model

    def unrolled(layer):
        return layer.__class__.from_config({**layer.get_config(), "unroll": True}) if layer in targets else None

    try:
        rewritten = _rebuilt(model, keras_module, unrolled)
    except (TypeError, ValueError) as exc:  # unroll needs a known number of time steps
        progress.warn(f"recurrent layers left rolled ({_short(exc)}); TF 2.21's calibrator may crash on them")
        return model
    inputs = [layer.input[0] if isinstance(layer.input, (list, tuple)) else layer.input for layer in targets]
    steps = sorted({int(x.shape[1]) for x in inputs if x.shape[1] is not None})
    kinds = sorted({type(layer).__name__ for layer in targets})
    progress.log(f"{len(targets)} recurrent layer{'s' if len(targets) > 1 else ''} ({', '.join(kinds)}) unrolled "
                 f"over {'/'.join(map(str, steps))} time steps (TF 2.21's calibrator crashes on the WHILE loop "
                 "of a rolled one)")
    return rewritten


def _fusable_lstm(layer, layers) -> bool:
    """An LSTM that TFLite's converter fuses into UNIDIRECTIONAL_SEQUENCE_LSTM (as tf_keras runs it)."""
    if not isinstance(layer, layers.LSTM):
        return False
    config = layer.get_config()
    return (config["activation"] == "tanh" and config["recurrent_activation"] == "sigmoid" and config["use_bias"]
            and not config["go_backwards"] and not config.get("time_major", False)
            and not config.get("recurrent_dropout", 0) and not config["unroll"])


def _run_as_tf_keras_lstm(layer) -> bool:
    """Make a Keras 3 LSTM run tf_keras's LSTM function, which the converter fuses; False if unavailable.

    The function carries tf_keras's `api_implements: lstm_*` attribute that TFLite's converter
    replaces with UNIDIRECTIONAL_SEQUENCE_LSTM. The weights go in as constants, read when the
    layer is traced: with variable reads inside, TF 2.21's converter itself segfaults. A masked
    sequence all the same (the fusion takes no mask) runs Keras' own loop, unrolled.
    """
    try:
        import tensorflow as tf
        from tf_keras.src.layers.rnn.lstm import lstm_with_backend_selection, standard_lstm
    except ImportError:
        return False
    rolled = layer.inner_loop
    cell = layer.cell

    def inner_loop(sequences, initial_state, mask, training=False):
        if mask is not None:
            layer.unroll = True
            return rolled(sequences, initial_state, mask, training=training)
        with tf.init_scope():  # eager, even while a tf.function traces the model
            kernel, recurrent_kernel, bias = (np.asarray(v.numpy()) for v in (cell.kernel, cell.recurrent_kernel,
                                                                               cell.bias))
        # Eagerly (predict) the same function unmarked: the marked one registers into a graph.
        run = lstm_with_backend_selection if not tf.executing_eagerly() else standard_lstm
        last, outputs, h, c, _ = run(
            inputs=sequences, init_h=initial_state[0], init_c=initial_state[1], kernel=tf.constant(kernel),
            recurrent_kernel=tf.constant(recurrent_kernel), bias=tf.constant(bias), mask=None, time_major=False,
            go_backwards=False, sequence_lengths=None, zero_output_for_mask=False,
            return_sequences=layer.return_sequences)
        return last, outputs, [h, c]

    layer.inner_loop = inner_loop
    return True


def _load_tf_keras(path: Path) -> LoadedModel:
    import_tensorflow()
    import tf_keras

    return _TfKerasModel(path, recurrent_layers_convertible(tf_keras.models.load_model(path, compile=False),
                                                            tf_keras))


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

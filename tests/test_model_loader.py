"""Model loading: each loader on real files, batch-1 conversion, and unreadable files."""

from __future__ import annotations

import os

import numpy as np
import pytest

from tinyml_ptq.core.errors import UserError
from tinyml_ptq.interpreters.tflite_inspect import tflite_ops
from tinyml_ptq.quantization.model_loader import load_model

from conftest import DIGITS_DIR

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
DYNAMIC_BATCH_OPS = {"SHAPE", "STRIDED_SLICE", "PACK"}


def _eval_x(n=20):
    with np.load(DIGITS_DIR / "eval.npz") as f:
        return f["x"][:n]


def test_keras3_digits_predict_and_static_batch():
    import keras

    loaded = load_model(DIGITS_DIR / "digits_cnn.keras")
    assert loaded.loader == "keras3"
    assert loaded.input_shapes == [(8, 8, 1)] and loaded.output_shapes == [(10,)]
    x = _eval_x()
    direct = keras.saving.load_model(DIGITS_DIR / "digits_cnn.keras").predict(x, verbose=0)
    np.testing.assert_allclose(loaded.predict([x], batch_size=7)[0], direct, atol=1e-5)

    tflite = loaded.converter().convert()
    ops = tflite_ops(tflite)
    assert "FULLY_CONNECTED" in ops and "CONV_2D" in ops
    assert not DYNAMIC_BATCH_OPS & set(ops), f"dynamic-batch ops in {ops}"

    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_content=tflite)
    interp.allocate_tensors()
    assert list(interp.get_input_details()[0]["shape"]) == [1, 8, 8, 1]
    # The float .tflite computes what Keras computes.
    interp.set_tensor(interp.get_input_details()[0]["index"], x[:1])
    interp.invoke()
    np.testing.assert_allclose(interp.get_tensor(interp.get_output_details()[0]["index"]), direct[:1], atol=1e-5)


def _tf_keras_depthwise_model():
    import tf_keras

    tf_keras.utils.set_random_seed(5)
    return tf_keras.Sequential([
        tf_keras.Input((6, 6, 2)),
        tf_keras.layers.DepthwiseConv2D(3, padding="same", activation="relu"),
        tf_keras.layers.Flatten(),
        tf_keras.layers.Dense(3),
    ])


def test_tf_keras_fallback_for_legacy_h5(tmp_path):
    """A Keras 2 DepthwiseConv2D config (with `groups`) that Keras 3 refuses, like vww_96.h5."""
    import keras

    model = _tf_keras_depthwise_model()
    path = tmp_path / "legacy.h5"
    model.save(path)
    with pytest.raises(Exception):
        keras.saving.load_model(path, compile=False)  # the premise: Keras 3 cannot read it
    loaded = load_model(path)
    assert loaded.loader == "tf_keras"
    x = np.random.default_rng(0).uniform(size=(5, 6, 6, 2)).astype(np.float32)
    np.testing.assert_allclose(loaded.predict([x])[0], model(x).numpy(), atol=1e-5)
    ops = tflite_ops(loaded.converter().convert())
    assert "DEPTHWISE_CONV_2D" in ops and not DYNAMIC_BATCH_OPS & set(ops)


def test_tf_keras_savedmodel_with_keras_metadata(tmp_path):
    model = _tf_keras_depthwise_model()
    model.save(tmp_path / "sm", save_format="tf")
    assert (tmp_path / "sm" / "keras_metadata.pb").is_file()
    assert load_model(tmp_path / "sm").loader == "tf_keras"


def test_plain_savedmodel_signature(tmp_path):
    import tensorflow as tf

    class Affine(tf.Module):
        def __init__(self):
            self.w = tf.Variable(np.arange(12, dtype=np.float32).reshape(4, 3) / 10)

        @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32)])
        def __call__(self, x):
            return {"y": tf.nn.relu(tf.matmul(tf.reshape(x, [-1, 4]), self.w))}

    module = Affine()
    tf.saved_model.save(module, str(tmp_path / "sm"), signatures=module.__call__)
    loaded = load_model(tmp_path / "sm")
    assert loaded.loader == "saved_model"
    assert loaded.input_shapes == [(4,)] and loaded.output_shapes == [(3,)]
    x = np.random.default_rng(1).normal(size=(9, 4)).astype(np.float32)
    np.testing.assert_allclose(loaded.predict([x], batch_size=4)[0], np.maximum(x @ module.w.numpy(), 0), atol=1e-6)
    assert not DYNAMIC_BATCH_OPS & set(tflite_ops(loaded.converter().convert()))


@pytest.mark.slow
def test_vww_h5_loads_with_tf_keras(shared_models):
    loaded = load_model(shared_models / "vww_96.h5")
    assert loaded.loader == "tf_keras"
    assert loaded.input_shapes == [(96, 96, 3)] and loaded.output_shapes == [(2,)]
    out = loaded.predict([np.random.default_rng(0).uniform(size=(2, 96, 96, 3)).astype(np.float32)])[0]
    np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-5)  # softmax over 2 classes


@pytest.mark.slow
def test_kws_savedmodel_loads_by_signature(shared_models):
    loaded = load_model(shared_models / "kws_ref_model")
    assert loaded.loader == "saved_model"
    assert loaded.input_shapes == [(49, 10, 1)] and loaded.output_shapes == [(12,)]
    out = loaded.predict([np.random.default_rng(0).uniform(size=(3, 49, 10, 1)).astype(np.float32)])[0]
    assert out.shape == (3, 12)


def test_unreadable_models(tmp_path):
    with pytest.raises(UserError, match="no such file or folder"):
        load_model(tmp_path / "missing.keras")
    (tmp_path / "empty.h5").write_bytes(b"")
    with pytest.raises(UserError, match="empty.h5 is empty"):
        load_model(tmp_path / "empty.h5")
    (tmp_path / "model.onnx").write_bytes(b"\x08\x07\x12\x04onnx" * 10)
    with pytest.raises(UserError, match="model.onnx: unknown model format"):
        load_model(tmp_path / "model.onnx")
    (tmp_path / "folder").mkdir()
    with pytest.raises(UserError, match="not a SavedModel"):
        load_model(tmp_path / "folder")
    data = (DIGITS_DIR / "digits_cnn.keras").read_bytes()
    (tmp_path / "cut.keras").write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match="cut.keras: could not load the model, it may be corrupt or truncated"):
        load_model(tmp_path / "cut.keras")


def test_nearest_upsampling_becomes_resize_nearest_neighbor_and_runs_exact(tmp_path):
    """Keras 3's UpSampling2D converts to TILE, which TFLite Micro lacks; the loader converts it as
    the equivalent Resizing, so a U-Net-style model quantizes to RESIZE_NEAREST_NEIGHBOR and runs
    bit-exact (skip connection, bilinear upsampling beside it left alone)."""
    import keras

    from tinyml_ptq.pipeline.verify import verify
    from tinyml_ptq.quantization.quantize import quantize

    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 3))
    skip = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inp)
    down = keras.layers.MaxPooling2D(2)(skip)
    nearest = keras.layers.UpSampling2D((2, 2))(down)
    bilinear = keras.layers.UpSampling2D(2, interpolation="bilinear")(down)
    out = keras.layers.Conv2D(2, 1)(keras.layers.Concatenate()([nearest, bilinear, skip]))
    model = keras.Model(inp, out)
    model.save(tmp_path / "unet.keras")
    x = np.random.default_rng(0).uniform(0, 1, (24, 8, 8, 3)).astype(np.float32)
    np.savez(tmp_path / "x.npz", x=x)

    loaded = load_model(tmp_path / "unet.keras")
    np.testing.assert_array_equal(loaded.predict([x])[0], model.predict(x, verbose=0))  # the same function
    result = quantize(tmp_path / "unet.keras", str(tmp_path / "x.npz"), tmp_path / "unet.tflite", samples=24)
    ops = tflite_ops(result.output.read_bytes())
    assert "RESIZE_NEAREST_NEIGHBOR" in ops and "RESIZE_BILINEAR" in ops and "TILE" not in ops
    assert verify(result.output, str(tmp_path / "x.npz")).exact == 1.0


def _two_input_model(lib, path):
    a, b = lib.Input((6,), name="zz_first"), lib.Input((6,), name="aa_second")
    lib.Model([a, b], lib.layers.Dense(4)(lib.layers.Concatenate()([a, b]))).save(path)
    rng = np.random.default_rng(0)
    return rng.uniform(-1, 1, (64, 6)).astype(np.float32), rng.uniform(0, 0.5, (64, 6)).astype(np.float32)


def _int8_outputs(tflite: bytes, xs) -> list[np.ndarray]:
    """Every output of the int8 model on the TFLM reference, dequantized."""
    from tinyml_ptq.quantization.quant_report import _run_tflm

    return _run_tflm(tflite, xs)


@pytest.mark.parametrize("loader", ["keras3", "tf_keras"])
def test_both_keras_loaders_convert_two_inputs_in_the_models_order(tmp_path, loader):
    """Both inputs have one shape, so a swap would go unseen by shape; the model weighs them
    differently, and the int8 model must follow the float one. The converter lists inputs in an
    order of its own; the .tflite takes them in the Keras model's (x0, x1)."""
    import keras
    import tf_keras

    from tinyml_ptq.quantization.conversion import Conversions

    path = tmp_path / ("two.keras" if loader == "keras3" else "two.h5")
    x0, x1 = _two_input_model(keras if loader == "keras3" else tf_keras, path)
    loaded = load_model(path, loader=loader)
    assert loaded.input_shapes == [(6,), (6,)]
    got = _int8_outputs(Conversions(loaded).convert("int8", [x0, x1]), [x0, x1])[0]
    expected, swapped = loaded.predict([x0, x1])[0], loaded.predict([x1, x0])[0]
    assert np.abs(got - expected).max() < 0.1 < np.abs(swapped - expected).max()


def test_quantize_takes_a_two_input_model_and_its_report_lists_both(tmp_path):
    import keras

    from tinyml_ptq.pipeline.verify import verify
    from tinyml_ptq.quantization.quantize import quantize

    x0, x1 = _two_input_model(keras, tmp_path / "two.keras")
    np.savez(tmp_path / "two.npz", x0=x0, x1=x1)
    result = quantize(tmp_path / "two.keras", str(tmp_path / "two.npz"), tmp_path / "two.tflite", samples=64,
                      eval_data=str(tmp_path / "two.npz"))
    assert [t["shape"] for t in result.report["inputs"]] == [[1, 6], [1, 6]]
    assert result.report["output_sqnr_db"] > 25, result.report["output_sqnr_db"]
    assert result.report["layers"] and result.calibration == "minmax"
    assert verify(result.output, str(tmp_path / "two.npz")).exact == 1.0
    with pytest.raises(UserError, match="has 2 inputs and 1 output; --calibration, --equalize and "
                                        "--bias-correction take models with one input and one output"):
        quantize(tmp_path / "two.keras", str(tmp_path / "two.npz"), tmp_path / "t2.tflite", calibration="mse")


@pytest.mark.parametrize("loader", ["keras3", "tf_keras"])
def test_a_keras_model_with_two_outputs_quantizes_with_them_in_the_models_order(tmp_path, loader):
    """The converter lists outputs in an order of its own (output_1 first); the .tflite keeps the
    Keras model's, which the report, verify and run follow. Output 0 is the classifier here."""
    import keras
    import tf_keras

    from tinyml_ptq.pipeline.verify import verify
    from tinyml_ptq.quantization.quantize import quantize

    lib = keras if loader == "keras3" else tf_keras
    inp = lib.Input((6,))
    hidden = lib.layers.Dense(8, activation="relu")(inp)
    path = tmp_path / ("two_out.keras" if loader == "keras3" else "two_out.h5")
    lib.Model(inp, [lib.layers.Dense(3, activation="softmax", name="zz_classes")(hidden),
                    lib.layers.Dense(5, name="aa_values")(hidden)]).save(path)
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (64, 6)).astype(np.float32)
    loaded = load_model(path, loader=loader)
    assert loaded.output_shapes == [(3,), (5,)]
    np.savez(tmp_path / "d.npz", x=x, y=loaded.predict([x])[0].argmax(1))
    if loader == "tf_keras":  # quantize picks keras3 for an .h5 it can read; this checks the other route
        from tinyml_ptq.quantization.conversion import Conversions

        tflite = Conversions(loaded).convert("int8", [x])
        (tmp_path / "two_out.tflite").write_bytes(tflite)
    else:
        result = quantize(path, str(tmp_path / "d.npz"), tmp_path / "two_out.tflite", samples=64,
                          eval_data=str(tmp_path / "d.npz"))
        assert [t["shape"] for t in result.report["outputs"]] == [[1, 3], [1, 5]]
        assert result.report["output_sqnr_db"] > 25 and result.report["accuracy"]["int8"] > 0.9, result.report
    got = _int8_outputs((tmp_path / "two_out.tflite").read_bytes(), [x])
    expected = loaded.predict([x])
    assert [g.shape for g in got] == [(64, 3), (64, 5)]
    assert all(np.abs(g - e).max() < 0.1 for g, e in zip(got, expected))
    assert verify(tmp_path / "two_out.tflite", str(tmp_path / "d.npz")).exact == 1.0

def test_layer_normalization_converts_to_int8_operators_with_the_same_function(tmp_path):
    """Keras 3's LayerNormalization converts with a float NEG (TFLM's NEG is float only); the
    loader's form computes the same function with MEAN, SUB, MUL, RSQRT, ADD, all int8."""
    import keras

    from tinyml_ptq.pipeline.verify import verify
    from tinyml_ptq.quantization.quantize import quantize

    inp = keras.Input((6, 10))
    norm = keras.layers.LayerNormalization(epsilon=1e-5)
    model = keras.Model(inp, keras.layers.Dense(3)(norm(keras.layers.Dense(10)(inp))))
    rng = np.random.default_rng(0)
    norm.set_weights([rng.uniform(0.5, 2.0, 10).astype(np.float32), rng.normal(0, 0.5, 10).astype(np.float32)])
    model.save(tmp_path / "ln.keras")
    x = rng.normal(0, 2.0, (32, 6, 10)).astype(np.float32)
    np.savez(tmp_path / "x.npz", x=x)
    loaded = load_model(tmp_path / "ln.keras")
    np.testing.assert_allclose(loaded.predict([x])[0], model.predict(x, verbose=0), atol=1e-4)
    result = quantize(tmp_path / "ln.keras", str(tmp_path / "x.npz"), tmp_path / "ln.tflite", samples=32)
    ops = tflite_ops(result.output.read_bytes())
    assert "NEG" not in ops and {"MEAN", "RSQRT"} <= set(ops), ops
    assert verify(result.output, str(tmp_path / "x.npz")).exact == 1.0

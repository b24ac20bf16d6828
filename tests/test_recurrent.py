"""Conv1D + LSTM / GRU time-series classifiers quantize to full int8 and run bit-exact.

A rolled Keras LSTM or GRU converts to a WHILE loop, and TF 2.21's calibrator segfaults on it;
the loader (model_loader.recurrent_layers_convertible) runs a Keras 3 LSTM as tf_keras's fused
LSTM function (one UNIDIRECTIONAL_SEQUENCE_LSTM) and unrolls a GRU over its time steps. The
models are trained briefly on a synthetic task (sine, square, sawtooth or noise windows), so the
accuracy comparison means something.
"""

from __future__ import annotations

import numpy as np
import pytest

from tinyml_ptq.core.errors import UserError
from tinyml_ptq.interpreters.tflite_inspect import require_full_int8, tflite_ops
from tinyml_ptq.quantization.model_loader import load_model
from tinyml_ptq.quantization.quantize import quantize

STEPS, CHANNELS, CLASSES = 32, 3, 4
# What each recurrent layer becomes (besides the RESHAPE, CONV_2D, FULLY_CONNECTED and SOFTMAX around it).
EXPECTED = {
    "LSTM": {"UNIDIRECTIONAL_SEQUENCE_LSTM", "STRIDED_SLICE"},
    "GRU": {"UNPACK", "SPLIT", "STRIDED_SLICE", "ADD", "SUB", "MUL", "LOGISTIC", "TANH"},
}
AROUND = {"RESHAPE", "CONV_2D", "FULLY_CONNECTED", "SOFTMAX"}


def waves(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Windows of sine, square, sawtooth (random period, phase and amplitude per channel) or noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, CLASSES, n)
    t = np.arange(STEPS)[None, :, None]
    phase = (t / rng.uniform(6, 16, (n, 1, CHANNELS)) + rng.uniform(0, 1, (n, 1, CHANNELS))) % 1.0
    shapes = [np.sin(2 * np.pi * phase), np.where(phase < 0.5, 1.0, -1.0), 2 * phase - 1,
              rng.uniform(-1, 1, (n, STEPS, CHANNELS))]
    x = np.choose(y[:, None, None], shapes) * rng.uniform(0.5, 1.5, (n, 1, CHANNELS))
    return (x + rng.normal(0, 0.1, x.shape)).astype(np.float32), y


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("waves")
    x, y = waves(1600, 0)
    x_eval, y_eval = waves(200, 1)
    np.savez(folder / "calib.npz", x=x[:100], y=y[:100])
    np.savez(folder / "eval.npz", x=x_eval, y=y_eval)
    return folder, (x, y), (x_eval, y_eval)


def _trained(kind: str, x, y):
    import keras

    keras.utils.set_random_seed(3)
    model = keras.Sequential([keras.Input((STEPS, CHANNELS)), keras.layers.Conv1D(16, 3, activation="relu"),
                              getattr(keras.layers, kind)(16), keras.layers.Dense(CLASSES, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=6, batch_size=32, verbose=0)
    return model


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_conv1d_recurrent_classifier_quantizes_to_full_int8_and_runs_exact(data, tmp_path, kind):
    from tinyml_ptq.compiler.lowering import supported_operators
    from tinyml_ptq.interpreters.reference import ReferenceInterpreter, sample_rows
    from tinyml_ptq.pipeline.verify import verify

    folder, (x, y), (x_eval, y_eval) = data
    model = _trained(kind, x, y)
    path = tmp_path / f"{kind.lower()}.keras"
    model.save(path)

    # The rewritten layer computes what the Keras layer computes.
    loaded = load_model(path)
    np.testing.assert_allclose(loaded.predict([x_eval[:32]])[0], model.predict(x_eval[:32], verbose=0), atol=1e-5)

    # minmax: auto's per-tensor search over an unrolled GRU's ~500 activation tensors takes minutes.
    result = quantize(path, str(folder / "calib.npz"), tmp_path / f"{kind.lower()}.tflite", samples=100,
                      calibration="minmax")
    tflite = result.output.read_bytes()
    require_full_int8(tflite)
    ops = set(tflite_ops(tflite))
    assert ops == AROUND | EXPECTED[kind], sorted(ops)

    # int8 (the TFLM reference, reset before each sample) classifies as well as float.
    reference = ReferenceInterpreter(tflite)
    int8 = np.stack([reference.invoke_bytes(row) for row in sample_rows([x_eval], reference.inputs)])
    float_accuracy = float(np.mean(model.predict(x_eval, verbose=0).argmax(1) == y_eval))
    int8_accuracy = float(np.mean(int8.reshape(len(x_eval), -1).argmax(1) == y_eval))
    assert float_accuracy > 0.85, float_accuracy
    assert int8_accuracy > float_accuracy - 0.03, (float_accuracy, int8_accuracy)

    unsupported = sorted(ops - set(supported_operators()))
    if unsupported:
        with pytest.raises(UserError, match=unsupported[0]):
            verify(result.output, x_eval[:8])
    else:
        assert verify(result.output, x_eval[:8]).exact == 1.0

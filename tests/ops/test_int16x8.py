"""int16x8 (16-bit activations, 8-bit weights) on the native runtime: CONV_2D, FULLY_CONNECTED,
MAX_POOL_2D, RESHAPE, SOFTMAX and ADD bit-exact against the TFLite Micro reference, randomized, on
models the real converter builds in EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8."""

import numpy as np
import pytest
import tensorflow as tf

from tinyml_ptq.compiler.lowering import UnsupportedOperator, lower_graph
from tinyml_ptq.compiler.tflite_reader import parse_tflite

from harness import activation_for, assert_bit_exact, convert_int16x8, int16_samples, only_int16x8_op, random_range

CASES = 8


@pytest.mark.parametrize("case", range(CASES))
def test_conv2d_int16x8_random(case):
    rng = np.random.default_rng(16000 + case)
    kh, kw = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    strides = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    padding = ["same", "valid"][case % 2]
    h, w = int(rng.integers(kh, 10)), int(rng.integers(kw, 10))
    cin, cout = int(rng.integers(1, 6)), int(rng.integers(1, 7))
    layer = tf.keras.layers.Conv2D(cout, (kh, kw), strides=strides, padding=padding,
                                   kernel_initializer=tf.keras.initializers.RandomNormal(0, 0.5, seed=case),
                                   bias_initializer=tf.keras.initializers.RandomUniform(0.05, 0.5, seed=case + 1))
    activation = activation_for(case)
    model = convert_int16x8(lambda x: activation(layer(x)) if activation else layer(x), [(h, w, cin)],
                            calib_range=random_range(rng), per_tensor=case % 3 == 2, seed=case)
    graph, op = only_int16x8_op(model, "CONV_2D")
    assert graph.tensors[op.inputs[2]].dtype == "int64"
    assert_bit_exact(model, inputs=int16_samples(rng, (h, w, cin)), expect_ops={"CONV_2D"})


@pytest.mark.parametrize("case", range(CASES))
def test_fully_connected_int16x8_random(case):
    rng = np.random.default_rng(16100 + case)
    depth, units = int(rng.integers(1, 40)), int(rng.integers(1, 20))
    layer = tf.keras.layers.Dense(units, kernel_initializer=tf.keras.initializers.RandomNormal(0, 0.5, seed=case),
                                  bias_initializer=tf.keras.initializers.RandomUniform(0.05, 0.5, seed=case + 1))
    activation = activation_for(case)
    model = convert_int16x8(lambda x: activation(layer(x)) if activation else layer(x), [(depth,)],
                            calib_range=random_range(rng), per_tensor=case % 2 == 1, seed=case)
    only_int16x8_op(model, "FULLY_CONNECTED")
    assert_bit_exact(model, inputs=int16_samples(rng, (depth,)), expect_ops={"FULLY_CONNECTED"})


@pytest.mark.parametrize("case", range(CASES))
def test_max_pool_int16x8_random(case):
    rng = np.random.default_rng(16200 + case)
    pool = (int(rng.integers(1, 5)), int(rng.integers(1, 5)))
    strides = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
    h, w = int(rng.integers(pool[0], 12)), int(rng.integers(pool[1], 12))
    channels = int(rng.integers(1, 6))
    layer = tf.keras.layers.MaxPooling2D(pool_size=pool, strides=strides, padding=["same", "valid"][case % 2])
    activation = activation_for(case)
    model = convert_int16x8(lambda x: activation(layer(x)) if activation else layer(x), [(h, w, channels)],
                            calib_range=random_range(rng), seed=case)
    only_int16x8_op(model, "MAX_POOL_2D")
    assert_bit_exact(model, inputs=int16_samples(rng, (h, w, channels)), expect_ops={"MAX_POOL_2D"})


@pytest.mark.parametrize("case", range(CASES))
def test_softmax_int16x8_random(case):
    rng = np.random.default_rng(16300 + case)
    rows, depth = int(rng.integers(1, 4)), int(rng.integers(1, 40))
    model = convert_int16x8(tf.nn.softmax, [(rows, depth)],
                            calib_range=random_range(rng), seed=case)
    only_int16x8_op(model, "SOFTMAX")
    inputs = int16_samples(rng, (rows, depth), samples=16)
    inputs[1] = 0  # every distance zero: the sum's largest headroom
    inputs[2] = rng.integers(-300, 300, size=inputs.shape[1])  # distances inside the exp table
    assert_bit_exact(model, inputs=inputs, expect_ops={"SOFTMAX"})


@pytest.mark.parametrize("case", range(CASES))
def test_add_int16x8_random(case):
    rng = np.random.default_rng(16500 + case)
    shape = tuple(int(d) for d in rng.integers(1, 6, size=int(rng.integers(1, 5))))
    other = tuple(1 if rng.random() < 0.3 else d for d in shape) if case % 2 else shape  # broadcast
    activation = activation_for(case)

    def build(a, b):
        y = a + b
        return activation(y) if activation else y

    (lo1, hi1), (lo2, hi2) = random_range(rng), random_range(rng)  # two input scales
    calib = [[rng.uniform(lo1, hi1, size=(1, *shape)).astype(np.float32),
              rng.uniform(lo2, hi2, size=(1, *other)).astype(np.float32)] for _ in range(32)]
    model = convert_int16x8(build, [shape, other], calib=calib, seed=case)
    only_int16x8_op(model, "ADD")
    assert_bit_exact(model, samples=8, seed=case, expect_ops={"ADD"})
    for kernels in ("reference", "dsp"):
        assert_bit_exact(model, seed=case, kernels=kernels, inputs=np.concatenate(
            [int16_samples(rng, shape), int16_samples(rng, other)], axis=1).view(np.int8))


def test_conv_pool_reshape_fc_softmax_int16x8():
    """The digits network's chain in 16x8, RESHAPE included."""
    rng = np.random.default_rng(16400)
    init = tf.keras.initializers.RandomNormal(0, 0.4, seed=3)
    model = tf.keras.Sequential([
        tf.keras.layers.Conv2D(4, 3, padding="same", activation="relu", kernel_initializer=init),
        tf.keras.layers.MaxPooling2D(2),
        tf.keras.layers.Conv2D(6, 3, activation="relu", kernel_initializer=init),
        tf.keras.layers.Flatten(),
        tf.keras.layers.Dense(10, kernel_initializer=init),
        tf.keras.layers.Softmax(),
    ])
    converted = convert_int16x8(model, [(8, 8, 1)], calib_range=(0.0, 1.0))
    inputs = int16_samples(rng, (8, 8, 1))
    for kernels in ("reference", "dsp"):  # the DSP set runs the reference 16x8 kernels
        assert_bit_exact(converted, inputs=inputs, kernels=kernels,
                         expect_ops={"CONV_2D", "MAX_POOL_2D", "RESHAPE", "FULLY_CONNECTED", "SOFTMAX"})


def test_int16x8_operator_without_kernel_is_refused_by_name():
    """An int16x8 operator the native runtime has no 16x8 kernel for is refused naming it."""
    model = convert_int16x8(lambda x: tf.reduce_sum(x, axis=1, keepdims=True), [(4, 4, 2)])
    with pytest.raises(UnsupportedOperator, match=r"SUM .*int16x8.*--runtime tflm"):
        lower_graph(parse_tflite(model))


def test_digits_example_quantized_int16x8_verifies_exact(tmp_path):
    """`tinyml-ptq quantize --mode int16x8` on the digits CNN, then verify: exact natively."""
    from tinyml_ptq.pipeline.verify import verify
    from tinyml_ptq.quantization.quantize import quantize

    from conftest import DIGITS_DIR

    out = tmp_path / "d16.tflite"
    quantize(DIGITS_DIR / "digits_cnn.keras", str(DIGITS_DIR / "calib.npz"), out, samples=64, mode="int16x8")
    ops = {op.opcode for op in parse_tflite(out.read_bytes()).operators}
    assert ops == {"CONV_2D", "MAX_POOL_2D", "RESHAPE", "FULLY_CONNECTED", "SOFTMAX"}
    result = verify(out, str(DIGITS_DIR / "eval.npz"), limit=120)
    assert result.samples == 120 and result.exact == 1.0, result

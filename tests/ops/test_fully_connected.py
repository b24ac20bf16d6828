"""FULLY_CONNECTED bit-exactness against the TFLite Micro reference, randomized."""

import numpy as np
import pytest
import tensorflow as tf

from harness import assert_bit_exact, convert_int8

CASES = 16


@pytest.mark.parametrize("case", range(CASES))
def test_fully_connected_random(case):
    rng = np.random.default_rng(1000 + case)
    in_features = int(rng.integers(1, 70))
    units = int(rng.integers(1, 40))
    activation = [None, "relu", "relu6"][case % 3]
    use_bias = bool(case % 4 != 3)
    dense = tf.keras.layers.Dense(units, activation=activation, use_bias=use_bias,
                                  kernel_initializer=tf.keras.initializers.RandomNormal(stddev=rng.uniform(0.05, 2.0), seed=case),
                                  bias_initializer=tf.keras.initializers.RandomUniform(-1, 1, seed=case))
    dense.build((1, in_features))
    scale = float(rng.uniform(0.1, 20.0))
    offset = float(rng.uniform(-0.5, 0.5)) * scale
    model = convert_int8(lambda x: dense(x), [(in_features,)], per_tensor=bool(case % 2),
                         calib_range=(offset - scale, offset + scale), seed=case)
    assert_bit_exact(model, samples=8, seed=case, expect_ops={"FULLY_CONNECTED"})


def test_fully_connected_relu_n1_to_1_and_batch_rows():
    """A 2-D input with several rows (batches) and a clipped activation."""
    dense = tf.keras.layers.Dense(5)
    dense.build((1, 3, 6))
    model = convert_int8(lambda x: tf.clip_by_value(dense(x), -1.0, 1.0), [(3, 6)])
    assert_bit_exact(model, samples=8)


def test_per_tensor_multiplier_uses_double_scale_product():
    """FULLY_CONNECTED with per-tensor weights forms input_scale * filter_scale in double, as
    convolutions do. With the output scale set to f32(product) * 2^7 a float32 product would
    give exactly 2^-7 and exact rounding ties; only the double product matches TFLM."""
    from tinyml_ptq.compiler import quant_math
    from tinyml_ptq.compiler.tflite_reader import parse_tflite

    from harness import with_output_scale

    rng = np.random.default_rng(8)
    weights = rng.normal(size=(1, 3)).astype(np.float32)
    model = convert_int8(lambda x: tf.matmul(x, weights), [(1,)], per_tensor=True, calib_range=(-3.0, 5.0))
    graph = parse_tflite(model)
    op = next(o for o in graph.operators if o.opcode == "FULLY_CONNECTED")
    input_scale = graph.tensors[op.inputs[0]].scale
    filter_q = graph.tensors[op.inputs[1]].quantization
    assert not filter_q.per_channel, "converter produced per-channel weights"
    float_product = quant_math.f32(input_scale * float(filter_q.scale[0]))
    output_scale = float_product * 2 ** 7
    assert quant_math.quantize_multiplier(float_product / output_scale) != quant_math.quantize_multiplier(
        input_scale * float(filter_q.scale[0]) / output_scale), "scales drawn do not separate float from double"
    inputs = (np.arange(256) - 128).astype(np.int8).reshape(256, 1)
    assert_bit_exact(with_output_scale(model, output_scale), inputs=inputs, expect_ops={"FULLY_CONNECTED"})

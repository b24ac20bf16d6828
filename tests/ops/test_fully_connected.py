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

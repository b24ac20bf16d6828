"""SQUARED_DIFFERENCE and PRELU bit-exactness against the TFLite Micro reference, randomized over
shapes, broadcasts, scales (output scales the converter would not pick included) and alphas."""

import re

import numpy as np
import pytest
import tensorflow as tf

from tinyml_ptq.compiler.ir import Quantization
from tinyml_ptq.compiler.lowering import UnsupportedOperator, lower_graph
from tinyml_ptq.core.errors import shorten

from harness import assert_bit_exact, convert_int8, only_op, random_range, with_output_scale

SQDIFF_CASES = 10
PRELU_CASES = 10


def _as_4d(shape):
    return (1,) * (4 - len(shape)) + tuple(shape)


def _sqdiff_case(rng, case):
    """The other operand: an arena tensor with its own scale (a rescaled, shifted copy of x), a
    per-channel or scalar constant, or a general broadcast constant, larger or smaller than x."""
    pattern = case % 4
    shape = [int(d) for d in rng.integers(1, 7, size=int(rng.integers(1, 4)))]
    calib_range = random_range(rng)
    half_width = (calib_range[1] - calib_range[0]) / 2
    if pattern == 3:
        shape[int(np.argmax(shape))] = max(shape) if max(shape) > 1 else 2
    full = (1, *shape)
    x_shape = tuple(shape)
    if pattern == 0:
        factor = float(rng.choice([-1, 1]) * rng.uniform(0.05, 10.0))
        offset = float(rng.uniform(-1.0, 1.0)) * half_width
        other = lambda x: x * factor + offset  # noqa: E731
        operands = [full, full]
    else:
        if pattern == 1:
            const_shape = [(shape[-1],), (1,) * (len(full) - 1) + (shape[-1],)][int(rng.integers(0, 2))]
        elif pattern == 2:
            const_shape = [(), (1,)][int(rng.integers(0, 2))]
        else:
            keep = rng.integers(0, 2, size=len(full)).astype(bool)
            keep[1 + int(np.argmax(shape))] = False
            small = tuple(d if k else 1 for d, k in zip(full, keep))
            if (case // 4) % 2:
                x_shape, const_shape = small[1:], full
            else:
                const_shape = small
        scale = half_width * float(rng.choice([0.1, 1.0, 4.0]))
        value = (rng.uniform(-1.0, 1.0, size=const_shape) * scale).astype(np.float32)
        other = lambda x: tf.constant(value)  # noqa: E731
        operands = [(1, *x_shape), const_shape]
    swap = bool(rng.integers(0, 2))

    def build(x):
        return tf.math.squared_difference(other(x), x) if swap else tf.math.squared_difference(x, other(x))

    return build, x_shape, [tuple(s) for s in operands], calib_range


@pytest.mark.parametrize("case", range(SQDIFF_CASES))
def test_squared_difference_random(case):
    rng = np.random.default_rng(21000 + case)
    build, x_shape, operand_shapes, calib_range = _sqdiff_case(rng, case)
    model = convert_int8(build, [x_shape], calib_range=calib_range, seed=case)
    graph, op = only_op(model, "SQUARED_DIFFERENCE")
    assert sorted(_as_4d(graph.tensors[i].shape) for i in op.inputs) == sorted(_as_4d(s) for s in operand_shapes)
    if case % 3 == 2:
        # An output scale the converter would not pick: the output rescale far below or above 1.
        model = with_output_scale(model, graph.tensors[op.outputs[0]].scale * float(rng.choice([0.003, 0.1, 8.0])))
    assert_bit_exact(model, samples=8, seed=case, expect_ops={"SQUARED_DIFFERENCE"})


def test_squared_difference_operands_really_vary():
    kinds = set()
    for case in range(SQDIFF_CASES):
        sizes = [int(np.prod(s)) for s in _sqdiff_case(np.random.default_rng(21000 + case), case)[2]]
        kinds.add("same" if sizes[0] == sizes[1] else "x larger" if sizes[0] > sizes[1] else "x smaller")
    assert kinds == {"same", "x larger", "x smaller"}


@pytest.mark.parametrize("seed", range(2))
def test_squared_difference_every_code_pair(seed):
    """Every (input code, constant code) pair once: [256, 1] against a [1, 256] constant."""
    rng = np.random.default_rng(21500 + seed)
    calib_range = random_range(rng)
    const_scale = max(abs(calib_range[0]), abs(calib_range[1])) * float(rng.uniform(0.2, 3.0))
    const = np.linspace(-const_scale, const_scale * float(rng.uniform(0.3, 1.0)), 256, dtype=np.float32)
    model = convert_int8(lambda x: tf.math.squared_difference(x, const.reshape(1, 256)), [(256, 1)],
                         calib_range=calib_range, seed=seed)
    graph, op = only_op(model, "SQUARED_DIFFERENCE")
    assert len(np.unique(next(graph.tensors[i].data for i in op.inputs if graph.tensors[i].is_constant))) == 256
    codes = np.arange(-128, 128, dtype=np.int8).reshape(1, 256)
    assert_bit_exact(model, inputs=codes, expect_ops={"SQUARED_DIFFERENCE"})


# --- PRELU ---------------------------------------------------------------------------------------

ALPHA_RANGES = [(0.01, 0.4), (-0.5, 0.5), (0.5, 2.5), (-2.0, -0.1)]


def _prelu_model(rng, case):
    """Keras PReLU over a rank 1 to 3 input (without the batch), alpha shared over a random subset
    of the axes (broadcast), drawn from a positive, mixed, above-1 or negative range."""
    rank = int(rng.integers(1, 4))
    shape = tuple(int(d) for d in rng.integers(1, 7, size=rank))
    shared = [a for a in range(1, rank + 1) if rng.integers(0, 2)] or None
    low, high = ALPHA_RANGES[case % 4]
    layer = tf.keras.layers.PReLU(alpha_initializer=tf.keras.initializers.RandomUniform(low, high, seed=case),
                                  shared_axes=shared)
    return convert_int8(layer, [shape], calib_range=random_range(rng), seed=case), shape, shared


@pytest.mark.parametrize("case", range(PRELU_CASES))
def test_prelu_random(case):
    rng = np.random.default_rng(22000 + case)
    model, shape, shared = _prelu_model(rng, case)
    graph, op = only_op(model, "PRELU")
    alpha = graph.tensors[op.inputs[1]]
    assert alpha.is_constant
    want = [1 if shared and axis in shared else d for axis, d in enumerate(shape, start=1)]
    assert _as_4d(alpha.shape)[-len(want):] == tuple(want)
    if case % 3 == 2:
        model = with_output_scale(model, graph.tensors[op.outputs[0]].scale * float(rng.choice([0.05, 0.5, 6.0])))
    assert_bit_exact(model, samples=8, seed=case, expect_ops={"PRELU"})


def test_prelu_every_input_code_against_every_alpha_code():
    """All 256 input codes against 256 alphas from -1.5 to 2 (over 200 distinct codes, the
    converter quantizes alpha symmetrically), in two orders."""
    alphas = np.linspace(-1.5, 2.0, 256, dtype=np.float32)
    layer = tf.keras.layers.PReLU(alpha_initializer=tf.keras.initializers.Constant(alphas))
    model = convert_int8(layer, [(256,)], calib_range=(-3.0, 1.0))
    graph, op = only_op(model, "PRELU")
    assert len(np.unique(graph.tensors[op.inputs[1]].data)) > 200
    codes = np.arange(-128, 128, dtype=np.int8)
    assert_bit_exact(model, inputs=np.stack([codes, codes[::-1]]), expect_ops={"PRELU"})


def test_prelu_per_channel_alpha_is_refused():
    layer = tf.keras.layers.PReLU(alpha_initializer=tf.keras.initializers.Constant(0.2), shared_axes=[1, 2])
    model = convert_int8(layer, [(3, 3, 4)])
    graph, op = only_op(model, "PRELU")
    alpha = graph.tensors[op.inputs[1]]
    alpha.quantization = Quantization(np.full(4, alpha.scale, np.float32), np.zeros(4, np.int64), axis=2)
    with pytest.raises(UnsupportedOperator, match=rf"PRELU \(node {op.index}\) has per-channel quantized tensor "
                                                  rf"'{re.escape(shorten(alpha.name))}'; supported: one scale and zero "
                                                  r"point per tensor"):
        lower_graph(graph)

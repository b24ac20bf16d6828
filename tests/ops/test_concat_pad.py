"""CONCATENATION, PAD and PADV2 bit-exactness against the TFLite Micro reference,
randomized over ranks, axes, extents and fill values."""

import numpy as np
import pytest
import tensorflow as tf

from tinyml_ptq.compiler.lowering import UnsupportedOperator, lower_graph
from tinyml_ptq.compiler.tflite_reader import parse_tflite

from harness import assert_bit_exact, convert_int8, only_op, random_range

CONCAT_CASES = 14
PAD_CASES = 14






def _concat_case(rng, case):
    """Concatenate 2-4 pieces along a random axis. Pieces are x, a rescaled x
    (its own scale: the converter inserts a QUANTIZE), x padded along the axis
    (a different extent), or a constant of random extent."""
    rank = int(rng.integers(1, 4))  # without the batch dimension
    shape = tuple(int(d) for d in rng.integers(1, 7, size=rank))
    full_rank = rank + 1
    axis = int(rng.integers(0 if case % 7 == 0 else 1, full_rank))  # batch axis now and then
    negative_axis = bool(rng.integers(0, 2))
    kinds = [str(k) for k in rng.choice(["x", "scaled", "padded", "const"], size=int(rng.integers(2, 5)))]
    kinds[0] = "x"  # the model must depend on its input
    factors = [float(rng.choice([-1, 1]) * rng.uniform(0.1, 8.0)) for _ in kinds]
    extra = [int(rng.integers(1, 4)) for _ in kinds]
    consts = [rng.uniform(-2, 2, size=[(e if d == axis else s) for d, s in enumerate((1, *shape))]).astype(np.float32)
              for e in extra]

    def build(x):
        pieces = []
        for kind, factor, pad, const in zip(kinds, factors, extra, consts):
            if kind == "x":
                pieces.append(x)
            elif kind == "scaled":
                pieces.append(x * factor)
            elif kind == "padded":
                paddings = [[0, 0]] * full_rank
                paddings[axis] = [pad, 0]
                pieces.append(tf.pad(x, paddings))
            else:
                pieces.append(tf.constant(const))
        return tf.concat(pieces, axis=axis - full_rank if negative_axis else axis)

    return build, shape, axis, len(kinds)


@pytest.mark.parametrize("case", range(CONCAT_CASES))
def test_concatenation_random(case):
    rng = np.random.default_rng(9000 + case)
    build, shape, axis, count = _concat_case(rng, case)
    model = convert_int8(build, [shape], calib_range=random_range(rng), seed=case)
    graph, op = only_op(model, "CONCATENATION")
    rank = len(graph.tensors[op.outputs[0]].shape)
    assert op.options["axis"] % rank == axis
    assert len(op.inputs) == count
    assert_bit_exact(model, samples=8, seed=case, expect_ops={"CONCATENATION"})


def test_concatenation_cases_vary():
    axes, counts = set(), set()
    for case in range(CONCAT_CASES):
        rng = np.random.default_rng(9000 + case)
        _, shape, axis, count = _concat_case(rng, case)
        axes.add((axis, len(shape) + 1))
        counts.add(count)
    assert len(axes) >= 6 and counts >= {2, 3, 4}


def _pad_case(rng, case):
    rank = int(rng.integers(0, 4))
    shape = tuple(int(d) for d in rng.integers(1, 7, size=rank))
    paddings = rng.integers(0, 4, size=(rank + 1, 2))
    if case % 5:
        paddings[0] = 0  # pad the batch dimension only now and then
    if not paddings.any():
        paddings[-1, 1] = 1  # the converter drops a PAD that adds nothing
    fill = None if case % 3 == 0 else float(rng.uniform(-3.0, 3.0))
    return shape, paddings.astype(np.int32), fill


@pytest.mark.parametrize("case", range(PAD_CASES))
def test_pad_random(case):
    rng = np.random.default_rng(9500 + case)
    shape, paddings, fill = _pad_case(rng, case)
    if fill is None:
        build = lambda x: tf.pad(x, paddings)  # noqa: E731
        opcode = "PAD"
    else:
        build = lambda x: tf.pad(x, paddings, constant_values=fill)  # noqa: E731
        opcode = "PADV2"
    model = convert_int8(build, [shape], calib_range=random_range(rng), seed=case)
    graph, op = only_op(model, opcode)
    np.testing.assert_array_equal(graph.tensors[op.inputs[1]].data, paddings)
    assert_bit_exact(model, samples=8, seed=case, expect_ops={opcode})


def test_pad_cases_vary():
    ranks, fills, batch_padded = set(), set(), False
    for case in range(PAD_CASES):
        shape, paddings, fill = _pad_case(np.random.default_rng(9500 + case), case)
        ranks.add(len(shape) + 1)
        fills.add(fill is None)
        batch_padded |= bool(paddings[0].any())
    assert ranks == {1, 2, 3, 4} and fills == {True, False} and batch_padded


def test_keras_zero_padding_2d():
    layer = tf.keras.layers.ZeroPadding2D(((1, 2), (3, 0)))
    model = convert_int8(layer, [(5, 4, 3)], calib_range=(0.5, 4.0))
    assert_bit_exact(model, samples=8, expect_ops={"PAD"})


def test_rank5_pad_is_refused():
    model = convert_int8(lambda x: tf.pad(x, [[0, 0], [1, 0], [0, 0], [0, 1], [0, 0]]), [(2, 2, 2, 3)])
    with pytest.raises(UnsupportedOperator, match=r"PAD \(node \d+\) pads a rank-5 tensor; "
                                                     r"supported: an input of at most 4 dimensions"):
        lower_graph(parse_tflite(model))

"""ADD, SUB, MUL, RELU, RELU6, LEAKY_RELU and HARD_SWISH bit-exactness against
the TFLite Micro reference, randomized over shapes, broadcasts, scales and
fused activations."""

import numpy as np
import pytest
import tensorflow as tf

from tinyml_ptq.compiler.lowering import UnsupportedOperator, lower_graph
from tinyml_ptq.compiler.tflite_reader import parse_tflite

from harness import assert_bit_exact, convert_int8

BINARY_CASES = 14
UNARY_CASES = 12
MAGNITUDES = [0.02, 0.5, 3.0, 40.0]

# Fused activation built after the op, and the option value the converter must keep.
ACTIVATIONS = [
    (None, 0),
    (tf.nn.relu, 1),
    (tf.nn.relu6, 3),
    (lambda t: tf.clip_by_value(t, -1.0, 1.0), 2),
]


def _random_range(rng):
    """A calibration range around 0 (offset at most half the half-width)."""
    half_width = float(rng.choice(MAGNITUDES)) * float(rng.uniform(0.5, 2.0))
    offset = float(rng.uniform(-0.5, 0.5)) * half_width
    return offset - half_width, offset + half_width


def _random_shape(rng, rank):
    return tuple(int(d) for d in rng.integers(1, 8, size=rank))


def _as_4d(shape):
    return (1,) * (4 - len(shape)) + tuple(shape)


def _last_op(model, opcode):
    """The op under test is built last; its fused activation folds into it."""
    graph = parse_tflite(model)
    op = graph.operators[-1]
    assert op.opcode == opcode, f"expected {opcode} last, graph has {[o.opcode for o in graph.operators]}"
    return graph, op


def _binary_case(rng, case, opcode):
    """A random binary op: its second operand is an arena tensor of the same shape,
    a per-channel or scalar constant, a general broadcast constant, or a per-channel
    arena tensor (spatial mean). Returns (build, input shape, expected operand shapes)."""
    tf_op = {"ADD": tf.add, "SUB": tf.subtract, "MUL": tf.multiply}[opcode]
    pattern = case % 5
    rank = int(rng.integers(1, 4)) if pattern != 4 else 3
    shape = _random_shape(rng, rank)
    full = (1, *shape)
    calib_range = _random_range(rng)
    half_width = (calib_range[1] - calib_range[0]) / 2
    # An added constant stays below the input's reach, so no activation can pin the
    # output to one value (TFLite Micro aborts on such a collapsed output scale).
    const_scale = float(rng.choice(MAGNITUDES)) if opcode == "MUL" else half_width * float(rng.choice([0.05, 0.4]))
    swap = bool(rng.integers(0, 2))
    x_shape = shape

    if pattern == 0:
        # Two arena tensors with unrelated scales: x and a rescaled (for MUL, also leaky) copy.
        factor = float(rng.choice([-1, 1]) * rng.uniform(0.05, 20.0))
        if opcode == "MUL":
            alpha = float(rng.uniform(0.05, 0.9))
            other = lambda x: tf.nn.leaky_relu(x * factor, alpha=alpha)  # noqa: E731
        else:
            other = lambda x: x * factor  # noqa: E731
        operands = [full, full]
    elif pattern in (1, 2, 3):
        if pattern == 1:
            const_shape = [(shape[-1],), (1,) * (len(full) - 1) + (shape[-1],)][int(rng.integers(0, 2))]
        elif pattern == 2:
            const_shape = [(), (1,)][int(rng.integers(0, 2))]
        else:
            # Each dimension independently broadcast or full; sometimes x is the smaller operand.
            keep = rng.integers(0, 2, size=len(full)).astype(bool)
            small = tuple(d if k else 1 for d, k in zip(full, keep))
            if rng.integers(0, 2):
                x_shape, const_shape = small[1:], full
            else:
                const_shape = small
        value = (rng.uniform(-1.0, 1.0, size=const_shape) * const_scale).astype(np.float32)
        other = lambda x: tf.constant(value)  # noqa: E731
        operands = [(1, *x_shape), const_shape]
    else:
        # Per-channel arena operand: the spatial mean of x, [1, 1, 1, C].
        other = lambda x: tf.reduce_mean(x, axis=[1, 2], keepdims=True)  # noqa: E731
        operands = [full, (1, 1, 1, shape[-1])]

    activation, fused = ACTIVATIONS[case % 4]

    def build(x):
        a, b = x, other(x)
        y = tf_op(b, a) if swap else tf_op(a, b)
        return activation(y) if activation else y

    if swap:
        operands.reverse()
    return build, x_shape, [tuple(s) for s in operands], fused, calib_range


@pytest.mark.parametrize("case", range(BINARY_CASES))
@pytest.mark.parametrize("opcode", ["ADD", "SUB", "MUL"])
def test_binary_random(opcode, case):
    rng = np.random.default_rng({"ADD": 5000, "SUB": 6000, "MUL": 7000}[opcode] + case)
    build, x_shape, operand_shapes, fused, calib_range = _binary_case(rng, case, opcode)
    model = convert_int8(build, [x_shape], calib_range=calib_range, seed=case)
    graph, op = _last_op(model, opcode)
    # Compare as 4-D (the converter may drop a constant's leading 1s); it may also
    # reorder the operands of commutative ops.
    got = [_as_4d(graph.tensors[i].shape) for i in op.inputs]
    want = [_as_4d(s) for s in operand_shapes]
    if opcode != "SUB":
        got, want = sorted(got), sorted(want)
    assert got == want
    assert op.options["fused_activation_function"] == fused
    assert_bit_exact(model, samples=8, seed=case, expect_ops={opcode})


def test_binary_operands_really_vary():
    """Guard the generator: the cases cover arena/arena, constant and both broadcast directions."""
    kinds = set()
    for opcode in ("ADD", "SUB", "MUL"):
        for case in range(BINARY_CASES):
            rng = np.random.default_rng({"ADD": 5000, "SUB": 6000, "MUL": 7000}[opcode] + case)
            operands = _binary_case(rng, case, opcode)[2]
            sizes = [int(np.prod(s)) for s in operands]
            kinds.add("same" if sizes[0] == sizes[1] else ("first smaller" if sizes[0] < sizes[1] else "second smaller"))
    assert kinds == {"same", "first smaller", "second smaller"}


def _unary_model(rng, case, build):
    rank = int(rng.integers(0, 4))
    shape = _random_shape(rng, rank)
    return convert_int8(build, [shape], calib_range=_random_range(rng), seed=case)


@pytest.mark.parametrize("case", range(UNARY_CASES))
def test_relu_random(case):
    rng = np.random.default_rng(8000 + case)
    model = _unary_model(rng, case, tf.nn.relu)
    _last_op(model, "RELU")
    assert_bit_exact(model, samples=8, seed=case, expect_ops={"RELU"})


@pytest.mark.parametrize("case", range(UNARY_CASES))
def test_relu6_random(case):
    rng = np.random.default_rng(8100 + case)
    model = _unary_model(rng, case, tf.nn.relu6)
    _last_op(model, "RELU6")
    assert_bit_exact(model, samples=8, seed=case, expect_ops={"RELU6"})


@pytest.mark.parametrize("case", range(UNARY_CASES))
def test_leaky_relu_random(case):
    rng = np.random.default_rng(8200 + case)
    alpha = float([rng.uniform(0.01, 0.95), rng.uniform(1.1, 3.0), -rng.uniform(0.05, 0.5)][case % 3])
    model = _unary_model(rng, case, lambda x: tf.nn.leaky_relu(x, alpha=alpha))
    _, op = _last_op(model, "LEAKY_RELU")
    assert op.options["alpha"] == pytest.approx(alpha, rel=1e-6)
    assert_bit_exact(model, samples=8, seed=case, expect_ops={"LEAKY_RELU"})


@pytest.mark.parametrize("case", range(UNARY_CASES))
def test_hard_swish_random(case):
    rng = np.random.default_rng(8300 + case)
    build = tf.keras.layers.Activation("hard_swish") if case % 2 else (lambda x: x * tf.nn.relu6(x + 3.0) / 6.0)
    model = _unary_model(rng, case, build)
    _last_op(model, "HARD_SWISH")
    assert_bit_exact(model, samples=8, seed=case, expect_ops={"HARD_SWISH"})


def test_hard_swish_exhaustive_inputs_across_shift_regimes():
    """All 256 input codes, for input ranges that give the relu-ish rescale a left
    shift, no shift and right shifts."""
    for lo, hi in [(-0.05, 0.04), (-1.0, 1.5), (-4.0, 3.0), (-60.0, 90.0)]:
        model = convert_int8(lambda x: x * tf.nn.relu6(x + 3.0) / 6.0, [(256,)], calib_range=(lo, hi))
        codes = np.arange(-128, 128, dtype=np.int8).reshape(1, 256)
        assert_bit_exact(model, inputs=codes, expect_ops={"HARD_SWISH"})


@pytest.mark.parametrize("opcode", ["ADD", "SUB"])
def test_collapsed_output_range_is_refused(opcode):
    """relu(x - 10) on x in [-1, 1] is always 0: the converter gives the output a
    vanishing scale, which TFLite Micro's ADD/SUB cannot represent (it aborts)."""
    build = (lambda x: tf.nn.relu(x + -10.0)) if opcode == "ADD" else (lambda x: tf.nn.relu(x - 10.0))
    model = convert_int8(build, [(5,)])
    _last_op(model, opcode)
    with pytest.raises(UnsupportedOperator, match=rf"{opcode} \(node \d+\) has output rescale factor .*; supported: "
                                                  r"input rescale factors \(and for ADD and SUB the output's\) within "
                                                  r"\(0, 1\)"):
        lower_graph(parse_tflite(model))


def test_rank5_add_is_refused():
    model = convert_int8(lambda x: x + np.ones((2, 2, 2, 3), np.float32), [(2, 2, 2, 3)])
    with pytest.raises(UnsupportedOperator, match=r"ADD \(node \d+\) has rank-5 operands; supported: operands and "
                                                  r"output of rank at most 4"):
        lower_graph(parse_tflite(model))


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("opcode", ["ADD", "SUB", "MUL"])
def test_binary_exhaustive_code_pairs(opcode, seed):
    """Every (input code, constant code) pair once: a [256, 1] input against a
    [1, 256] constant whose codes span all of int8. Low-bit differences in the
    multipliers (float vs double ratios) show up here if anywhere."""
    rng = np.random.default_rng(7700 + seed)
    tf_op = {"ADD": tf.add, "SUB": tf.subtract, "MUL": tf.multiply}[opcode]
    const_scale = float(rng.choice(MAGNITUDES)) * float(rng.uniform(0.5, 2.0))
    const = np.linspace(-const_scale, const_scale * float(rng.uniform(0.3, 1.0)), 256, dtype=np.float32)
    model = convert_int8(lambda x: tf_op(x, const.reshape(1, 256)), [(256, 1)], calib_range=_random_range(rng),
                         seed=seed)
    graph, op = _last_op(model, opcode)
    const_tensor = next(graph.tensors[i] for i in op.inputs if graph.tensors[i].is_constant)
    assert len(np.unique(const_tensor.data)) == 256
    codes = np.arange(-128, 128, dtype=np.int8).reshape(1, 256)
    assert_bit_exact(model, inputs=codes, expect_ops={opcode})

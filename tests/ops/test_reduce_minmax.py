"""MAXIMUM, MINIMUM, REDUCE_MAX, REDUCE_MIN, SUM, MEAN over any axes, ARG_MAX and ARG_MIN
bit-exactness against the TFLite Micro reference, randomized over shapes, axes, keep_dims,
scales and broadcasts; and the refusals for what the runtime does not take."""

import flatbuffers
import numpy as np
import pytest
import tensorflow as tf

from tinyml_ptq.compiler.lowering import UnsupportedOperator, lower_graph
from tinyml_ptq.compiler.lowering.reduce import fold_reduction
from tinyml_ptq.compiler.tflite_reader import parse_tflite

from harness import assert_bit_exact, convert_int8, only_op, random_range, with_output_scale

MINMAX_CASES = 8
REDUCE_CASES = 9
ARG_CASES = 7


def _as_4d(shape):
    return (1,) * (4 - len(shape)) + tuple(shape)


def _set_quantization(model: bytes, tensor: int, scale: float, zero_point: int) -> bytes:
    """The model with one tensor's (per-tensor) quantization replaced, everything else unchanged."""
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    tree = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(model, 0))
    quant = tree.subgraphs[0].tensors[tensor].quantization
    quant.scale, quant.zeroPoint = [scale], [zero_point]
    builder = flatbuffers.Builder(len(model) + 1024)
    builder.Finish(tree.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


# --- MAXIMUM / MINIMUM ---------------------------------------------------------------------------


def _minmax_case(rng, case, opcode):
    """A random MAXIMUM/MINIMUM: the other operand is a rescaled arena copy of x, a per-channel,
    scalar or general broadcast constant, or a full constant against a smaller x."""
    tf_op = tf.maximum if opcode == "MAXIMUM" else tf.minimum
    pattern = case % 4
    shape = tuple(int(d) for d in rng.integers(1, 7, size=int(rng.integers(1, 4))))
    full = (1, *shape)
    calib_range = random_range(rng)
    half_width = (calib_range[1] - calib_range[0]) / 2
    x_shape = shape
    if pattern == 0:
        factor, offset = float(rng.uniform(-2.0, 2.0)), float(rng.uniform(-0.3, 0.3)) * half_width
        other = lambda x: x * factor + offset  # noqa: E731
        operands = [full, full]
    else:
        if pattern == 1:
            const_shape = [(shape[-1],), (1,) * (len(full) - 1) + (shape[-1],)][int(rng.integers(0, 2))]
        elif pattern == 2:
            const_shape = [(), (1,)][int(rng.integers(0, 2))]
        else:
            # Each dimension kept or broadcast, one longer than 1 broadcast at least; x is the
            # smaller operand in every other such case.
            keep = rng.integers(0, 2, size=len(full)).astype(bool)
            longest = 1 + int(np.argmax(full[1:]))
            full = (*full[:longest], max(full[longest], 2), *full[longest + 1:])
            shape, keep[longest] = full[1:], False
            small = tuple(d if k else 1 for d, k in zip(full, keep))
            if (case // 4) % 2:
                x_shape, const_shape = small[1:], full
            else:
                x_shape, const_shape = shape, small
        value = (rng.uniform(calib_range[0], calib_range[1], size=const_shape)).astype(np.float32)
        other = lambda x: tf.constant(value)  # noqa: E731
        operands = [(1, *x_shape), const_shape]
    swap = bool(rng.integers(0, 2))

    def build(x):
        return tf_op(other(x), x) if swap else tf_op(x, other(x))

    return build, x_shape, [tuple(s) for s in operands], calib_range


@pytest.mark.parametrize("case", range(MINMAX_CASES))
@pytest.mark.parametrize("opcode", ["MAXIMUM", "MINIMUM"])
def test_maximum_minimum_random(opcode, case):
    rng = np.random.default_rng((11000 if opcode == "MAXIMUM" else 12000) + case)
    build, x_shape, operand_shapes, calib_range = _minmax_case(rng, case, opcode)
    model = convert_int8(build, [x_shape], calib_range=calib_range, seed=case)
    graph, op = only_op(model, opcode)
    assert sorted(_as_4d(graph.tensors[i].shape) for i in op.inputs) == sorted(_as_4d(s) for s in operand_shapes)
    assert_bit_exact(model, samples=8, seed=case, expect_ops={opcode})


def test_maximum_minimum_operands_really_vary():
    """Guard the generator: arena/arena, and broadcasts in both directions."""
    kinds = set()
    for opcode in ("MAXIMUM", "MINIMUM"):
        for case in range(MINMAX_CASES):
            rng = np.random.default_rng((11000 if opcode == "MAXIMUM" else 12000) + case)
            sizes = [int(np.prod(s)) for s in _minmax_case(rng, case, opcode)[2]]
            kinds.add("same" if sizes[0] == sizes[1] else "x larger" if sizes[0] > sizes[1] else "x smaller")
    assert kinds == {"same", "x larger", "x smaller"}


@pytest.mark.parametrize("opcode", ["MAXIMUM", "MINIMUM"])
def test_maximum_minimum_every_code_against_a_constant_of_other_quantization(opcode):
    """All 256 codes against a 256-code constant; then the constant's quantization made different
    from x's: TFLite Micro compares raw codes whatever the scales, and so must we."""
    tf_op = tf.maximum if opcode == "MAXIMUM" else tf.minimum
    const = np.linspace(-1.5, 1.2, 256, dtype=np.float32).reshape(1, 256)
    model = convert_int8(lambda x: tf_op(x, const), [(256, 1)], calib_range=(-1.5, 1.5))
    graph, op = only_op(model, opcode)
    codes = np.arange(-128, 128, dtype=np.int8).reshape(1, 256)
    assert_bit_exact(model, inputs=codes, expect_ops={opcode})
    const_index = next(i for i in op.inputs if graph.tensors[i].is_constant)
    skewed = _set_quantization(model, const_index, graph.tensors[const_index].scale * 3.0, 17)
    assert_bit_exact(skewed, inputs=codes, expect_ops={opcode})


def test_rank5_maximum_is_refused():
    model = convert_int8(lambda x: tf.maximum(x, np.ones((2, 2, 2, 3), np.float32)), [(2, 2, 2, 3)])
    with pytest.raises(UnsupportedOperator, match=r"MAXIMUM \(node \d+\) has rank-5 operands; supported: "
                                                  r"operands and output of rank at most 4"):
        lower_graph(parse_tflite(model))


# --- REDUCE_MAX / REDUCE_MIN / SUM / MEAN --------------------------------------------------------

REDUCERS = {"REDUCE_MAX": tf.reduce_max, "REDUCE_MIN": tf.reduce_min, "SUM": tf.reduce_sum, "MEAN": tf.reduce_mean}


def _reduce_case(rng, case):
    """(input shape without batch, axes as given to TF, keep_dims): rank 1 to 5 with the batch,
    axes a random non-empty subset (some negative), every reduced axis but the batch longer than 1
    so the converter keeps the reduction."""
    rank = int(rng.integers(2, 6)) if case % 6 else 5
    shape = [int(d) for d in rng.integers(1, 7, size=rank - 1)]
    count = int(rng.integers(1, rank + 1))
    axes = sorted(int(a) for a in rng.choice(rank, size=count, replace=False))
    if axes == [0]:
        axes = [int(rng.integers(1, rank))]
    for a in axes:
        if a > 0:
            shape[a - 1] = max(shape[a - 1], 2)
    axes = [a - rank if rng.integers(0, 2) else a for a in axes]
    rng.shuffle(axes)
    return tuple(shape), axes, bool(rng.integers(0, 2))


@pytest.mark.parametrize("case", range(REDUCE_CASES))
@pytest.mark.parametrize("opcode", list(REDUCERS))
def test_reduce_random(opcode, case):
    rng = np.random.default_rng({"REDUCE_MAX": 13000, "REDUCE_MIN": 14000, "SUM": 15000, "MEAN": 16000}[opcode] + case)
    shape, axes, keep_dims = _reduce_case(rng, case)
    reducer = REDUCERS[opcode]
    model = convert_int8(lambda x: reducer(x, axis=axes, keepdims=keep_dims), [shape],
                         calib_range=random_range(rng), seed=case)
    graph, op = only_op(model, opcode)
    assert op.options["keep_dims"] == keep_dims
    assert sorted(np.asarray(graph.tensors[op.inputs[1]].data).ravel().tolist()) == sorted(axes)
    if opcode in ("SUM", "MEAN") and case % 3 == 2:
        # Output scales the converter would not pick: rescales from far below 1 to far above.
        in_scale = graph.tensors[op.inputs[0]].scale
        model = with_output_scale(model, in_scale * float(rng.choice([0.01, 0.2, 3.0, 50.0])))
    assert_bit_exact(model, samples=8, seed=case, expect_ops={opcode})


def test_reduce_cases_really_vary():
    """Guard the generator: keep_dims both ways, negative axes, ranks 2 to 5, and reductions
    that fold into one and into two separate reduced runs."""
    keeps, negative, ranks, runs = set(), False, set(), set()
    for base in (13000, 14000, 15000, 16000):
        for case in range(REDUCE_CASES):
            shape, axes, keep = _reduce_case(np.random.default_rng(base + case), case)
            keeps.add(keep)
            negative |= min(axes) < 0
            ranks.add(len(shape) + 1)
            rank = len(shape) + 1
            dims = fold_reduction(None, (1, *shape), [a % rank for a in axes])
            runs.add((dims[1] > 1) + (dims[3] > 1))
    assert keeps == {True, False} and negative and ranks == {2, 3, 4, 5} and runs == {1, 2}


@pytest.mark.parametrize("opcode", ["SUM", "MEAN"])
def test_sum_mean_extreme_sums(opcode):
    """192 elements per output over two separate reduced runs (axes 1 and 3), for inputs all at
    the top or the bottom code, random, and clustered near the top: the largest sums of both signs."""
    reducer = REDUCERS[opcode]
    model = convert_int8(lambda x: reducer(x, axis=[1, 3]), [(4, 16, 48)], calib_range=(-3.0, 5.0))
    only_op(model, opcode)
    rng = np.random.default_rng(17)
    size = 4 * 16 * 48
    codes = np.stack([np.full(size, 127), np.full(size, -128), rng.integers(-128, 128, size),
                      rng.integers(100, 128, size)]).astype(np.int8)
    assert_bit_exact(model, inputs=codes, expect_ops={opcode})


def test_reduce_three_reduced_runs_is_refused():
    model = convert_int8(lambda x: tf.reduce_max(x, axis=[1, 3, 5]), [(2, 2, 2, 2, 2)])
    graph, op = only_op(model, "REDUCE_MAX")
    with pytest.raises(UnsupportedOperator,
                       match=rf"REDUCE_MAX \(node {op.index}\) reduces axes \[1, 3, 5\] of shape \[1, 2, 2, 2, 2, 2\], "
                             r"which leaves 3 separate runs of reduced axes; supported: reduced axes that form at "
                             r"most 2 separate runs"):
        lower_graph(graph)


def test_reduce_runtime_axes_are_refused():
    model = convert_int8(lambda x: tf.reduce_sum(x, axis=[2]), [(3, 4)])
    graph, op = only_op(model, "SUM")
    axis = graph.tensors[op.inputs[1]]
    axis.data = None  # as if another operator computed the axes
    with pytest.raises(UnsupportedOperator, match=rf"SUM \(node {op.index}\) takes its axes from tensor "
                                                  r"'.+', computed at run time; supported: constant integer operands \(.*axes"):
        lower_graph(graph)


def test_reduce_max_changing_quantization_is_refused():
    """TFLite Micro fails such a model at run time; we refuse it when generating."""
    from tinyml_ptq.interpreters.isolation import InterpreterFailure
    from tinyml_ptq.interpreters.reference import ReferenceInterpreter

    model = with_output_scale(convert_int8(lambda x: tf.reduce_max(x, axis=[1]), [(3, 4)]), 0.5)
    graph, op = only_op(model, "REDUCE_MAX")
    with pytest.raises(UnsupportedOperator, match=rf"REDUCE_MAX \(node {op.index}\) changes quantization "
                                                  r"\(.*\); supported: the input's scale and zero point on the "
                                                  r"output \(TFLite Micro moves or blends the integers without "
                                                  r"rescaling"):
        lower_graph(graph)
    with pytest.raises(InterpreterFailure):
        reference = ReferenceInterpreter(model)
        reference.invoke(np.zeros(reference.input.shape, np.int8))


# --- ARG_MAX / ARG_MIN ---------------------------------------------------------------------------


@pytest.mark.parametrize("case", range(ARG_CASES))
@pytest.mark.parametrize("opcode", ["ARG_MAX", "ARG_MIN"])
def test_arg_max_min_random(opcode, case):
    """Random rank (2 to 4 with the batch) and axis (some negative); every other case draws the
    inputs from four codes only, so ties are common (the first index must win)."""
    rng = np.random.default_rng((17000 if opcode == "ARG_MAX" else 18000) + case)
    rank = int(rng.integers(2, 5))
    shape = [int(d) for d in rng.integers(1, 7, size=rank - 1)]
    axis = int(rng.integers(1, rank))
    shape[axis - 1] = max(shape[axis - 1], 2)
    if rng.integers(0, 2):
        axis -= rank
    tf_op = tf.argmax if opcode == "ARG_MAX" else tf.argmin
    model = convert_int8(lambda x: tf_op(x, axis=axis, output_type=tf.int32), [tuple(shape)],
                         calib_range=random_range(rng), seed=case)
    graph, op = only_op(model, opcode)
    assert graph.tensors[op.outputs[0]].dtype == "int32"
    assert int(np.asarray(graph.tensors[op.inputs[1]].data).ravel()[0]) == axis
    inputs = None
    if case % 2:
        inputs = rng.integers(-2, 2, size=(8, int(np.prod(shape))), dtype=np.int8) * 50
    assert_bit_exact(model, samples=8, seed=case, inputs=inputs, expect_ops={opcode})


def test_arg_max_feeds_the_int8_check_and_int64_indices_are_refused():
    """int32 indices pass the quantize stage's full-int8 check; int64 ones (tf.argmax's default),
    which TFLite Micro's ARG_MAX cannot write, are refused with the fix named."""
    from tinyml_ptq.interpreters.tflite_inspect import require_full_int8

    require_full_int8(convert_int8(lambda x: tf.argmax(x, axis=-1, output_type=tf.int32), [(3, 5)]))
    model = convert_int8(lambda x: tf.argmax(x, axis=-1), [(3, 5)])
    graph, op = only_op(model, "ARG_MAX")
    with pytest.raises(UnsupportedOperator, match=rf"ARG_MAX \(node {op.index}\) writes int64 indices to "
                                                  r"'.*'; supported: int32 indices, the only ones TFLite Micro's "
                                                  r"ARG_MAX and ARG_MIN write \(convert with output_type=tf.int32\)"):
        lower_graph(graph)

"""Data movement operators bit-exact against the TFLite Micro reference, randomized over
ranks, shapes and parameters: TRANSPOSE, STRIDED_SLICE, SLICE, SPLIT, SPLIT_V, PACK,
UNPACK, GATHER, DEPTH_TO_SPACE, SPACE_TO_DEPTH, RESIZE_NEAREST_NEIGHBOR,
BATCH_TO_SPACE_ND and SPACE_TO_BATCH_ND; and what the lowering refuses."""

import numpy as np
import pytest
import tensorflow as tf

from tinyml_ptq.compiler.lowering import MalformedOperator, UnsupportedOperator, lower_graph
from tinyml_ptq.compiler.tflite_reader import parse_tflite

from harness import assert_bit_exact, convert_int8, only_op, random_range

SAMPLES = 4


def _shape(rng, rank, low=2, high=6):
    return tuple(int(d) for d in rng.integers(low, high + 1, size=rank))


def _constant(graph, op, position):
    return graph.tensors[op.inputs[position]].data.tolist()


# --- TRANSPOSE ---------------------------------------------------------------------------------

TRANSPOSE_CASES = 6


@pytest.mark.parametrize("case", range(TRANSPOSE_CASES))
def test_transpose_random(case):
    rng = np.random.default_rng(12000 + case)
    rank = 2 + case % 3  # without the batch dimension: ranks 3 to 5 in all
    shape = _shape(rng, rank)
    inner = list(range(1, rank + 1))
    while inner == sorted(inner):  # moving only the batch dimension (1) would be a reshape
        inner = [int(p) + 1 for p in rng.permutation(rank)]
    batch_at = int(rng.integers(0, rank + 1)) if case % 2 else 0  # the batch dimension moves too
    perm = inner[:batch_at] + [0] + inner[batch_at:]
    model = convert_int8(lambda x: tf.transpose(x, perm), [shape], calib_range=random_range(rng), seed=case)
    graph, op = only_op(model, "TRANSPOSE")
    assert _constant(graph, op, 1) == perm
    assert_bit_exact(model, samples=SAMPLES, seed=case, expect_ops={"TRANSPOSE"})


def test_transpose_rank6_is_refused():
    model = convert_int8(lambda x: tf.transpose(x, [0, 5, 1, 4, 2, 3]), [(2, 2, 2, 2, 3)])
    with pytest.raises(UnsupportedOperator, match=r"TRANSPOSE \(node \d+\) transposes a rank-6 tensor; "
                                                     r"supported: an input of at most 5 dimensions"):
        lower_graph(parse_tflite(model))


# --- STRIDED_SLICE and SLICE -------------------------------------------------------------------

STRIDED_SLICE_CASES = 8


def _strided_slice_case(rng, case):
    """Random begin/end/strides (negative indices and strides, out-of-range ends) and masks over
    a rank-2..4 input; redrawn until the slice has 4 elements or more (half, of small inputs) but
    not all."""
    rank = 2 + case % 3
    shape = (1, *_shape(rng, rank - 1, 2, 7))
    for _ in range(1000):
        begin = [int(rng.integers(-d - 1, d + 1)) for d in shape]
        end = [int(rng.integers(-d - 1, d + 2)) for d in shape]
        strides = [int(rng.choice([-3, -2, -1, 1, 1, 2, 3])) for _ in shape]
        masks = [int(rng.integers(0, 1 << rank)) for _ in range(2)]
        shrink = 0
        if case % 2:  # shrink one axis with stride 1 and an index inside it
            axis = int(rng.integers(0, rank))
            shrink = 1 << axis
            begin[axis], strides[axis] = int(rng.integers(-shape[axis], shape[axis])), 1
            masks[0] &= ~shrink
        args = dict(begin_mask=masks[0], end_mask=masks[1], shrink_axis_mask=shrink)
        probe = tf.strided_slice(tf.zeros(shape), begin, end, strides, **args)
        if int(tf.size(probe)) >= min(4, int(np.prod(shape)) // 2) and tuple(probe.shape) != shape:
            return shape[1:], begin, end, strides, args
    raise AssertionError(f"no strided slice drawn for case {case}")


@pytest.mark.parametrize("case", range(STRIDED_SLICE_CASES))
def test_strided_slice_random(case):
    rng = np.random.default_rng(12100 + case)
    shape, begin, end, strides, args = _strided_slice_case(rng, case)
    model = convert_int8(lambda x: tf.strided_slice(x, begin, end, strides, **args), [shape],
                         calib_range=random_range(rng), seed=case)
    only_op(model, "STRIDED_SLICE")
    assert_bit_exact(model, samples=SAMPLES, seed=case, expect_ops={"STRIDED_SLICE"})


def test_strided_slice_cases_vary():
    negative_strides = shrinks = 0
    for case in range(STRIDED_SLICE_CASES):
        _, _, _, strides, args = _strided_slice_case(np.random.default_rng(12100 + case), case)
        negative_strides += min(strides) < 0
        shrinks += bool(args["shrink_axis_mask"])
    assert negative_strides >= 2 and shrinks >= 2


SLICE_CASES = 5


@pytest.mark.parametrize("case", range(SLICE_CASES))
def test_slice_random(case):
    rng = np.random.default_rng(12200 + case)
    shape = (1, *_shape(rng, 1 + case % 4, 2, 6))  # ranks 2 to 5
    begin = [int(rng.integers(0, d)) for d in shape]
    size = [int(rng.integers(1, d - b + 1)) if rng.integers(0, 3) else -1 for d, b in zip(shape, begin)]
    if all(b == 0 and s in (-1, d) for b, s, d in zip(begin, size, shape)):
        begin[-1] = 1  # the converter drops a slice of everything
    model = convert_int8(lambda x: tf.slice(x, begin, size), [shape[1:]], calib_range=random_range(rng), seed=case)
    graph, op = only_op(model, "SLICE")
    assert _constant(graph, op, 1) == begin
    assert_bit_exact(model, samples=SAMPLES, seed=case, expect_ops={"SLICE"})


def test_strided_slice_refusals():
    model = convert_int8(lambda x: tf.strided_slice(x, [0, 0, 1, 0, 0], [1, 2, 3, 2, 2], [1, 1, 1, 1, 2]),
                         [(2, 3, 2, 2)])
    with pytest.raises(UnsupportedOperator, match=r"STRIDED_SLICE \(node \d+\) slices a rank-5 tensor; "
                                                     r"supported: an input of at most 4 dimensions"):
        lower_graph(parse_tflite(model))


# --- SPLIT, SPLIT_V, UNPACK (several outputs, joined into one model output) and PACK ----------

SPLIT_CASES = 5


def _join(rng, pieces, axis):
    """The pieces in a shuffled order, concatenated along `axis`: every one reaches the output."""
    order = [int(i) for i in rng.permutation(len(pieces))]
    if order == sorted(order):
        order = order[::-1]
    return order, tf.concat([pieces[i] for i in order], axis=axis)


@pytest.mark.parametrize("case", range(SPLIT_CASES))
def test_split_random(case):
    rng = np.random.default_rng(12300 + case)
    rank = 1 + case % 3
    count = int(rng.integers(2, 5))
    shape = list(_shape(rng, rank, 1, 4))
    axis = int(rng.integers(1, rank + 1))
    shape[axis - 1] *= count
    join_axis = int(rng.integers(1, rank + 1))  # equal pieces join along any axis
    negative = bool(case % 2)

    def build(x):
        return _join(rng, tf.split(x, count, axis=axis - rank - 1 if negative else axis), join_axis)[1]

    model = convert_int8(build, [tuple(shape)], calib_range=random_range(rng), seed=case)
    graph, op = only_op(model, "SPLIT")
    assert len(op.outputs) == count
    assert_bit_exact(model, samples=SAMPLES, seed=case, expect_ops={"SPLIT", "CONCATENATION"})


def _without_last_concat_input(model: bytes) -> bytes:
    """The model with its CONCATENATION's last input left out (and its output shortened): that
    input's producer then has an output nobody reads. (The converter, given such a model, now
    and then leaves the SPLIT in float: the unread output has no calibration statistics.)"""
    import flatbuffers
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    tree = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(model, 0))
    sub = tree.subgraphs[0]
    concat = next(op for op in sub.operators
                  if tree.operatorCodes[op.opcodeIndex].builtinCode == schema.BuiltinOperator.CONCATENATION)
    dropped = sub.tensors[concat.inputs[-1]]
    concat.inputs = concat.inputs[:-1]
    out = sub.tensors[concat.outputs[0]]
    axis = concat.builtinOptions.axis % len(out.shape)
    out.shape = [d - (dropped.shape[k] if k == axis else 0) for k, d in enumerate(out.shape)]
    builder = flatbuffers.Builder(len(model) + 1024)
    builder.Finish(tree.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def test_split_with_an_unread_output():
    model = convert_int8(lambda x: tf.concat(tf.split(x, 3, axis=2)[::-1], axis=1), [(3, 6, 2)])
    model = _without_last_concat_input(model)
    graph, op = only_op(model, "SPLIT")
    readers = {i for other in graph.operators for i in other.inputs}
    assert sum(t not in readers for t in op.outputs) == 1
    assert_bit_exact(model, samples=SAMPLES, expect_ops={"SPLIT", "CONCATENATION"})


@pytest.mark.parametrize("case", range(SPLIT_CASES))
def test_split_v_random(case):
    rng = np.random.default_rng(12400 + case)
    rank = 1 + case % 3
    shape = list(_shape(rng, rank, 2, 4))
    axis = int(rng.integers(1, rank + 1))
    sizes = [int(s) for s in rng.integers(1, 4, size=int(rng.integers(2, 5)))]
    shape[axis - 1] = sum(sizes)
    if case % 2:
        sizes[int(rng.integers(0, len(sizes)))] = -1  # the rest of the axis

    def build(x):
        return _join(rng, tf.split(x, sizes, axis=axis), axis)[1]

    model = convert_int8(build, [tuple(shape)], calib_range=random_range(rng), seed=case)
    graph, op = only_op(model, "SPLIT_V")
    assert len(op.outputs) == len(sizes)
    assert_bit_exact(model, samples=SAMPLES, seed=case, expect_ops={"SPLIT_V", "CONCATENATION"})


UNPACK_CASES = 4


@pytest.mark.parametrize("case", range(UNPACK_CASES))
def test_unpack_random(case):
    rng = np.random.default_rng(12500 + case)
    rank = 2 + case % 3
    shape = _shape(rng, rank - 1, 2, 5)
    axis = int(rng.integers(1, rank))  # not the batch dimension (1 value)

    def build(x):
        pieces = tf.unstack(x, axis=axis)
        return _join(rng, pieces, int(rng.integers(0, rank - 1)))[1]

    model = convert_int8(build, [shape], calib_range=random_range(rng), seed=case)
    graph, op = only_op(model, "UNPACK")
    assert len(op.outputs) == shape[axis - 1]
    assert_bit_exact(model, samples=SAMPLES, seed=case, expect_ops={"UNPACK", "CONCATENATION"})


PACK_CASES = 4


@pytest.mark.parametrize("case", range(PACK_CASES))
def test_pack_random(case):
    rng = np.random.default_rng(12600 + case)
    rank = 1 + case % 3
    shape = _shape(rng, rank, 1, 5)
    axis = int(rng.integers(0, rank + 2))  # the new axis may come first, before the batch
    factors = [float(rng.uniform(-3, 3)) for _ in range(int(rng.integers(1, 4)))]

    def build(x):
        return tf.stack([x] + [x * f for f in factors], axis=axis)

    model = convert_int8(build, [shape], calib_range=random_range(rng), seed=case)
    graph, op = only_op(model, "PACK")
    assert op.options["values_count"] == len(factors) + 1
    assert_bit_exact(model, samples=SAMPLES, seed=case, expect_ops={"PACK"})


def test_split_model_passes_the_full_int8_check():
    from tinyml_ptq.interpreters.tflite_inspect import require_full_int8

    model = convert_int8(lambda x: tf.concat(tf.split(x, 2, axis=1)[::-1], axis=1), [(4, 3)])
    only_op(model, "SPLIT")  # its constant int32 axis is operand 0, its int8 data operand 1
    require_full_int8(model)


# --- GATHER ------------------------------------------------------------------------------------

GATHER_CASES = 6


def _gather_case(rng, case):
    rank = 1 + case % 3  # without the batch dimension
    shape = _shape(rng, rank, 2, 6)
    axis = int(rng.integers(1, rank + 1))
    batch_dims = case % 2  # batch_dims 1: the indices lead with the (single) batch
    index_shape = [(), (int(rng.integers(1, 6)),), (2, int(rng.integers(1, 4)))][case % 3]
    if batch_dims:
        index_shape = (1, *index_shape)
    indices = rng.integers(0, shape[axis - 1], size=index_shape).astype(np.int32)
    negative_axis = bool(rng.integers(0, 2))
    return shape, axis - rank - 1 if negative_axis else axis, batch_dims, indices


@pytest.mark.parametrize("case", range(GATHER_CASES))
def test_gather_random(case):
    rng = np.random.default_rng(12700 + case)
    shape, axis, batch_dims, indices = _gather_case(rng, case)
    model = convert_int8(lambda x: tf.gather(x, indices, axis=axis, batch_dims=batch_dims), [shape],
                         calib_range=random_range(rng), seed=case)
    graph, op = only_op(model, "GATHER")
    assert np.array_equal(graph.tensors[op.inputs[1]].data, indices)
    assert op.options["batch_dims"] == batch_dims
    assert_bit_exact(model, samples=SAMPLES, seed=case, expect_ops={"GATHER"})


def test_gather_refusals():
    model = convert_int8(lambda x: tf.gather(x, [2, 0], axis=2), [(3, 4)])
    graph, op = only_op(model, "GATHER")
    graph.tensors[op.inputs[1]].data = np.array([2, 4], dtype=np.int32)
    with pytest.raises(MalformedOperator, match=r"GATHER \(node \d+\) has index 4 outside axis 2 of extent 4"):
        lower_graph(graph)
    graph.tensors[op.inputs[1]].data = None  # as if computed by an earlier operator
    with pytest.raises(UnsupportedOperator,
                       match=r"GATHER \(node \d+\) has its indices computed at run time \(tensor .*\); "
                             r"supported: constant integer operands"):
        lower_graph(graph)


# --- DEPTH_TO_SPACE and SPACE_TO_DEPTH ---------------------------------------------------------

BLOCK_CASES = 4


@pytest.mark.parametrize("case", range(BLOCK_CASES))
def test_depth_to_space_random(case):
    rng = np.random.default_rng(12800 + case)
    block = int(rng.integers(2, 4))
    shape = (*_shape(rng, 2, 1, 4), block * block * int(rng.integers(1, 4)))
    model = convert_int8(lambda x: tf.nn.depth_to_space(x, block), [shape], calib_range=random_range(rng), seed=case)
    graph, op = only_op(model, "DEPTH_TO_SPACE")
    assert op.options["block_size"] == block
    assert_bit_exact(model, samples=SAMPLES, seed=case, expect_ops={"DEPTH_TO_SPACE"})


@pytest.mark.parametrize("case", range(BLOCK_CASES))
def test_space_to_depth_random(case):
    rng = np.random.default_rng(12900 + case)
    block = int(rng.integers(2, 4))
    shape = (block * int(rng.integers(1, 4)), block * int(rng.integers(1, 4)), int(rng.integers(1, 5)))
    model = convert_int8(lambda x: tf.nn.space_to_depth(x, block), [shape], calib_range=random_range(rng), seed=case)
    graph, op = only_op(model, "SPACE_TO_DEPTH")
    assert op.options["block_size"] == block
    assert_bit_exact(model, samples=SAMPLES, seed=case, expect_ops={"SPACE_TO_DEPTH"})


# --- RESIZE_NEAREST_NEIGHBOR -------------------------------------------------------------------

RESIZE_CASES = 6
# (align_corners, half_pixel_centers): TensorFlow allows every pair but both.
RESIZE_MODES = [(False, False), (True, False), (False, True)]


@pytest.mark.parametrize("case", range(RESIZE_CASES))
def test_resize_nearest_neighbor_random(case):
    rng = np.random.default_rng(13000 + case)
    align, half = RESIZE_MODES[case % 3]
    shape = (*_shape(rng, 2, 1, 7), int(rng.integers(1, 5)))
    # Up and down, by integer and fractional ratios, now and then to a single row or column.
    size = [int(rng.integers(1, 3 * d + 2)) for d in shape[:2]]
    if size == list(shape[:2]):
        size[0] += 1

    def build(x):
        return tf.compat.v1.image.resize_nearest_neighbor(x, size, align_corners=align, half_pixel_centers=half)

    model = convert_int8(build, [shape], calib_range=random_range(rng), seed=case)
    graph, op = only_op(model, "RESIZE_NEAREST_NEIGHBOR")
    assert (op.options["align_corners"], op.options["half_pixel_centers"]) == (align, half)
    assert _constant(graph, op, 1) == size
    assert_bit_exact(model, samples=SAMPLES, seed=case, expect_ops={"RESIZE_NEAREST_NEIGHBOR"})


def test_image_resize_nearest():
    """tf.image.resize's nearest method: half-pixel centers, without aligned corners."""
    model = convert_int8(lambda x: tf.image.resize(x, [9, 5], method="nearest"), [(4, 6, 3)])
    graph, op = only_op(model, "RESIZE_NEAREST_NEIGHBOR")
    assert (op.options["align_corners"], op.options["half_pixel_centers"]) == (False, True)
    assert_bit_exact(model, samples=SAMPLES, expect_ops={"RESIZE_NEAREST_NEIGHBOR"})


def test_nearest_neighbor_source_matches_tensorflow_over_many_sizes():
    """The index arithmetic (float32 scale, floor or round half away from zero) against
    TensorFlow's own kernel, over many more sizes than the bit-exactness cases."""
    from tinyml_ptq.compiler.lowering.data_movement import nearest_neighbor_sources

    for align, half in RESIZE_MODES:
        for in_size in (1, 2, 3, 5, 7, 10, 13):
            image = tf.reshape(tf.range(in_size, dtype=tf.float32), (1, in_size, 1, 1))
            for out_size in range(1, 4 * in_size + 3):
                resized = tf.compat.v1.image.resize_nearest_neighbor(image, [out_size, 1], align_corners=align,
                                                                     half_pixel_centers=half)
                expected = [int(v) for v in resized.numpy().ravel()]
                ours = nearest_neighbor_sources(in_size, out_size, align, half).tolist()
                assert ours == expected, (align, half, in_size, out_size)


# --- BATCH_TO_SPACE_ND and SPACE_TO_BATCH_ND ---------------------------------------------------

SPACE_BATCH_CASES = 5


def _zero_point_zero_calib(rng, shape, count=16):
    """Calibration samples spanning exactly [-1.28, 1.27]: scale 0.01 and zero point 0."""
    samples = []
    for _ in range(count):
        sample = rng.uniform(-1.28, 1.27, size=(1, *shape)).astype(np.float32)
        sample.flat[0], sample.flat[-1] = -1.28, 1.27
        samples.append([sample])
    return samples


@pytest.mark.parametrize("case", range(SPACE_BATCH_CASES))
def test_batch_to_space_nd_random(case):
    rng = np.random.default_rng(13100 + case)
    spatial = 1 if case == 0 else 2  # rank 3 (NHC) once
    block = [int(b) for b in rng.integers(1, 4, size=spatial)]
    if max(block) == 1:
        block[-1] = 2
    batches = int(np.prod(block)) * (1 + case % 2)
    spatial_shape = _shape(rng, spatial, 1, 4)
    depth = int(rng.integers(1, 4))
    crops = [[int(rng.integers(0, b)), int(rng.integers(0, b))] for b in block]
    for k, (b, d) in enumerate(zip(block, spatial_shape)):
        if b * d - sum(crops[k]) < 1:
            crops[k] = [0, 0]
    inner = (*spatial_shape, depth)

    def build(x):
        return tf.batch_to_space(tf.reshape(x, (batches, *inner)), block, crops)

    model = convert_int8(build, [(batches * inner[0], *inner[1:])], calib_range=random_range(rng), seed=case)
    graph, op = only_op(model, "BATCH_TO_SPACE_ND")
    assert _constant(graph, op, 1) == block and _constant(graph, op, 2) == crops
    assert_bit_exact(model, samples=SAMPLES, seed=case, expect_ops={"BATCH_TO_SPACE_ND"})


@pytest.mark.parametrize("case", range(SPACE_BATCH_CASES))
def test_space_to_batch_nd_random(case):
    rng = np.random.default_rng(13200 + case)
    spatial = 1 if case == 0 else 2
    block = [int(b) for b in rng.integers(1, 4, size=spatial)]
    if max(block) == 1:
        block[-1] = 2
    shape = (*_shape(rng, spatial, 1, 6), int(rng.integers(1, 4)))
    paddings = []
    for b, d in zip(block, shape):
        before = int(rng.integers(0, b + 1)) if case % 4 else 0  # no padding now and then
        paddings.append([before, -(d + before) % b])

    def build(x):
        return tf.space_to_batch(x, block, paddings)

    model = convert_int8(build, [shape], calib=_zero_point_zero_calib(rng, shape), seed=case)
    graph, op = only_op(model, "SPACE_TO_BATCH_ND")
    assert _constant(graph, op, 1) == block and _constant(graph, op, 2) == paddings
    assert graph.tensors[op.outputs[0]].zero_point == 0
    assert_bit_exact(model, samples=SAMPLES, seed=case, expect_ops={"SPACE_TO_BATCH_ND"})


def test_space_to_batch_nd_padding_with_a_zero_point_is_refused():
    model = convert_int8(lambda x: tf.space_to_batch(x, [2, 2], [[1, 0], [0, 1]]), [(3, 3, 2)], calib_range=(0.0, 4.0))
    graph, op = only_op(model, "SPACE_TO_BATCH_ND")
    assert graph.tensors[op.outputs[0]].zero_point != 0
    with pytest.raises(UnsupportedOperator, match=r"SPACE_TO_BATCH_ND \(node \d+\) pads .*; supported: "
                                                     r"no padding or output zero point 0: .* uninitialized value"):
        lower_graph(graph)


# --- all of them in one model ------------------------------------------------------------------


def _chain(x):
    a = tf.transpose(x, [0, 2, 1, 3])  # (1, 8, 6, 4)
    b = tf.strided_slice(a, [0, 7, 0, 0], [1, 0, 6, 4], [1, -2, 1, 1])  # (1, 4, 6, 4)
    c = tf.slice(b, [0, 0, 1, 0], [1, 4, 4, 4])  # (1, 4, 4, 4)
    p1, p2 = tf.split(c, 2, axis=3)
    q = tf.concat(tf.split(c, [1, 3], axis=1)[::-1], axis=1)
    s = tf.stack([p2, p1], axis=3)  # (1, 4, 4, 2, 2)
    u = tf.reshape(s, (1, 4, 4, 4))
    v = tf.reshape(tf.concat(tf.unstack(c, axis=1)[::-1], axis=-1), (1, 4, 4, 4))
    g = tf.gather(u + q - v, [3, 0, 1, 1], axis=3)
    d = tf.nn.depth_to_space(g, 2)  # (1, 8, 8, 1)
    e = tf.nn.space_to_depth(d, 2)  # (1, 4, 4, 4)
    r = tf.compat.v1.image.resize_nearest_neighbor(e, [6, 6], half_pixel_centers=True)  # (1, 6, 6, 4)
    sb = tf.space_to_batch(r, [2, 2], [[0, 0], [0, 0]])  # (4, 3, 3, 4); padding: its own tests
    return tf.batch_to_space(sb, [2, 1], [[0, 1], [0, 0]])  # (2, 5, 3, 4)


CHAIN_OPS = {"TRANSPOSE", "STRIDED_SLICE", "SLICE", "SPLIT", "SPLIT_V", "PACK", "UNPACK", "GATHER", "DEPTH_TO_SPACE",
             "SPACE_TO_DEPTH", "RESIZE_NEAREST_NEIGHBOR", "SPACE_TO_BATCH_ND", "BATCH_TO_SPACE_ND"}


@pytest.fixture(scope="module")
def chain_model():
    return convert_int8(_chain, [(6, 8, 4)], calib_range=(-2.0, 2.0))


def test_chain_of_every_operator(chain_model):
    """Every operator, one after another (the planner places a dozen steps, two of several outputs)."""
    missing = CHAIN_OPS - set(parse_tflite(chain_model).opcodes())
    assert not missing, f"the converter dropped {missing}"
    assert_bit_exact(chain_model, samples=SAMPLES, expect_ops=CHAIN_OPS)


def test_chain_compiles_for_cortex_m(chain_model, tmp_path):
    import shutil
    import subprocess

    from tinyml_ptq.compiler.codegen import generate_model_sources
    from tinyml_ptq.pipeline.hostrun import write_sources

    compiler = shutil.which("arm-none-eabi-gcc")
    if compiler is None:
        pytest.skip("arm-none-eabi-gcc not installed")
    sources = generate_model_sources(parse_tflite(chain_model), chain_model)
    c_files = [f for f in write_sources(sources, tmp_path) if f.suffix == ".c"]
    assert {f.name for f in c_files} >= {"tp_strided_copy.c", "tp_split.c", "tp_gather_s8.c",
                                         "tp_resize_nearest_neighbor.c", "tp_batch_to_space_nd_s8.c",
                                         "tp_space_to_batch_nd_s8.c", "tp_concatenation.c"}
    for cpu in ("cortex-m0plus", "cortex-m4"):
        for f in c_files:
            subprocess.run([compiler, f"-mcpu={cpu}", "-mthumb", "-std=c99", "-Os", "-Wall", "-Wextra", "-Werror",
                            "-Wshadow", "-Wdouble-promotion", "-I", str(tmp_path), "-c", str(f),
                            "-o", str(tmp_path / f"{f.stem}.o")], check=True)


# --- refusals ----------------------------------------------------------------------------------


def _set_option(name, value):
    def mutate(graph, op):
        op.options[name] = value
    return mutate


def _computed(position):
    def mutate(graph, op):
        graph.tensors[op.inputs[position]].data = None  # as if an earlier operator wrote it
    return mutate


def _set_constant(position, values):
    def mutate(graph, op):
        graph.tensors[op.inputs[position]].data = np.asarray(values, dtype=np.int32)
    return mutate


def _retype(position, dtype):
    def mutate(graph, op):
        graph.tensors[op.inputs[position]].dtype = dtype
    return mutate


def _output_shape(shape):
    def mutate(graph, op):
        graph.tensors[op.outputs[0]].shape = tuple(shape)
    return mutate


REFUSALS = {
    "transpose computed perm": (lambda x: tf.transpose(x, [0, 2, 1]), (3, 4), "TRANSPOSE", _computed(1),
                                r"has its permutation computed at run time \(tensor .*\); "
                                r"supported: constant integer operands \(permutation, "),
    "transpose bad perm": (lambda x: tf.transpose(x, [0, 2, 1]), (3, 4), "TRANSPOSE", _set_constant(1, [0, 2, 2]),
                           r"has permutation \[0, 2, 2\], which is not a permutation", MalformedOperator),
    "strided slice new axis": (lambda x: x[:, 1:, ::2], (4, 4), "STRIDED_SLICE", _set_option("new_axis_mask", 2),
                               r"has new_axis_mask 2; supported: ellipsis_mask 0, new_axis_mask 0 and offset false "
                               r"\(TFLite Micro ignores these options\)"),
    "strided slice ellipsis": (lambda x: x[:, 1:, ::2], (4, 4), "STRIDED_SLICE", _set_option("ellipsis_mask", 1),
                               r"has ellipsis_mask 1; supported: ellipsis_mask 0"),
    "strided slice offset": (lambda x: x[:, 1:, ::2], (4, 4), "STRIDED_SLICE", _set_option("offset", True),
                             r"has offset = true .*; supported: .* offset false"),
    "strided slice computed end": (lambda x: x[:, 1:, ::2], (4, 4), "STRIDED_SLICE", _computed(2),
                                   r"has its end computed at run time .*; supported: constant integer operands"),
    "strided slice empty": (lambda x: x[:, 1:, ::2], (4, 4), "STRIDED_SLICE", _set_constant(1, [0, 4, 0]),
                            r"selects no elements on axis 1 .*; supported: non-empty input and output tensors"),
    "slice out of range": (lambda x: tf.slice(x, [0, 1, 0], [1, 2, 3]), (4, 4), "SLICE", _set_constant(1, [0, 3, 0]),
                           r"slices \[3, 5\) out of axis 1 of extent 4", MalformedOperator),
    "slice int16 begin": (lambda x: tf.slice(x, [0, 1, 0], [1, 2, 3]), (4, 4), "SLICE", _retype(1, "int16"),
                          r"has a int16 begin operand; supported: int32 integer operands \(SLICE: int32 or int64\)"),
    "transpose int16 perm": (lambda x: tf.transpose(x, [0, 2, 1]), (3, 4), "TRANSPOSE", _retype(1, "int16"),
                             r"has a int16 permutation operand; supported: int32 integer operands"),
    "split computed axis": (lambda x: tf.concat(tf.split(x, 2, axis=2)[::-1], 2), (3, 4), "SPLIT", _computed(0),
                            r"has its axis computed at run time .*; supported: constant integer operands"),
    "gather bad axis option": (lambda x: tf.gather(x, [1, 0], axis=1), (3, 4), "GATHER", _set_option("axis", 1.5),
                               r"has option axis = 1.5; it takes an integer", MalformedOperator),
    "resize computed size": (lambda x: tf.image.resize(x, [5, 6], method="nearest"), (2, 3, 1),
                             "RESIZE_NEAREST_NEIGHBOR", _computed(1),
                             r"has its size computed at run time .*; supported: constant integer operands"),
    "depth to space wrong output": (lambda x: tf.nn.depth_to_space(x, 2), (2, 2, 4), "DEPTH_TO_SPACE",
                                    _output_shape((1, 4, 2, 2)), r"gives shape \[1, 4, 4, 1\] but its output tensor "
                                                                 r".* has shape \[1, 4, 2, 2\]; the model is inconsistent",
                                    MalformedOperator),
}


@pytest.mark.parametrize("name", list(REFUSALS))
def test_refusals_name_the_node_and_the_reason(name):
    """A support limit is refused (UnsupportedOperator, naming the constraint), a model whose
    operands contradict each other is reported malformed."""
    build, shape, opcode, mutate, reason, *error = REFUSALS[name]
    model = convert_int8(build, [shape])
    graph, op = only_op(model, opcode)
    mutate(graph, op)
    with pytest.raises(error[0] if error else UnsupportedOperator, match=rf"{opcode} \(node {op.index}\) {reason}"):
        lower_graph(graph)


def test_tile_is_refused():
    """TFLite Micro has no TILE kernel: nothing to be bit-exact with, so the native runtime refuses it."""
    model = convert_int8(lambda x: tf.tile(x, [1, 2, 3]), [(2, 3)])
    with pytest.raises(UnsupportedOperator, match=r"unsupported operator TILE \(node \d+\)"):
        lower_graph(parse_tflite(model))

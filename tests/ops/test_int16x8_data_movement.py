"""int16x8 data movement and boundaries on the native runtime: PAD / PADV2, STRIDED_SLICE, SLICE,
CONCATENATION, TRANSPOSE, SPLIT, SPLIT_V, PACK, UNPACK, RESIZE_NEAREST_NEIGHBOR, QUANTIZE (float32 ->
int16, int16 -> int16, int8 <-> int16, int32 -> int16) and DEQUANTIZE (int16 -> float32), bit-exact
against the TFLite Micro reference on models the real converter builds in 16x8 mode (the QUANTIZE
type pairs the converter never makes on single-operator models written here), randomized, with
full-range int16 inputs."""


import numpy as np
import pytest
import tensorflow as tf

from tinyml_ptq.compiler.lowering import UnsupportedOperator, lower_graph
from tinyml_ptq.compiler.tflite_reader import parse_tflite
from tinyml_ptq.interpreters.reference import ReferenceInterpreter

from harness import assert_bit_exact, convert_int16x8, int16_samples, only_int16x8_op, only_op, random_range
from test_concat_pad import _concat_case, _pad_case
from test_data_movement import _join, _shape, _strided_slice_case

CASES = 6


def _check(model, rng, shape, opcodes, kernels=("reference",)):
    inputs = int16_samples(rng, shape)
    for kernel_set in kernels:
        assert_bit_exact(model, inputs=inputs, expect_ops=set(opcodes), kernels=kernel_set)


# --- PAD / PADV2 ---------------------------------------------------------------------------------

@pytest.mark.parametrize("case", range(8))
def test_pad_int16x8_random(case):
    rng = np.random.default_rng(26000 + case)
    shape, paddings, _ = _pad_case(rng, case)
    model = convert_int16x8(lambda x: tf.pad(x, paddings), [shape], calib_range=random_range(rng), seed=case)
    graph, op = only_int16x8_op(model, "PAD")
    np.testing.assert_array_equal(graph.tensors[op.inputs[1]].data, paddings)
    _check(model, rng, shape, {"PAD"}, ("reference", "dsp") if case < 2 else ("reference",))


def test_converter_padv2_int16x8_with_a_float_fill_is_refused_like_tflm():
    """The 16x8 converter leaves PADV2's fill value float32, which TFLM's Prepare refuses (its type must be
    the input's); so does the lowering, by name."""
    model = convert_int16x8(lambda x: tf.pad(x, [[0, 0], [1, 2]], constant_values=0.5), [(3,)])
    graph, op = only_op(model, "PADV2")
    assert graph.tensors[op.inputs[2]].dtype == "float32"
    with pytest.raises(UnsupportedOperator, match=r"PADV2 \(node \d+\) has a float32 fill value for its int16 input; "
                                                     r"supported: a fill value of the input's type"):
        lower_graph(graph)
    with pytest.raises(Exception):
        ReferenceInterpreter(model)


@pytest.mark.parametrize("case", range(CASES))
def test_padv2_int16_fill_random(case):
    """PADV2 with an int16 fill value (written here: the converter makes none), any value in range."""
    rng = np.random.default_rng(26050 + case)
    shape = (1, *_shape(rng, 1 + case % 3, 1, 5))
    paddings = rng.integers(0, 3, size=(len(shape), 2)).astype(np.int32)
    paddings[0] = 0
    paddings[-1, 1] += 1
    fill = [-32768, 32767, 0, *rng.integers(-32768, 32768, size=3)][case]
    out_shape = [int(d) for d in np.asarray(shape) + paddings.sum(axis=1)]
    scale = float(10.0 ** rng.uniform(-5, -1))
    model = _one_op_model(
        "PADV2", [("x", "int16", shape, scale, None), ("paddings", "int32", (len(shape), 2), None, paddings),
                  ("fill", "int16", (), scale, np.array(fill, dtype=np.int16)), ("y", "int16", out_shape, scale, None)],
        inputs=[0, 1, 2], outputs=[3])
    _check(model, rng, shape, {"PADV2"}, ("reference", "dsp") if case < 2 else ("reference",))


# --- STRIDED_SLICE, SLICE, TRANSPOSE (the strided copy) -----------------------------------------

@pytest.mark.parametrize("case", range(8))
def test_strided_slice_int16x8_random(case):
    rng = np.random.default_rng(26100 + case)
    shape, begin, end, strides, args = _strided_slice_case(rng, case)
    model = convert_int16x8(lambda x: tf.strided_slice(x, begin, end, strides, **args), [shape],
                            calib_range=random_range(rng), seed=case)
    only_int16x8_op(model, "STRIDED_SLICE")
    _check(model, rng, shape, {"STRIDED_SLICE"}, ("reference", "dsp") if case < 2 else ("reference",))


@pytest.mark.parametrize("case", range(CASES))
def test_slice_int16x8_random(case):
    rng = np.random.default_rng(26200 + case)
    shape = (1, *_shape(rng, 1 + case % 4, 2, 6))  # ranks 2 to 5
    begin = [int(rng.integers(0, d)) for d in shape]
    size = [int(rng.integers(1, d - b + 1)) if rng.integers(0, 3) else -1 for d, b in zip(shape, begin)]
    if all(b == 0 and s in (-1, d) for b, s, d in zip(begin, size, shape)):
        begin[-1], size[-1] = 1, -1  # the converter drops a slice of everything
    model = convert_int16x8(lambda x: tf.slice(x, begin, size), [shape[1:]], calib_range=random_range(rng),
                            seed=case)
    only_int16x8_op(model, "SLICE")
    _check(model, rng, shape[1:], {"SLICE"})


@pytest.mark.parametrize("case", range(CASES))
def test_transpose_int16x8_random(case):
    rng = np.random.default_rng(26300 + case)
    rank = 2 + case % 3
    shape = _shape(rng, rank)
    inner = list(range(1, rank + 1))
    while inner == sorted(inner):
        inner = [int(p) + 1 for p in rng.permutation(rank)]
    batch_at = int(rng.integers(0, rank + 1)) if case % 2 else 0
    perm = inner[:batch_at] + [0] + inner[batch_at:]
    model = convert_int16x8(lambda x: tf.transpose(x, perm), [shape], calib_range=random_range(rng), seed=case)
    only_int16x8_op(model, "TRANSPOSE")
    _check(model, rng, shape, {"TRANSPOSE"}, ("reference", "dsp") if case < 2 else ("reference",))


# --- CONCATENATION, PACK, SPLIT, SPLIT_V, UNPACK -------------------------------------------------

@pytest.mark.parametrize("case", range(8))
def test_concatenation_int16x8_random(case):
    """x, rescaled x (the converter requantizes it int16 -> int16), padded x and constants joined."""
    rng = np.random.default_rng(26400 + case)
    build, shape, axis, count = _concat_case(rng, case)
    model = convert_int16x8(build, [shape], calib_range=random_range(rng), seed=case)
    graph, op = only_int16x8_op(model, "CONCATENATION")
    assert len(op.inputs) == count
    output = graph.tensors[op.outputs[0]]
    for index in op.inputs:  # the converter gives the output's quantization to every input
        assert graph.tensors[index].dtype == "int16" and graph.tensors[index].scale == pytest.approx(output.scale)
    _check(model, rng, shape, {"CONCATENATION"}, ("reference", "dsp") if case < 2 else ("reference",))


def test_concatenation_int16x8_requantizes_int16_with_quantize():
    """Pieces of another scale reach an int16 CONCATENATION through int16 -> int16 QUANTIZE operators."""
    rng = np.random.default_rng(26450)
    model = convert_int16x8(lambda x: tf.concat([x * 7.5, x, x * -0.2], axis=-1), [(3, 4)], calib_range=(-1.0, 1.0))
    graph = parse_tflite(model)
    quantizes = [op for op in graph.operators if op.opcode == "QUANTIZE"]
    assert quantizes and all(graph.tensors[op.inputs[0]].dtype == graph.tensors[op.outputs[0]].dtype == "int16"
                             for op in quantizes)
    _check(model, rng, (3, 4), {"CONCATENATION", "QUANTIZE"}, ("reference", "dsp"))


@pytest.mark.parametrize("case", range(3))
def test_concatenation_int16_with_differing_input_scales_copies_like_tflm(case):
    """TFLM's int16 CONCATENATION checks only zero points (0) and copies the values as they are, whatever
    their scales (its int8 one refuses differing scales; the converter makes neither): so do we."""
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    rng = np.random.default_rng(26460 + case)
    rank = 2 + case
    shape = [int(d) for d in rng.integers(1, 5, size=rank)]
    axis = int(rng.integers(0, rank))
    other = list(shape)
    other[axis] = int(rng.integers(1, 4))
    out_shape = list(shape)
    out_shape[axis] += other[axis]
    options = schema.ConcatenationOptionsT()
    options.axis = axis - rank if case % 2 else axis
    scales = [float(10.0 ** rng.uniform(-5, -1)) for _ in range(3)]
    model = _one_op_model("CONCATENATION", [("a", "int16", shape, scales[0], None),
                                            ("b", "int16", other, scales[1], None),
                                            ("y", "int16", out_shape, scales[2], None)],
                          inputs=[0, 1], outputs=[2],
                          options=(schema.BuiltinOptions.ConcatenationOptions, options))
    inputs = np.concatenate([int16_samples(rng, shape), int16_samples(rng, other)], axis=1).view(np.int8)
    assert_bit_exact(model, inputs=inputs, expect_ops={"CONCATENATION"})


@pytest.mark.parametrize("case", range(CASES))
def test_pack_int16x8_random(case):
    rng = np.random.default_rng(26500 + case)
    rank = 1 + case % 3
    shape = _shape(rng, rank, 1, 5)
    axis = int(rng.integers(0, rank + 2))
    factors = [float(rng.uniform(-3, 3)) for _ in range(int(rng.integers(1, 4)))]
    model = convert_int16x8(lambda x: tf.stack([x] + [x * f for f in factors], axis=axis), [shape],
                            calib_range=random_range(rng), seed=case)
    only_int16x8_op(model, "PACK")
    _check(model, rng, shape, {"PACK"})


@pytest.mark.parametrize("case", range(CASES))
def test_split_int16x8_random(case):
    rng = np.random.default_rng(26600 + case)
    rank = 1 + case % 3
    count = int(rng.integers(2, 5))
    shape = list(_shape(rng, rank, 1, 4))
    axis = int(rng.integers(1, rank + 1))
    shape[axis - 1] *= count
    join_axis = int(rng.integers(1, rank + 1))
    model = convert_int16x8(lambda x: _join(rng, tf.split(x, count, axis=axis), join_axis)[1], [tuple(shape)],
                            calib_range=random_range(rng), seed=case)
    graph, op = only_op(model, "SPLIT")
    assert len(op.outputs) == count and all(graph.tensors[i].dtype == "int16" for i in [op.inputs[1], *op.outputs])
    _check(model, rng, tuple(shape), {"SPLIT", "CONCATENATION"}, ("reference", "dsp") if case < 2 else ("reference",))


@pytest.mark.parametrize("case", range(CASES))
def test_split_v_int16x8_random(case):
    rng = np.random.default_rng(26700 + case)
    rank = 1 + case % 3
    shape = list(_shape(rng, rank, 2, 4))
    axis = int(rng.integers(1, rank + 1))
    sizes = [int(s) for s in rng.integers(1, 4, size=int(rng.integers(2, 5)))]
    shape[axis - 1] = sum(sizes)
    if case % 2:
        sizes[int(rng.integers(0, len(sizes)))] = -1
    model = convert_int16x8(lambda x: _join(rng, tf.split(x, sizes, axis=axis), axis)[1], [tuple(shape)],
                            calib_range=random_range(rng), seed=case)
    only_int16x8_op(model, "SPLIT_V")
    _check(model, rng, tuple(shape), {"SPLIT_V", "CONCATENATION"})


@pytest.mark.parametrize("case", range(CASES))
def test_unpack_int16x8_random(case):
    rng = np.random.default_rng(26800 + case)
    rank = 2 + case % 3
    shape = _shape(rng, rank - 1, 2, 5)
    axis = int(rng.integers(1, rank))
    model = convert_int16x8(lambda x: _join(rng, tf.unstack(x, axis=axis), int(rng.integers(0, rank - 1)))[1],
                            [shape], calib_range=random_range(rng), seed=case)
    only_int16x8_op(model, "UNPACK")
    _check(model, rng, shape, {"UNPACK", "CONCATENATION"})


# --- RESIZE_NEAREST_NEIGHBOR ---------------------------------------------------------------------

@pytest.mark.parametrize("case", range(CASES))
def test_resize_nearest_neighbor_int16x8_random(case):
    rng = np.random.default_rng(26900 + case)
    align, half = [(False, False), (True, False), (False, True)][case % 3]
    shape = (*_shape(rng, 2, 1, 7), int(rng.integers(1, 5)))
    size = [int(rng.integers(1, 3 * d + 2)) for d in shape[:2]]
    if size == list(shape[:2]):
        size[0] += 1
    model = convert_int16x8(
        lambda x: tf.compat.v1.image.resize_nearest_neighbor(x, size, align_corners=align, half_pixel_centers=half),
        [shape], calib_range=random_range(rng), seed=case)
    only_int16x8_op(model, "RESIZE_NEAREST_NEIGHBOR")
    _check(model, rng, shape, {"RESIZE_NEAREST_NEIGHBOR"})


# --- what stays int8-only ------------------------------------------------------------------------

def test_int16x8_gather_is_refused_by_name():
    """TFLM's GATHER has no int16 kernel: the lowering refuses it naming it, and points at --runtime tflm."""
    model = convert_int16x8(lambda x: tf.gather(x, [2, 0, 1, 1], axis=2), [(2, 3)])
    graph = parse_tflite(model)
    assert "GATHER" in graph.opcodes(), graph.opcodes()
    with pytest.raises(UnsupportedOperator, match=r"GATHER \(node \d+\) has int16 tensor .*--runtime tflm"):
        lower_graph(graph)


# --- QUANTIZE and DEQUANTIZE ---------------------------------------------------------------------

def _float_samples(rng, count, size, scale, zero_point):
    """Floats on the int16 grid, on half-way points, anywhere, and far outside it (saturation)."""
    codes = rng.integers(-32768, 32768, size=(count, size)).astype(np.float64) - zero_point
    kind = rng.integers(0, 4, size=(count, size))
    offsets = np.select([kind == 0, kind == 1, kind == 2],
                        [0.0, rng.choice([-0.5, 0.5], size=(count, size)), rng.uniform(-0.5, 0.5, size=(count, size))],
                        default=rng.choice([-70000.0, 70000.0], size=(count, size)))
    return ((codes + offsets) * scale).astype(np.float32)


@pytest.mark.parametrize("case", range(9))
def test_float_boundary_int16x8_random(case):
    """A float32 model input (QUANTIZE float32 -> int16) and/or output (DEQUANTIZE int16 -> float32)."""
    rng = np.random.default_rng(27000 + case)
    shape = tuple(int(d) for d in rng.integers(1, 7, size=int(rng.integers(1, 4))))
    input_type, output_type = [("float32", "float32"), ("float32", "int16"), ("int16", "float32")][case % 3]
    inner = [lambda x: tf.pad(x, [[0, 0]] * len(shape) + [[1, 2]]),
             lambda x: tf.concat([x[..., ::-1], x], axis=-1),
             lambda x: tf.transpose(x, [len(shape)] + list(range(len(shape))))][case // 3]
    model = convert_int16x8(inner, [shape], calib_range=random_range(rng), seed=case,
                            input_type=input_type, output_type=output_type)
    graph = parse_tflite(model)
    expected = ({"QUANTIZE"} if input_type == "float32" else set()) | ({"DEQUANTIZE"} if output_type == "float32"
                                                                      else set())
    assert expected <= set(graph.opcodes())
    size = int(np.prod(shape))
    if input_type == "float32":
        quantize = next(op for op in graph.operators if op.opcode == "QUANTIZE")
        target = graph.tensors[quantize.outputs[0]]
        assert graph.tensors[quantize.inputs[0]].dtype == "float32" and target.dtype == "int16"
        inputs = _float_samples(rng, 8, size, target.scale, target.zero_point)
        inputs[0, 0] = np.float32(32767.5) * np.float32(target.scale)  # rounds away, saturates
    else:
        inputs = int16_samples(rng, shape, samples=8)
    if output_type == "float32":
        dequantize = next(op for op in graph.operators if op.opcode == "DEQUANTIZE")
        assert graph.tensors[dequantize.inputs[0]].dtype == "int16"
    for kernels in ("reference", "dsp") if case < 3 else ("reference",):
        assert_bit_exact(model, inputs=inputs, expect_ops=expected, kernels=kernels)


_TYPES = {"int8": 9, "int16": 7, "int32": 2}  # schema TensorType
_NUMPY = {"int8": np.int8, "int16": np.int16, "int32": np.int32}


def _one_op_model(opcode, tensors, inputs, outputs, zero_points=None, options=None) -> bytes:
    """A model of one `opcode` operator over `tensors` ((name, type, shape, scale or None, constant data or
    None) each; zero points 0 unless given by name), `inputs` its operands, the non-constant ones the
    model's inputs."""
    import flatbuffers
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    zero_points = zero_points or {}
    buffers = [schema.BufferT()]
    sub = schema.SubGraphT()
    sub.tensors = []
    for name, dtype, shape, scale, data in tensors:
        t = schema.TensorT()
        t.shape, t.type, t.name, t.buffer = [int(d) for d in shape], _TYPES[dtype], name, 0
        if data is not None:
            buffer = schema.BufferT()
            buffer.data = np.frombuffer(np.ascontiguousarray(data, dtype=_NUMPY[dtype]).tobytes(), dtype=np.uint8)
            t.buffer = len(buffers)
            buffers.append(buffer)
        if scale is not None:
            t.quantization = schema.QuantizationParametersT()
            t.quantization.scale, t.quantization.zeroPoint = [float(scale)], [int(zero_points.get(name, 0))]
        sub.tensors.append(t)
    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = getattr(schema.BuiltinOperator, opcode)
    op = schema.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = 0, list(inputs), list(outputs)
    if options is not None:
        op.builtinOptionsType, op.builtinOptions = options
    sub.inputs = [i for i in inputs if tensors[i][4] is None]
    sub.outputs, sub.operators, sub.name = list(outputs), [op], "main"
    model = schema.ModelT()
    model.version, model.operatorCodes, model.subgraphs, model.buffers = 3, [code], [sub], buffers
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _quantize_model(shape, in_type, in_scale, in_zero, out_type, out_scale, out_zero) -> bytes:
    """A one-operator model: QUANTIZE from (in_type, in_scale, in_zero) to (out_type, out_scale, out_zero)."""
    return _one_op_model("QUANTIZE", [("in", in_type, shape, in_scale, None),
                                      ("out", out_type, shape, out_scale, None)],
                         inputs=[0], outputs=[1], zero_points={"in": in_zero, "out": out_zero})


REQUANTIZE_PAIRS = [("int16", "int16"), ("int8", "int16"), ("int16", "int8"), ("int32", "int16"), ("int16", "int32")]


@pytest.mark.parametrize("case", range(3 * len(REQUANTIZE_PAIRS)))
def test_requantize_with_int16_random(case):
    """QUANTIZE between int16 and int8, int16 or int32, scale ratios from 1/5000 to 300 (left shifts too),
    zero points where the type has them, full-range inputs with the extremes."""
    rng = np.random.default_rng(27100 + case)
    in_type, out_type = REQUANTIZE_PAIRS[case % len(REQUANTIZE_PAIRS)]
    shape = (1, *(int(d) for d in rng.integers(1, 6, size=int(rng.integers(1, 4)))))
    in_scale = float(10.0 ** rng.uniform(-5, -1))
    ratio = float(10.0 ** rng.uniform(-3.7, 2.5)) if in_type != "int32" else float(10.0 ** rng.uniform(-6, -1))
    zero = {"int8": lambda: int(rng.integers(-100, 100)),
            "int16": lambda: 0 if case % 2 else int(rng.integers(-300, 300)), "int32": lambda: 0}
    model = _quantize_model(shape, in_type, in_scale, zero[in_type](), out_type, in_scale / ratio, zero[out_type]())
    info = np.iinfo(_NUMPY[in_type])
    low, high = (info.min, info.max) if in_type != "int32" else (-(1 << 24), 1 << 24)
    size = int(np.prod(shape))
    values = rng.integers(low, high + 1, size=(8, size), dtype=np.int64)
    values[0, 0], values[-1, -1] = low, high
    values[1] = rng.integers(-3, 4, size=size)  # near the zero point: the rounding of small values
    inputs = values.astype(_NUMPY[in_type])
    for kernels in ("reference", "dsp") if case < len(REQUANTIZE_PAIRS) else ("reference",):
        assert_bit_exact(model, inputs=inputs, expect_ops={"QUANTIZE"}, kernels=kernels)


def test_unquantized_int16_quantize_is_refused():
    graph = parse_tflite(_quantize_model((1, 4), "int16", 0.01, 0, "int8", 0.02, 0))
    graph.tensors[0].quantization = None
    with pytest.raises(UnsupportedOperator, match=r"QUANTIZE \(node 0\) converts int16 \(unquantized\) to int8; "
                                                     r"supported: int8 -> int8 or int16, int16 -> int8"):
        lower_graph(graph)


# --- a chain, both kernel sets -------------------------------------------------------------------

def test_int16x8_data_movement_chain_with_float_boundary():
    """float32 -> QUANTIZE -> PAD -> STRIDED_SLICE -> TRANSPOSE -> SPLIT -> CONCATENATION -> DEQUANTIZE, with
    CONV_2D in the middle, on both kernel sets."""
    rng = np.random.default_rng(27200)
    conv = tf.keras.layers.Conv2D(4, 3, padding="same", kernel_initializer=tf.keras.initializers.RandomNormal(0, 0.5,
                                                                                                            seed=1))

    def build(x):
        y = tf.pad(x, [[0, 0], [1, 2], [2, 1], [0, 0]])
        y = conv(y)
        y = tf.strided_slice(y, [0, 1, 0, 0], [1, 7, 9, 4], [1, 2, 1, 1])
        y = tf.transpose(y, [0, 2, 1, 3])
        a, b = tf.split(y, 2, axis=3)
        return tf.concat([b, a], axis=1)

    model = convert_int16x8(build, [(6, 6, 3)], calib_range=(-2.0, 2.0), input_type="float32",
                            output_type="float32")
    ops = set(parse_tflite(model).opcodes())
    assert {"QUANTIZE", "PAD", "CONV_2D", "STRIDED_SLICE", "TRANSPOSE", "SPLIT", "CONCATENATION",
            "DEQUANTIZE"} <= ops, ops
    inputs = rng.uniform(-2.5, 2.5, size=(6, 6 * 6 * 3)).astype(np.float32)
    for kernels in ("reference", "dsp"):
        assert_bit_exact(model, inputs=inputs, expect_ops=ops, kernels=kernels)


def test_int16x8_data_movement_chain_compiles_for_cortex_m(tmp_path):
    """Every int16 data movement kernel in one model, exact on both kernel sets, and its generated C
    compiling warning-free for Cortex-M0+ and M4."""
    import shutil
    import subprocess

    from tinyml_ptq.compiler.codegen import generate_model_sources
    from tinyml_ptq.pipeline.hostrun import write_sources

    def build(x):
        y = tf.pad(x, [[0, 0], [1, 2], [2, 1], [0, 0]])
        y = tf.strided_slice(y, [0, 1, 0, 0], [1, 7, 9, 3], [1, 2, 1, 1])
        y = tf.transpose(y, [0, 2, 1, 3])
        a, b = tf.split(y, [1, 2], axis=3)
        z = tf.compat.v1.image.resize_nearest_neighbor(tf.concat([b, a], axis=3), [5, 4])
        return tf.stack(tf.unstack(z, axis=3)[::-1], axis=1)

    model = convert_int16x8(build, [(6, 6, 3)], calib_range=(-2.0, 2.0), input_type="float32",
                            output_type="float32")
    ops = {"QUANTIZE", "PAD", "STRIDED_SLICE", "TRANSPOSE", "SPLIT_V", "CONCATENATION", "RESIZE_NEAREST_NEIGHBOR",
           "UNPACK", "PACK", "DEQUANTIZE"}
    inputs = np.random.default_rng(27300).uniform(-3, 3, size=(6, 6 * 6 * 3)).astype(np.float32)
    for kernels in ("reference", "dsp"):
        assert_bit_exact(model, inputs=inputs, expect_ops=ops, kernels=kernels)
    compiler = shutil.which("arm-none-eabi-gcc")
    if compiler is None:
        pytest.skip("arm-none-eabi-gcc not installed")
    sources = generate_model_sources(parse_tflite(model), model)
    for f in [f for f in write_sources(sources, tmp_path) if f.suffix == ".c"]:
        for cpu in ("cortex-m0plus", "cortex-m4"):
            subprocess.run([compiler, f"-mcpu={cpu}", "-mthumb", "-std=c99", "-Os", "-Wall", "-Wextra", "-Werror",
                            "-Wshadow", "-Wdouble-promotion", "-I", str(tmp_path), "-c", str(f),
                            "-o", str(tmp_path / "x.o")], check=True)

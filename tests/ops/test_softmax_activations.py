"""SOFTMAX, LOGISTIC and TANH bit-exactness against the TFLite Micro reference, randomized."""

import dataclasses

import flatbuffers
import numpy as np
import pytest
import tensorflow as tf

from tinyml_ptq.compiler.lowering import UnsupportedOperator, lower_graph
from tinyml_ptq.compiler.tflite_reader import parse_tflite

from harness import assert_bit_exact, convert_int8, only_op

SOFTMAX_CASES = 16
ACTIVATION_CASES = 14




def _every_byte(size: int, rows: int, rng) -> np.ndarray:
    """Random samples, plus rows that make every int8 value appear and rows of near-equal values."""
    samples = rng.integers(-128, 128, size=(rows, size), dtype=np.int8)
    samples[0] = (np.arange(size) % 256 - 128).astype(np.int8)
    samples[1] = np.clip(rng.integers(-2, 3, size=size) + int(rng.integers(-100, 100)), -128, 127)
    samples[2] = 127
    return samples


@pytest.mark.parametrize("case", range(SOFTMAX_CASES))
def test_softmax_random(case):
    rng = np.random.default_rng(5000 + case)
    rank = [1, 2, 3][case % 3]
    shape = tuple(int(rng.integers(1, 6)) for _ in range(rank - 1)) + (int(rng.integers(2, 40)),)
    # The input scale sets the effective beta: from a few distinct levels up to saturated exps.
    half_range = float(10 ** rng.uniform(-2.5, 2.5))
    offset = float(rng.uniform(-1, 1)) * half_range
    if case % 4 == 3:
        dense = tf.keras.layers.Dense(shape[-1], kernel_initializer=tf.keras.initializers.RandomNormal(
            stddev=half_range, seed=case))
        dense.build((1, *shape))

        def build(x):
            return tf.nn.softmax(dense(x))  # logits from a layer
    else:
        build = tf.nn.softmax
    model = convert_int8(build, [shape], calib_range=(offset - half_range, offset + half_range), seed=case)
    only_op(model, "SOFTMAX")
    size = int(np.prod(shape))
    assert_bit_exact(model, inputs=_every_byte(size, 400, rng), expect_ops={"SOFTMAX"})


def test_softmax_input_scales_really_vary():
    """The random cases above cover input scales over several decades (effective beta)."""
    scales = []
    for case in range(0, SOFTMAX_CASES, 4):
        rng = np.random.default_rng(5000 + case)
        half_range = float(10 ** rng.uniform(-2.5, 2.5))
        model = convert_int8(tf.nn.softmax, [(8,)], calib_range=(-half_range, half_range))
        graph, op = only_op(model, "SOFTMAX")
        scales.append(graph.tensors[op.inputs[0]].scale)
    assert max(scales) / min(scales) > 100


def _with_softmax_beta(model: bytes, beta: float) -> bytes:
    """The converter folds any beta into the logits; set the operator's own beta directly."""
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    m = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(model, 0))
    for op in m.subgraphs[0].operators:
        if m.operatorCodes[op.opcodeIndex].builtinCode == schema.BuiltinOperator.SOFTMAX:
            op.builtinOptions.beta = beta
    builder = flatbuffers.Builder(0)
    builder.Finish(m.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


@pytest.mark.parametrize("beta", [0.37, 2.5, 1e4])
def test_softmax_beta(beta):
    rng = np.random.default_rng(int(beta * 100))
    model = _with_softmax_beta(convert_int8(tf.nn.softmax, [(2, 19)], calib_range=(-4, 2)), beta)
    _, op = only_op(model, "SOFTMAX")
    assert op.options["beta"] == pytest.approx(beta)
    assert_bit_exact(model, inputs=_every_byte(38, 300, rng), expect_ops={"SOFTMAX"})


def test_softmax_4d_and_many_classes():
    """A 4-D input (softmax over channels) and a wide 1-D row like a 1000-class classifier."""
    model = convert_int8(tf.nn.softmax, [(3, 5, 7)], calib_range=(-6, 4))
    assert_bit_exact(model, samples=8, expect_ops={"SOFTMAX"})
    model = convert_int8(tf.nn.softmax, [(1001,)], calib_range=(-3, 3))
    rng = np.random.default_rng(7)
    inputs = rng.integers(-128, 128, size=(6, 1001), dtype=np.int8)
    # 500 tied maxima: a sum of exponentials near 2^28, the most TFLM accepts (it aborts
    # on a CHECK from 512 tied maxima on).
    inputs[3] = -128
    inputs[3, rng.permutation(1001)[:500]] = 100
    assert_bit_exact(model, inputs=inputs, expect_ops={"SOFTMAX"})


@pytest.mark.parametrize("case", range(ACTIVATION_CASES))
@pytest.mark.parametrize("kind", ["LOGISTIC", "TANH"])
def test_lut_activation_random(kind, case):
    rng = np.random.default_rng((6000 if kind == "LOGISTIC" else 7000) + case)
    half_range = float(10 ** rng.uniform(-2, 1.7))
    offset = float(rng.uniform(-1, 1)) * half_range
    shape = tuple(int(rng.integers(1, 7)) for _ in range(1 + case % 3))
    fn = tf.math.sigmoid if kind == "LOGISTIC" else tf.math.tanh
    if case % 5 == 4:
        dense = tf.keras.layers.Dense(shape[-1], activation="sigmoid" if kind == "LOGISTIC" else "tanh")
        dense.build((1, *shape))
        build = dense
    else:
        build = fn
    model = convert_int8(build, [shape], calib_range=(offset - half_range, offset + half_range), seed=case)
    graph, op = only_op(model, kind)
    size = int(np.prod(shape))
    # Feed all 256 byte values so every table entry is compared.
    rows = -(-256 // size) + 2
    inputs = np.resize(np.arange(-128, 128, dtype=np.int8), rows * size).reshape(rows, size)
    if graph.inputs[0] == op.inputs[0]:
        inputs[-1] = rng.integers(-128, 128, size=size, dtype=np.int8)
    assert_bit_exact(model, inputs=inputs, expect_ops={kind})


def test_softmax_other_output_quantization_is_refused():
    model = convert_int8(tf.nn.softmax, [(10,)])
    graph = parse_tflite(model)
    op = next(op for op in graph.operators if op.opcode == "SOFTMAX")
    output = graph.tensors[op.outputs[0]]
    output.quantization = dataclasses.replace(output.quantization, zero_point=np.array([0]))
    with pytest.raises(UnsupportedOperator, match=rf"SOFTMAX \(node {op.index}\) has output scale 0.00390625, zero "
                                                  r"point 0; supported: the output quantization TFLite's softmax "
                                                  r"fixes: scale 1/256 and zero point -128 \(int8\)"):
        lower_graph(graph)

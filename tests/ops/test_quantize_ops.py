"""QUANTIZE (int8 -> int8 and float32 -> int8) and DEQUANTIZE (int8 -> float32)
bit-exactness against the TFLite Micro reference; float outputs compare bit for bit."""

import numpy as np
import pytest
import tensorflow as tf

from tinyml_ptq.compiler.lowering import UnsupportedOperator, lower_graph
from tinyml_ptq.compiler.tflite_reader import parse_tflite

from harness import assert_bit_exact, convert_int8, random_range

REQUANTIZE_CASES = 12
FLOAT_BOUNDARY_CASES = 12




def _ops(model, opcode):
    graph = parse_tflite(model)
    return graph, [op for op in graph.operators if op.opcode == opcode]


@pytest.mark.parametrize("case", range(REQUANTIZE_CASES))
def test_requantize_random(case):
    """The input feeds two concatenations that need different scales, so the
    converter requantizes it once with an int8 -> int8 QUANTIZE."""
    rng = np.random.default_rng(9700 + case)
    shape = tuple(int(d) for d in rng.integers(1, 7, size=int(rng.integers(1, 4))))
    big, small = float(rng.uniform(1.5, 30.0)), float(rng.uniform(0.01, 0.7))

    def build(x):
        return tf.concat([x * big, x], axis=-1) + tf.concat([x, x * small], axis=-1)

    model = convert_int8(build, [shape], calib_range=random_range(rng), seed=case)
    graph, quantizes = _ops(model, "QUANTIZE")
    assert len(quantizes) >= 1
    for op in quantizes:
        source, target = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
        assert source.dtype == target.dtype == "int8" and source.scale != target.scale
    assert_bit_exact(model, samples=8, seed=case, expect_ops={"QUANTIZE"})


def _float_samples(rng, count, size, scale, zero_point):
    """Floats near every kind of rounding case: on the grid, on half-way points,
    anywhere in range, and far outside it (saturation)."""
    codes = rng.integers(-128, 128, size=(count, size)).astype(np.float64) - zero_point
    kind = rng.integers(0, 4, size=(count, size))
    offsets = np.select([kind == 0, kind == 1, kind == 2],
                        [0.0, rng.choice([-0.5, 0.5], size=(count, size)), rng.uniform(-0.5, 0.5, size=(count, size))],
                        default=rng.choice([-300.0, 300.0], size=(count, size)))
    return ((codes + offsets) * scale).astype(np.float32)


@pytest.mark.parametrize("case", range(FLOAT_BOUNDARY_CASES))
def test_float_boundary_random(case):
    """float32 model input and/or output: the converter adds QUANTIZE from float at
    the start and DEQUANTIZE to float at the end."""
    rng = np.random.default_rng(9800 + case)
    shape = tuple(int(d) for d in rng.integers(1, 7, size=int(rng.integers(0, 4))))
    input_type, output_type = [("float32", "float32"), ("float32", "int8"), ("int8", "float32")][case % 3]
    inner = [tf.nn.relu, lambda x: tf.nn.leaky_relu(x, alpha=0.3), lambda x: x * 1.7][case % 4 % 3]
    model = convert_int8(inner, [shape], calib_range=random_range(rng), seed=case,
                         input_type=input_type, output_type=output_type)
    graph = parse_tflite(model)
    expected = ({"QUANTIZE"} if input_type == "float32" else set()) | ({"DEQUANTIZE"} if output_type == "float32" else set())
    assert expected <= set(graph.opcodes())
    inputs = None
    if input_type == "float32":
        quantize = next(op for op in graph.operators if op.opcode == "QUANTIZE")
        target = graph.tensors[quantize.outputs[0]]
        assert graph.tensors[quantize.inputs[0]].dtype == "float32"
        size = int(np.prod(shape, dtype=np.int64))
        inputs = _float_samples(rng, 8, size, target.scale, target.zero_point)
    assert_bit_exact(model, samples=8, seed=case, inputs=inputs, expect_ops=expected)


def test_int16_quantize_is_refused():
    model = convert_int8(tf.nn.relu, [(4,)], input_type="float32")
    graph = parse_tflite(model)
    quantize = next(op for op in graph.operators if op.opcode == "QUANTIZE")
    graph.tensors[quantize.inputs[0]].dtype = "int16"
    with pytest.raises(UnsupportedOperator, match=r"QUANTIZE \(node \d+\) converts int16 \(unquantized\) to int8; "
                                                     r"supported: int8 -> int8 or int16, .* float32 -> int8 or int16"):
        lower_graph(graph)

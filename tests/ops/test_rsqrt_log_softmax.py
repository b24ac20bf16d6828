"""RSQRT and LOG_SOFTMAX bit-exactness against the TFLite Micro reference, randomized over shapes
and scales, and exhaustive over the input codes (RSQRT) and row patterns (LOG_SOFTMAX)."""

import numpy as np
import pytest
import tensorflow as tf

from tinyml_ptq.compiler.lowering import UnsupportedOperator, lower_graph

from harness import assert_bit_exact, convert_int8, only_op, random_range, with_output_scale

RSQRT_CASES = 8
LOG_SOFTMAX_CASES = 10


def _valid_codes(rng, zero_point, samples, count):
    """Random input codes at or above the zero point: TFLite Micro fails RSQRT on a negative input."""
    return rng.integers(zero_point, 128, size=(samples, count)).astype(np.int8)


@pytest.mark.parametrize("case", range(RSQRT_CASES))
def test_rsqrt_random(case):
    """Positive input ranges from 1e-3 to 100 wide; every fourth also reaches below zero (a zero
    point above -128, only the codes at or above it fed); every third with an output scale the
    converter would not pick."""
    rng = np.random.default_rng(23000 + case)
    shape = tuple(int(d) for d in rng.integers(1, 7, size=int(rng.integers(0, 4))))
    high = float(rng.choice([0.001, 0.1, 2.0, 100.0])) * float(rng.uniform(0.5, 2.0))
    low = -high * float(rng.uniform(0.05, 0.5)) if case % 4 == 3 else high * float(rng.uniform(0.001, 0.5))
    model = convert_int8(tf.math.rsqrt, [shape], calib_range=(low, high), seed=case)
    graph, op = only_op(model, "RSQRT")
    inp, out = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    assert (inp.zero_point > -128) == (case % 4 == 3)
    if case % 3 == 2:
        model = with_output_scale(model, out.scale * float(rng.choice([0.1, 4.0])))
    codes = _valid_codes(rng, inp.zero_point, 8, inp.num_elements)
    assert_bit_exact(model, inputs=codes, expect_ops={"RSQRT"})


@pytest.mark.parametrize("low, high", [(0.0, 0.004), (0.0, 1.0), (0.5, 30.0), (-2.0, 6.0)])
def test_rsqrt_every_input_code(low, high):
    model = convert_int8(tf.math.rsqrt, [(256,)], calib_range=(max(low, 1e-6), high) if low >= 0 else (low, high))
    graph, op = only_op(model, "RSQRT")
    zero_point = graph.tensors[op.inputs[0]].zero_point
    codes = np.arange(-128, 128)
    codes = np.where(codes < zero_point, zero_point, codes).astype(np.int8).reshape(1, 256)
    assert_bit_exact(model, inputs=codes, expect_ops={"RSQRT"})


# --- LOG_SOFTMAX ---------------------------------------------------------------------------------


def _log_softmax_inputs(rng, rows, depth, samples=8):
    """Random codes, and rows that stress the log of the sum: all equal (the largest sum, log of
    the depth), one peak over a floor, and a narrow band just below the maximum."""
    batches = [rng.integers(-128, 128, size=(rows, depth))]
    batches.append(np.full((rows, depth), int(rng.integers(-128, 128))))
    peak = np.full((rows, depth), -128)
    peak[:, int(rng.integers(0, depth))] = 127
    batches.append(peak)
    top = int(rng.integers(-100, 128))
    batches.append(rng.integers(top - 6, top + 1, size=(rows, depth)))
    while len(batches) < samples:
        batches.append(rng.integers(-128, 128, size=(rows, depth)))
    return np.stack([b.reshape(-1) for b in batches]).astype(np.int8)


@pytest.mark.parametrize("case", range(LOG_SOFTMAX_CASES))
def test_log_softmax_random(case):
    """Rank 1 to 3 without the batch, depths from 1 to 40 (one of 1000), input ranges from 0.02 to
    80 wide: the input rescale from small to capped, and rows with elements past diff_min."""
    rng = np.random.default_rng(24000 + case)
    shape = tuple(int(d) for d in rng.integers(1, 5, size=int(rng.integers(0, 3)))) + (
        1000 if case == 5 else int(rng.integers(1, 41)),)
    model = convert_int8(tf.nn.log_softmax, [shape], calib_range=random_range(rng), seed=case)
    graph, op = only_op(model, "LOG_SOFTMAX")
    inp = graph.tensors[op.inputs[0]]
    codes = _log_softmax_inputs(rng, inp.num_elements // shape[-1], shape[-1])
    assert_bit_exact(model, inputs=codes, expect_ops={"LOG_SOFTMAX"})


@pytest.mark.parametrize("half_width", [0.01, 1.0, 8.0, 200.0])
def test_log_softmax_every_distance_below_the_maximum(half_width):
    """A 256-wide row holding every code (every distance 0..255 below the maximum) and rows with
    the maximum repeated, for input scales from tiny to huge."""
    model = convert_int8(tf.nn.log_softmax, [(3, 256)], calib_range=(-half_width, half_width))
    only_op(model, "LOG_SOFTMAX")
    rng = np.random.default_rng(25000)
    codes = np.arange(-128, 128)
    rows = [np.stack([codes, rng.permutation(codes), np.where(codes > 100, 127, codes)]) for _ in range(2)]
    rows.append(np.stack([np.full(256, 127), np.where(codes < 0, 127, -128), codes[::-1]]))
    assert_bit_exact(model, inputs=np.stack([r.reshape(-1) for r in rows]).astype(np.int8),
                     expect_ops={"LOG_SOFTMAX"})


def test_log_softmax_other_output_quantization_is_refused():
    """TFLite Micro's LOG_SOFTMAX requires output scale 16/256 and zero point 127 (its Prepare fails)."""
    model = with_output_scale(convert_int8(tf.nn.log_softmax, [(5,)]), 0.1)
    graph, op = only_op(model, "LOG_SOFTMAX")
    with pytest.raises(UnsupportedOperator, match=rf"LOG_SOFTMAX \(node {op.index}\) has output scale 0.1, zero "
                                                  r"point 127; supported: output scale 16/256 and zero point 127 "
                                                  r"\(TFLite's int8 log softmax\)"):
        lower_graph(graph)

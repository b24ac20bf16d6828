"""Helium CONV_2D and FULLY_CONNECTED (firmware/runtime/kernels/helium): bit-exact with TFLM on
the emulated Cortex-M55 (mps3-an547), where the real MVE instructions run.

The DSP kernels' randomized models (tests/test_dsp_kernels.py): 1, 3 and odd input channel
counts, 1x1 filters read in place, strides, dilations, padding, per-tensor and per-channel
scales, fused activations, odd pixel and channel counts (the 4x2 blocks' tails), depths that
are not a multiple of 16 (the predicated last chunk), FC batches; plus output scales that make
some channels' multipliers exceed 1 (a left shift) next to channels that shift right, and a
chain of convolutions that run over their own input.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from ops.test_conv import channel_weights

from tinyml_ptq.compiler.codegen import generate_model_sources
from tinyml_ptq.compiler.lowering.gemmlowp_math import multiply_by_quantized_multiplier
from tinyml_ptq.compiler.lowering.helium_gemm import helium_words, pack_helium_filter
from tinyml_ptq.compiler.tflite_reader import parse_tflite

from harness import convert_int8, with_output_scale
from test_dsp_kernels import model_bytes, needs_arm, run_on_board

BOARD = "mps3-an547"

# A spread of the DSP tests' models: conv 0..7 (1/3/odd channels, pointwise at 3 and 7, per
# tensor at 1 and 5, no bias at 5), narrow convolutions with 3..8 input channels over 1x1, 3x3,
# 2x3 and 3x1 filters (a dead channel at 3), KWS's 10x4 first layer, FC cases 0..7 (batches of 3
# at 2 and 6, per tensor at odd cases, no bias at 3 and 7).
MODELS = ([f"conv{c}" for c in range(8)] + [f"narrow_conv{c}" for c in (1, 2, 3, 4, 6)] + ["kws_first_layer"]
          + [f"fc{c}" for c in range(8)])


def left_shift_model(kind: str) -> bytes:
    """A CONV_2D or FULLY_CONNECTED whose output scale is the input scale times the median filter
    scale: about half the channels get a multiplier of 1 or more (shift > 0, VSHL) and the others
    none or a right shift, in the same groups of four."""
    rng = np.random.default_rng(31 if kind == "conv" else 32)
    if kind == "conv":
        weights = channel_weights(rng, (3, 3, 5, 11), channel_axis=3)
        model = convert_int8(lambda x: tf.nn.conv2d(x, weights, strides=1, padding="SAME"), [(5, 7, 5)],
                             calib_range=(-2.0, 3.0))
    else:
        weights = (rng.normal(size=(37, 13)) * rng.uniform(0.1, 4.0, size=13)).astype(np.float32)
        model = convert_int8(lambda x: tf.matmul(x, weights), [(2, 37)], calib_range=(-2.0, 3.0))
    graph = parse_tflite(model)
    op = graph.operators[0]
    inp, filt = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]]
    return with_output_scale(model, float(inp.scale * np.median(filt.quantization.scale)) * 0.7)


def inplace_chain_model() -> bytes:
    """3x3 -> 1x1 -> 3x3 -> 1x1 stride 2 convolutions: each intermediate dies at the next one,
    which runs over it (the pointwise blocks, then the row ring twice: the strided 1x1 reads its
    input pixels where the moved top padding puts them)."""
    rng = np.random.default_rng(41)
    w1 = channel_weights(rng, (3, 3, 3, 24), channel_axis=3)
    w2 = channel_weights(rng, (1, 1, 24, 20), channel_axis=3)
    w3 = channel_weights(rng, (3, 3, 20, 16), channel_axis=3)
    w4 = channel_weights(rng, (1, 1, 16, 40), channel_axis=3)

    def build(x):
        y = tf.nn.relu(tf.nn.conv2d(x, w1, strides=1, padding="SAME"))
        y = tf.nn.relu6(tf.nn.conv2d(y, w2, strides=1, padding="VALID"))
        y = tf.nn.conv2d(y, w3, strides=1, padding="SAME")
        return tf.nn.conv2d(y, w4, strides=2, padding="SAME")

    return convert_int8(build, [(13, 11, 3)], calib_range=(-1.0, 2.0))


def test_filter_packing_and_words():
    """Per group of four rows, per 16-input chunk, the rows' chunks one after another, zero-padded;
    words -right, bias, left, multiplier by four lanes, padding rows zero."""
    rows = np.arange(-60, 6 * 21 - 60, dtype=np.int64).reshape(6, 21).astype(np.int8)
    packed = pack_helium_filter(rows).reshape(2, 2, 4, 16)  # groups, chunks, rows, inputs
    assert packed.dtype == np.int8
    assert np.array_equal(packed[1, 0, 1], rows[5, :16])
    assert np.array_equal(packed[0, 1, 2, :5], rows[2, 16:]) and not packed[0, 1, 2, 5:].any()
    assert not packed[1, :, 2:].any()
    words = helium_words(np.array([7, -8, 9, 10, 11]), np.array([1 << 30] * 5), np.array([-3, 2, 0, -31, 1]))
    assert words[:4].tolist() == [0, 0, 0, 0]  # some rows do not shift right: the general requantization
    assert words[4:].reshape(2, 4, 4)[0].tolist() == [[-3, 0, 0, -31], [7, -8, 9, 10], [0, 2, 0, 0], [1 << 30] * 4]
    assert words[4:].reshape(2, 4, 4)[1].tolist() == [[0] * 4, [11, 0, 0, 0], [1, 0, 0, 0], [1 << 30, 0, 0, 0]]
    assert helium_words(np.zeros(3), np.ones(3), np.array([-1, -5, -31]))[0] == 1


def _wrap32(x: int) -> int:
    return (x + (1 << 31)) % (1 << 32) - (1 << 31)


def helium_lane(acc: int, multiplier: int, shift: int, right_only: bool) -> int:
    """One lane of the kernels' requantization (tp_helium_gemm_s8_groups.S), instruction by
    instruction, as the Armv8.1-M pseudocode defines them."""
    left, neg_right = max(shift, 0), min(shift, 0)
    x = acc if right_only else _wrap32(acc << left)  # VSHL by a positive amount: wraps
    high = min((2 * x * multiplier + (1 << 31)) >> 32, (1 << 31) - 1)  # VQRDMULH
    sign = high if right_only else high & neg_right  # VAND with -n (its sign bit: n >= 1)
    fixed = _wrap32(high + (-1 if sign < 0 else 0))  # VSHR #31, VADD
    n = -neg_right  # VRSHL by -n: rounded, in full precision
    return _wrap32((fixed + (1 << (n - 1))) >> n) if n else fixed


def test_requantization_lanes_equal_the_reference():
    """The general and the right-only sequences give MultiplyByQuantizedMultiplier (tp_requantize)
    for accumulators across the int32 range, its ends and rounding ties, every shift TFLM makes."""
    rng = np.random.default_rng(5)
    for shift in range(-31, 31):
        multipliers = [0, 1 << 30, (1 << 31) - 1, *map(int, rng.integers(1 << 30, 1 << 31, size=6))]
        accs = [0, 1, -1, -(1 << 31), (1 << 31) - 1, *map(int, rng.integers(-(1 << 31), 1 << 31, size=40)),
                *map(int, rng.integers(-5000, 5000, size=40))]
        if shift < 0:  # exact ties of the rounding divide: high = (2j + 1) * 2^(n - 1)
            accs += [t << 31 for t in (1, -1, 3, -3)] + [(1 << (-shift - 1)) * 3 << 1, -((1 << (-shift - 1)) << 1)]
        for m in multipliers:
            for acc in accs:
                acc = _wrap32(acc)
                expected = multiply_by_quantized_multiplier(acc, m, shift)
                assert helium_lane(acc, m, shift, right_only=False) == expected, (acc, m, shift)
                if shift < 0:
                    assert helium_lane(acc, m, shift, right_only=True) == expected, (acc, m, shift)


def test_generate_calls_the_helium_kernels():
    conv = model_bytes("conv0")
    sources = generate_model_sources(parse_tflite(conv), conv, kernels="helium")
    assert "tp_conv2d_s8_helium(" in sources.files["model.c"]
    assert {"kernels/helium/tp_conv2d_s8_helium.c", "kernels/helium/tp_helium_gemm_s8.c",
            "kernels/helium/tp_helium_gemm_s8_groups.S"} <= set(sources.runtime_sources)
    fc = model_bytes("fc2")
    sources = generate_model_sources(parse_tflite(fc), fc, kernels="helium")
    assert "tp_fully_connected_s8_helium(" in sources.files["model.c"]


@needs_arm
@pytest.mark.slow
def test_generate_on_mps3_an547_uses_helium(tmp_path):
    from tinyml_ptq.compiler.project import generate

    model = tmp_path / "conv.tflite"
    model.write_bytes(model_bytes("conv2"))
    assert generate(model, tmp_path / "p", board=BOARD, kernels="auto").kernels == "helium"
    assert "tp_conv2d_s8_helium" in (tmp_path / "p" / "model" / "model.c").read_text()  # (here over its input)


@needs_arm
@pytest.mark.slow
def test_helium_conv_fc_bit_exact_on_cortex_m55(tmp_path):
    failures = {name: exact for name in MODELS
                if (exact := run_on_board(model_bytes(name), BOARD, tmp_path, name, kernels="helium")) != 1.0}
    assert not failures, f"not bit-exact on {BOARD}: {failures}"


@needs_arm
@pytest.mark.slow
@pytest.mark.parametrize("kind", ["conv", "fc"])
def test_left_shifts_bit_exact(kind, tmp_path):
    model = left_shift_model(kind)
    graph = parse_tflite(model)
    op = graph.operators[0]
    inp, filt, out = (graph.tensors[i] for i in (*op.inputs[:2], op.outputs[0]))
    real = inp.scale * filt.quantization.scale / out.scale
    assert (real >= 1).any() and (real < 1).any()  # left shifts next to none or right ones
    assert run_on_board(model, BOARD, tmp_path, f"left_{kind}", samples=6, kernels="helium") == 1.0


@needs_arm
@pytest.mark.slow
def test_inplace_chain_bit_exact(tmp_path):
    model = inplace_chain_model()
    sources = generate_model_sources(parse_tflite(model), model, kernels="helium")
    model_c = sources.files["model.c"]
    assert model_c.count("tp_conv2d_s8_helium_pointwise_inplace(") == 1
    assert model_c.count("tp_conv2d_s8_helium_inplace(") == 2
    assert run_on_board(model, BOARD, tmp_path, "chain", kernels="helium") == 1.0
